// One arbiterd member as a library: its data dir, identity, raft member,
// peer transport and gRPC servers, assembled from a ServerConfig. arbiterd's
// main is a thin wrapper; tests run several in one process on loopback.
//
// Data dir layout (etcd's top level, our contents):
//   <data-dir>/member/identity   cluster and member IDs, peers (identity.h)
//   <data-dir>/member/raft/      the raft log store (kvstore/keys.h)
//   <data-dir>/member/state/     the state machine's own files, if any
// A member started on a data dir that has an identity ignores the
// --initial-cluster* flags and rejoins with what it stored, as etcd does.
//
// Crash semantics: everything durable is in the raft log store and the
// state machine (see member.h); a fail-stop of the member calls
// ServerOptions::on_fatal (arbiterd exits non-zero there).
//
// Thread safety: Start, Stop and Kill from one controlling thread; the
// accessors from any thread.
#ifndef ARBITER_SERVER_ARBITER_SERVER_H_
#define ARBITER_SERVER_ARBITER_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "raft/logger.h"
#include "server/config.h"
#include "server/identity.h"
#include "server/member.h"
#include "server/peer_transport.h"
#include "server/state_machine.h"
#include "server/store_info.h"

namespace arbiter::server {

class ArbiterServer;

struct ServerOptions {
  ServerConfig config;
  // Creates the state machine; state_dir is <data-dir>/member/state (created).
  std::function<absl::StatusOr<std::unique_ptr<StateMachine>>(const std::string& state_dir)>
      make_state_machine;
  // What Maintenance.Status and response headers report of the store comes
  // from the state machine if it also implements StoreInfo; otherwise (test
  // state machines, without revisions) revision and size are reported as 0.
  // Registers further client-facing gRPC services on the client port, once
  // the member runs. The server itself always serves etcd's Maintenance and
  // Cluster services and gRPC health.
  std::function<void(ArbiterServer* server, grpc::ServerBuilder* builder)> register_client_services;
  // Not owned; nullptr: warnings and errors to stderr.
  raft::Logger* logger = nullptr;
  std::function<void(const absl::Status&)> on_fatal;
};

class ArbiterServer {
 public:
  // Validates the config, prepares the data dir, starts the member and both
  // gRPC servers. Errors: InvalidArgument for a bad or inconsistent
  // configuration (arbiterd exits 2), others for I/O.
  static absl::StatusOr<std::unique_ptr<ArbiterServer>> Start(ServerOptions options);
  ~ArbiterServer();

  ArbiterServer(const ArbiterServer&) = delete;
  ArbiterServer& operator=(const ArbiterServer&) = delete;

  // Clean stop: a leader hands leadership over first.
  void Stop();
  // Abrupt stop, for tests.
  void Kill();

  Member* member() { return member_.get(); }
  StateMachine* state_machine() { return sm_; }
  const StoreInfo* store_info() const { return store_info_; }
  const MemberIdentity& identity() const { return identity_; }
  const ServerConfig& config() const { return options_.config; }
  PeerTransport* transport() { return transport_.get(); }

 private:
  explicit ArbiterServer(ServerOptions options);
  absl::Status Init();
  absl::Status StartPeerServer();
  absl::Status StartClientServer();
  void ShutdownServers();

  const ServerOptions options_;
  raft::Logger* const logger_;
  MemberIdentity identity_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<grpc::Server> client_server_;
  std::unique_ptr<StoreInfo> no_store_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::CallbackGenericService> unimplemented_;
  std::unique_ptr<Member> member_;
  // Owned by member_.
  StateMachine* sm_ = nullptr;
  const StoreInfo* store_info_ = nullptr;
  bool stopped_ = false;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_ARBITER_SERVER_H_
