// The server under test, as a parameter: a cluster of N members on
// 127.0.0.1 with fresh data directories, reachable through the etcd v3 API.
// Two kinds: real etcd 3.4 processes (the reference) and arbiterd
// processes (the server under test); every client and arbiterctl test runs
// against both unchanged.
//
// Thread safety: a TestCluster belongs to the test that made it.
#ifndef ARBITER_TESTS_CLIENT_TEST_CLUSTER_H_
#define ARBITER_TESTS_CLIENT_TEST_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace arbiter::testing {

struct TestMember {
  std::string name;             // m1, m2, ...
  uint64_t id = 0;              // As the cluster reports it.
  std::string client_endpoint;  // "127.0.0.1:<port>"
  std::string peer_url;         // "http://127.0.0.1:<port>"
};

class TestCluster {
 public:
  virtual ~TestCluster() = default;

  // Members in name order.
  virtual const std::vector<TestMember>& members() const = 0;
  virtual uint64_t cluster_id() const = 0;
  // Crashes one member (SIGKILL) / starts it again on its data.
  virtual void KillMember(size_t index) = 0;
  virtual absl::Status RestartMember(size_t index) = 0;
  // Blocks until every running member answers and a leader is known.
  virtual absl::Status WaitReady() = 0;

  std::vector<std::string> ClientEndpoints() const;
};

struct ClusterKind {
  std::string name;
  // Empty when the kind cannot run here (its binary is missing).
  std::string unavailable_reason;
  std::function<absl::StatusOr<std::unique_ptr<TestCluster>>(int size)> start;
};

// Test names show the kind's name.
inline void PrintTo(const ClusterKind& kind, std::ostream* out) { *out << kind.name; }

// A cluster of /usr/bin/etcd processes.
ClusterKind EtcdClusterKind();
// A cluster of arbiterd processes (the binary of this build, ARBITERD_PATH),
// started with the same flags as etcd's.
ClusterKind ArbiterClusterKind();

// Both kinds, the reference (etcd) first.
std::vector<ClusterKind> AllKinds();

// One 3-member cluster per kind, started on first use and stopped when the
// process exits, for the tests of one binary that leave it as they found
// it (a test that kills a member restarts it). Not thread-safe: call from
// the test thread.
absl::StatusOr<TestCluster*> SharedCluster(const ClusterKind& kind);

}  // namespace arbiter::testing

#endif  // ARBITER_TESTS_CLIENT_TEST_CLUSTER_H_
