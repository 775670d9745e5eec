#include "raft/memory_storage.h"

#include <iterator>
#include <utility>

#include "raft/check.h"
#include "raft/errors.h"

namespace arbiter::raft {
namespace {

// How many entries of [first, last) LimitSize would keep for max_size: the
// longest prefix within max_size bytes, but at least one. Counting first lets
// Entries copy only what it returns instead of copying and then truncating.
size_t CountWithinLimit(std::vector<Entry>::const_iterator first,
                        std::vector<Entry>::const_iterator last, uint64_t max_size) {
  const size_t n = static_cast<size_t>(last - first);
  if (n == 0 || max_size == kNoLimit) return n;
  uint64_t size = EntrySize(*first);
  size_t count = 1;
  for (; count < n; ++count) {
    size += EntrySize(first[count]);
    if (size > max_size) break;
  }
  return count;
}

}  // namespace

MemoryStorage::MemoryStorage() : ents_(1) {}

absl::StatusOr<StorageState> MemoryStorage::InitialState() const {
  StorageState st;
  st.hard_state = hard_state_;
  st.conf_state = snapshot_.metadata().conf_state();
  return st;
}

absl::StatusOr<std::vector<Entry>> MemoryStorage::Entries(uint64_t lo, uint64_t hi,
                                                          uint64_t max_size) const {
  ++calls_;
  const uint64_t offset = ents_[0].index();
  if (lo <= offset) return ErrCompacted();
  RAFT_CHECK(lo <= hi) << "MemoryStorage::Entries: invalid range [" << lo << ", " << hi << ")";
  if (hi > last_index() + 1) return ErrUnavailable();
  // Only the dummy entry: nothing is stored past the snapshot.
  if (ents_.size() == 1) return ErrUnavailable();

  auto first = ents_.begin() + static_cast<ptrdiff_t>(lo - offset);
  auto last = ents_.begin() + static_cast<ptrdiff_t>(hi - offset);
  const size_t n = CountWithinLimit(first, last, max_size);
  return std::vector<Entry>(first, first + static_cast<ptrdiff_t>(n));
}

absl::StatusOr<uint64_t> MemoryStorage::Term(uint64_t i) const {
  ++calls_;
  const uint64_t offset = ents_[0].index();
  if (i < offset) return ErrCompacted();
  if (i - offset >= ents_.size()) return ErrUnavailable();
  return ents_[i - offset].term();
}

absl::StatusOr<uint64_t> MemoryStorage::LastIndex() const {
  ++calls_;
  return last_index();
}

absl::StatusOr<uint64_t> MemoryStorage::FirstIndex() const {
  ++calls_;
  return first_index();
}

absl::StatusOr<raftpb::Snapshot> MemoryStorage::Snapshot() const { return snapshot_; }

absl::Status MemoryStorage::ApplySnapshot(const raftpb::Snapshot& snap) {
  const uint64_t have = snapshot_.metadata().index();
  const uint64_t got = snap.metadata().index();
  // A bootstrap snapshot may carry only a ConfState (index 0); it never
  // counts as out of date against an empty storage.
  if (have != 0 && have >= got) return ErrSnapOutOfDate();

  snapshot_ = snap;
  ents_.clear();
  ents_.emplace_back();
  ents_[0].set_index(got);
  ents_[0].set_term(snap.metadata().term());
  return absl::OkStatus();
}

absl::StatusOr<raftpb::Snapshot> MemoryStorage::CreateSnapshot(uint64_t i, const ConfState* cs,
                                                               std::string data) {
  if (i <= snapshot_.metadata().index()) return ErrSnapOutOfDate();
  const uint64_t offset = ents_[0].index();
  RAFT_CHECK(i <= last_index()) << "snapshot " << i << " is out of bound lastindex(" << last_index()
                                << ")";
  // Compacted without a snapshot: the term of i is gone.
  if (i < offset) return ErrCompacted();

  auto* md = snapshot_.mutable_metadata();
  md->set_index(i);
  md->set_term(ents_[i - offset].term());
  if (cs != nullptr) *md->mutable_conf_state() = *cs;
  snapshot_.set_data(std::move(data));
  return snapshot_;
}

absl::Status MemoryStorage::Compact(uint64_t compact_index) {
  const uint64_t offset = ents_[0].index();
  if (compact_index <= offset) return ErrCompacted();
  RAFT_CHECK(compact_index <= last_index())
      << "compact " << compact_index << " is out of bound lastindex(" << last_index() << ")";

  // The entry at compact_index becomes the dummy: keep only its index and term.
  const auto i = static_cast<ptrdiff_t>(compact_index - offset);
  ents_.erase(ents_.begin(), ents_.begin() + i);
  const uint64_t term = ents_[0].term();
  ents_[0].Clear();
  ents_[0].set_index(compact_index);
  ents_[0].set_term(term);
  return absl::OkStatus();
}

absl::Status MemoryStorage::Append(std::vector<Entry> entries) {
  if (entries.empty()) return absl::OkStatus();

  const uint64_t first = first_index();
  const uint64_t in_first = entries[0].index();
  const uint64_t in_last = in_first + entries.size() - 1;
  // Everything offered is already compacted away.
  if (in_last < first) return absl::OkStatus();

  // Skip the compacted prefix of the incoming entries.
  auto src = entries.begin();
  if (first > in_first) src += static_cast<ptrdiff_t>(first - in_first);

  const uint64_t offset = src->index() - ents_[0].index();
  RAFT_CHECK(offset <= ents_.size())
      << "missing log entry [last: " << last_index() << ", append at: " << src->index() << "]";
  // Drop our conflicting suffix (if any), then take the new entries.
  ents_.resize(offset);
  ents_.insert(ents_.end(), std::make_move_iterator(src), std::make_move_iterator(entries.end()));
  return absl::OkStatus();
}

}  // namespace arbiter::raft
