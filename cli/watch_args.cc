#include "cli/watch_args.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/go_format.h"
#include "cli/go_json.h"

namespace arbiter::cli {
namespace {

absl::Status BadArgs(absl::string_view message) { return absl::InvalidArgumentError(message); }

std::string Invalid(const std::string& value, const std::string& flag, const absl::Status& error) {
  return absl::StrCat("invalid argument ", GoQuote(value), " for \"", flag,
                      "\" flag: ", error.message());
}

std::string HexBytes(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) absl::StrAppendFormat(&out, "\\x%02x", c);
  return out;
}

// The index of the first `word` in `words`, or words.size().
size_t Find(const std::vector<std::string>& words, const std::string& word) {
  return std::find(words.begin(), words.end(), word) - words.begin();
}

// The error text of a canceled response, as clientv3's WatchResponse.Err.
std::string CancelError(const etcdserverpb::WatchResponse& r) {
  if (r.compact_revision() != 0) return "etcdserver: mvcc: required revision has been compacted";
  if (!r.cancel_reason().empty()) {
    return absl::StrCat("rpc error: code = FailedPrecondition desc = ", r.cancel_reason());
  }
  return "etcdserver: mvcc: required revision is a future revision";
}

std::string Json(const etcdserverpb::WatchResponse& r, bool null_events) {
  std::string events = "null";
  if (!null_events) {
    events = "[";
    for (int i = 0; i < r.events_size(); ++i) {
      if (i > 0) events += ",";
      events += GoJson(r.events(i));
    }
    events += "]";
  }
  return absl::StrCat("{\"Header\":", GoJson(r.header()), ",\"Events\":", events,
                      ",\"CompactRevision\":", r.compact_revision(),
                      ",\"Canceled\":", r.canceled() ? "true" : "false",
                      ",\"Created\":", r.created() ? "true" : "false", "}\n");
}

}  // namespace

void AddWatchFlags(CLI::App* command, WatchFlags* flags) {
  command->add_flag("-i,--interactive", flags->interactive, "Interactive mode")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  command->add_flag("--prefix", flags->prefix, "Watch on a prefix if prefix is set")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  command->add_option("--rev", flags->rev, "Revision to start watching")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  command
      ->add_flag("--prev-kv", flags->prev_kv,
                 "get the previous key-value pair before the event happens")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  command->add_option("args", flags->args,
                      "[key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]");
}

std::optional<std::string> CheckWatchFlags(const WatchFlags& f) {
  for (const auto& [value, name] : {std::pair{&f.interactive, "-i, --interactive"},
                                    {&f.prefix, "--prefix"},
                                    {&f.prev_kv, "--prev-kv"}}) {
    if (absl::StatusOr<bool> b = GoParseBool(*value); !b.ok()) {
      return Invalid(*value, name, b.status());
    }
  }
  if (absl::StatusOr<int64_t> rev = GoParseInt(f.rev, 10); !rev.ok()) {
    return Invalid(f.rev, "--rev", rev.status());
  }
  return std::nullopt;
}

absl::StatusOr<WatchSpec> ParseWatchCommandLine(const std::vector<std::string>& os_args,
                                                const WatchFlags& flags, const std::string& env_key,
                                                const std::string& env_range) {
  // The words after the command's name ("watch"), or all of them when
  // the name was typed shorter.
  std::vector<std::string> raw = os_args;
  if (size_t at = Find(raw, "watch"); at < raw.size()) raw.erase(raw.begin(), raw.begin() + at + 1);
  std::vector<std::string> args = flags.args;
  const size_t sep = Find(raw, "--");
  const bool has_exec = sep < raw.size();
  if (has_exec && sep == raw.size() - 1) return BadArgs(kBadArgsSeparator);
  if (!has_exec && raw.empty() && env_key.empty()) return BadArgs(kBadArgsNum);
  if (has_exec && !env_key.empty()) {
    // Matches the arguments to the raw words from the end; an argument
    // before the separator is one too many.
    int r = static_cast<int>(raw.size()) - 1;
    for (int w = static_cast<int>(args.size()) - 1; w >= 0; --w) {
      if (r >= 0 && args[w] == raw[r]) {
        --r;
        continue;
      }
      if (r == static_cast<int>(sep)) return BadArgs(kBadArgsConflictEnv);
    }
  }
  if (!has_exec && !args.empty() && !env_key.empty()) return BadArgs(kBadArgsConflictEnv);

  WatchSpec spec;
  spec.prefix = GoParseBool(flags.prefix).value_or(false);
  spec.rev = GoParseInt(flags.rev, 10).value_or(0);
  spec.prev_kv = GoParseBool(flags.prev_kv).value_or(false);
  if (has_exec) spec.exec.assign(raw.begin() + sep + 1, raw.end());
  if (!env_key.empty()) {
    std::vector<std::string> with_env = {env_key};
    if (!env_range.empty()) with_env.push_back(env_range);
    with_env.insert(with_env.end(), args.begin(), args.end());
    args = std::move(with_env);
  }
  if (has_exec) {
    // The arguments end where the exec command's first word last appears.
    int end = static_cast<int>(args.size()) - 1;
    while (end >= 0 && args[end] != spec.exec.front()) --end;
    args.resize(std::max(end, 0));
  }
  spec.args = std::move(args);
  return spec;
}

absl::StatusOr<WatchSpec> ParseWatchLine(const std::vector<std::string>& words,
                                         const std::string& env_key, const std::string& env_range) {
  WatchSpec spec;
  const size_t sep = Find(words, "--");
  const bool has_exec = sep < words.size();
  if (has_exec && sep == words.size() - 1) return BadArgs(kBadArgsSeparator);
  // pflag, with the watch command's four flags.
  std::vector<std::string> positional;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word == "--") {
      positional.insert(positional.end(), words.begin() + i + 1, words.end());
      break;
    }
    if (word.size() < 2 || word[0] != '-') {
      positional.push_back(word);
      continue;
    }
    std::string name;
    std::string value;
    bool has_value = false;
    std::string shown;
    if (absl::StartsWith(word, "--")) {
      name = word.substr(2);
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      if (name == "help") return BadArgs("pflag: help requested");
      if (name != "interactive" && name != "prefix" && name != "rev" && name != "prev-kv") {
        return BadArgs(absl::StrCat("unknown flag: --", name));
      }
      shown = name == "interactive" ? "-i, --interactive" : "--" + name;
    } else {
      const char c = word[1];
      if (c == 'h') return BadArgs("pflag: help requested");
      if (c != 'i')
        return BadArgs(absl::StrCat("unknown shorthand flag: '", std::string(1, c), "' in ", word));
      name = "interactive";
      shown = "-i, --interactive";
      if (word.size() > 2) {
        if (word[2] != '=') {
          return BadArgs(
              absl::StrCat("unknown shorthand flag: '", std::string(1, word[2]), "' in ", word));
        }
        value = word.substr(3);
        has_value = true;
      }
    }
    if (name == "rev") {
      if (!has_value) {
        if (i + 1 >= words.size()) return BadArgs("flag needs an argument: --rev");
        value = words[++i];
      }
      absl::StatusOr<int64_t> rev = GoParseInt(value, 10);
      if (!rev.ok()) return BadArgs(Invalid(value, shown, rev.status()));
      spec.rev = *rev;
      continue;
    }
    bool flag = true;
    if (has_value) {
      absl::StatusOr<bool> b = GoParseBool(value);
      if (!b.ok()) return BadArgs(Invalid(value, shown, b.status()));
      flag = *b;
    }
    if (name == "prefix") spec.prefix = flag;
    if (name == "prev-kv") spec.prev_kv = flag;
  }
  if (!has_exec && env_key.empty() && positional.empty()) return BadArgs(kBadArgsNum);
  if (!has_exec && !positional.empty() && !env_key.empty()) return BadArgs(kBadArgsConflictEnv);
  if (has_exec) spec.exec.assign(words.begin() + sep + 1, words.end());
  if (!env_key.empty()) {
    std::vector<std::string> with_env = {env_key};
    if (!env_range.empty()) with_env.push_back(env_range);
    with_env.insert(with_env.end(), positional.begin(), positional.end());
    positional = std::move(with_env);
  }
  if (has_exec) {
    int end = static_cast<int>(positional.size()) - 1;
    while (end >= 0 && positional[end] != spec.exec.front()) --end;
    positional.resize(std::max(end, 0));
  }
  spec.args = std::move(positional);
  return spec;
}

absl::StatusOr<client::WatchOptions> WatchOptionsFor(const WatchSpec& spec) {
  if (spec.args.empty()) return BadArgs(kBadArgsNum);
  client::WatchOptions options;
  options.key = spec.args[0];
  options.start_revision = spec.rev;
  if (spec.args.size() == 2) {
    if (spec.prefix) return BadArgs("`range_end` and `--prefix` are mutually exclusive");
    options.range_end = spec.args[1];
  }
  if (spec.prefix) {
    if (options.key.empty()) {
      options.key = std::string(1, '\0');
      options.range_end = std::string(1, '\0');
    } else {
      options.range_end = client::PrefixRangeEnd(options.key);
    }
  }
  options.prev_kv = spec.prev_kv;
  return options;
}

WatchOutput FormatWatchResponse(const etcdserverpb::WatchResponse& r, bool json, bool hex) {
  WatchOutput output;
  if (r.created() && r.canceled()) {
    // Refused at creation: clientv3 closes the watcher with the reason.
    return FormatWatchError(r.cancel_reason(), json);
  }
  if (r.canceled()) {
    output.ended = true;
    // clientv3 passes on only a cancellation for compaction; any other
    // just closes the watcher.
    if (r.compact_revision() == 0) return output;
    output.err = absl::StrCat("watch was canceled (", CancelError(r), ")\n");
  }
  if (r.events_size() == 0 && !r.canceled() && !r.created() && r.compact_revision() == 0 &&
      r.header().revision() != 0) {
    output.out = absl::StrCat("progress notify: ", r.header().revision(), "\n");
  }
  if (json) {
    output.out += Json(r, /*null_events=*/false);
    return output;
  }
  for (const mvccpb::Event& e : r.events()) {
    output.out += e.type() == mvccpb::Event::DELETE ? "DELETE\n" : "PUT\n";
    const auto kv = [&](const mvccpb::KeyValue& kv) {
      absl::StrAppend(&output.out, hex ? HexBytes(kv.key()) : kv.key(), "\n",
                      hex ? HexBytes(kv.value()) : kv.value(), "\n");
    };
    if (e.has_prev_kv()) kv(e.prev_kv());
    kv(e.kv());
  }
  return output;
}

WatchOutput FormatWatchError(const std::string& error_text, bool json) {
  WatchOutput output;
  output.ended = true;
  output.err = absl::StrCat("watch was canceled (", error_text, ")\n");
  etcdserverpb::WatchResponse empty;
  empty.set_canceled(true);
  if (json) output.out = Json(empty, /*null_events=*/true);
  return output;
}

std::vector<std::string> WatchExecEnv(const etcdserverpb::WatchResponse& r,
                                      const mvccpb::Event& e) {
  return {absl::StrCat("ETCD_WATCH_REVISION=", r.header().revision()),
          absl::StrCat("ETCD_WATCH_EVENT_TYPE=",
                       e.type() == mvccpb::Event::DELETE ? "\"DELETE\"" : "\"PUT\""),
          absl::StrCat("ETCD_WATCH_KEY=", GoQuote(e.kv().key())),
          absl::StrCat("ETCD_WATCH_VALUE=", GoQuote(e.kv().value()))};
}

}  // namespace arbiter::cli
