// The errors of the key-value state machine that clients see, as etcd 3.4
// reports them: the gRPC status code (absl::StatusCode uses the same numbers)
// and etcd's exact message, which clientv3 matches byte for byte
// (rpctypes.errStringToError).
//
// Apply reports these in internalpb.Response (error_code, error_message);
// the read paths return them as absl::Status. Test for them with
// IsKvError(status, ErrXxx()), never by building strings.
//
// Thread safety: plain functions; safe from any thread.
#ifndef ARBITER_KVSTORE_KV_ERRORS_H_
#define ARBITER_KVSTORE_KV_ERRORS_H_

#include "absl/status/status.h"

namespace arbiter::kv {

// InvalidArgument.
absl::Status ErrEmptyKey();     // "etcdserver: key is not provided"
absl::Status ErrKeyNotFound();  // "etcdserver: key not found"
// "etcdserver: invalid sort option": an unknown sort target, which etcd 3.4
// does not check (its server panics sorting with it) and etcd 3.5 refuses
// with this error.
absl::Status ErrInvalidSortOption();
absl::Status ErrValueProvided();  // "etcdserver: value is provided"
absl::Status ErrLeaseProvided();  // "etcdserver: lease is provided"
absl::Status ErrTooManyOps();     // "etcdserver: too many operations in txn request"
absl::Status ErrDuplicateKey();   // "etcdserver: duplicate key given in txn request"
// OutOfRange.
absl::Status ErrCompacted();         // "etcdserver: mvcc: required revision has been compacted"
absl::Status ErrFutureRev();         // "etcdserver: mvcc: required revision is a future revision"
absl::Status ErrLeaseTtlTooLarge();  // "etcdserver: too large lease TTL"
// NotFound.
absl::Status ErrLeaseNotFound();  // "etcdserver: requested lease not found"
// FailedPrecondition.
absl::Status ErrLeaseExists();  // "etcdserver: lease already exists"
// InvalidArgument: a command that does not parse (never produced by our
// server; reported rather than applied, so every member answers the same).
absl::Status ErrMalformedCommand();

// True if s has the code and message of want.
bool IsKvError(const absl::Status& s, const absl::Status& want);

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_KV_ERRORS_H_
