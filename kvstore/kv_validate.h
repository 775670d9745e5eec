// Checks of key-value requests that do not depend on the store's state, as
// etcd 3.4's gRPC layer makes them (etcdserver/api/v3rpc/key.go): an empty
// key, a value or lease given together with ignore_value / ignore_lease, too
// many operations in a txn, an empty txn op, and a key put twice (or put and
// deleted) in one txn branch. The server calls these BEFORE proposing, so a
// bad request never reaches the log; KvStateMachine::Apply checks again and
// answers the same error (defence in depth: a command from an older or
// faulty proposer still gets the same deterministic answer on every member).
//
// Errors are those of kv_errors.h, checked in etcd's order, so the first
// problem reported is the one etcd reports.
//
// Thread safety: pure functions; safe from any thread.
#ifndef ARBITER_KVSTORE_KV_VALIDATE_H_
#define ARBITER_KVSTORE_KV_VALIDATE_H_

#include "absl/status/status.h"
#include "proto/internal.pb.h"
#include "proto/rpc.pb.h"

namespace arbiter::kv {

// etcd's --max-txn-ops default.
inline constexpr int kDefaultMaxTxnOps = 128;

absl::Status ValidateRange(const etcdserverpb::RangeRequest& r);
absl::Status ValidatePut(const etcdserverpb::PutRequest& r);
absl::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r);
// Op counts (the largest of compare, success and failure may not exceed
// max_txn_ops; a nested txn gets what its parent left), compare keys, every
// op recursively, then overlapping puts and deletes per branch.
absl::Status ValidateTxn(const etcdserverpb::TxnRequest& r, int max_txn_ops = kDefaultMaxTxnOps);

// Whichever of the above applies to the command; other commands (lease,
// compaction, member) have no state-independent checks.
absl::Status ValidateRequest(const internalpb::Request& r, int max_txn_ops = kDefaultMaxTxnOps);

// True if every op of both branches is a Range (etcd's isTxnReadonly): such
// a txn changes nothing and may be served from a read view without the log.
bool IsReadOnlyTxn(const etcdserverpb::TxnRequest& r);

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_KV_VALIDATE_H_
