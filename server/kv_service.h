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
// Thread safety: handlers run on many gRPC threads; the member and the state
// machine's read side are thread-safe.
#ifndef ARBITER_SERVER_KV_SERVICE_H_
#define ARBITER_SERVER_KV_SERVICE_H_

#include <string>

#include "absl/time/time.h"
#include "kvstore/kv_state_machine.h"
#include "proto/rpc.grpc.pb.h"
#include "server/arbiter_server.h"

namespace arbiter::server {

// etcd's limit on a proposal (--max-request-bytes).
inline constexpr size_t kMaxRequestBytes = 1536 * 1024;

// Fails with "etcdserver: no leader" if the call asked for a leader
// (hasleader metadata) and this member knows none.
grpc::Status CheckLeaderRequired(const grpc::ServerContext* ctx, Member* member);
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
absl::Time RequestDeadline(const grpc::ServerContext* ctx, absl::Duration server_timeout);

class KvService final : public etcdserverpb::KV::Service {
 public:
  // Neither is owned; both must outlive the service. request_timeout bounds
  // how long a call waits for its proposal or read (etcd: 5 s + 2 election
  // timeouts).
  KvService(ArbiterServer* server, kv::KvStateMachine* kv, absl::Duration request_timeout)
      : server_(server), kv_(kv), timeout_(request_timeout) {}

  grpc::Status Range(grpc::ServerContext* ctx, const etcdserverpb::RangeRequest* req,
                     etcdserverpb::RangeResponse* resp) override;
  grpc::Status Put(grpc::ServerContext* ctx, const etcdserverpb::PutRequest* req,
                   etcdserverpb::PutResponse* resp) override;
  grpc::Status DeleteRange(grpc::ServerContext* ctx, const etcdserverpb::DeleteRangeRequest* req,
                           etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::Status Txn(grpc::ServerContext* ctx, const etcdserverpb::TxnRequest* req,
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

  ArbiterServer* const server_;
  kv::KvStateMachine* const kv_;
  const absl::Duration timeout_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_KV_SERVICE_H_
