// arbiterctl's lease commands (grant, revoke, timetolive, list,
// keep-alive), run as etcdctl 3.4 runs them: the same argument checks and
// their order, exit codes and output. `lease keep-alive` without --once
// renews until the lease is gone, then (in the simple format) says so and
// exits 0.
//
// Thread safety: each call is independent.
#ifndef ARBITER_CLI_LEASE_COMMANDS_H_
#define ARBITER_CLI_LEASE_COMMANDS_H_

#include <string>
#include <vector>

#include "cli/commands.h"

namespace arbiter::cli {

int RunLeaseGrant(const GlobalFlags& global, const std::vector<std::string>& args, Io io);
int RunLeaseRevoke(const GlobalFlags& global, const std::vector<std::string>& args, Io io);
int RunLeaseTimeToLive(const GlobalFlags& global, bool keys, const std::vector<std::string>& args,
                       Io io);
int RunLeaseList(const GlobalFlags& global, Io io);
int RunLeaseKeepAlive(const GlobalFlags& global, bool once, const std::vector<std::string>& args,
                      Io io);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_LEASE_COMMANDS_H_
