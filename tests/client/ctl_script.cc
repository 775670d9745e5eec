#include "tests/client/ctl_script.h"

#include <algorithm>
#include <map>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace arbiter::testing {
namespace {

absl::StatusOr<std::vector<std::string>> SplitWords(absl::string_view s, int line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      const size_t end = s.find('\'', i + 1);
      if (end == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("line ", line, ": unclosed '"));
      }
      word.append(s.data() + i + 1, end - i - 1);
      i = end;
    } else if (c == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
          const char e = s[++i];
          word.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        } else {
          word.push_back(s[i]);
        }
      }
      if (i >= s.size()) {
        return absl::InvalidArgumentError(absl::StrCat("line ", line, ": unclosed \""));
      }
    } else {
      word.push_back(c);
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  return absl::StrReplaceAll(text, {{from, to}});
}

std::string RegexReplace(const std::string& text, const char* pattern, const char* to) {
  return std::regex_replace(text, std::regex(pattern), to);
}

// Each distinct HashKV hash (simple, table and JSON formats) replaced by
// H1, H2, ... in order of appearance: whether members agree, and whether
// two revisions' hashes differ, still shows.
std::string NameHashes(const std::string& text) {
  static const std::regex* const kHash = new std::regex(R"re(("hash":|\}, |\} +\| +)(\d+))re");
  // Endpoints are already {ep-...} or http://{ep-...} here.
  std::map<std::string, std::string> names;
  std::string out;
  auto begin = std::sregex_iterator(text.begin(), text.end(), *kHash);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    auto [name, inserted] = names.emplace(m.str(2), "");
    if (inserted) name->second = absl::StrCat("H", names.size());
    out.append(text, last, m.position(2) - last);
    out.append(name->second);
    last = m.position(2) + m.length(2);
  }
  out.append(text, last, std::string::npos);
  return out;
}

std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells = absl::StrSplit(line, '|');
  // Drop the empty pieces outside the first and last bar.
  if (cells.size() >= 2) cells = std::vector<std::string>(cells.begin() + 1, cells.end() - 1);
  return cells;
}

// Blanks the columns that differ between two healthy clusters' endpoint
// status: db size, is leader, raft term, raft index, raft applied index.
std::string BlankStatusColumns(const std::string& line) {
  constexpr int kVarying[] = {3, 4, 6, 7, 8};
  if (absl::StartsWith(line, "|")) {
    std::vector<std::string> cells = Cells(line);
    if (cells.size() != 10) return line;
    for (int i : kVarying) cells[i] = " * ";
    return absl::StrCat("|", absl::StrJoin(cells, "|"), "|");
  }
  std::vector<std::string> fields = absl::StrSplit(line, ", ");
  if (fields.size() != 10) return line;
  for (int i : kVarying) fields[i] = "*";
  return absl::StrJoin(fields, ", ");
}

std::string BlankHealthColumns(const std::string& line) {
  if (!absl::StartsWith(line, "|")) return line;
  std::vector<std::string> cells = Cells(line);
  if (cells.size() != 4 || absl::StrContains(line, "TOOK")) return line;
  cells[2] = " T ";
  return absl::StrCat("|", absl::StrJoin(cells, "|"), "|");
}

// The flat objects of the JSON array that starts at `open` ("[{") and
// ends at the next "}]", in a fixed order.
std::string SortJsonArrayAt(const std::string& line, size_t open) {
  const size_t close = line.find("}]", open);
  if (open == std::string::npos || close == std::string::npos) return line;
  std::vector<std::string> items =
      absl::StrSplit(absl::string_view(line).substr(open + 2, close - open - 2), "},{");
  std::sort(items.begin(), items.end());
  return absl::StrCat(line.substr(0, open + 2), absl::StrJoin(items, "},{"), line.substr(close));
}

// A JSON array of health results in a fixed order.
std::string SortJsonArray(const std::string& line) {
  if (!absl::StartsWith(line, "[{") || !absl::EndsWith(line, "}]")) return line;
  return SortJsonArrayAt(line, 0);
}

// A member list's members in a fixed order.
std::string SortMembers(const std::string& line) {
  const size_t at = line.find("\"members\":[{");
  if (at == std::string::npos) return line;
  return SortJsonArrayAt(line, at + std::string("\"members\":").size());
}

// `lease list` limited to the script's own leases (other steps and tests
// leave leases of their own behind): unnamed IDs are dropped from the
// simple and the JSON output, the count is what remains, and the named
// ones are sorted (their order is the server's).
std::string OwnLeases(const std::string& text) {
  static const std::regex* const kUnnamed = new std::regex(R"re(^[0-9a-f]{16}$)re");
  static const std::regex* const kFound = new std::regex(R"re(^found \d+ leases$)re");
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  std::vector<std::string> kept;
  std::vector<std::string> named;
  int found_at = -1;
  for (const std::string& line : lines) {
    if (std::regex_match(line, *kUnnamed)) continue;
    if (std::regex_match(line, *kFound)) {
      found_at = static_cast<int>(kept.size());
    } else if (found_at >= 0 && absl::StartsWith(line, "{lease")) {
      named.push_back(line);
      continue;
    }
    const size_t at = line.find("\"leases\":[");
    if (at != std::string::npos) {
      const size_t open = at + std::string("\"leases\":[").size();
      const size_t close = line.find("}]", open);
      if (close == std::string::npos) {
        kept.push_back(line);
        continue;
      }
      // Items are {"id":<decimal>} or, named, {"id":{leaseN}}.
      static const std::regex* const kNamed = new std::regex(R"re(\{"id":\{lease\d+\}\})re");
      const std::string list = line.substr(open, close + 1 - open);
      std::vector<std::string> items;
      for (auto it = std::sregex_iterator(list.begin(), list.end(), *kNamed);
           it != std::sregex_iterator(); ++it) {
        items.push_back(it->str());
      }
      std::sort(items.begin(), items.end());
      kept.push_back(
          absl::StrCat(line.substr(0, open), absl::StrJoin(items, ","), line.substr(close + 1)));
      continue;
    }
    kept.push_back(line);
  }
  std::sort(named.begin(), named.end());
  if (found_at >= 0) {
    kept[found_at] = absl::StrCat("found ", named.size(), " leases");
    kept.insert(kept.begin() + found_at + 1, named.begin(), named.end());
  }
  return absl::StrJoin(kept, "\n");
}

}  // namespace

absl::StatusOr<std::vector<ScriptStep>> ParseScript(const std::string& text) {
  std::vector<ScriptStep> steps;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (absl::ConsumePrefix(&line, "$")) {
      ScriptStep step;
      step.line = line_number;
      if (absl::ConsumePrefix(&line, "[")) {
        const size_t end = line.find(']');
        if (end == absl::string_view::npos) {
          return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": unclosed ["));
        }
        for (absl::string_view o : absl::StrSplit(line.substr(0, end), ',')) {
          step.options.insert(std::string(absl::StripAsciiWhitespace(o)));
        }
        line.remove_prefix(end + 1);
      }
      absl::StatusOr<std::vector<std::string>> args = SplitWords(line, line_number);
      if (!args.ok()) return args.status();
      step.args = *std::move(args);
      steps.push_back(std::move(step));
      continue;
    }
    if (steps.empty() || !absl::StartsWith(line, "<")) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": not a step"));
    }
    ScriptStep& step = steps.back();
    if (absl::ConsumePrefix(&line, "<repeat ")) {
      std::pair<std::string, std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
      int count = 0;
      if (!absl::SimpleAtoi(parts.first, &count)) {
        return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": bad count"));
      }
      for (int i = 0; i < count; ++i) {
        absl::StrAppend(&step.input, ReplaceAll(parts.second, "{i}", absl::StrCat(i)), "\n");
      }
    } else if (absl::ConsumePrefix(&line, "<!")) {
      absl::ConsumePrefix(&line, " ");
      absl::StrAppend(&step.input, line);
    } else {
      line.remove_prefix(1);
      absl::ConsumePrefix(&line, " ");
      absl::StrAppend(&step.input, line, "\n");
    }
  }
  return steps;
}

void CaptureVars(const std::string& out, ScriptVars* vars) {
  // `lease grant` in the simple and the JSON format.
  static const std::regex* const kGranted =
      new std::regex(R"re((^|\n)lease ([0-9a-f]{16}) granted with TTL\()re");
  static const std::regex* const kGrantedJson =
      new std::regex(R"re("ID":(\d+),"TTL":\d+,"Error":")re");
  std::smatch m;
  uint64_t id = 0;
  if (std::regex_search(out, m, *kGranted)) {
    vars->leases.push_back(m[2]);
  } else if (std::regex_search(out, m, *kGrantedJson) && absl::SimpleAtoi(m.str(1), &id)) {
    vars->leases.push_back(absl::StrFormat("%016x", id));
  }
}

std::vector<std::string> ExpandArgs(const ScriptStep& step, const TestCluster& cluster,
                                    const std::string& dead_endpoint, const ScriptVars& vars) {
  std::vector<std::string> args;
  bool own_endpoints = false;
  for (std::string arg : step.args) {
    own_endpoints = own_endpoints || absl::StartsWith(arg, "--endpoints");
    for (size_t i = 0; i < cluster.members().size(); ++i) {
      const std::string& endpoint = cluster.members()[i].client_endpoint;
      arg = ReplaceAll(arg, absl::StrCat("{ep", i + 1, "}"), endpoint);
      arg = ReplaceAll(arg, absl::StrCat("{url", i + 1, "}"), "http://" + endpoint);
      arg = ReplaceAll(arg, absl::StrCat("{id", i + 1, "}"),
                       absl::StrFormat("%x", cluster.members()[i].id));
    }
    for (size_t i = 0; i < vars.leases.size(); ++i) {
      arg = ReplaceAll(arg, absl::StrCat("{lease", i + 1, "}"), vars.leases[i]);
    }
    args.push_back(ReplaceAll(arg, "{dead}", dead_endpoint));
  }
  if (!own_endpoints) {
    args.insert(args.begin(), "--endpoints=" + absl::StrJoin(cluster.ClientEndpoints(), ","));
  }
  return args;
}

std::string Normalize(const std::string& text, const TestCluster& cluster,
                      const std::set<std::string>& options, const ScriptVars& vars) {
  std::string out = text;
  if (absl::StartsWith(out, "panic: ")) out = out.substr(0, out.find('\n') + 1);
  out = ReplaceAll(out, "arbiterctl", "etcdctl");
  // Lease IDs: decimal in JSON, %016x elsewhere.
  for (size_t i = 0; i < vars.leases.size(); ++i) {
    const std::string name = absl::StrCat("{lease", i + 1, "}");
    uint64_t id = 0;
    if (absl::SimpleHexAtoi(vars.leases[i], &id)) out = ReplaceAll(out, absl::StrCat(id), name);
    out = ReplaceAll(out, vars.leases[i], name);
  }
  // Decimal IDs first: a hex ID of digits only could sit inside one.
  out = ReplaceAll(out, absl::StrCat(cluster.cluster_id()), "{cluster}");
  for (const TestMember& m : cluster.members()) {
    out = ReplaceAll(out, absl::StrCat(m.id), "{id-" + m.name + "}");
  }
  out = ReplaceAll(out, absl::StrFormat("%x", cluster.cluster_id()), "{cluster}");
  for (const TestMember& m : cluster.members()) {
    out = ReplaceAll(out, absl::StrFormat("%x", m.id), "{id-" + m.name + "}");
    out = ReplaceAll(out, m.client_endpoint, "{ep-" + m.name + "}");
    out = ReplaceAll(out, std::string(absl::StripPrefix(m.peer_url, "http://")),
                     "{peer-" + m.name + "}");
  }
  // Which member answered, and terms, are up to each cluster.
  out = RegexReplace(out, R"re("member_id":[^,}]+)re", R"re("member_id":M)re");
  out = RegexReplace(out, R"re("raft_term":\d+)re", R"re("raft_term":T)re");
  if (options.count("status")) {
    out = RegexReplace(
        out, R"re("(leader|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":[^,}]+)re",
        R"re("$1":N)re");
  }
  if (options.count("hash")) out = NameHashes(out);
  if (options.count("own-leases")) out = OwnLeases(out);
  if (options.count("remaining")) {
    out = RegexReplace(out, R"re(remaining\(\d+s\))re", "remaining(R)");
    out = RegexReplace(out, R"re("ttl":\d+)re", R"re("ttl":R)re");
  }
  if (options.count("health")) {
    out = RegexReplace(out, R"re(took = \S+)re", "took = T");
    out = RegexReplace(out, R"re("took":"[^"]*")re", R"re("took":"T")re");
  }
  std::vector<std::string> lines;
  for (absl::string_view piece : absl::StrSplit(out, '\n')) {
    std::string line(piece);
    if (absl::StartsWith(line, "{\"level\":")) continue;  // clientv3's log lines
    if (options.count("status")) line = BlankStatusColumns(line);
    if (options.count("health")) line = SortJsonArray(BlankHealthColumns(line));
    if (options.count("sort")) line = SortMembers(SortJsonArray(line));
    if (absl::StartsWith(line, "|") || absl::StartsWith(line, "+")) {
      // Padding depends on the lengths of IDs and values replaced above.
      line = RegexReplace(RegexReplace(line, " +", " "), "-+", "-");
    }
    lines.push_back(line);
  }
  if (options.count("health") || options.count("sort")) std::sort(lines.begin(), lines.end());
  return absl::StrJoin(lines, "\n");
}

}  // namespace arbiter::testing
