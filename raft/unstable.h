// The tail of a node's log that is not yet persisted: entries and possibly a
// snapshot received from the leader. Ready hands them to the application;
// once persisted they are dropped from here (StableTo / StableSnapTo) and read
// from Storage instead.
//
// Thread safety: not thread-safe; part of a node's raft state.
#ifndef ARBITER_RAFT_UNSTABLE_H_
#define ARBITER_RAFT_UNSTABLE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "raft/logger.h"
#include "raft/types.h"

namespace arbiter::raft {

class Unstable {
 public:
  // Invariant: entries_[i] has index offset_ + i. If a snapshot is present,
  // offset_ == snapshot index + 1.

  // The first index of the log if only a snapshot is known (snapshot index + 1).
  std::optional<uint64_t> MaybeFirstIndex() const;
  // The last index if there are unstable entries or a snapshot.
  std::optional<uint64_t> MaybeLastIndex() const;
  // The term of entry i if the unstable part knows it (an entry here, or the
  // snapshot's own index).
  std::optional<uint64_t> MaybeTerm(uint64_t i) const;

  // Entries up to (i, t) have been persisted: drop them, unless the entry at
  // i has since been replaced (term differs) or is not here.
  void StableTo(uint64_t i, uint64_t t);
  // The snapshot at index i has been persisted: drop it.
  void StableSnapTo(uint64_t i);

  // Replaces everything with a snapshot (entries dropped). s is taken by
  // value: pass std::move(s) to avoid copying its data.
  void Restore(Snapshot s);
  // The snapshot for a Ready, its data moved out: the application persists
  // and applies the state, and until StableSnapTo this log needs only the
  // metadata. A snapshot's state can be large (a whole state machine), so
  // it is not held twice.
  // REQUIRES: snapshot() has a value and its data was not handed out.
  Snapshot HandOutSnapshot();
  // True while the unstable snapshot's data is with the application.
  bool snapshot_handed_out() const { return snapshot_handed_out_; }

  // Appends ents, first truncating any existing entries at or after the
  // index of ents[0]. If ents start before offset_, the unstable part is
  // replaced wholesale (storage still holds the older entries; the
  // application overwrites them when persisting). ents is taken by value:
  // pass std::move(ents) to avoid copying entries.
  void TruncateAndAppend(std::vector<Entry> ents);

  // Copies of entries in [lo, hi).
  // REQUIRES: offset_ <= lo <= hi <= offset_ + entries_.size().
  std::vector<Entry> Slice(uint64_t lo, uint64_t hi) const;

  const std::vector<Entry>& entries() const { return entries_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t o) { offset_ = o; }
  void set_logger(Logger* l) { logger_ = l; }

 private:
  std::optional<Snapshot> snapshot_;
  bool snapshot_handed_out_ = false;
  std::vector<Entry> entries_;
  uint64_t offset_ = 0;
  Logger* logger_ = nullptr;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_UNSTABLE_H_
