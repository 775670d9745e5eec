// The read-only view of a node's durable raft state that the consensus core
// reads from. The application owns the storage and writes to it (persisting
// what each Ready hands it); the core only reads.
//
// Thread safety: the core calls these methods only from the thread that drives
// the node. An implementation that the application writes to from another
// thread must synchronise internally.
#ifndef ARBITER_RAFT_STORAGE_H_
#define ARBITER_RAFT_STORAGE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "raft/types.h"

namespace arbiter::raft {

// What a node starts from: the persisted hard state and the membership as of
// the last snapshot or conf change persisted.
struct StorageState {
  HardState hard_state;
  ConfState conf_state;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual absl::StatusOr<StorageState> InitialState() const = 0;

  // Entries in [lo, hi), limited to max_size bytes in total (by EntrySize) but
  // always at least one entry when any is available.
  // Errors: ErrCompacted if lo < FirstIndex(); ErrUnavailable if hi is past
  // LastIndex() + 1.
  virtual absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_size) const = 0;

  // The term of entry i, for i in [FirstIndex() - 1, LastIndex()]. The term
  // of FirstIndex() - 1 is kept (the snapshot's, or that of the last entry
  // discarded when entries are kept behind the snapshot) even though that
  // entry itself is gone.
  // Errors: ErrCompacted below that range, ErrUnavailable above it.
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;

  // Index of the last entry; FirstIndex() - 1 when the log is empty.
  virtual absl::StatusOr<uint64_t> LastIndex() const = 0;

  // Index of the first entry still available (older ones were compacted into
  // a snapshot).
  virtual absl::StatusOr<uint64_t> FirstIndex() const = 0;

  // The most recent snapshot. ErrSnapshotTemporarilyUnavailable tells the
  // core that a snapshot is being made and to try again later.
  virtual absl::StatusOr<raftpb::Snapshot> Snapshot() const = 0;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_STORAGE_H_
