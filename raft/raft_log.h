// A node's view of the replicated log: the persisted part (Storage) followed
// by the unstable part (not yet persisted), plus the commit and apply points.
//
// Invariant: FirstIndex() - 1 <= applied <= applying <= committed <= LastIndex().
// "applying" is the last entry handed to the application for applying (in a
// Ready) but not yet acknowledged by Advance.
//
// Thread safety: not thread-safe; part of a node's raft state.
#ifndef ARBITER_RAFT_RAFT_LOG_H_
#define ARBITER_RAFT_RAFT_LOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "raft/logger.h"
#include "raft/storage.h"
#include "raft/types.h"
#include "raft/unstable.h"

namespace arbiter::raft {

class RaftLog {
 public:
  // The log starts right after what storage holds. max_next_ents_size limits
  // the bytes of committed entries handed out per NextCommittedEntries call.
  // Aborts if storage cannot report its indexes (it must be readable at start).
  RaftLog(const Storage* storage, Logger* logger, uint64_t max_next_ents_size);

  // A leader's MsgApp: entries ents follow the entry (index, log_term), and
  // the leader has committed up to committed. If our log has (index,
  // log_term), append ents (truncating any conflicting suffix; a conflict at
  // or below committed aborts: that would lose committed data), advance the
  // commit to min(committed, index + ents.size()), and return the index of
  // the last new entry. Otherwise return nullopt (reject).
  // ents is taken by value so that a caller passing std::move(ents) saves
  // a copy of every entry.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                      std::vector<Entry> ents);

  // Appends ents to the unstable tail and returns the new last index.
  // ents is taken by value: pass std::move(ents) to avoid copying entries.
  // REQUIRES: ents[0].index() > committed (never rewrite committed entries).
  uint64_t Append(std::vector<Entry> ents);

  // The index of the first entry of ents that is not in the log, or whose
  // term differs from ours; 0 if all of ents are already present.
  // REQUIRES: ents are contiguous.
  uint64_t FindConflict(const std::vector<Entry>& ents) const;

  // For fast backtracking: the largest index <= index whose term is <= term,
  // with that term. Used by a follower to answer a rejected append with a
  // hint, and by the leader to pick the next probe.
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index, uint64_t term) const;

  // Entries not yet persisted (for Ready).
  std::vector<Entry> UnstableEntries() const;
  bool HasUnstableEntries() const { return !unstable_.entries().empty(); }

  // Committed entries not yet handed out for applying, limited by max_next_ents_size (at least
  // one entry when any is ready). Only entries that are already persisted
  // locally are returned when allow_unstable is false.
  std::vector<Entry> NextCommittedEntries(bool allow_unstable) const;
  bool HasNextCommittedEntries(bool allow_unstable) const;

  // The unstable snapshot, if any; its data is empty once handed out.
  const std::optional<Snapshot>& UnstableSnapshot() const { return unstable_.snapshot(); }
  // The unstable snapshot for a Ready, its data moved out (Unstable::HandOutSnapshot).
  Snapshot HandOutUnstableSnapshot() { return unstable_.HandOutSnapshot(); }
  bool HasPendingSnapshot() const;

  // The latest snapshot: the unstable one if any, else storage's.
  // ErrSnapshotTemporarilyUnavailable while the unstable one's data is with
  // the application (between Ready and Advance).
  absl::StatusOr<Snapshot> GetSnapshot() const;

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;

  // Term of entry i; 0 for i outside [FirstIndex()-1, LastIndex()] is NOT
  // returned: errors are ErrCompacted / ErrUnavailable.
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  // Term(i), or 0 when i is compacted or past the end.
  uint64_t ZeroTermOnErr(uint64_t i) const;

  // Entries from i to the end, limited to max_size bytes.
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t i, uint64_t max_size) const;
  // Every entry in the log (tests).
  std::vector<Entry> AllEntries() const;

  // Entries in [lo, hi) from storage and the unstable tail, limited to
  // max_size bytes (at least one).
  absl::StatusOr<std::vector<Entry>> Slice(uint64_t lo, uint64_t hi, uint64_t max_size) const;

  // Raft §5.4.1 election restriction: is a log ending at (lasti, term) at
  // least as up-to-date as ours?
  bool IsUpToDate(uint64_t lasti, uint64_t term) const;
  bool MatchTerm(uint64_t i, uint64_t term) const;

  // Raft §5.4.2: commit max_index only if the entry there has term term (the
  // leader's current term). Returns true if the commit index moved.
  bool MaybeCommit(uint64_t max_index, uint64_t term);

  // REQUIRES: tocommit <= LastIndex() (aborts otherwise: the log would be
  // corrupt or a message forged). Never moves the commit index backwards.
  void CommitTo(uint64_t tocommit);
  // The application has been handed entries up to i to apply.
  // REQUIRES: applied <= i <= committed.
  void AcceptApplying(uint64_t i);
  // The application applied entries up to i.
  // REQUIRES: applied <= i <= committed.
  void AppliedTo(uint64_t i);
  void StableTo(uint64_t i, uint64_t t) { unstable_.StableTo(i, t); }
  void StableSnapTo(uint64_t i) { unstable_.StableSnapTo(i); }

  // Replaces the log with a snapshot; committed becomes its index. s is
  // taken by value: pass std::move(s) to avoid copying its data.
  void Restore(Snapshot s);

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  uint64_t applying() const { return applying_; }
  const Storage* storage() const { return storage_; }
  const Unstable& unstable() const { return unstable_; }

  std::string Describe() const;

 private:
  // OK if [lo, hi) is within [FirstIndex(), LastIndex()+1]; ErrCompacted if
  // lo is below; aborts if the range is malformed or past the end.
  absl::Status CheckOutOfBounds(uint64_t lo, uint64_t hi) const;

  const Storage* storage_;
  Unstable unstable_;
  // Highest index known to be committed on a quorum.
  uint64_t committed_ = 0;
  // Highest index applied by the application. Invariant: applied_ <= committed_.
  uint64_t applied_ = 0;
  // Highest index handed out for applying. Invariant: applied_ <= applying_ <= committed_.
  uint64_t applying_ = 0;
  Logger* logger_;
  uint64_t max_next_ents_size_;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_RAFT_LOG_H_
