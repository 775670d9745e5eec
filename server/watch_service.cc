#include "server/watch_service.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "server/kv_service.h"
#include "server/thread_name.h"

namespace arbiter::server {

grpc::Status WatchService::Watch(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<etcdserverpb::WatchResponse, etcdserverpb::WatchRequest>* stream) {
  if (grpc::Status s = CheckLeaderRequired(ctx, server_->member()); !s.ok()) return s;
  const auto& md = ctx->client_metadata();
  auto hl = md.find("hasleader");
  const bool require_leader = hl != md.end() && hl->second == "true";

  std::unique_ptr<kv::WatchStream> ws = hub_->NewStream();
  std::atomic<bool> leader_lost{false};
  std::thread writer([&] {
    SetThreadName("watch-writer");
    const MemberIdentity& id = server_->identity();
    absl::Time last_leader = absl::Now();
    etcdserverpb::WatchResponse r;
    while (true) {
      const bool got = ws->Next(&r, absl::Now() + absl::Milliseconds(250));
      if (!got && ws->closed()) break;
      const MemberStatus st = server_->member()->Status();
      if (st.leader != 0) last_leader = absl::Now();
      if (require_leader && absl::Now() - last_leader > leader_loss_timeout_) {
        leader_lost = true;
        break;
      }
      if (!got) continue;
      etcdserverpb::ResponseHeader* h = r.mutable_header();
      h->set_cluster_id(id.cluster_id);
      h->set_member_id(id.member_id);
      h->set_raft_term(st.term);
      if (!stream->Write(r)) break;
    }
    // Unblocks the reader if the client is gone or the stream must end.
    ctx->TryCancel();
  });

  etcdserverpb::WatchRequest req;
  while (stream->Read(&req)) {
    switch (req.request_union_case()) {
      case etcdserverpb::WatchRequest::kCreateRequest:
        ws->Create(req.create_request());
        break;
      case etcdserverpb::WatchRequest::kCancelRequest:
        ws->Cancel(req.cancel_request().watch_id());
        break;
      case etcdserverpb::WatchRequest::kProgressRequest:
        ws->RequestProgress();
        break;
      case etcdserverpb::WatchRequest::REQUEST_UNION_NOT_SET:
        break;
    }
  }
  ws->Close();
  writer.join();
  if (leader_lost) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader");
  }
  return grpc::Status::OK;
}

}  // namespace arbiter::server
