#include "server/lease_service.h"

#include <utility>

#include "absl/strings/match.h"
#include "server/etcd_errors.h"
#include "server/kv_service.h"

namespace arbiter::server {
namespace {

// etcd's limit on a lease TTL.
constexpr int64_t kMaxLeaseTtl = 9'000'000'000;

std::string HostPort(const std::string& url) {
  size_t p = url.find("://");
  return p == std::string::npos ? url : url.substr(p + 3);
}

}  // namespace

// Forwards one client keep-alive stream to the leader over one stream of
// its own, reopened when the leader changes or the stream breaks.
class LeaseService::KeepAliveForwarder {
 public:
  explicit KeepAliveForwarder(LeaseService* s) : s_(s) {}
  ~KeepAliveForwarder() { Close(); }

  grpc::Status Forward(const etcdserverpb::LeaseKeepAliveRequest& req,
                       etcdserverpb::LeaseKeepAliveResponse* resp) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (stream_ == nullptr) {
        std::shared_ptr<etcdserverpb::Lease::Stub> stub = s_->LeaderStub();
        if (stub == nullptr) return etcd::ErrNoLeader();
        ctx_ = std::make_unique<grpc::ClientContext>();
        ctx_->set_wait_for_ready(false);
        stream_ = stub->LeaseKeepAlive(ctx_.get());
      }
      if (stream_->Write(req) && stream_->Read(resp)) return grpc::Status::OK;
      Close();
    }
    return etcd::ErrNoLeader();
  }

 private:
  void Close() {
    if (stream_ == nullptr) return;
    ctx_->TryCancel();
    stream_->Finish();
    stream_.reset();
    ctx_.reset();
  }

  LeaseService* const s_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                           etcdserverpb::LeaseKeepAliveResponse>>
      stream_;
};

void LeaseService::FillHeader(etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(server_->identity().cluster_id);
  h->set_member_id(server_->identity().member_id);
  h->set_raft_term(server_->member()->Status().term);
  h->set_revision(kv_->CurrentRevision());
}

std::shared_ptr<etcdserverpb::Lease::Stub> LeaseService::LeaderStub() {
  const uint64_t leader = server_->member()->Status().leader;
  if (leader == 0) return nullptr;
  {
    absl::MutexLock l(&mu_);
    auto it = stubs_.find(leader);
    if (it != stubs_.end()) return it->second;
  }
  std::string url;
  for (const internalpb::MemberAttributes& m : kv_->Members()) {
    if (m.id() == leader && !m.removed() && m.client_urls_size() > 0) url = m.client_urls(0);
  }
  if (url.empty()) return nullptr;
  auto channel = grpc::CreateChannel(HostPort(url), grpc::InsecureChannelCredentials());
  auto stub = std::make_shared<etcdserverpb::Lease::Stub>(channel);
  absl::MutexLock l(&mu_);
  stubs_[leader] = stub;
  return stub;
}

grpc::Status LeaseService::LeaseGrant(grpc::ServerContext* ctx,
                                      const etcdserverpb::LeaseGrantRequest* req,
                                      etcdserverpb::LeaseGrantResponse* resp) {
  if (req->ttl() > kMaxLeaseTtl) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL");
  }
  if (grpc::Status s = CheckLeaderRequired(ctx, server_->member()); !s.ok()) return s;
  internalpb::Request r;
  *r.mutable_lease_grant() = *req;
  internalpb::Response out;
  if (grpc::Status s = ProposeCommand(server_->member(), &r, &out, RequestDeadline(ctx, timeout_));
      !s.ok())
    return s;
  resp->Swap(out.mutable_lease_grant());
  FillHeader(resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseRevoke(grpc::ServerContext* ctx,
                                       const etcdserverpb::LeaseRevokeRequest* req,
                                       etcdserverpb::LeaseRevokeResponse* resp) {
  if (grpc::Status s = CheckLeaderRequired(ctx, server_->member()); !s.ok()) return s;
  internalpb::Request r;
  *r.mutable_lease_revoke() = *req;
  internalpb::Response out;
  if (grpc::Status s = ProposeCommand(server_->member(), &r, &out, RequestDeadline(ctx, timeout_));
      !s.ok())
    return s;
  const int64_t rev = out.lease_revoke().header().revision();
  FillHeader(resp->mutable_header());
  if (rev > 0) resp->mutable_header()->set_revision(rev);
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseKeepAlive(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse,
                             etcdserverpb::LeaseKeepAliveRequest>* stream) {
  if (grpc::Status s = CheckLeaderRequired(ctx, server_->member()); !s.ok()) return s;
  KeepAliveForwarder forwarder(this);
  etcdserverpb::LeaseKeepAliveRequest req;
  while (stream->Read(&req)) {
    etcdserverpb::LeaseKeepAliveResponse resp;
    absl::StatusOr<int64_t> ttl = lessor_->Renew(req.id(), RequestDeadline(ctx, timeout_));
    if (ttl.ok()) {
      FillHeader(resp.mutable_header());
      resp.set_id(req.id());
      resp.set_ttl(*ttl);
    } else if (Lessor::IsNotLeader(ttl.status())) {
      if (grpc::Status s = forwarder.Forward(req, &resp); !s.ok()) return s;
    } else {
      return etcd::FromMemberError(ttl.status());
    }
    if (!stream->Write(resp)) break;
  }
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseTimeToLive(grpc::ServerContext* ctx,
                                           const etcdserverpb::LeaseTimeToLiveRequest* req,
                                           etcdserverpb::LeaseTimeToLiveResponse* resp) {
  if (grpc::Status s = CheckLeaderRequired(ctx, server_->member()); !s.ok()) return s;
  absl::StatusOr<int64_t> left = lessor_->Remaining(req->id(), RequestDeadline(ctx, timeout_));
  if (!left.ok()) {
    if (!Lessor::IsNotLeader(left.status())) return etcd::FromMemberError(left.status());
    std::shared_ptr<etcdserverpb::Lease::Stub> stub = LeaderStub();
    if (stub == nullptr) return etcd::ErrNoLeader();
    grpc::ClientContext fwd;
    fwd.set_deadline(absl::ToChronoTime(RequestDeadline(ctx, timeout_)));
    return stub->LeaseTimeToLive(&fwd, *req, resp);
  }
  FillHeader(resp->mutable_header());
  resp->set_id(req->id());
  std::optional<kv::LeaseInfo> li = kv_->GetLease(req->id(), req->keys());
  if (*left < 0 || !li.has_value()) {
    resp->set_ttl(-1);
    return grpc::Status::OK;
  }
  resp->set_ttl(*left);
  resp->set_grantedttl(li->ttl);
  for (std::string& k : li->keys) resp->add_keys(std::move(k));
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseLeases(grpc::ServerContext*,
                                       const etcdserverpb::LeaseLeasesRequest*,
                                       etcdserverpb::LeaseLeasesResponse* resp) {
  FillHeader(resp->mutable_header());
  for (const kv::LeaseInfo& li : kv_->Leases()) resp->add_leases()->set_id(li.id);
  return grpc::Status::OK;
}

}  // namespace arbiter::server
