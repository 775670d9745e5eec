// What the etcd services need to know about the key-value store behind a
// member, without depending on it.
//
// Thread safety: implementations must be callable from any gRPC thread.
#ifndef ARBITER_SERVER_STORE_INFO_H_
#define ARBITER_SERVER_STORE_INFO_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "proto/internal.pb.h"

namespace arbiter::server {

class StoreInfo {
 public:
  virtual ~StoreInfo() = default;
  // The store revision for response headers.
  virtual int64_t CurrentRevision() const = 0;
  // Bytes the store occupies on disk.
  virtual int64_t DbSize() const = 0;
  // etcd's HashKV at rev (0: current): a digest of the key-value history up
  // to rev that members agree on. Errors: etcd's ErrCompacted and
  // ErrFutureRev; Unimplemented for a store without revisions.
  virtual absl::Status HashKv(int64_t rev, uint32_t* hash, int64_t* compact_revision) const = 0;
  // The replicated member table (names and URLs members published); empty
  // for a store without one.
  virtual std::vector<internalpb::MemberAttributes> Members() const = 0;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_STORE_INFO_H_
