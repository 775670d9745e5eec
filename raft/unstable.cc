#include "raft/unstable.h"

#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/check.h"

namespace arbiter::raft {
namespace {

Logger* OrDiscard(Logger* l) { return l != nullptr ? l : DiscardLogger(); }

}  // namespace

std::optional<uint64_t> Unstable::MaybeFirstIndex() const {
  if (snapshot_.has_value()) return snapshot_->metadata().index() + 1;
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_.has_value()) return snapshot_->metadata().index();
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeTerm(uint64_t i) const {
  if (i < offset_) {
    // Below the entries only the snapshot's own index is known here.
    if (snapshot_.has_value() && snapshot_->metadata().index() == i) {
      return snapshot_->metadata().term();
    }
    return std::nullopt;
  }
  if (i - offset_ >= entries_.size()) return std::nullopt;
  return entries_[i - offset_].term();
}

void Unstable::StableTo(uint64_t i, uint64_t t) {
  Logger* log = OrDiscard(logger_);
  std::optional<uint64_t> term = MaybeTerm(i);
  if (!term.has_value()) {
    if (log->Enabled(LogLevel::kInfo)) {
      log->Log(LogLevel::kInfo,
               absl::StrCat("entry at index ", i, " missing from unstable log; ignoring"));
    }
    return;
  }
  if (i < offset_) {
    // (i, t) names the unstable snapshot, which StableSnapTo handles.
    if (log->Enabled(LogLevel::kInfo)) {
      log->Log(LogLevel::kInfo,
               absl::StrCat("entry at index ", i, " matched unstable snapshot; ignoring"));
    }
    return;
  }
  if (*term != t) {
    // The entry was replaced by a newer leader's entry after the write of the
    // old one began; the new one is not persisted yet.
    if (log->Enabled(LogLevel::kInfo)) {
      log->Log(LogLevel::kInfo,
               absl::StrCat("entry at (index,term)=(", i, ",", t, ") mismatched with entry at (", i,
                            ",", *term, ") in unstable log; ignoring"));
    }
    return;
  }
  const uint64_t n = i + 1 - offset_;
  if (n == entries_.size()) {
    entries_.clear();
  } else {
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<ptrdiff_t>(n));
  }
  offset_ = i + 1;
}

void Unstable::StableSnapTo(uint64_t i) {
  if (snapshot_.has_value() && snapshot_->metadata().index() == i) {
    snapshot_.reset();
    snapshot_handed_out_ = false;
  }
}

void Unstable::Restore(Snapshot s) {
  offset_ = s.metadata().index() + 1;
  entries_.clear();
  snapshot_ = std::move(s);
  snapshot_handed_out_ = false;
}

Snapshot Unstable::HandOutSnapshot() {
  RAFT_CHECK(snapshot_.has_value() && !snapshot_handed_out_)
      << "no unstable snapshot to hand out, or handed out already";
  Snapshot out;
  *out.mutable_metadata() = snapshot_->metadata();
  out.set_data(std::move(*snapshot_->mutable_data()));
  snapshot_->clear_data();
  snapshot_handed_out_ = true;
  return out;
}

void Unstable::TruncateAndAppend(std::vector<Entry> ents) {
  if (ents.empty()) return;
  const uint64_t from = ents[0].index();
  if (from == offset_ + entries_.size()) {
    // The common case: ents directly follow what we hold.
    if (entries_.empty()) {
      entries_ = std::move(ents);
    } else {
      entries_.insert(entries_.end(), std::make_move_iterator(ents.begin()),
                      std::make_move_iterator(ents.end()));
    }
    return;
  }
  Logger* log = OrDiscard(logger_);
  if (from <= offset_) {
    // The whole unstable part (and possibly some stable entries) is replaced.
    if (log->Enabled(LogLevel::kInfo)) {
      log->Log(LogLevel::kInfo, absl::StrCat("replace the unstable entries from index ", from));
    }
    entries_ = std::move(ents);
    offset_ = from;
    return;
  }
  // offset_ < from < offset_ + entries_.size(): keep [offset_, from). A gap
  // after our last entry would leave the log with holes.
  RAFT_CHECK(from < offset_ + entries_.size())
      << "unstable append at " << from << " leaves a gap after last index "
      << offset_ + entries_.size() - 1;
  if (log->Enabled(LogLevel::kInfo)) {
    log->Log(LogLevel::kInfo, absl::StrCat("truncate the unstable entries before index ", from));
  }
  entries_.resize(from - offset_);
  entries_.insert(entries_.end(), std::make_move_iterator(ents.begin()),
                  std::make_move_iterator(ents.end()));
}

std::vector<Entry> Unstable::Slice(uint64_t lo, uint64_t hi) const {
  RAFT_CHECK(lo <= hi) << "invalid unstable.slice " << lo << " > " << hi;
  const uint64_t upper = offset_ + entries_.size();
  RAFT_CHECK(lo >= offset_ && hi <= upper) << "unstable.slice[" << lo << "," << hi
                                           << ") out of bound [" << offset_ << "," << upper << "]";
  return std::vector<Entry>(entries_.begin() + static_cast<ptrdiff_t>(lo - offset_),
                            entries_.begin() + static_cast<ptrdiff_t>(hi - offset_));
}

}  // namespace arbiter::raft
