// An in-memory Storage: the reference implementation of the interface and the
// storage of tests and simulations. Like a durable implementation it keeps a
// dummy entry at position 0 that carries the index and term of the last
// snapshot (or 0/0), so Term(FirstIndex() - 1) is always answerable.
//
// Thread safety: not thread-safe. In tests one thread drives the node and
// writes to its storage.
#ifndef ARBITER_RAFT_MEMORY_STORAGE_H_
#define ARBITER_RAFT_MEMORY_STORAGE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "raft/storage.h"

namespace arbiter::raft {

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  absl::StatusOr<StorageState> InitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_size) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  absl::StatusOr<uint64_t> LastIndex() const override;
  absl::StatusOr<uint64_t> FirstIndex() const override;
  absl::StatusOr<raftpb::Snapshot> Snapshot() const override;

  void SetHardState(const HardState& hs) { hard_state_ = hs; }

  // Sets the membership of a brand-new node (no log, no snapshot yet), so
  // InitialState() reports it. Only for clusters whose membership never
  // changes: a node added later would replay the log from index 1 without
  // this membership. To allow changes, bootstrap with ApplySnapshot of a
  // snapshot at index 1 carrying the ConfState instead.
  void BootstrapConfState(const ConfState& cs) {
    *snapshot_.mutable_metadata()->mutable_conf_state() = cs;
  }
  const HardState& hard_state() const { return hard_state_; }

  // Replaces the whole contents with the snapshot.
  // Errors: ErrSnapOutOfDate if snap is older than the current snapshot.
  absl::Status ApplySnapshot(const raftpb::Snapshot& snap);

  // Records a snapshot of the state machine at index i (which must be applied
  // and <= LastIndex()), with membership cs (if non-null) and the
  // application's data. Log entries are not removed: call Compact for that.
  // Errors: ErrSnapOutOfDate if i is not newer than the current snapshot.
  absl::StatusOr<raftpb::Snapshot> CreateSnapshot(uint64_t i, const ConfState* cs,
                                                  std::string data);

  // Discards entries before compact_index; the entry at compact_index becomes
  // the new dummy entry.
  // Errors: ErrCompacted if already compacted that far.
  // REQUIRES: compact_index <= LastIndex().
  absl::Status Compact(uint64_t compact_index);

  // Appends entries, replacing any existing entries at the same or later
  // indexes. Entries already compacted are skipped.
  // REQUIRES: entries are contiguous and the first is at most LastIndex()+1.
  absl::Status Append(std::vector<Entry> entries);

  // Number of Entries/Term/... calls, so tests can count storage reads.
  uint64_t call_count() const { return calls_; }

 private:
  uint64_t first_index() const { return ents_[0].index() + 1; }
  uint64_t last_index() const { return ents_[0].index() + ents_.size() - 1; }

  HardState hard_state_;
  raftpb::Snapshot snapshot_;
  // ents_[i] has index ents_[0].index() + i. ents_[0] is the dummy entry.
  std::vector<Entry> ents_;
  mutable uint64_t calls_ = 0;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_MEMORY_STORAGE_H_
