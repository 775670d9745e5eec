// arbiterctl: etcdctl's commands, flags and output for Arbiter (and etcd).
// The command line is parsed with CLI11; this is the one place in Arbiter
// where exceptions are caught. Parse errors are reported in cobra's words
// ("Error: unknown flag: --x", printed twice as etcdctl prints it) with
// etcdctl's exit code 1, so scripts see the same failures.

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
#include "cli/coord_commands.h"
#include "cli/go_format.h"
#include "cli/kv_ops.h"
#include "cli/lease_commands.h"
#include "cli/watch_command.h"

namespace arbiter::cli {
namespace {

// etcdctl's command names, for its unique-prefix matching ("ge" is get).
const std::vector<std::string>& TopCommands() {
  static const auto* const kNames = new std::vector<std::string>{
      "get",    "put",      "del",         "txn",     "compaction", "alarm",
      "defrag", "endpoint", "move-leader", "watch",   "version",    "lease",
      "member", "snapshot", "make-mirror", "migrate", "lock",       "elect",
      "auth",   "user",     "role",        "check"};
  return *kNames;
}

// Global options that take a value, so the word after them is not a
// command.
bool TakesValue(const std::string& flag) {
  static const char* const kValued[] = {"--endpoints",
                                        "-w",
                                        "--write-out",
                                        "--dial-timeout",
                                        "--command-timeout",
                                        "--keepalive-time",
                                        "--keepalive-timeout",
                                        "--cert",
                                        "--key",
                                        "--cacert",
                                        "--user",
                                        "--password",
                                        "-d",
                                        "--discovery-srv",
                                        "--discovery-srv-name"};
  for (const char* v : kValued) {
    if (flag == v) return true;
  }
  return false;
}

std::string Expand(const std::string& word, const std::vector<std::string>& names) {
  std::string match;
  for (const std::string& name : names) {
    if (name == word) return word;
    if (absl::StartsWith(name, word)) {
      if (!match.empty()) return word;  // Ambiguous: cobra reports it unknown.
      match = name;
    }
  }
  return match.empty() ? word : match;
}

// Replaces unique prefixes of the command and subcommand by their names,
// as cobra's prefix matching (which etcdctl enables) does.
void ExpandPrefixes(std::vector<std::string>* args) {
  int depth = 0;
  std::string command;
  for (size_t i = 0; i < args->size() && depth < 2; ++i) {
    std::string& word = (*args)[i];
    if (word == "--") return;
    if (absl::StartsWith(word, "-")) {
      if (word.find('=') == std::string::npos && TakesValue(word)) ++i;
      continue;
    }
    if (depth == 0) {
      word = Expand(word, TopCommands());
      command = word;
    } else if (command == "member") {
      word = Expand(word, {"add", "remove", "update", "list", "promote"});
    } else if (command == "endpoint") {
      word = Expand(word, {"health", "status", "hashkv"});
    } else if (command == "lease") {
      word = Expand(word, {"grant", "revoke", "timetolive", "list", "keep-alive"});
    } else {
      return;
    }
    ++depth;
  }
}

// A flag parse error as cobra reports it: to standard error, once from
// cobra and once from etcdctl (with the usage, which etcdctl prints to
// standard output, in between).
int FlagError(const std::string& message, const CLI::App* command) {
  std::cout << command->help();
  std::cerr << "Error: " << message << "\n\nError: " << message << "\n";
  return kExitError;
}

// pflag's message for a flag given last without its value; CLI11 names
// the flag by its long name, so the word typed is taken from the line.
std::string MissingArgument(const std::string& what, const std::vector<std::string>& args) {
  std::string flag = what.substr(0, what.find(':'));
  if (!args.empty() && absl::StartsWith(args.back(), "-")) flag = args.back();
  if (flag.size() == 2 && flag[0] == '-') {
    return absl::StrCat("flag needs an argument: '", flag.substr(1), "' in ", flag);
  }
  return absl::StrCat("flag needs an argument: ", flag);
}

std::string UnknownFlag(const std::string& word) {
  if (!absl::StartsWith(word, "--")) {
    return absl::StrCat("unknown shorthand flag: '", word.substr(1, 1), "' in ", word);
  }
  return absl::StrCat("unknown flag: ", word.substr(0, word.find('=')));
}

struct Options {
  GlobalFlags global;
  std::vector<std::string> endpoints;
  std::string ignored;
  GetFlags get;
  PutFlags put;
  DelFlags del;
  std::string txn_interactive = "false";
  std::vector<std::string> txn_args;
  std::string physical = "false";
  std::vector<std::string> compaction_args;
  std::string cluster = "false";
  std::string lease_keys = "false";
  std::string keep_alive_once = "false";
  std::string elect_listen = "false";
  std::string lock_ttl = "10";
  std::vector<std::string> extra_args;
  WatchFlags watch;
  // The command line as typed, program name first.
  std::vector<std::string> os_args;
};

void AddGlobalFlags(CLI::App& app, Options& o) {
  app.add_option("--endpoints", o.endpoints, "gRPC endpoints")
      ->delimiter(',')
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("-w,--write-out", o.global.write_out,
                 "set the output format (json, simple, table)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_flag("--hex", o.global.hex, "print byte strings as hex encoded strings");
  app.add_option("--dial-timeout", o.global.dial_timeout, "dial timeout for client connections")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--command-timeout", o.global.command_timeout,
                 "timeout for short running command (excluding dial timeout)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  // etcdctl's other global flags: accepted, without effect (no TLS, no
  // authentication, no DNS discovery; keepalive as gRPC's defaults).
  for (const char* flag :
       {"--debug", "--insecure-transport", "--insecure-discovery", "--insecure-skip-tls-verify"}) {
    app.add_flag(flag, o.ignored, "accepted for etcdctl compatibility; no effect");
  }
  for (const char* flag : {"--keepalive-time", "--keepalive-timeout", "--cert", "--key", "--cacert",
                           "--user", "--password", "-d,--discovery-srv", "--discovery-srv-name"}) {
    app.add_option(flag, o.ignored, "accepted for etcdctl compatibility; no effect")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
}

CLI::App* Command(CLI::App& parent, const std::string& name, const std::string& help) {
  CLI::App* command = parent.add_subcommand(name, help);
  command->fallthrough();
  command->allow_extras();
  return command;
}

struct Commands {
  CLI::App *get, *put, *del, *txn, *compaction, *member, *member_list, *endpoint, *status, *health,
      *watch;
  CLI::App *lease, *lease_grant, *lease_revoke, *lease_timetolive, *lease_list, *lease_keep_alive;
  CLI::App *elect, *lock;
};

void AddLeaseCommands(CLI::App& app, Options& o, Commands* c) {
  c->lease = Command(app, "lease", "Lease related commands");
  c->lease_grant = Command(*c->lease, "grant", "Creates leases");
  c->lease_revoke = Command(*c->lease, "revoke", "Revokes leases");
  c->lease_timetolive = Command(*c->lease, "timetolive", "Get lease information");
  c->lease_timetolive->add_flag("--keys", o.lease_keys, "Get keys attached to this lease")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  c->lease_list = Command(*c->lease, "list", "List all active leases");
  c->lease_keep_alive = Command(*c->lease, "keep-alive", "Keeps leases alive (renew)");
  c->lease_keep_alive
      ->add_flag("--once", o.keep_alive_once,
                 "Resets the keep-alive time to its original value and exits immediately")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  for (CLI::App* command : {c->lease, c->lease_grant, c->lease_revoke, c->lease_timetolive,
                            c->lease_list, c->lease_keep_alive}) {
    command->add_option("args", o.extra_args);
  }
  c->elect = Command(app, "elect", "Observes and participates in leader election");
  c->elect->add_flag("-l,--listen", o.elect_listen, "observation mode")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  c->elect->add_option("args", o.extra_args);
  c->lock = Command(app, "lock", "Acquires a named lock");
  c->lock->add_option("--ttl", o.lock_ttl, "timeout for session")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  c->lock->add_option("args", o.extra_args);
}

Commands AddCommands(CLI::App& app, Options& o) {
  Commands c;
  c.get = Command(app, "get", "Gets the key or a range of keys");
  AddGetFlags(c.get, &o.get);
  c.put = Command(app, "put", "Puts the given key into the store");
  AddPutFlags(c.put, &o.put);
  c.del = Command(app, "del", "Removes the specified key or range of keys [key, range_end)");
  AddDelFlags(c.del, &o.del);
  c.txn = Command(app, "txn", "Txn processes all the requests in one transaction");
  c.txn->add_flag("-i,--interactive", o.txn_interactive, "Input transaction in interactive mode");
  c.txn->add_option("args", o.txn_args);
  c.compaction = Command(app, "compaction", "Compacts the event history in etcd");
  c.compaction->add_flag("--physical", o.physical,
                         "'true' to wait for compaction to physically remove all old revisions");
  c.compaction->add_option("revision", o.compaction_args);
  c.member = Command(app, "member", "Membership related commands");
  c.member_list = Command(*c.member, "list", "Lists all members in the cluster");
  c.member_list->add_option("args", o.extra_args);
  c.member->add_option("args", o.extra_args);
  c.endpoint = Command(app, "endpoint", "Endpoint related commands");
  c.endpoint->add_flag("--cluster", o.cluster, "use all endpoints from the cluster member list");
  c.status = Command(*c.endpoint, "status",
                     "Prints out the status of endpoints specified in `--endpoints` flag");
  c.health = Command(*c.endpoint, "health",
                     "Checks the healthiness of endpoints specified in `--endpoints` flag");
  c.status->add_option("args", o.extra_args);
  c.health->add_option("args", o.extra_args);
  c.endpoint->add_option("args", o.extra_args);
  c.watch = Command(app, "watch", "Watches events stream on keys or prefixes");
  AddWatchFlags(c.watch, &o.watch);
  AddLeaseCommands(app, o, &c);
  return c;
}

// The innermost command given, for help and errors.
const CLI::App* Selected(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    std::vector<const CLI::App*> parsed =
        at->get_subcommands([](const CLI::App* s) { return s->parsed(); });
    if (parsed.empty()) return at;
    at = parsed.front();
  }
}

// Words no option took: unknown flags, or at the top an unknown command.
std::optional<int> CheckLeftovers(const CLI::App& app) {
  std::vector<const CLI::App*> chain = {&app};
  for (const CLI::App* at = &app; at != Selected(app);) {
    at = at->get_subcommands([](const CLI::App* s) { return s->parsed(); }).front();
    chain.push_back(at);
  }
  for (const CLI::App* at : chain) {
    for (const std::string& word : at->remaining()) {
      if (word == "--") continue;
      if (absl::StartsWith(word, "-") && word.size() > 1) {
        return FlagError(UnknownFlag(word), Selected(app));
      }
      if (at == &app) {
        const std::string message =
            absl::StrCat("unknown command ", "\"", word, "\" for \"arbiterctl\"");
        std::cerr << "Error: " << message << "\nRun 'arbiterctl --help' for usage.\n"
                  << "Error: " << message << "\n";
        return kExitError;
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> CheckFlags(const Options& o, const Commands& c) {
  if (auto error = CheckGlobalFlags(o.global)) return error;
  if (c.get->parsed()) return CheckGetFlags(o.get);
  if (c.put->parsed()) return CheckPutFlags(o.put);
  if (c.del->parsed()) return CheckDelFlags(o.del);
  if (c.watch->parsed()) return CheckWatchFlags(o.watch);
  if (c.lock->parsed()) {
    absl::StatusOr<int64_t> ttl = GoParseInt(o.lock_ttl, 0);
    if (!ttl.ok()) {
      return absl::StrCat("invalid argument ", GoQuote(o.lock_ttl),
                          " for \"--ttl\" flag: ", ttl.status().message());
    }
  }
  for (const auto& [value, name] : {std::pair{&o.txn_interactive, "-i, --interactive"},
                                    {&o.physical, "--physical"},
                                    {&o.cluster, "--cluster"},
                                    {&o.lease_keys, "--keys"},
                                    {&o.keep_alive_once, "--once"},
                                    {&o.elect_listen, "-l, --listen"}}) {
    if (!GoParseBool(*value).ok()) {
      return absl::StrCat("invalid argument ", GoQuote(*value), " for \"", name,
                          "\" flag: strconv.ParseBool: parsing ", GoQuote(*value),
                          ": invalid syntax");
    }
  }
  return std::nullopt;
}

// Where the selected command keeps its arguments.
std::vector<std::string>* Positional(Options& o, const Commands& c) {
  if (c.get->parsed()) return &o.get.args;
  if (c.put->parsed()) return &o.put.args;
  if (c.del->parsed()) return &o.del.args;
  if (c.txn->parsed()) return &o.txn_args;
  if (c.compaction->parsed()) return &o.compaction_args;
  if (c.watch->parsed()) return &o.watch.args;
  return &o.extra_args;
}

int Dispatch(Options& o, const Commands& c, const CLI::App& app) {
  Io io{std::cin, std::cout, std::cerr};
  if (!o.endpoints.empty()) {
    o.global.endpoints.clear();
    for (const std::string& e : o.endpoints) {
      o.global.endpoints.emplace_back(absl::StripAsciiWhitespace(e));
    }
  }
  if (c.get->parsed()) return RunGet(o.global, o.get, io);
  if (c.put->parsed()) return RunPut(o.global, o.put, io);
  if (c.del->parsed()) return RunDel(o.global, o.del, io);
  if (c.txn->parsed()) return RunTxn(o.global, FlagBool(o.txn_interactive), o.txn_args, io);
  if (c.compaction->parsed()) {
    return RunCompaction(o.global, FlagBool(o.physical), o.compaction_args, io);
  }
  if (c.watch->parsed()) return RunWatch(o.global, o.watch, o.os_args, io);
  if (c.member_list->parsed()) return RunMemberList(o.global, io);
  if (c.status->parsed()) return RunEndpointStatus(o.global, FlagBool(o.cluster), io);
  if (c.health->parsed()) return RunEndpointHealth(o.global, FlagBool(o.cluster), io);
  if (c.lease_grant->parsed()) return RunLeaseGrant(o.global, o.extra_args, io);
  if (c.lease_revoke->parsed()) return RunLeaseRevoke(o.global, o.extra_args, io);
  if (c.lease_timetolive->parsed()) {
    return RunLeaseTimeToLive(o.global, FlagBool(o.lease_keys), o.extra_args, io);
  }
  if (c.lease_list->parsed()) return RunLeaseList(o.global, io);
  if (c.lease_keep_alive->parsed()) {
    return RunLeaseKeepAlive(o.global, FlagBool(o.keep_alive_once), o.extra_args, io);
  }
  if (c.elect->parsed()) return RunElect(o.global, FlagBool(o.elect_listen), o.extra_args, io);
  if (c.lock->parsed()) return RunLock(o.global, o.lock_ttl, o.extra_args, io);
  // A command group without its subcommand, or nothing: the help, as
  // etcdctl prints it.
  std::cout << Selected(app)->help();
  return kExitSuccess;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  ExpandPrefixes(&args);
  // As for pflag, the words after "--" are arguments, even "-x".
  std::vector<std::string> tail;
  if (auto dashes = std::find(args.begin(), args.end(), "--"); dashes != args.end()) {
    tail.assign(dashes + 1, args.end());
    args.erase(dashes, args.end());
  }
  CLI::App app("A command line client for Arbiter and etcd (the etcd v3 API).", "arbiterctl");
  app.allow_extras();
  Options o;
  o.os_args.assign(argv, argv + argc);
  AddGlobalFlags(app, o);
  const Commands c = AddCommands(app, o);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << Selected(app)->help();
    return kExitSuccess;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help();
    return kExitSuccess;
  } catch (const CLI::ArgumentMismatch& e) {
    return FlagError(MissingArgument(e.what(), args), Selected(app));
  } catch (const CLI::ParseError& e) {
    return FlagError(e.what(), Selected(app));
  }
  if (std::optional<int> code = CheckLeftovers(app)) return *code;
  std::vector<std::string>* positional = Positional(o, c);
  for (const std::string& word : *positional) {
    // CLI11 takes "-5" for an argument; pflag for a shorthand flag.
    if (word.size() > 1 && word[0] == '-') return FlagError(UnknownFlag(word), Selected(app));
  }
  positional->insert(positional->end(), tail.begin(), tail.end());
  if (auto error = CheckFlags(o, c)) return FlagError(*error, Selected(app));
  return Dispatch(o, c, app);
}

}  // namespace
}  // namespace arbiter::cli

int main(int argc, char** argv) {
  try {
    return arbiter::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    // Nothing below throws by design; this only keeps a CLI11 surprise from
    // ending in std::terminate.
    std::cerr << "Error: " << e.what() << "\n";
    return arbiter::cli::kExitError;
  }
}
