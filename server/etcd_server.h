// An Arbiter member serving the etcd v3 API: an ArbiterServer whose state
// machine is the MVCC key-value store (kvstore/kv_state_machine.h), with the
// KV service on its client port. This is what arbiterd runs, and what a test
// suite embeds to run a real cluster in its own process.
//
// Once started, the member publishes its name and URLs through the log (as
// etcd publishes its attributes), retrying until one is applied, so every
// member can answer Cluster.MemberList with every member's client URLs.
//
// Thread safety: Start, Stop and Kill from one controlling thread; the
// accessors from any thread.
#ifndef ARBITER_SERVER_ETCD_SERVER_H_
#define ARBITER_SERVER_ETCD_SERVER_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "kvstore/kv_state_machine.h"
#include "kvstore/watch_hub.h"
#include "server/arbiter_server.h"
#include "server/election_service.h"
#include "server/kv_service.h"
#include "server/lease_service.h"
#include "server/lessor.h"
#include "server/watch_service.h"

namespace arbiter::server {

struct EtcdServerOptions {
  ServerConfig config;
  // Not owned; nullptr: warnings and errors to stderr.
  raft::Logger* logger = nullptr;
  // How often the leader records long leases' remaining TTLs in the log
  // (see server/lessor.h).
  absl::Duration lease_checkpoint_interval = absl::Minutes(5);
  // Called when the member fail-stops (arbiterd exits there).
  std::function<void(const absl::Status&)> on_fatal;
  // The Env the state database is opened with (not owned; nullptr: the
  // default Env). Tests inject storage faults through it.
  leveldb::Env* state_env = nullptr;
};

class EtcdServer {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdServer>> Start(EtcdServerOptions options);
  ~EtcdServer();

  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Clean stop: a leader hands leadership over first.
  void Stop();
  // Abrupt stop, as a crash would (for tests).
  void Kill();

  ArbiterServer* server() { return server_.get(); }
  kv::KvStateMachine* kv() { return kv_; }
  kv::WatchHub* watch_hub() { return hub_.get(); }

 private:
  EtcdServer() = default;
  void PublishAttributes(absl::Duration request_timeout);
  void Halt(bool graceful);

  // Declared before server_: they outlive the member that feeds the hub
  // and the gRPC server that calls the services.
  std::unique_ptr<kv::WatchHub> hub_;
  std::unique_ptr<KvService> kv_service_;
  std::unique_ptr<WatchService> watch_service_;
  std::unique_ptr<Lessor> lessor_;
  std::unique_ptr<LeaseService> lease_service_;
  std::unique_ptr<ElectionService> election_service_;
  std::unique_ptr<LockService> lock_service_;
  std::unique_ptr<ArbiterServer> server_;
  // Owned by the member (through its state machine).
  kv::KvStateMachine* kv_ = nullptr;
  absl::Notification stopping_;
  std::thread publisher_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_ETCD_SERVER_H_
