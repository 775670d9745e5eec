// etcdserverpb.KV on the client port: Range, Put, DeleteRange, Txn and
// Compact over the member and its key-value state machine.
//
// Writes: checked with kvstore/kv_validate.h and against the request size
// limit BEFORE they are proposed, so bad input never reaches the log; then
// proposed through the member (a follower forwards to the leader) and
// answered with what applying the command produced, once it is applied here
// (after it is durable on a quorum). Reads: linearizable ones wait for a
// ReadIndex confirmation (concurrent reads share one heartbeat round, see
// Member::ReadIndex), serializable ones read this member's state at once; a
// txn of Ranges only is a read. Every response header carries cluster_id,
// member_id, raft_term and the store revision.
//
// gRPC metadata "hasleader: true" makes a call fail at once with
// "etcdserver: no leader" when this member knows no leader. Without it, a
// call made while no leader is known waits for one until its deadline, as
// etcd's do (so a write during an election succeeds once it is over); when
// the deadline passes first, a write fails with DEADLINE_EXCEEDED "context
// deadline exceeded" and a read with "etcdserver: request timed out", as in
// etcd.
//
// Thread safety: handlers run on many gRPC threads, their completions on
// the member's loop thread or the service's workers; the member and the
// state machine's read side are thread-safe.
#ifndef ARBITER_SERVER_KV_SERVICE_H_
#define ARBITER_SERVER_KV_SERVICE_H_

#include <string>

#include "absl/time/time.h"
#include "kvstore/kv_state_machine.h"
#include "proto/rpc.grpc.pb.h"
#include "server/arbiter_server.h"
#include "server/worker_pool.h"

namespace arbiter::server {

// etcd's limit on a proposal (--max-request-bytes).
inline constexpr size_t kMaxRequestBytes = 1536 * 1024;

// Fails with "etcdserver: no leader" if the call asked for a leader
// (hasleader metadata) and this member knows none.
grpc::Status CheckLeaderRequired(const grpc::ServerContextBase* ctx, Member* member);
// Stamps a state machine command with the leader time and serializes it.
// Errors: "etcdserver: request is too large" above kMaxRequestBytes.
absl::StatusOr<std::string> EncodeCommand(internalpb::Request* req);
// What applying a command answered, as a call's status and response.
grpc::Status DecodeCommandResult(const absl::StatusOr<std::string>& result,
                                 internalpb::Response* resp);
// Proposes a state machine command (stamped with the leader time) through
// member and decodes what applying it answered. An etcd error in the answer
// comes back as that error. While no leader is known it waits for one, as
// etcd does, and fails with DEADLINE_EXCEEDED "context deadline exceeded"
// if none is elected by the deadline. Errors: etcd's, and member errors
// mapped to etcd's ("etcdserver: request is too large" above
// kMaxRequestBytes).
grpc::Status ProposeCommand(Member* member, internalpb::Request* req, internalpb::Response* resp,
                            absl::Time deadline);
// The deadline of a call: the client's, capped by the server's timeout.
absl::Time RequestDeadline(const grpc::ServerContextBase* ctx, absl::Duration server_timeout);

// Range, Put, DeleteRange and Txn run on gRPC's callback API: no thread
// waits while a write replicates or a read is confirmed; the member's loop
// completes the call when it applies the write or confirms the read. What
// would block a thread (waiting for a leader to be elected, reading a large
// range after a confirmation) runs on a few worker threads instead of the
// loop.
using KvCallbackBase = etcdserverpb::KV::WithCallbackMethod_Range<
    etcdserverpb::KV::WithCallbackMethod_Put<etcdserverpb::KV::WithCallbackMethod_DeleteRange<
        etcdserverpb::KV::WithCallbackMethod_Txn<etcdserverpb::KV::Service>>>>;

class KvService final : public KvCallbackBase {
 public:
  // Neither is owned; both must outlive the service. request_timeout bounds
  // how long a call waits for its proposal or read (etcd: 5 s + 2 election
  // timeouts).
  KvService(ArbiterServer* server, kv::KvStateMachine* kv, absl::Duration request_timeout);

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override;
  grpc::Status Compact(grpc::ServerContext* ctx, const etcdserverpb::CompactionRequest* req,
                       etcdserverpb::CompactionResponse* resp) override;

  // The same operations for the server's own recipes (election, lock):
  // validated, linearizable, with full headers, bounded by deadline.
  grpc::Status DoRange(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp,
                       absl::Time deadline);
  grpc::Status DoTxn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp,
                     absl::Time deadline);

 private:
  // Waits until a linearizable read may be served here, at most until
  // deadline (client_deadline: the client's own, if known).
  grpc::Status WaitReadable(absl::Time deadline,
                            absl::Time client_deadline = absl::InfiniteFuture());
  void FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision);
  // The Range itself, with its header, once it may be served.
  grpc::Status ServeRange(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp);
  // Confirms a linearizable read, then calls serve (on the loop thread,
  // or on a worker when heavy is true or no leader is known yet) and
  // finishes the call with what it returns.
  void ConfirmThenServe(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                        bool heavy, std::function<grpc::Status()> serve);
  // Finishes the call with the error if the request is invalid or asks for
  // a leader this member does not know; true if it may go on.
  bool Admit(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
             const absl::Status& valid);
  // Proposes a write (req placed in the command by `in`) and answers with
  // the applied command's response (taken by `out`) and a full header.
  template <typename Req, typename Resp>
  void Write(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, const Req& req,
             Resp* resp, Req* (internalpb::Request::*in)(), Resp* (internalpb::Response::*out)());
  // Proposes req and finishes the call through take(response) once it is
  // applied here (on the loop thread, or on a worker while no leader is
  // known), or with the error.
  void ProposeThenFinish(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                         internalpb::Request* req, std::function<void(internalpb::Response*)> take);

  ArbiterServer* const server_;
  kv::KvStateMachine* const kv_;
  const absl::Duration timeout_;
  WorkerPool workers_{2};
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_KV_SERVICE_H_
