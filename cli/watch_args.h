// The watch command's arguments and output, as etcdctl 3.4 has them
// (ctlv3/command/watch_command.go): which words are the key, range end and
// exec command (the raw command line is consulted for "--", as etcdctl
// does), the flags of an interactive "watch ..." line, the watch a set of
// arguments asks for, and how a response prints in the simple and json
// formats.
//
// Thread safety: pure functions.
#ifndef ARBITER_CLI_WATCH_ARGS_H_
#define ARBITER_CLI_WATCH_ARGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/watch.h"
#include "proto/rpc.pb.h"

namespace arbiter::cli {

// The watch command's flags as typed; checked by CheckWatchFlags.
struct WatchFlags {
  std::string interactive = "false";
  std::string prefix = "false";
  std::string rev = "0";
  std::string prev_kv = "false";
  // The arguments as cobra hands them over: every non-flag word, those
  // after "--" included.
  std::vector<std::string> args;
};

void AddWatchFlags(CLI::App* command, WatchFlags* flags);
std::optional<std::string> CheckWatchFlags(const WatchFlags& flags);

// What one watch asks for.
struct WatchSpec {
  std::vector<std::string> args;  // key [range_end] (more are ignored)
  bool prefix = false;
  int64_t rev = 0;
  bool prev_kv = false;
  std::vector<std::string> exec;  // The command after "--", if any.
};

// The etcdctl errors; all end the command with exit code 128.
inline constexpr char kBadArgsNum[] = "bad number of arguments";
inline constexpr char kBadArgsConflictEnv[] =
    "bad number of arguments (found conflicting environment key)";
inline constexpr char kBadArgsSeparator[] =
    "bad number of arguments (found separator --, but no commands)";

// The command line's split into watch arguments and exec command.
// `os_args` is the whole command line as typed (program name first);
// `env_key` and `env_range` are $ETCDCTL_WATCH_KEY and _RANGE_END.
absl::StatusOr<WatchSpec> ParseWatchCommandLine(const std::vector<std::string>& os_args,
                                                const WatchFlags& flags, const std::string& env_key,
                                                const std::string& env_range);

// An interactive line's words after "watch", with the flags of that line
// only (as etcdctl parses each line afresh). Errors are pflag's.
absl::StatusOr<WatchSpec> ParseWatchLine(const std::vector<std::string>& words,
                                         const std::string& env_key, const std::string& env_range);

// The watcher for the arguments (getWatchChan): "bad number of arguments"
// or "`range_end` and `--prefix` are mutually exclusive".
absl::StatusOr<client::WatchOptions> WatchOptionsFor(const WatchSpec& spec);

// How etcdctl prints one response it received: the lines for standard
// error ("watch was canceled (...)"), then standard output (a progress
// line, then the events or the JSON). `ended` says the watcher ends with
// this response.
struct WatchOutput {
  std::string err;
  std::string out;
  bool ended = false;
};
// `json`: the json format, else simple; `hex` as --hex.
WatchOutput FormatWatchResponse(const etcdserverpb::WatchResponse& response, bool json, bool hex);
// A watch that ended with a stream error (no response): as etcdctl shows
// a watcher closed with an error.
WatchOutput FormatWatchError(const std::string& error_text, bool json);

// The extra environment of an exec command for one event:
// ETCD_WATCH_REVISION, _EVENT_TYPE, _KEY and _VALUE, as etcdctl sets them.
std::vector<std::string> WatchExecEnv(const etcdserverpb::WatchResponse& response,
                                      const mvccpb::Event& event);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_WATCH_ARGS_H_
