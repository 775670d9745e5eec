// arbiterctl's commands, each run the way etcdctl 3.4 runs it: the same
// order of checks (arguments, then the output format, then the request),
// the same output and the same exit codes. A command writes to the streams
// it is given and returns its exit code; nothing here exits the process or
// throws.
//
// Thread safety: each call is independent; endpoint health asks the
// endpoints from one thread each.
#ifndef ARBITER_CLI_COMMANDS_H_
#define ARBITER_CLI_COMMANDS_H_

#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/exit.h"
#include "cli/kv_ops.h"

namespace arbiter::cli {

// The global flags. Those etcdctl has for TLS, authentication, discovery
// and keepalive are accepted and have no effect.
struct GlobalFlags {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  std::string write_out = "simple";
  std::string hex = "false";
  std::string dial_timeout = "2s";
  std::string command_timeout = "5s";
};

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// pflag-style message when a global flag value does not parse.
std::optional<std::string> CheckGlobalFlags(const GlobalFlags& flags);

// Writes "Error: <message>" (or a Go panic's first lines) to err and
// returns the exit code.
int Finish(const Exit& exit, std::ostream& err);

// An error from the client library as etcdctl shows it: etcd's own
// messages unchanged, a passed deadline as "context deadline exceeded",
// anything else as grpc-go prints a status.
std::string ClientErrorText(const absl::Status& status);

int RunGet(const GlobalFlags& global, const GetFlags& flags, Io io);
int RunPut(const GlobalFlags& global, const PutFlags& flags, Io io);
int RunDel(const GlobalFlags& global, const DelFlags& flags, Io io);
int RunTxn(const GlobalFlags& global, bool interactive, const std::vector<std::string>& args,
           Io io);
int RunCompaction(const GlobalFlags& global, bool physical, const std::vector<std::string>& args,
                  Io io);
int RunMemberList(const GlobalFlags& global, Io io);
int RunEndpointStatus(const GlobalFlags& global, bool cluster, Io io);
int RunEndpointHealth(const GlobalFlags& global, bool cluster, Io io);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_COMMANDS_H_
