// The flags of an n-member cluster on 127.0.0.1 for tests that run several
// members in one process: member i is named m<i>, keeps its data under
// <dir>/m<i> and gets fresh client and peer ports (FreePort), and every
// member lists every peer in initial-cluster.
#ifndef ARBITER_TESTS_SERVER_CLUSTER_FLAGS_H_
#define ARBITER_TESTS_SERVER_CLUSTER_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/server/free_port.h"

namespace arbiter::server::testing {

struct ClusterFlags {
  // One flag map per member (ConfigFromFlags takes it).
  std::vector<std::map<std::string, std::string>> flags;
  std::vector<int> client_ports;
  std::vector<int> peer_ports;
};

inline ClusterFlags LocalClusterFlags(const std::string& dir, int n, int heartbeat_ms,
                                      int election_ms) {
  ClusterFlags c;
  std::string cluster;
  for (int i = 0; i < n; ++i) {
    c.client_ports.push_back(FreePort());
    c.peer_ports.push_back(FreePort());
    absl::StrAppend(&cluster, i == 0 ? "" : ",", "m", i, "=http://127.0.0.1:", c.peer_ports[i]);
  }
  for (int i = 0; i < n; ++i) {
    std::map<std::string, std::string> f;
    f["name"] = absl::StrCat("m", i);
    f["data-dir"] = absl::StrCat(dir, "/m", i);
    f["listen-client-urls"] = absl::StrCat("http://127.0.0.1:", c.client_ports[i]);
    f["advertise-client-urls"] = f["listen-client-urls"];
    f["listen-peer-urls"] = absl::StrCat("http://127.0.0.1:", c.peer_ports[i]);
    f["initial-advertise-peer-urls"] = f["listen-peer-urls"];
    f["initial-cluster"] = cluster;
    f["heartbeat-interval"] = absl::StrCat(heartbeat_ms);
    f["election-timeout"] = absl::StrCat(election_ms);
    c.flags.push_back(std::move(f));
  }
  return c;
}

}  // namespace arbiter::server::testing

#endif  // ARBITER_TESTS_SERVER_CLUSTER_FLAGS_H_
