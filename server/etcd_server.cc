#include "server/etcd_server.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "server/errors.h"
#include "server/kv_adapter.h"
#include "server/thread_name.h"

namespace arbiter::server {

absl::StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Start(EtcdServerOptions options) {
  std::unique_ptr<EtcdServer> es(new EtcdServer());
  const ServerConfig& c = options.config;
  // etcd's minimum lease TTL: 1.5 election timeouts, rounded up to seconds.
  const int64_t min_lease_ttl = (3 * int64_t{c.election_timeout_ms} + 1999) / 2000;
  // etcd's request timeout: 5 s plus two election timeouts.
  const absl::Duration request_timeout =
      absl::Seconds(5) + absl::Milliseconds(2 * int64_t{c.election_timeout_ms});

  ServerOptions so;
  so.config = c;
  so.logger = options.logger;
  so.on_fatal = std::move(options.on_fatal);
  EtcdServer* self = es.get();
  so.make_state_machine =
      [self, min_lease_ttl, state_env = options.state_env](
          const std::string& dir) -> absl::StatusOr<std::unique_ptr<StateMachine>> {
    kv::KvStateMachine::Options ko;
    ko.min_lease_ttl = min_lease_ttl;
    ko.env = state_env;
    auto kv = kv::KvStateMachine::Open(dir, ko);
    if (!kv.ok()) return kv.status();
    self->kv_ = kv->get();
    // Registered before the member applies anything, so the hub's revision
    // starts where the store is and it sees every revision after it.
    self->hub_ = std::make_unique<kv::WatchHub>(self->kv_, kv::WatchHub::Options());
    self->kv_->SetEventListener(self->hub_.get());
    return std::make_unique<KvAdapter>(std::move(*kv));
  };
  // A hasleader stream ends after three election timeouts without a leader.
  const absl::Duration leader_loss = absl::Milliseconds(3 * int64_t{c.election_timeout_ms});
  Lessor::Options lo;
  lo.checkpoint_interval = options.lease_checkpoint_interval;
  lo.request_timeout = request_timeout;
  so.register_client_services = [self, request_timeout, leader_loss, lo](ArbiterServer* s,
                                                                         grpc::ServerBuilder* b) {
    self->kv_service_ = std::make_unique<KvService>(s, self->kv_, request_timeout);
    b->RegisterService(self->kv_service_.get());
    self->watch_service_ = std::make_unique<WatchService>(s, self->hub_.get(), leader_loss);
    b->RegisterService(self->watch_service_.get());
    self->lessor_ = std::make_unique<Lessor>(s->member(), self->kv_, lo);
    self->lease_service_ =
        std::make_unique<LeaseService>(s, self->kv_, self->lessor_.get(), request_timeout);
    b->RegisterService(self->lease_service_.get());
    self->election_service_ = std::make_unique<ElectionService>(self->kv_service_.get(), self->kv_,
                                                                self->hub_.get(), request_timeout);
    b->RegisterService(self->election_service_.get());
    self->lock_service_ = std::make_unique<LockService>(self->kv_service_.get(), self->kv_,
                                                        self->hub_.get(), request_timeout);
    b->RegisterService(self->lock_service_.get());
  };
  auto server = ArbiterServer::Start(std::move(so));
  if (!server.ok()) return server.status();
  es->server_ = std::move(*server);
  es->lessor_->Start();
  es->publisher_ =
      std::thread([self, request_timeout] { self->PublishAttributes(request_timeout); });
  return es;
}

EtcdServer::~EtcdServer() { Halt(false); }

void EtcdServer::Stop() { Halt(true); }
void EtcdServer::Kill() { Halt(false); }

void EtcdServer::Halt(bool graceful) {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (publisher_.joinable()) publisher_.join();
  // The lessor proposes through the member: it stops first.
  if (lessor_ != nullptr) lessor_->Stop();
  if (server_ == nullptr) return;
  if (graceful) {
    server_->Stop();
  } else {
    server_->Kill();
  }
}

void EtcdServer::PublishAttributes(absl::Duration request_timeout) {
  SetThreadName("publish-attrs");
  const MemberIdentity& id = server_->identity();
  const ServerConfig& c = server_->config();
  internalpb::Request req;
  internalpb::MemberAttributes* m = req.mutable_member_attributes();
  m->set_id(id.member_id);
  m->set_name(c.name);
  for (const Url& u : id.peers.at(id.member_id).peer_urls) m->add_peer_urls(u.ToString());
  for (const Url& u : c.advertise_client_urls) m->add_client_urls(u.ToString());
  // Already published by an earlier start with the same attributes?
  for (const internalpb::MemberAttributes& have : kv_->Members()) {
    if (have.id() == m->id() && have.SerializeAsString() == m->SerializeAsString()) return;
  }
  absl::Duration backoff = absl::Milliseconds(50);
  while (!stopping_.HasBeenNotified()) {
    auto r = server_->member()->Propose(req.SerializeAsString(), absl::Now() + request_timeout);
    if (r.ok()) return;
    if (IsStopped(r.status())) return;
    stopping_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

}  // namespace arbiter::server
