// arbiterctl's elect and lock commands, on the v3election and v3lock
// services (client/concurrency.h), with etcdctl 3.4's arguments, output,
// errors and exit codes:
//   elect <name> <proposal>  campaigns with a 60 s session; once elected
//                            prints the leader key and value and holds
//                            until SIGINT/SIGTERM, then resigns;
//   elect -l <name>          prints the leader and every change;
//   lock <name>              prints the holder key and holds until
//                            SIGINT/SIGTERM, then unlocks (--ttl sets the
//                            session's TTL, 10 s by default);
//   lock <name> cmd args...  runs cmd holding the lock, with ETCD_LOCK_KEY
//                            and ETCD_LOCK_REV in its environment, then
//                            unlocks. As etcdctl 3.4 does, a command that
//                            fails ends arbiterctl with exit code 1 and
//                            "Error: exit status N".
// A signal while waiting ends with "Error: context canceled" (exit 1); a
// lost session with "elect: session expired" / "session expired".
//
// Thread safety: each call is independent; they block SIGINT and SIGTERM
// in the calling thread and take them with a thread of their own.
#ifndef ARBITER_CLI_COORD_COMMANDS_H_
#define ARBITER_CLI_COORD_COMMANDS_H_

#include <string>
#include <vector>

#include "cli/commands.h"

namespace arbiter::cli {

int RunElect(const GlobalFlags& global, bool listen, const std::vector<std::string>& args, Io io);
// `ttl` is the --ttl flag's text.
int RunLock(const GlobalFlags& global, const std::string& ttl, const std::vector<std::string>& args,
            Io io);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_COORD_COMMANDS_H_
