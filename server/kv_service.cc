#include "server/kv_service.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/time/clock.h"
#include "kvstore/kv_validate.h"
#include "server/errors.h"
#include "server/etcd_errors.h"

namespace arbiter::server {
namespace {

// How often a request made while no leader is known asks again.
constexpr absl::Duration kNoLeaderRetry = absl::Milliseconds(10);

// Waits a little before the next attempt; false once the deadline passed.
bool PauseBeforeRetry(absl::Time deadline) {
  const absl::Time now = absl::Now();
  if (now >= deadline) return false;
  absl::SleepFor(std::min(kNoLeaderRetry, deadline - now));
  return true;
}

// What etcd answers for a proposal that raft never took because no leader
// was elected before the deadline: its context's error, which the client
// sees as "context deadline exceeded".
grpc::Status ErrProposalDeadline() {
  return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded");
}

// Whether serving a Range may take long enough to hold up the member's
// loop: anything but one key or a small limit.
bool IsHeavyRange(const etcdserverpb::RangeRequest& r) {
  return !r.range_end().empty() && (r.limit() <= 0 || r.limit() > 100);
}

}  // namespace

KvService::KvService(ArbiterServer* server, kv::KvStateMachine* kv, absl::Duration request_timeout)
    : server_(server), kv_(kv), timeout_(request_timeout) {}

grpc::Status CheckLeaderRequired(const grpc::ServerContextBase* ctx, Member* member) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("hasleader");
  if (it == md.end() || it->second != "true") return grpc::Status::OK;
  if (member->Status().leader == 0) return etcd::ErrNoLeader();
  return grpc::Status::OK;
}

absl::Time RequestDeadline(const grpc::ServerContextBase* ctx, absl::Duration server_timeout) {
  return std::min(absl::FromChrono(ctx->deadline()), absl::Now() + server_timeout);
}

void KvService::FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) {
  h->set_cluster_id(server_->identity().cluster_id);
  h->set_member_id(server_->identity().member_id);
  h->set_raft_term(server_->member()->Status().term);
  h->set_revision(revision);
}

// etcd resends a read's ReadIndex until a leader confirms it or its request
// timeout passes ("etcdserver: request timed out"); the member refuses at
// once while no leader is known, so the refusal is retried here.
// When the deadline that passed is the client's own, the answer is the
// client's: "context deadline exceeded", which its own timer reports a
// moment later anyway (an answer sent at that instant would otherwise race
// with it); when the server's request timeout passed first, etcd's
// "etcdserver: request timed out". Both deadlines come from one reading of
// the client's: gRPC converts it to wall-clock time afresh on every
// ctx->deadline(), so two readings can differ by microseconds and turn the
// comparison below the wrong way.
grpc::Status KvService::WaitReadable(absl::Time deadline, absl::Time client_deadline) {
  for (;;) {
    absl::Status s = server_->member()->ReadIndex(deadline);
    if (IsTimeout(s) && deadline >= client_deadline) return ErrProposalDeadline();
    if (!IsNoLeader(s)) return etcd::FromMemberError(s);
    if (!PauseBeforeRetry(deadline)) {
      return deadline >= client_deadline ? ErrProposalDeadline() : etcd::ErrTimeout();
    }
  }
}

absl::StatusOr<std::string> EncodeCommand(internalpb::Request* req) {
  req->set_leader_time_ms(absl::ToUnixMillis(absl::Now()));
  std::string cmd = req->SerializeAsString();
  if (cmd.size() > kMaxRequestBytes) return absl::InvalidArgumentError("too large");
  return cmd;
}

grpc::Status DecodeCommandResult(const absl::StatusOr<std::string>& result,
                                 internalpb::Response* resp) {
  if (!result.ok()) return etcd::FromMemberError(result.status());
  if (!resp->ParseFromString(*result)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "malformed state machine response");
  }
  if (resp->error_code() != 0) {
    return grpc::Status(static_cast<grpc::StatusCode>(resp->error_code()), resp->error_message());
  }
  return grpc::Status::OK;
}

namespace {

// What a proposal that ended with result answers. A timeout at the
// client's own deadline answers as the client's timer does ("context
// deadline exceeded"): it reports that a moment later anyway, and an answer
// sent at that instant would race with it (as in WaitReadable).
grpc::Status ProposalAnswer(const absl::StatusOr<std::string>& result, internalpb::Response* resp,
                            absl::Time deadline, absl::Time client_deadline) {
  if (!result.ok() && IsTimeout(result.status()) && deadline >= client_deadline) {
    return ErrProposalDeadline();
  }
  return DecodeCommandResult(result, resp);
}

// Proposes an encoded command, waiting for a leader while none is known.
grpc::Status ProposeEncoded(Member* member, const std::string& cmd, internalpb::Response* resp,
                            absl::Time deadline,
                            absl::Time client_deadline = absl::InfiniteFuture()) {
  // etcd's raft takes no proposal while no leader is known and the request
  // waits for one until its deadline, so a write made during an election
  // succeeds once it is over; the member refuses at once, so the refusal is
  // retried here. Nothing was proposed then, so retrying is safe.
  absl::StatusOr<std::string> result = member->Propose(cmd, deadline);
  while (!result.ok() && IsNoLeader(result.status())) {
    if (!PauseBeforeRetry(deadline)) return ErrProposalDeadline();
    result = member->Propose(cmd, deadline);
  }
  return ProposalAnswer(result, resp, deadline, client_deadline);
}

}  // namespace

grpc::Status ProposeCommand(Member* member, internalpb::Request* req, internalpb::Response* resp,
                            absl::Time deadline) {
  absl::StatusOr<std::string> cmd = EncodeCommand(req);
  if (!cmd.ok()) return etcd::ErrRequestTooLarge();
  return ProposeEncoded(member, *cmd, resp, deadline);
}

grpc::Status KvService::ServeRange(const etcdserverpb::RangeRequest& req,
                                   etcdserverpb::RangeResponse* resp) {
  if (absl::Status s = kv_->Range(req, resp); !s.ok()) return etcd::FromStatus(s);
  FillHeader(resp->mutable_header(), resp->header().revision());
  return grpc::Status::OK;
}

void KvService::ConfirmThenServe(grpc::CallbackServerContext* ctx,
                                 grpc::ServerUnaryReactor* reactor, bool heavy,
                                 std::function<grpc::Status()> serve) {
  const absl::Time client_deadline = absl::FromChrono(ctx->deadline());
  const absl::Time deadline = std::min(client_deadline, absl::Now() + timeout_);
  server_->member()->ReadIndexAsync(
      deadline, [this, reactor, heavy, serve = std::move(serve), deadline,
                 client_deadline](absl::StatusOr<std::string> r) mutable {
        if (r.ok() && !heavy) {
          reactor->Finish(serve());
        } else if (r.ok()) {
          workers_.Run([reactor, serve = std::move(serve)] { reactor->Finish(serve()); });
        } else if (IsNoLeader(r.status())) {
          // Waiting for a leader blocks: not on the loop thread.
          workers_.Run([this, reactor, serve = std::move(serve), deadline, client_deadline] {
            grpc::Status s = WaitReadable(deadline, client_deadline);
            reactor->Finish(s.ok() ? serve() : s);
          });
        } else if (IsTimeout(r.status()) && deadline >= client_deadline) {
          reactor->Finish(ErrProposalDeadline());
        } else {
          reactor->Finish(etcd::FromMemberError(r.status()));
        }
      });
}

void KvService::ProposeThenFinish(grpc::CallbackServerContext* ctx,
                                  grpc::ServerUnaryReactor* reactor, internalpb::Request* req,
                                  std::function<void(internalpb::Response*)> take) {
  absl::StatusOr<std::string> cmd = EncodeCommand(req);
  if (!cmd.ok()) {
    reactor->Finish(etcd::ErrRequestTooLarge());
    return;
  }
  const absl::Time client_deadline = absl::FromChrono(ctx->deadline());
  const absl::Time deadline = std::min(client_deadline, absl::Now() + timeout_);
  auto done = [this, reactor, take = std::move(take), cmd = *cmd, deadline,
               client_deadline](absl::StatusOr<std::string> result) mutable {
    if (!result.ok() && IsNoLeader(result.status())) {
      // Waiting for a leader blocks: not on the loop thread.
      workers_.Run([this, reactor, take = std::move(take), cmd = std::move(cmd), deadline,
                    client_deadline] {
        internalpb::Response out;
        grpc::Status s = ProposeEncoded(server_->member(), cmd, &out, deadline, client_deadline);
        if (s.ok()) take(&out);
        reactor->Finish(s);
      });
      return;
    }
    internalpb::Response out;
    grpc::Status s = ProposalAnswer(result, &out, deadline, client_deadline);
    if (s.ok()) take(&out);
    reactor->Finish(s);
  };
  server_->member()->ProposeAsync(*std::move(cmd), deadline, std::move(done));
}

bool KvService::Admit(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                      const absl::Status& valid) {
  if (!valid.ok()) {
    reactor->Finish(etcd::FromStatus(valid));
    return false;
  }
  if (grpc::Status s = CheckLeaderRequired(ctx, server_->member()); !s.ok()) {
    reactor->Finish(s);
    return false;
  }
  return true;
}

template <typename Req, typename Resp>
void KvService::Write(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                      const Req& req, Resp* resp, Req* (internalpb::Request::*in)(),
                      Resp* (internalpb::Response::*out)()) {
  internalpb::Request r;
  *(r.*in)() = req;
  ProposeThenFinish(ctx, reactor, &r, [this, resp, out](internalpb::Response* applied) {
    resp->Swap((applied->*out)());
    FillHeader(resp->mutable_header(), resp->header().revision());
  });
}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* ctx,
                                           const etcdserverpb::RangeRequest* req,
                                           etcdserverpb::RangeResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!Admit(ctx, reactor, kv::ValidateRange(*req))) return reactor;
  if (req->serializable()) {
    reactor->Finish(ServeRange(*req, resp));
  } else {
    ConfirmThenServe(ctx, reactor, IsHeavyRange(*req),
                     [this, req, resp] { return ServeRange(*req, resp); });
  }
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (Admit(ctx, reactor, kv::ValidatePut(*req))) {
    Write(ctx, reactor, *req, resp, &internalpb::Request::mutable_put,
          &internalpb::Response::mutable_put);
  }
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* ctx,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (Admit(ctx, reactor, kv::ValidateDeleteRange(*req))) {
    Write(ctx, reactor, *req, resp, &internalpb::Request::mutable_delete_range,
          &internalpb::Response::mutable_delete_range);
  }
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!Admit(ctx, reactor, kv::ValidateTxn(*req))) return reactor;
  if (kv::IsReadOnlyTxn(*req)) {
    // etcd serves a read-only txn linearizably unless every range in it is
    // serializable; we always confirm, which is never weaker.
    ConfirmThenServe(ctx, reactor, /*heavy=*/true, [this, req, resp]() -> grpc::Status {
      if (absl::Status s = kv_->ReadTxn(*req, resp); !s.ok()) return etcd::FromStatus(s);
      FillHeader(resp->mutable_header(), resp->header().revision());
      return grpc::Status::OK;
    });
  } else {
    Write(ctx, reactor, *req, resp, &internalpb::Request::mutable_txn,
          &internalpb::Response::mutable_txn);
  }
  return reactor;
}

grpc::Status KvService::DoTxn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp,
                              absl::Time deadline) {
  if (absl::Status s = kv::ValidateTxn(req); !s.ok()) return etcd::FromStatus(s);
  if (kv::IsReadOnlyTxn(req)) {
    // etcd serves a read-only txn linearizably unless every range in it is
    // serializable; we always confirm, which is never weaker.
    if (grpc::Status s = WaitReadable(deadline); !s.ok()) return s;
    if (absl::Status s = kv_->ReadTxn(req, resp); !s.ok()) return etcd::FromStatus(s);
  } else {
    internalpb::Request r;
    *r.mutable_txn() = req;
    internalpb::Response out;
    if (grpc::Status s = ProposeCommand(server_->member(), &r, &out, deadline); !s.ok()) return s;
    resp->Swap(out.mutable_txn());
  }
  FillHeader(resp->mutable_header(), resp->header().revision());
  return grpc::Status::OK;
}

grpc::Status KvService::DoRange(const etcdserverpb::RangeRequest& req,
                                etcdserverpb::RangeResponse* resp, absl::Time deadline) {
  if (absl::Status s = kv::ValidateRange(req); !s.ok()) return etcd::FromStatus(s);
  if (grpc::Status s = WaitReadable(deadline); !s.ok()) return s;
  if (absl::Status s = kv_->Range(req, resp); !s.ok()) return etcd::FromStatus(s);
  FillHeader(resp->mutable_header(), resp->header().revision());
  return grpc::Status::OK;
}

grpc::Status KvService::Compact(grpc::ServerContext* ctx,
                                const etcdserverpb::CompactionRequest* req,
                                etcdserverpb::CompactionResponse* resp) {
  if (grpc::Status s = CheckLeaderRequired(ctx, server_->member()); !s.ok()) return s;
  internalpb::Request r;
  *r.mutable_compaction() = *req;
  internalpb::Response out;
  // Compaction is applied (old revisions removed) in the command's own
  // batch, so physical=true needs no further wait.
  if (grpc::Status s = ProposeCommand(server_->member(), &r, &out, RequestDeadline(ctx, timeout_));
      !s.ok())
    return s;
  resp->Swap(out.mutable_compaction());
  FillHeader(resp->mutable_header(), resp->header().revision());
  return grpc::Status::OK;
}

}  // namespace arbiter::server
