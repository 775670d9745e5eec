// The server under test, as a parameter: a cluster of N members on
// 127.0.0.1 with fresh data directories, reachable through the etcd v3 API.
// Today the only kind is a cluster of real etcd 3.4 processes; Arbiter's
// cluster plugs in as another ClusterKind, and every client and arbiterctl
// test then runs against it unchanged.
//
// Thread safety: a TestCluster belongs to the test that made it.
#ifndef ARBITER_TESTS_CLIENT_TEST_CLUSTER_H_
#define ARBITER_TESTS_CLIENT_TEST_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
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

// A cluster of /usr/bin/etcd processes.
ClusterKind EtcdClusterKind();

}  // namespace arbiter::testing

#endif  // ARBITER_TESTS_CLIENT_TEST_CLUSTER_H_
