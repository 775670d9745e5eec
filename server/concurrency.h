// The server side of etcd's concurrency recipes (clientv3/concurrency),
// which the Election and Lock services are built on, exactly as etcdctl's
// `elect` and `lock` build them client-side: a contender owns the key
// <prefix><lease ID in hex>, created if absent in one Txn, and holds the
// election or lock once no key under the prefix has a smaller create
// revision. Both paths therefore agree on who holds what.
//
// Fencing: a holder's key's create revision is its fencing token. A
// resource guards a write with a Txn comparing create_revision(key) ==
// token; once the holder's lease expired (or it resigned or unlocked) the
// key is gone or re-created with a higher revision, and the Txn fails.
//
// Thread safety: stateless helpers; safe from any thread.
#ifndef ARBITER_SERVER_CONCURRENCY_H_
#define ARBITER_SERVER_CONCURRENCY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "kvstore/watch_hub.h"
#include "server/kv_service.h"

namespace arbiter::server {

struct Contender {
  std::string key;
  // The key's create revision: the fencing token.
  int64_t rev = 0;
  // The value the key held if it already existed (the contender is back).
  std::string existing_value;
  bool existed = false;
  etcdserverpb::ResponseHeader header;
};

// "<prefix><lease in lower-case hex>", as clientv3 names keys.
std::string ContenderKey(const std::string& prefix, int64_t lease);

// Creates the contender's key with value and lease unless it exists.
// Errors: etcd's (e.g. "etcdserver: requested lease not found").
grpc::Status CreateContender(KvService* kv, const std::string& prefix, int64_t lease,
                             const std::string& value, absl::Time deadline, Contender* out);

// Waits until no key under prefix has a create revision at or below
// max_create_rev (clientv3's waitDeletes). cancelled is polled; returns
// CANCELLED when it turns true, DEADLINE_EXCEEDED at the deadline.
grpc::Status WaitDeletes(KvService* kv, kv::WatchHub* hub, const std::string& prefix,
                         int64_t max_create_rev, absl::Time deadline,
                         const std::function<bool()>& cancelled);

// The first key (lowest create revision) under prefix; false if none.
grpc::Status FirstCreated(KvService* kv, const std::string& prefix, absl::Time deadline,
                          mvccpb::KeyValue* kv_out, bool* found,
                          etcdserverpb::ResponseHeader* header);

// The end of the range of keys starting with prefix.
std::string PrefixEnd(const std::string& prefix);

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_CONCURRENCY_H_
