// Command scripts for the differential test of arbiterctl against etcdctl,
// and the normalisation that lets two clusters' outputs be compared.
//
// A script is a text file of steps:
//   # a comment
//   $ put foo bar                   a command line (shell-like quoting)
//   $[status] endpoint status       options for this step, comma separated
//   < value("foo") = "bar"          a line of the step's standard input
//   <                               an empty input line
//   <! no newline                   input without a final newline
//   <repeat 129 put k{i} v          129 input lines, {i} = 0..128
// Every command gets --endpoints with the cluster's client endpoints unless
// it names its own. In arguments {ep1}.. stand for member endpoints
// (host:port), {url1}.. for their http:// URLs, {dead} for an endpoint
// where nothing listens, {id1}.. for member IDs (hex), and {lease1}.. for the leases that earlier
// `lease grant` steps of the script granted on that cluster, in order (IDs differ between clusters;
// in outputs they are replaced by the same names).
//
// Step options: ignore-stdout (usage text differs between the tools),
// health (durations and order of health checks vary), status (leader,
// sizes, terms and raft indexes vary between clusters), sort (members are
// listed in the order of their IDs, which differ between clusters: lines
// and the objects of a JSON array are sorted), remaining (a lease's
// remaining TTL depends on when the step ran), hash (HashKV values are
// named H1, H2, ... in order of appearance: Arbiter does not yet compute
// etcd's value, see testdata/maintenance.txt), own-leases (`lease list`
// shows only the leases the script granted, sorted).
//
// Thread safety: pure functions.
#ifndef ARBITER_TESTS_CLIENT_CTL_SCRIPT_H_
#define ARBITER_TESTS_CLIENT_CTL_SCRIPT_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/client/test_cluster.h"

namespace arbiter::testing {

struct ScriptStep {
  int line = 0;
  std::vector<std::string> args;
  std::string input;
  std::set<std::string> options;
};

absl::StatusOr<std::vector<ScriptStep>> ParseScript(const std::string& text);

// What earlier steps printed that later steps refer to, for one cluster.
struct ScriptVars {
  // Granted lease IDs as etcdctl prints them (%016x), in grant order.
  std::vector<std::string> leases;
};

// Records what a step's standard output introduces (a granted lease).
void CaptureVars(const std::string& out, ScriptVars* vars);

// The command line for one cluster: placeholders replaced, --endpoints
// added.
std::vector<std::string> ExpandArgs(const ScriptStep& step, const TestCluster& cluster,
                                    const std::string& dead_endpoint,
                                    const ScriptVars& vars = ScriptVars());

// Output with what legitimately differs between two clusters replaced by
// fixed names: member, cluster and lease IDs, URLs, the member that
// answered, raft terms, and per step option the leader, sizes, raft indexes
// and durations. Also drops clientv3's JSON log lines, keeps only the first
// line of a Go panic, calls the tool etcdctl, and evens out table padding.
std::string Normalize(const std::string& text, const TestCluster& cluster,
                      const std::set<std::string>& options, const ScriptVars& vars = ScriptVars());

}  // namespace arbiter::testing

#endif  // ARBITER_TESTS_CLIENT_CTL_SCRIPT_H_
