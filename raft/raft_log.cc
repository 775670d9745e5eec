#include "raft/raft_log.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/check.h"
#include "raft/errors.h"

namespace arbiter::raft {
namespace {

// Total EntrySize of ents.
uint64_t SizeOf(const std::vector<Entry>& ents) {
  uint64_t size = 0;
  for (const Entry& e : ents) size += EntrySize(e);
  return size;
}

// How many entries of [first, last) fit in budget bytes (possibly none).
size_t CountFitting(std::vector<Entry>::const_iterator first,
                    std::vector<Entry>::const_iterator last, uint64_t budget) {
  const size_t n = static_cast<size_t>(last - first);
  if (budget == kNoLimit) return n;
  uint64_t size = 0;
  size_t count = 0;
  for (; count < n; ++count) {
    size += EntrySize(first[count]);
    if (size > budget) break;
  }
  return count;
}

}  // namespace

RaftLog::RaftLog(const Storage* storage, Logger* logger, uint64_t max_next_ents_size)
    : storage_(storage),
      logger_(logger != nullptr ? logger : DiscardLogger()),
      max_next_ents_size_(max_next_ents_size) {
  RAFT_CHECK(storage_ != nullptr) << "RaftLog needs a storage";
  absl::StatusOr<uint64_t> first = storage_->FirstIndex();
  RAFT_CHECK(first.ok()) << "storage FirstIndex failed at start: " << first.status();
  absl::StatusOr<uint64_t> last = storage_->LastIndex();
  RAFT_CHECK(last.ok()) << "storage LastIndex failed at start: " << last.status();
  unstable_.set_offset(*last + 1);
  unstable_.set_logger(logger_);
  // Everything before the storage's first entry is committed and applied.
  // When entries are kept behind the snapshot, Config::applied (at least
  // the snapshot's index) moves applied past them (Raft's constructor).
  committed_ = *first - 1;
  applied_ = *first - 1;
  applying_ = *first - 1;
}

std::string RaftLog::Describe() const {
  return absl::StrCat("committed=", committed_, ", applied=", applied_, ", applying=", applying_,
                      ", unstable.offset=", unstable_.offset(),
                      ", len(unstable.entries)=", unstable_.entries().size());
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                             std::vector<Entry> ents) {
  // Raft §5.3 (Figure 2, AppendEntries rule 2): reply false if the log does
  // not contain an entry at prevLogIndex whose term matches prevLogTerm.
  if (!MatchTerm(index, log_term)) return std::nullopt;

  const uint64_t lastnewi = index + ents.size();
  const uint64_t ci = FindConflict(ents);
  if (ci != 0) {
    // Figure 2, rule 3: delete a conflicting entry and all that follow it.
    // Committed entries are never deleted (Leader Completeness, §5.4).
    RAFT_CHECK(ci > committed_) << "entry " << ci << " conflicts with committed entry [committed("
                                << committed_ << ")]; log: " << Describe();
    const uint64_t offset = index + 1;
    RAFT_CHECK(ci >= offset && ci - offset < ents.size())
        << "conflict index " << ci << " is out of range [" << offset << ", " << offset + ents.size()
        << ")";
    if (ci == offset) {
      Append(std::move(ents));
    } else {
      // Figure 2, rule 4: append only the entries not already in the log.
      Append(std::vector<Entry>(
          std::make_move_iterator(ents.begin() + static_cast<ptrdiff_t>(ci - offset)),
          std::make_move_iterator(ents.end())));
    }
  }
  // Figure 2, rule 5: commitIndex = min(leaderCommit, index of last new entry).
  CommitTo(std::min(committed, lastnewi));
  return lastnewi;
}

uint64_t RaftLog::Append(std::vector<Entry> ents) {
  if (ents.empty()) return LastIndex();
  const uint64_t after = ents[0].index() - 1;
  RAFT_CHECK(after >= committed_) << "after(" << after << ") is out of range [committed("
                                  << committed_ << ")]";
  unstable_.TruncateAndAppend(std::move(ents));
  return LastIndex();
}

uint64_t RaftLog::FindConflict(const std::vector<Entry>& ents) const {
  for (const Entry& e : ents) {
    if (MatchTerm(e.index(), e.term())) continue;
    if (e.index() <= LastIndex() && logger_->Enabled(LogLevel::kInfo)) {
      logger_->Log(LogLevel::kInfo, absl::StrCat("found conflict at index ", e.index(),
                                                 " [existing term: ", ZeroTermOnErr(e.index()),
                                                 ", conflicting term: ", e.term(), "]"));
    }
    return e.index();
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  for (; index > 0; --index) {
    absl::StatusOr<uint64_t> ours = Term(index);
    // Unknown (compacted or past the end): it may match, so stop here and
    // report the term as unknown.
    if (!ours.ok()) return {index, 0};
    if (*ours <= term) return {index, *ours};
  }
  return {0, 0};
}

std::vector<Entry> RaftLog::UnstableEntries() const { return unstable_.entries(); }

std::vector<Entry> RaftLog::NextCommittedEntries(bool allow_unstable) const {
  if (!HasNextCommittedEntries(allow_unstable)) return {};
  const uint64_t lo = std::max(applied_, applying_) + 1;
  uint64_t hi = committed_;
  if (!allow_unstable) hi = std::min(hi, unstable_.offset() - 1);
  absl::StatusOr<std::vector<Entry>> ents = Slice(lo, hi + 1, max_next_ents_size_);
  RAFT_CHECK(ents.ok()) << "unexpected error when getting unapplied entries [" << lo << ", " << hi
                        << "]: " << ents.status() << "; log: " << Describe();
  return *std::move(ents);
}

bool RaftLog::HasNextCommittedEntries(bool allow_unstable) const {
  // While a snapshot waits to be persisted and applied, hand out no entries:
  // they would have to be applied on top of that snapshot.
  if (unstable_.snapshot().has_value()) return false;
  uint64_t hi = committed_;
  if (!allow_unstable) hi = std::min(hi, unstable_.offset() - 1);
  return std::max(applied_, applying_) < hi;
}

bool RaftLog::HasPendingSnapshot() const {
  return unstable_.snapshot().has_value() && !IsEmptySnapshot(*unstable_.snapshot());
}

absl::StatusOr<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot().has_value()) {
    if (unstable_.snapshot_handed_out()) return ErrSnapshotTemporarilyUnavailable();
    return *unstable_.snapshot();
  }
  return storage_->Snapshot();
}

uint64_t RaftLog::FirstIndex() const {
  if (std::optional<uint64_t> i = unstable_.MaybeFirstIndex()) return *i;
  absl::StatusOr<uint64_t> i = storage_->FirstIndex();
  RAFT_CHECK(i.ok()) << "storage FirstIndex failed: " << i.status();
  return *i;
}

uint64_t RaftLog::LastIndex() const {
  if (std::optional<uint64_t> i = unstable_.MaybeLastIndex()) return *i;
  absl::StatusOr<uint64_t> i = storage_->LastIndex();
  RAFT_CHECK(i.ok()) << "storage LastIndex failed: " << i.status();
  return *i;
}

uint64_t RaftLog::LastTerm() const {
  const uint64_t last = LastIndex();
  absl::StatusOr<uint64_t> t = Term(last);
  RAFT_CHECK(t.ok()) << "unexpected error when getting the last term at " << last << ": "
                     << t.status();
  return *t;
}

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  // The unstable part answers without touching storage; a hit there is always
  // inside the valid range.
  if (std::optional<uint64_t> t = unstable_.MaybeTerm(i)) return *t;
  // Valid range: [FirstIndex()-1, LastIndex()]. The entry at FirstIndex()-1
  // is compacted but its term is kept for the log matching check.
  if (i + 1 < FirstIndex()) return ErrCompacted();
  if (i > LastIndex()) return ErrUnavailable();
  absl::StatusOr<uint64_t> t = storage_->Term(i);
  // Any other storage error leaves the node unable to continue (fail-stop).
  RAFT_CHECK(t.ok() || IsCompacted(t.status()) || raft::IsUnavailable(t.status()))
      << "storage Term(" << i << ") failed: " << t.status();
  return t;
}

uint64_t RaftLog::ZeroTermOnErr(uint64_t i) const {
  // Out of range: answer without building Term()'s error status (see
  // MatchTerm).
  if (std::optional<uint64_t> t = unstable_.MaybeTerm(i)) return *t;
  if (i > LastIndex() || i + 1 < FirstIndex()) return 0;
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() ? *t : 0;
}

absl::StatusOr<std::vector<Entry>> RaftLog::Entries(uint64_t i, uint64_t max_size) const {
  const uint64_t last = LastIndex();
  if (i > last) return std::vector<Entry>();
  return Slice(i, last + 1, max_size);
}

std::vector<Entry> RaftLog::AllEntries() const {
  absl::StatusOr<std::vector<Entry>> ents = Entries(FirstIndex(), kNoLimit);
  RAFT_CHECK(ents.ok()) << "AllEntries: " << ents.status() << "; log: " << Describe();
  return *std::move(ents);
}

absl::StatusOr<std::vector<Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi,
                                                  uint64_t max_size) const {
  if (absl::Status s = CheckOutOfBounds(lo, hi); !s.ok()) return s;
  if (lo == hi) return std::vector<Entry>();

  const uint64_t uoff = unstable_.offset();
  const std::vector<Entry>& uents = unstable_.entries();
  if (lo >= uoff) {
    // Entirely unstable: copy only what fits (at least one entry).
    auto first = uents.begin() + static_cast<ptrdiff_t>(lo - uoff);
    auto last = uents.begin() + static_cast<ptrdiff_t>(hi - uoff);
    size_t n = std::max<size_t>(1, CountFitting(first, last, max_size));
    return std::vector<Entry>(first, first + static_cast<ptrdiff_t>(n));
  }

  const uint64_t cut = std::min(hi, uoff);
  absl::StatusOr<std::vector<Entry>> stored = storage_->Entries(lo, cut, max_size);
  if (!stored.ok()) {
    RAFT_CHECK(!raft::IsUnavailable(stored.status()))
        << "entries[" << lo << ":" << cut << ") is unavailable from storage; log: " << Describe();
    return stored.status();
  }
  std::vector<Entry> ents = *std::move(stored);
  // Done if the range ends in storage, or storage stopped at the size limit.
  if (hi <= uoff || ents.size() < cut - lo) return ents;

  uint64_t budget = kNoLimit;
  if (max_size != kNoLimit) {
    const uint64_t size = SizeOf(ents);
    if (size >= max_size) return ents;
    budget = max_size - size;
  }
  // Add the unstable entries that still fit; none are required since the
  // stored part already supplied at least one entry.
  auto first = uents.begin();
  const size_t n = CountFitting(first, first + static_cast<ptrdiff_t>(hi - uoff), budget);
  ents.reserve(ents.size() + n);
  ents.insert(ents.end(), first, first + static_cast<ptrdiff_t>(n));
  return ents;
}

absl::Status RaftLog::CheckOutOfBounds(uint64_t lo, uint64_t hi) const {
  RAFT_CHECK(lo <= hi) << "invalid slice " << lo << " > " << hi;
  const uint64_t fi = FirstIndex();
  if (lo < fi) return ErrCompacted();
  const uint64_t last = LastIndex();
  RAFT_CHECK(hi <= last + 1) << "slice[" << lo << "," << hi << ") out of bound [" << fi << ","
                             << last << "]";
  return absl::OkStatus();
}

bool RaftLog::IsUpToDate(uint64_t lasti, uint64_t term) const {
  // Raft §5.4.1: "If the logs have last entries with different terms, then
  // the log with the later term is more up-to-date. If the logs end with the
  // same term, then whichever log is longer is more up-to-date."
  const uint64_t our_term = LastTerm();
  return term > our_term || (term == our_term && lasti >= LastIndex());
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t term) const {
  // An index outside [FirstIndex()-1, LastIndex()] never matches. Checking
  // that before calling Term() avoids building an error status (which
  // allocates) on a hot path: FindConflict asks about every entry a follower
  // receives, and new entries lie past the end of its log.
  if (std::optional<uint64_t> t = unstable_.MaybeTerm(i)) return *t == term;
  if (i > LastIndex() || i + 1 < FirstIndex()) return false;
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() && *t == term;
}

bool RaftLog::MaybeCommit(uint64_t max_index, uint64_t term) {
  // Raft §5.4.2: a leader only commits entries of its current term by
  // counting replicas. Term 0 is never a leader's term.
  if (term != 0 && max_index > committed_ && MatchTerm(max_index, term)) {
    CommitTo(max_index);
    return true;
  }
  return false;
}

void RaftLog::CommitTo(uint64_t tocommit) {
  if (tocommit <= committed_) return;  // Never decrease the commit index.
  const uint64_t last = LastIndex();
  RAFT_CHECK(tocommit <= last) << "tocommit(" << tocommit << ") is out of range [lastIndex(" << last
                               << ")]. Was the raft log corrupted, truncated, or lost?";
  committed_ = tocommit;
}

void RaftLog::AcceptApplying(uint64_t i) {
  RAFT_CHECK(applied_ <= i && i <= committed_) << "applying(" << i << ") is out of range [applied("
                                               << applied_ << "), committed(" << committed_ << ")]";
  applying_ = i;
}

void RaftLog::AppliedTo(uint64_t i) {
  RAFT_CHECK(applied_ <= i && i <= committed_)
      << "applied(" << i << ") is out of range [prevApplied(" << applied_ << "), committed("
      << committed_ << ")]";
  applied_ = i;
  applying_ = std::max(applying_, i);
}

void RaftLog::Restore(Snapshot s) {
  if (logger_->Enabled(LogLevel::kInfo)) {
    logger_->Log(LogLevel::kInfo,
                 absl::StrCat("log [", Describe(), "] starts to restore snapshot [index: ",
                              s.metadata().index(), ", term: ", s.metadata().term(), "]"));
  }
  committed_ = s.metadata().index();
  unstable_.Restore(std::move(s));
}

}  // namespace arbiter::raft
