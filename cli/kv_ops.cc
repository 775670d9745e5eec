#include "cli/kv_ops.h"

#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/go_format.h"

namespace arbiter::cli {
namespace {

// A boolean flag: bare sets "true", --name=value sets value.
void AddBool(CLI::App* command, const std::string& name, std::string* value,
             const std::string& help) {
  command->add_flag(name, *value, help)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void AddText(CLI::App* command, const std::string& name, std::string* value,
             const std::string& help) {
  command->add_option(name, *value, help)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
}

std::string Invalid(const std::string& value, const std::string& flag, const absl::Status& error) {
  return absl::StrCat("invalid argument ", GoQuote(value), " for \"", flag,
                      "\" flag: ", error.message());
}

std::optional<std::string> CheckBool(const std::string& value, const std::string& flag) {
  absl::StatusOr<bool> parsed = GoParseBool(value);
  if (!parsed.ok()) return Invalid(value, flag, parsed.status());
  return std::nullopt;
}

std::optional<std::string> CheckInt(const std::string& value, const std::string& flag) {
  absl::StatusOr<int64_t> parsed = GoParseInt(value, 10);
  if (!parsed.ok()) return Invalid(value, flag, parsed.status());
  return std::nullopt;
}

int64_t FlagInt(const std::string& value) { return GoParseInt(value, 10).value_or(0); }

// The smallest key greater than every key with this prefix; "\0" (every
// key from the prefix on) when there is none.
std::string PrefixEnd(const std::string& key) {
  std::string end = key;
  for (int i = static_cast<int>(end.size()) - 1; i >= 0; --i) {
    if (static_cast<unsigned char>(end[i]) < 0xff) {
      end[i] = static_cast<char>(static_cast<unsigned char>(end[i]) + 1);
      end.resize(i + 1);
      return end;
    }
  }
  return std::string(1, '\0');
}

Exit BadArgs(std::string message) { return Exit{kExitBadArgs, std::move(message)}; }

// --order and --sort-by, as clientv3.WithSort sets them.
std::optional<Exit> SetSort(const GetFlags& f, etcdserverpb::RangeRequest* r) {
  const std::string order = absl::AsciiStrToUpper(f.order);
  etcdserverpb::RangeRequest::SortOrder sort_order = etcdserverpb::RangeRequest::NONE;
  if (order == "ASCEND") {
    sort_order = etcdserverpb::RangeRequest::ASCEND;
  } else if (order == "DESCEND") {
    sort_order = etcdserverpb::RangeRequest::DESCEND;
  } else if (!order.empty()) {
    return Exit{kExitBadFeature, absl::StrCat("bad sort order ", f.order)};
  }
  const std::string target = absl::AsciiStrToUpper(f.sort_by);
  etcdserverpb::RangeRequest::SortTarget sort_target = etcdserverpb::RangeRequest::KEY;
  if (target == "CREATE") {
    sort_target = etcdserverpb::RangeRequest::CREATE;
  } else if (target == "MODIFY") {
    sort_target = etcdserverpb::RangeRequest::MOD;
  } else if (target == "VALUE") {
    sort_target = etcdserverpb::RangeRequest::VALUE;
  } else if (target == "VERSION") {
    sort_target = etcdserverpb::RangeRequest::VERSION;
  } else if (!target.empty() && target != "KEY") {
    return Exit{kExitBadFeature, absl::StrCat("bad sort target ", f.sort_by)};
  }
  // The server returns keys in ascending order anyway, so clientv3 drops
  // an explicit ascending sort by key.
  if (sort_target == etcdserverpb::RangeRequest::KEY &&
      sort_order == etcdserverpb::RangeRequest::ASCEND) {
    sort_order = etcdserverpb::RangeRequest::NONE;
  }
  r->set_sort_order(sort_order);
  r->set_sort_target(sort_target);
  return std::nullopt;
}

}  // namespace

bool FlagBool(const std::string& value) { return GoParseBool(value).value_or(false); }

void AddGetFlags(CLI::App* command, GetFlags* flags) {
  AddText(command, "--consistency", &flags->consistency, "Linearizable(l) or Serializable(s)");
  AddText(command, "--order", &flags->order,
          "Order of results; ASCEND or DESCEND (ASCEND by default)");
  AddText(command, "--sort-by", &flags->sort_by,
          "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION");
  AddText(command, "--limit", &flags->limit, "Maximum number of results");
  AddBool(command, "--prefix", &flags->prefix, "Get keys with matching prefix");
  AddBool(command, "--from-key", &flags->from_key,
          "Get keys that are greater than or equal to the given key using byte compare");
  AddText(command, "--rev", &flags->rev, "Specify the kv revision");
  AddBool(command, "--keys-only", &flags->keys_only, "Get only the keys");
  AddBool(command, "--count-only", &flags->count_only, "Get only the count");
  AddBool(command, "--print-value-only", &flags->print_value_only,
          "Only write values when using the \"simple\" output format");
  command->add_option("args", flags->args, "<key> [range_end]");
}

void AddPutFlags(CLI::App* command, PutFlags* flags) {
  AddText(command, "--lease", &flags->lease, "lease ID (in hexadecimal) to attach to the key");
  AddBool(command, "--prev-kv", &flags->prev_kv,
          "return the previous key-value pair before modification");
  AddBool(command, "--ignore-value", &flags->ignore_value,
          "updates the key using its current value");
  AddBool(command, "--ignore-lease", &flags->ignore_lease,
          "updates the key using its current lease");
  command->add_option("args", flags->args, "<key> <value>");
}

void AddDelFlags(CLI::App* command, DelFlags* flags) {
  AddBool(command, "--prefix", &flags->prefix, "delete keys with matching prefix");
  AddBool(command, "--prev-kv", &flags->prev_kv, "return deleted key-value pairs");
  AddBool(command, "--from-key", &flags->from_key,
          "delete keys that are greater than or equal to the given key using byte compare");
  command->add_option("args", flags->args, "<key> [range_end]");
}

std::optional<std::string> CheckGetFlags(const GetFlags& f) {
  for (const auto& [value, name] : {std::pair{&f.prefix, "--prefix"},
                                    {&f.from_key, "--from-key"},
                                    {&f.keys_only, "--keys-only"},
                                    {&f.count_only, "--count-only"},
                                    {&f.print_value_only, "--print-value-only"}}) {
    if (auto error = CheckBool(*value, name)) return error;
  }
  if (auto error = CheckInt(f.limit, "--limit")) return error;
  return CheckInt(f.rev, "--rev");
}

std::optional<std::string> CheckPutFlags(const PutFlags& f) {
  for (const auto& [value, name] : {std::pair{&f.prev_kv, "--prev-kv"},
                                    {&f.ignore_value, "--ignore-value"},
                                    {&f.ignore_lease, "--ignore-lease"}}) {
    if (auto error = CheckBool(*value, name)) return error;
  }
  return std::nullopt;
}

std::optional<std::string> CheckDelFlags(const DelFlags& f) {
  for (const auto& [value, name] :
       {std::pair{&f.prefix, "--prefix"}, {&f.prev_kv, "--prev-kv"}, {&f.from_key, "--from-key"}}) {
    if (auto error = CheckBool(*value, name)) return error;
  }
  return std::nullopt;
}

std::optional<Exit> BuildGet(const GetFlags& f, GetOp* op) {
  const bool prefix = FlagBool(f.prefix);
  const bool from_key = FlagBool(f.from_key);
  if (f.args.empty()) {
    return BadArgs("get command needs one argument as key and an optional argument as range_end");
  }
  if (prefix && from_key) {
    return BadArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  etcdserverpb::RangeRequest& r = op->request;
  if (f.consistency == "s") {
    r.set_serializable(true);
  } else if (f.consistency != "l") {
    return Exit{kExitBadFeature, absl::StrCat("unknown consistency flag ", GoQuote(f.consistency))};
  }
  std::string key = f.args[0];
  if (f.args.size() > 1) {
    if (prefix || from_key) {
      return BadArgs(
          "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
    }
    r.set_range_end(f.args[1]);
  }
  r.set_limit(FlagInt(f.limit));
  if (FlagInt(f.rev) > 0) r.set_revision(FlagInt(f.rev));

  if (auto exit = SetSort(f, &r)) return exit;

  if (prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      r.set_range_end(std::string(1, '\0'));
    } else {
      r.set_range_end(PrefixEnd(key));
    }
  }
  if (from_key) {
    if (key.empty()) key = std::string(1, '\0');
    r.set_range_end(std::string(1, '\0'));
  }
  r.set_key(key);
  r.set_keys_only(FlagBool(f.keys_only));
  r.set_count_only(FlagBool(f.count_only));
  op->print_value_only = FlagBool(f.print_value_only);
  return std::nullopt;
}

std::optional<Exit> BuildPut(const PutFlags& f, std::istream& in, etcdserverpb::PutRequest* r) {
  const char* const kUsage = "put command needs 1 argument and input from stdin or 2 arguments";
  if (f.args.empty()) return BadArgs(kUsage);
  const bool ignore_value = FlagBool(f.ignore_value);
  if (ignore_value && f.args.size() > 1) {
    return BadArgs("put command needs only 1 argument when 'ignore-value' is set");
  }
  r->set_key(f.args[0]);
  if (!ignore_value) {
    if (f.args.size() > 1) {
      r->set_value(f.args[1]);
    } else {
      std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (value.empty()) return BadArgs(kUsage);
      r->set_value(value);
    }
  }
  absl::StatusOr<int64_t> lease = GoParseInt(f.lease, 16);
  if (!lease.ok()) {
    return BadArgs(
        absl::StrCat("bad lease ID (", lease.status().message(), "), expecting ID in Hex"));
  }
  r->set_lease(*lease);
  r->set_prev_kv(FlagBool(f.prev_kv));
  r->set_ignore_value(ignore_value);
  r->set_ignore_lease(FlagBool(f.ignore_lease));
  return std::nullopt;
}

std::optional<Exit> BuildDel(const DelFlags& f, etcdserverpb::DeleteRangeRequest* r) {
  if (f.args.empty() || f.args.size() > 2) {
    return BadArgs("del command needs one argument as key and an optional argument as range_end");
  }
  const bool prefix = FlagBool(f.prefix);
  const bool from_key = FlagBool(f.from_key);
  if (prefix && from_key) {
    return BadArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  std::string key = f.args[0];
  if (f.args.size() > 1) {
    if (prefix || from_key) {
      return BadArgs(
          "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
    }
    r->set_range_end(f.args[1]);
  }
  if (prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      r->set_range_end(std::string(1, '\0'));
    } else {
      r->set_range_end(PrefixEnd(key));
    }
  }
  r->set_prev_kv(FlagBool(f.prev_kv));
  if (from_key) {
    if (key.empty()) key = std::string(1, '\0');
    r->set_range_end(std::string(1, '\0'));
  }
  r->set_key(key);
  return std::nullopt;
}

}  // namespace arbiter::cli
