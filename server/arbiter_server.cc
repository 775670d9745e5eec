#include "server/arbiter_server.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/maintenance_service.h"
#include "server/unimplemented_service.h"

namespace arbiter::server {
namespace {

// Threads a gRPC server keeps waiting for requests once they are idle.
constexpr int kMaxIdlePollers = 256;

void Log(raft::Logger* logger, raft::LogLevel level, const std::string& msg) {
  if (logger->Enabled(level)) logger->Log(level, msg);
}

class NoStore final : public StoreInfo {
 public:
  int64_t CurrentRevision() const override { return 0; }
  int64_t DbSize() const override { return 0; }
  absl::Status HashKv(int64_t, uint32_t*, int64_t*) const override {
    return absl::UnimplementedError("this member's state machine keeps no key-value history");
  }
  std::vector<internalpb::MemberAttributes> Members() const override { return {}; }
};

absl::Status MakeDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

ArbiterServer::ArbiterServer(ServerOptions options)
    : options_(std::move(options)),
      logger_(options_.logger != nullptr ? options_.logger
                                         : raft::StderrLogger(raft::LogLevel::kWarning)) {}

absl::StatusOr<std::unique_ptr<ArbiterServer>> ArbiterServer::Start(ServerOptions options) {
  if (absl::Status s = options.config.Validate(); !s.ok()) return s;
  if (!options.make_state_machine) {
    return absl::InvalidArgumentError("no state machine factory given");
  }
  std::unique_ptr<ArbiterServer> server(new ArbiterServer(std::move(options)));
  if (absl::Status s = server->Init(); !s.ok()) {
    server->Kill();
    return s;
  }
  return server;
}

ArbiterServer::~ArbiterServer() { Kill(); }

absl::Status ArbiterServer::Init() {
  const ServerConfig& c = options_.config;
  const std::string member_dir = absl::StrCat(c.DataDir(), "/member");
  if (absl::Status s = MakeDir(member_dir); !s.ok()) return s;
  auto stored = LoadIdentity(member_dir);
  if (!stored.ok()) return stored.status();
  bool bootstrap = false;
  if (stored->has_value()) {
    identity_ = **stored;
    Log(logger_, raft::LogLevel::kInfo,
        absl::StrFormat("restarting member %x in cluster %x from %s; --initial-cluster ignored",
                        identity_.member_id, identity_.cluster_id, member_dir));
  } else {
    if (c.initial_cluster_state == ClusterState::kExisting) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--initial-cluster-state=existing needs a data dir with the member's state (%s has "
          "none); start a new member of a running cluster with an empty data dir through "
          "member add",
          member_dir));
    }
    identity_ = IdentityFromConfig(c);
    bootstrap = true;
  }

  PeerTransportOptions to;
  to.cluster_id = identity_.cluster_id;
  to.local_id = identity_.member_id;
  to.logger = logger_;
  to.loop_reads = true;  // the member's loop reads its peers (server/transport.h)
  transport_ = std::make_unique<PeerTransport>(to);
  for (const auto& [id, peer] : identity_.peers) {
    if (id != identity_.member_id) transport_->AddPeer(id, peer.peer_urls.front().HostPort());
  }
  if (absl::Status s = StartPeerServer(); !s.ok()) return s;

  const std::string state_dir = absl::StrCat(member_dir, "/state");
  if (absl::Status s = MakeDir(state_dir); !s.ok()) return s;
  auto sm = options_.make_state_machine(state_dir);
  if (!sm.ok()) return sm.status();
  sm_ = sm->get();

  MemberOptions mo;
  mo.id = identity_.member_id;
  for (const auto& [id, peer] : identity_.peers) mo.initial_members.push_back(id);
  mo.data_dir = absl::StrCat(member_dir, "/raft");
  mo.tick_interval = absl::Milliseconds(c.heartbeat_interval_ms);
  mo.election_tick = c.ElectionTicks();
  mo.heartbeat_tick = 1;
  mo.snapshot_count = c.snapshot_count;
  mo.snapshot_catchup_entries = c.snapshot_catchup_entries;
  mo.logger = logger_;
  mo.on_fatal = options_.on_fatal;
  auto member = Member::Start(mo, std::move(*sm), transport_.get());
  if (!member.ok()) return member.status();
  member_ = std::move(*member);
  transport_->Attach(member_.get());
  // Saved only once the member's store exists: a crash before this point
  // leaves no identity, and the next start bootstraps again from the flags.
  if (bootstrap) {
    if (absl::Status s = SaveIdentity(member_dir, identity_); !s.ok()) return s;
  }
  return StartClientServer();
}

absl::Status ArbiterServer::StartPeerServer() {
  std::vector<std::string> addresses;
  for (const auto& url : options_.config.listen_peer_urls) addresses.push_back(url.HostPort());
  absl::StatusOr<std::vector<int>> ports = transport_->Listen(addresses);
  if (!ports.ok()) {
    std::vector<std::string> urls;
    for (const auto& url : options_.config.listen_peer_urls) urls.push_back(url.ToString());
    return absl::UnavailableError(absl::StrCat(
        "cannot listen for peers on ", absl::StrJoin(urls, ","), ": ", ports.status().message()));
  }
  return absl::OkStatus();
}

absl::Status ArbiterServer::StartClientServer() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  std::vector<int> ports(options_.config.listen_client_urls.size(), 0);
  for (size_t i = 0; i < ports.size(); ++i) {
    b.AddListeningPort(options_.config.listen_client_urls[i].HostPort(),
                       grpc::InsecureServerCredentials(), &ports[i]);
  }
  // gRPC sets SO_REUSEPORT by default: a second server started on a port
  // in use would then share it, and the kernel would hand each new client
  // connection to either one, so clients would reach another cluster
  // unnoticed. Like etcd, fail to start instead.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Go clients (etcdctl, clientv3) ping at most every 10 s while a stream
  // is open; gRPC C++'s defaults would answer that with GOAWAY
  // "too_many_pings" and cut long-lived watches.
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Handlers block until their proposal or read is done: keep the threads
  // that ran them polling instead of retiring all but two and starting new
  // ones for the next requests (gRPC's default).
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxIdlePollers);
  // etcd receives requests up to 1.5 MiB + 512 KiB and sends without limit.
  b.SetMaxReceiveMessageSize(2 * 1024 * 1024);
  b.SetMaxSendMessageSize(-1);
  store_info_ = dynamic_cast<const StoreInfo*>(sm_);
  if (store_info_ == nullptr) {
    no_store_ = std::make_unique<NoStore>();
    store_info_ = no_store_.get();
  }
  services_.push_back(std::make_unique<MaintenanceService>(this, store_info_));
  services_.push_back(std::make_unique<ClusterService>(this, store_info_));
  for (auto& svc : services_) b.RegisterService(svc.get());
  if (options_.register_client_services) options_.register_client_services(this, &b);
  unimplemented_ = std::make_unique<UnimplementedService>();
  b.RegisterCallbackGenericService(unimplemented_.get());
  client_server_ = b.BuildAndStart();
  for (size_t i = 0; i < ports.size(); ++i) {
    if (client_server_ == nullptr || ports[i] == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen for clients on ",
                                                 options_.config.listen_client_urls[i].ToString()));
    }
  }
  return absl::OkStatus();
}

void ArbiterServer::ShutdownServers() {
  // Long-lived streams (watches) would hold a plain Shutdown
  // forever; past the deadline they are cancelled.
  const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(500);
  if (client_server_ != nullptr) client_server_->Shutdown(deadline);
  client_server_.reset();
  if (transport_ != nullptr) transport_->StopListening();
}

void ArbiterServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // The member stops first, so it can hand leadership over through the
  // transport while the servers still run.
  if (member_ != nullptr) member_->Stop();
  ShutdownServers();
  if (transport_ != nullptr) transport_->Detach();
  transport_.reset();
  member_.reset();
}

void ArbiterServer::Kill() {
  if (stopped_) return;
  stopped_ = true;
  if (member_ != nullptr) member_->Kill();
  ShutdownServers();
  if (transport_ != nullptr) transport_->Detach();
  transport_.reset();
  member_.reset();
}

}  // namespace arbiter::server
