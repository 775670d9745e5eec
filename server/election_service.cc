#include "server/election_service.h"

#include <string>

#include "absl/time/clock.h"
#include "server/concurrency.h"

namespace arbiter::server {
namespace {

grpc::Status Raw(const char* msg) { return grpc::Status(grpc::StatusCode::UNKNOWN, msg); }
const char kNoLeader[] = "election: no leader";
const char kNotLeader[] = "election: not leader";
const char kLeaderRequired[] = "\"leader\" field must be provided";

grpc::Status LeaseNotFound() {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found");
}

// A waiting Campaign or Lock has no deadline but its client's.
absl::Time WaitDeadline(const grpc::ServerContext* ctx) {
  return absl::FromChrono(ctx->deadline());
}

// Deletes key if it still has create revision rev.
grpc::Status DeleteIfOwned(KvService* kv, const std::string& key, int64_t rev, absl::Time deadline,
                           etcdserverpb::TxnResponse* resp) {
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(rev);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  return kv->DoTxn(txn, resp, deadline);
}

}  // namespace

grpc::Status ElectionService::Campaign(grpc::ServerContext* ctx,
                                       const v3electionpb::CampaignRequest* req,
                                       v3electionpb::CampaignResponse* resp) {
  const std::string prefix = req->name() + "/";
  const absl::Time short_deadline = absl::Now() + timeout_;
  Contender c;
  if (grpc::Status s = CreateContender(kv_, prefix, req->lease(), req->value(), short_deadline, &c);
      !s.ok()) {
    return s;
  }
  if (c.existed && c.existing_value != req->value()) {
    // Back in the same campaign with another value: proclaim it.
    v3electionpb::ProclaimRequest p;
    p.mutable_leader()->set_name(req->name());
    p.mutable_leader()->set_key(c.key);
    p.mutable_leader()->set_rev(c.rev);
    p.mutable_leader()->set_lease(req->lease());
    p.set_value(req->value());
    v3electionpb::ProclaimResponse pr;
    if (grpc::Status s = Proclaim(ctx, &p, &pr); !s.ok()) return s;
  }
  grpc::Status s = WaitDeletes(kv_, hub_, prefix, c.rev - 1, WaitDeadline(ctx),
                               [ctx] { return ctx->IsCancelled(); });
  if (s.ok() && !store_->GetLease(req->lease(), false).has_value()) s = LeaseNotFound();
  if (!s.ok()) {
    // Give up the candidacy, as clientv3 resigns when its campaign fails.
    etcdserverpb::TxnResponse ignored;
    (void)DeleteIfOwned(kv_, c.key, c.rev, absl::Now() + timeout_, &ignored);
    return s;
  }
  *resp->mutable_header() = c.header;
  resp->mutable_header()->set_revision(c.rev);
  v3electionpb::LeaderKey* lk = resp->mutable_leader();
  lk->set_name(req->name());
  lk->set_key(c.key);
  lk->set_rev(c.rev);
  lk->set_lease(req->lease());
  return grpc::Status::OK;
}

grpc::Status ElectionService::Proclaim(grpc::ServerContext*,
                                       const v3electionpb::ProclaimRequest* req,
                                       v3electionpb::ProclaimResponse* resp) {
  if (!req->has_leader()) return Raw(kLeaderRequired);
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* cmp = txn.add_compare();
  cmp->set_key(req->leader().key());
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(req->leader().rev());
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(req->leader().key());
  put->set_value(req->value());
  put->set_ignore_lease(true);
  etcdserverpb::TxnResponse tr;
  if (grpc::Status s = kv_->DoTxn(txn, &tr, absl::Now() + timeout_); !s.ok()) return s;
  if (!tr.succeeded()) return Raw(kNotLeader);
  *resp->mutable_header() = tr.header();
  return grpc::Status::OK;
}

grpc::Status ElectionService::Leader(grpc::ServerContext*, const v3electionpb::LeaderRequest* req,
                                     v3electionpb::LeaderResponse* resp) {
  bool found = false;
  if (grpc::Status s = FirstCreated(kv_, req->name() + "/", absl::Now() + timeout_,
                                    resp->mutable_kv(), &found, resp->mutable_header());
      !s.ok()) {
    return s;
  }
  if (!found) return Raw(kNoLeader);
  return grpc::Status::OK;
}

grpc::Status ElectionService::Observe(grpc::ServerContext* ctx,
                                      const v3electionpb::LeaderRequest* req,
                                      grpc::ServerWriter<v3electionpb::LeaderResponse>* writer) {
  const std::string prefix = req->name() + "/";
  std::unique_ptr<kv::WatchStream> ws = hub_->NewStream();
  etcdserverpb::WatchCreateRequest wc;
  wc.set_key(prefix);
  wc.set_range_end(PrefixEnd(prefix));
  ws->Create(wc);
  std::string last_key;
  int64_t last_mod = 0;
  while (!ctx->IsCancelled()) {
    // Every change under the prefix may change the leader or its value.
    v3electionpb::LeaderResponse lr;
    bool found = false;
    grpc::Status s = FirstCreated(kv_, prefix, absl::Now() + timeout_, lr.mutable_kv(), &found,
                                  lr.mutable_header());
    if (!s.ok()) return s;
    if (found && (lr.kv().key() != last_key || lr.kv().mod_revision() != last_mod)) {
      last_key = lr.kv().key();
      last_mod = lr.kv().mod_revision();
      if (!writer->Write(lr)) return grpc::Status::OK;
    }
    etcdserverpb::WatchResponse w;
    bool changed = false;
    while (!changed && !ctx->IsCancelled()) {
      if (ws->Next(&w, absl::Now() + absl::Milliseconds(200))) {
        changed = w.events_size() > 0 || w.canceled();
        if (w.canceled()) {
          ws = hub_->NewStream();
          ws->Create(wc);
        }
      }
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "context canceled");
}

grpc::Status ElectionService::Resign(grpc::ServerContext*, const v3electionpb::ResignRequest* req,
                                     v3electionpb::ResignResponse* resp) {
  if (!req->has_leader()) return Raw(kLeaderRequired);
  etcdserverpb::TxnResponse tr;
  if (grpc::Status s =
          DeleteIfOwned(kv_, req->leader().key(), req->leader().rev(), absl::Now() + timeout_, &tr);
      !s.ok()) {
    return s;
  }
  *resp->mutable_header() = tr.header();
  return grpc::Status::OK;
}

grpc::Status LockService::Lock(grpc::ServerContext* ctx, const v3lockpb::LockRequest* req,
                               v3lockpb::LockResponse* resp) {
  const std::string prefix = req->name() + "/";
  Contender c;
  if (grpc::Status s = CreateContender(kv_, prefix, req->lease(), "", absl::Now() + timeout_, &c);
      !s.ok()) {
    return s;
  }
  grpc::Status s = WaitDeletes(kv_, hub_, prefix, c.rev - 1, WaitDeadline(ctx),
                               [ctx] { return ctx->IsCancelled(); });
  // The lease may have expired while we waited: then the key is gone and
  // the lock is not held.
  if (s.ok() && !store_->GetLease(req->lease(), false).has_value()) s = LeaseNotFound();
  if (!s.ok()) {
    etcdserverpb::TxnResponse ignored;
    (void)DeleteIfOwned(kv_, c.key, c.rev, absl::Now() + timeout_, &ignored);
    return s;
  }
  *resp->mutable_header() = c.header;
  // The fencing token: the lock key's create revision.
  resp->mutable_header()->set_revision(c.rev);
  resp->set_key(c.key);
  return grpc::Status::OK;
}

grpc::Status LockService::Unlock(grpc::ServerContext*, const v3lockpb::UnlockRequest* req,
                                 v3lockpb::UnlockResponse* resp) {
  etcdserverpb::TxnRequest txn;
  txn.add_success()->mutable_request_delete_range()->set_key(req->key());
  etcdserverpb::TxnResponse tr;
  if (grpc::Status s = kv_->DoTxn(txn, &tr, absl::Now() + timeout_); !s.ok()) return s;
  *resp->mutable_header() = tr.header();
  return grpc::Status::OK;
}

}  // namespace arbiter::server
