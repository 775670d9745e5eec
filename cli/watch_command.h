// arbiterctl watch, run as etcdctl 3.4 runs it: one watcher printing until
// the server cancels it (then "watch is canceled by the server", exit 5),
// or with -i/--interactive a watcher per "watch ..." line read from
// standard input and "progress" requests, until end of input (exit 3).
// With "-- command args" each event runs the command with ETCD_WATCH_*
// in its environment. The watch follows its stream across member crashes
// and leader changes (client/watch.h), so it never prints an event twice
// or skips one.
//
// Thread safety: one call at a time; in interactive mode each watcher
// prints from a thread of its own, one response at a time.
#ifndef ARBITER_CLI_WATCH_COMMAND_H_
#define ARBITER_CLI_WATCH_COMMAND_H_

#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/watch_args.h"

namespace arbiter::cli {

// `os_args`: the command line as typed, program name first (etcdctl finds
// the exec command's "--" there).
int RunWatch(const GlobalFlags& global, const WatchFlags& flags,
             const std::vector<std::string>& os_args, Io io);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_WATCH_COMMAND_H_
