#include "cli/txn_input.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/go_format.h"
#include "cli/kv_ops.h"

namespace arbiter::cli {
namespace {

using etcdserverpb::Compare;

// RE2's \s.
bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

Exit InvalidInput(std::string message) { return Exit{kExitInvalidInput, std::move(message)}; }

// A minimal fmt.Sscanf(input, "%q) %s %q"): the number of values read, as
// Go counts them.
struct Scanned {
  int n = 0;
  std::string key, op, val;
};

Scanned ScanCompare(absl::string_view in) {
  Scanned out;
  const auto skip_spaces = [&] {
    while (!in.empty() && (in[0] == ' ' || in[0] == '\t' || in[0] == '\r')) in.remove_prefix(1);
  };
  // A space in the format needs one or more spaces, or the end of input.
  const auto format_space = [&] {
    if (in.empty()) return true;
    if (in[0] != ' ' && in[0] != '\t' && in[0] != '\r') return false;
    skip_spaces();
    return true;
  };
  const auto quoted = [&](std::string* value) {
    skip_spaces();
    size_t used = 0;
    std::optional<std::string> s = GoUnquotePrefix(in, &used);
    if (!s.has_value()) return false;
    *value = *std::move(s);
    in.remove_prefix(used);
    return true;
  };
  if (!quoted(&out.key)) return out;
  out.n = 1;
  if (in.empty() || in[0] != ')') return out;
  in.remove_prefix(1);
  if (!format_space()) return out;
  skip_spaces();
  size_t end = 0;
  while (end < in.size() && !IsBlank(in[end])) ++end;
  if (end == 0) return out;
  out.op = std::string(in.substr(0, end));
  in.remove_prefix(end);
  out.n = 2;
  if (!format_space()) return out;
  if (!quoted(&out.val)) return out;
  out.n = 3;
  return out;
}

// clientv3.Compare's operators; anything else makes etcdctl panic.
std::optional<Exit> SetResult(const std::string& op, Compare* compare) {
  if (op == "=") {
    compare->set_result(Compare::EQUAL);
  } else if (op == "!=") {
    compare->set_result(Compare::NOT_EQUAL);
  } else if (op == ">") {
    compare->set_result(Compare::GREATER);
  } else if (op == "<") {
    compare->set_result(Compare::LESS);
  } else {
    return GoPanic("Unknown result op");
  }
  return std::nullopt;
}

// Reads lines up to an empty one, handing each to `parse` as it is read.
// Input that ends first is an error, as Go's ReadString reports it.
std::optional<Exit> ReadBlock(std::istream& in,
                              const std::function<std::optional<Exit>(const std::string&)>& parse) {
  for (;;) {
    std::string line;
    std::getline(in, line);
    if (in.eof() || in.fail()) return InvalidInput("EOF");
    line = std::string(absl::StripAsciiWhitespace(line));
    if (line.empty()) return std::nullopt;
    if (auto exit = parse(line)) return exit;
  }
}

// The usage cobra prints (to standard error) when an operation line's
// flags do not parse, as etcdctl 3.4 shows it.
std::string OpUsage(const std::string& command) {
  if (command == "get") {
    return "Usage:\n"
           "   get [options] <key> [range_end] [flags]\n\n"
           "Flags:\n"
           "      --consistency string   Linearizable(l) or Serializable(s) (default \"l\")\n"
           "      --from-key             Get keys that are greater than or equal to the given "
           "key using byte compare\n"
           "  -h, --help                 help for get\n"
           "      --keys-only            Get only the keys\n"
           "      --limit int            Maximum number of results\n"
           "      --order string         Order of results; ASCEND or DESCEND (ASCEND by "
           "default)\n"
           "      --prefix               Get keys with matching prefix\n"
           "      --print-value-only     Only write values when using the \"simple\" output "
           "format\n"
           "      --rev int              Specify the kv revision\n"
           "      --sort-by string       Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION\n\n";
  }
  if (command == "put") {
    return "Usage:\n"
           "   put [options] <key> <value> (<value> can also be given from stdin) [flags]\n\n"
           "Flags:\n"
           "  -h, --help           help for put\n"
           "      --ignore-lease   updates the key using its current lease\n"
           "      --ignore-value   updates the key using its current value\n"
           "      --lease string   lease ID (in hexadecimal) to attach to the key (default "
           "\"0\")\n"
           "      --prev-kv        return the previous key-value pair before modification\n\n";
  }
  if (command == "del") {
    return "Usage:\n"
           "   del [options] <key> [range_end] [flags]\n\n"
           "Flags:\n"
           "      --from-key   delete keys that are greater than or equal to the given key "
           "using byte compare\n"
           "  -h, --help       help for del\n"
           "      --prefix     delete keys with matching prefix\n"
           "      --prev-kv    return deleted key-value pairs\n\n";
  }
  return "";
}

// The op's command, by name or by a prefix of exactly one name, as cobra
// matches them.
std::string OpCommand(const std::string& word) {
  std::string match;
  for (const char* name : {"put", "get", "del"}) {
    if (word == name) return word;
    if (absl::StartsWith(name, word) && !word.empty()) {
      if (!match.empty()) return word;
      match = name;
    }
  }
  return match.empty() ? word : match;
}

// The words of a line as etcdctl's regular expression finds them
// ("(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?), quotes included.
std::vector<std::string> Tokenize(absl::string_view line) {
  std::vector<std::string> raw;
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (c == '"') {
      size_t j = i + 1;
      bool closed = false;
      while (j < line.size()) {
        if (line[j] == '"') {
          closed = true;
          break;
        }
        if (line[j] == '\\') {
          if (j + 1 >= line.size() || line[j + 1] == '\n') break;
          ++j;
        }
        ++j;
      }
      if (closed) {
        raw.emplace_back(line.substr(i, j + 1 - i));
        i = j + 1;
        continue;
      }
    }
    if (c == '\'') {
      const size_t j = line.find('\'', i + 1);
      if (j != absl::string_view::npos) {
        raw.emplace_back(line.substr(i, j + 1 - i));
        i = j + 1;
        continue;
      }
    }
    if (c != '"' && c != '\'' && !IsBlank(c)) {
      size_t j = i;
      while (j < line.size() && !IsBlank(line[j])) ++j;
      raw.emplace_back(line.substr(i, j - i));
      i = j;
      continue;
    }
    ++i;
  }
  return raw;
}

}  // namespace

std::optional<Exit> Argify(absl::string_view line, std::vector<std::string>* words) {
  std::vector<std::string> raw = Tokenize(line);
  for (std::string& word : raw) {
    if (word[0] == '\'') {
      const size_t high = raw.size() - 1;
      if (high < 1) return GoPanic("runtime error: slice bounds out of range [1:0]");
      if (high > word.size()) {
        return GoPanic(absl::StrCat("runtime error: slice bounds out of range [:", high,
                                    "] with length ", word.size()));
      }
      word = word.substr(1, high - 1);
    } else if (word[0] == '"') {
      size_t used = 0;
      std::optional<std::string> value = GoUnquotePrefix(word, &used);
      if (!value.has_value()) return InvalidInput("invalid syntax");
      word = *std::move(value);
    }
  }
  *words = std::move(raw);
  return std::nullopt;
}

std::optional<Exit> ParseCompare(const std::string& line, Compare* compare) {
  const size_t paren = line.find('(');
  if (paren == std::string::npos) return InvalidInput("malformed comparison: " + line);
  const std::string target = line.substr(0, paren);
  const Scanned s = ScanCompare(absl::string_view(line).substr(paren + 1));
  if (s.n != 3) {
    return InvalidInput(absl::StrCat("malformed comparison: ", line, "; got ", target, "(",
                                     GoQuote(s.key), ") ", s.op, " ", GoQuote(s.val)));
  }
  compare->set_key(s.key);
  const auto number = [&](void (Compare::*set)(int64_t)) -> std::optional<Exit> {
    absl::StatusOr<int64_t> v = GoParseInt(s.val, 10);
    if (!v.ok()) return InvalidInput("invalid txn compare request: " + line);
    if (auto exit = SetResult(s.op, compare)) return exit;
    (compare->*set)(*v);
    return std::nullopt;
  };
  if (target == "ver" || target == "version") {
    compare->set_target(Compare::VERSION);
    return number(&Compare::set_version);
  }
  if (target == "c" || target == "create") {
    compare->set_target(Compare::CREATE);
    return number(&Compare::set_create_revision);
  }
  if (target == "m" || target == "mod") {
    compare->set_target(Compare::MOD);
    return number(&Compare::set_mod_revision);
  }
  if (target == "lease") {
    compare->set_target(Compare::LEASE);
    return number(&Compare::set_lease);
  }
  if (target == "val" || target == "value") {
    compare->set_target(Compare::VALUE);
    if (auto exit = SetResult(s.op, compare)) return exit;
    compare->set_value(s.val);
    return std::nullopt;
  }
  return InvalidInput(
      absl::StrCat("malformed comparison: ", line, " (unknown target ", target, ")"));
}

std::optional<Exit> ParseOp(const std::string& line, etcdserverpb::RequestOp* op) {
  std::vector<std::string> args;
  if (auto exit = Argify(line, &args)) return exit;
  if (args.size() < 2) return InvalidInput("invalid txn compare request: " + line);
  const Exit invalid = InvalidInput("invalid txn request: " + line);

  CLI::App app;
  app.allow_extras();
  GetFlags get_flags;
  PutFlags put_flags;
  DelFlags del_flags;
  CLI::App* get = app.add_subcommand("get");
  CLI::App* put = app.add_subcommand("put");
  CLI::App* del = app.add_subcommand("del");
  AddGetFlags(get, &get_flags);
  AddPutFlags(put, &put_flags);
  AddDelFlags(del, &del_flags);
  args[0] = OpCommand(args[0]);
  // A flag that does not parse makes cobra print the command's usage.
  Exit bad_flags = invalid;
  bad_flags.preface = OpUsage(args[0]);
  // Words after "--" are arguments whatever they look like.
  std::vector<std::string> tail;
  if (auto dashes = std::find(args.begin() + 1, args.end(), "--"); dashes != args.end()) {
    tail.assign(dashes + 1, args.end());
    args.erase(dashes, args.end());
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError&) {
    return bad_flags;
  }
  // Words CLI11 did not take, or took as arguments while they look like
  // flags ("-5"), are flags cobra does not know.
  for (CLI::App* command : {&app, get, put, del}) {
    if (!command->remaining().empty()) return command == &app ? invalid : bad_flags;
  }
  for (std::vector<std::string>* positional : {&get_flags.args, &put_flags.args, &del_flags.args}) {
    for (const std::string& word : *positional) {
      if (word.size() > 1 && word[0] == '-') return bad_flags;
    }
    positional->insert(positional->end(), tail.begin(), tail.end());
  }
  if (get->parsed()) {
    if (CheckGetFlags(get_flags)) return bad_flags;
    GetOp get_op;
    if (auto exit = BuildGet(get_flags, &get_op)) return exit;
    *op->mutable_request_range() = std::move(get_op.request);
    return std::nullopt;
  }
  if (put->parsed()) {
    if (CheckPutFlags(put_flags)) return bad_flags;
    std::istringstream no_input;
    return BuildPut(put_flags, no_input, op->mutable_request_put());
  }
  if (del->parsed()) {
    if (CheckDelFlags(del_flags)) return bad_flags;
    return BuildDel(del_flags, op->mutable_request_delete_range());
  }
  return invalid;
}

std::optional<Exit> ReadTxn(std::istream& in, bool interactive, std::ostream& out,
                            etcdserverpb::TxnRequest* txn) {
  if (interactive) out << "compares:\n" << std::flush;
  if (auto exit = ReadBlock(
          in, [&](const std::string& line) { return ParseCompare(line, txn->add_compare()); })) {
    return exit;
  }
  if (interactive) out << "success requests (get, put, del):\n" << std::flush;
  if (auto exit = ReadBlock(
          in, [&](const std::string& line) { return ParseOp(line, txn->add_success()); })) {
    return exit;
  }
  if (interactive) out << "failure requests (get, put, del):\n" << std::flush;
  return ReadBlock(in, [&](const std::string& line) { return ParseOp(line, txn->add_failure()); });
}

}  // namespace arbiter::cli
