#include "kvstore/raft_log_store.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "kvstore/keys.h"
#include "kvstore/leveldb_check.h"
#include "leveldb/db.h"
#include "leveldb/env.h"
#include "leveldb/iterator.h"
#include "leveldb/options.h"
#include "leveldb/write_batch.h"
#include "raft/errors.h"

namespace arbiter::kv {
namespace {

using raft::ConfState;
using raft::Entry;
using raft::HardState;
using raft::SnapshotMetadata;

// Maps a LevelDB status to the absl code callers act on. ENOSPC gets its own
// code (ResourceExhausted) so the server can raise a NOSPACE alarm instead of
// treating it like a failing disk.
absl::Status FromLevelDb(const leveldb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(context, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError()) {
    if (absl::StrContains(s.ToString(), "No space left on device")) {
      return absl::ResourceExhaustedError(msg);
    }
    return absl::InternalError(msg);
  }
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsNotSupportedError()) return absl::UnimplementedError(msg);
  return absl::UnknownError(msg);
}

// Names the damaged file(s) behind a LevelDB corruption report, whose own
// message often does not. Call with the database closed.
absl::Status CorruptionError(leveldb::Env* env, const std::string& dir, const leveldb::Status& s) {
  std::vector<std::string> damaged = CheckLevelDbFiles(env, dir);
  std::string where = damaged.empty() ? "no file of the database fails its checksums"
                                      : absl::StrCat("damaged: ", absl::StrJoin(damaged, "; "));
  return absl::DataLossError(
      absl::StrCat("raft log store ", dir, ": LevelDB reports ", s.ToString(), "; ", where));
}

// The cross-key invariants of keys.h that involve the hard state; "" if they
// hold. Shared by recovery (what is on disk) and Save (what would be).
std::string CheckHardState(const HardState& hs, uint64_t snap_index, uint64_t snap_term,
                           uint64_t last_index, uint64_t last_term) {
  if (raft::IsEmptyHardState(hs)) return "";
  if (hs.commit() > last_index) {
    return absl::StrCat("hard state commit ", hs.commit(), " is beyond the last index ",
                        last_index);
  }
  if (hs.commit() < snap_index) {
    return absl::StrCat("hard state commit ", hs.commit(), " is below the snapshot index ",
                        snap_index);
  }
  if (hs.term() < last_term || hs.term() < snap_term) {
    return absl::StrCat("hard state term ", hs.term(), " is below the term ",
                        std::max(last_term, snap_term), " of the last entry or snapshot");
  }
  return "";
}

class LevelDbRaftLogStore final : public RaftLogStore {
 public:
  LevelDbRaftLogStore(std::unique_ptr<leveldb::DB> db, std::string dir, uint64_t cache_limit,
                      uint64_t catch_up_entries)
      : db_(std::move(db)),
        dir_(std::move(dir)),
        cache_limit_(cache_limit),
        catch_up_entries_(catch_up_entries) {}

  // Loads and validates what is stored. On a LevelDB corruption report it
  // returns DataLoss and sets *corruption so that Open can name the file
  // once the database is closed.
  absl::Status Recover(leveldb::Status* corruption);

  absl::StatusOr<raft::StorageState> InitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_size) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  absl::StatusOr<uint64_t> LastIndex() const override;
  absl::StatusOr<uint64_t> FirstIndex() const override;
  absl::StatusOr<raftpb::Snapshot> Snapshot() const override;

  bool IsEmpty() const override;
  absl::Status Bootstrap(const ConfState& conf_state) override;
  absl::Status Save(const HardState& hard_state, const std::vector<Entry>& entries,
                    const raft::Snapshot& snapshot, bool sync) override;
  absl::Status CreateSnapshot(uint64_t index, const ConfState& conf_state,
                              std::string data) override;
  uint64_t ApproximateLogBytes() const override;

 private:
  // What is kept in memory of every stored entry.
  struct EntryInfo {
    uint64_t term;
    uint64_t bytes;  // size of the stored value
  };

  uint64_t snap_index() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return snap_meta_.index(); }
  uint64_t first_index() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return start_index_ + 1; }
  uint64_t last_index() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return start_index_ + log_.size(); }
  uint64_t cache_first() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return last_index() + 1 - cache_.size();
  }
  // Term of i in [start_index_, last_index()].
  uint64_t TermAt(uint64_t i) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return i == start_index_ ? start_term_ : log_[i - first_index()].term;
  }
  bool IsEmptyLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return raft::IsEmptyHardState(hard_state_) && snap_index() == 0 && log_.empty();
  }

  // Writes batch; a failure makes the store refuse all later writes.
  absl::Status Write(leveldb::WriteBatch* batch, bool sync) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // In-memory mirror of what a successful write did.
  void ResetToSnapshot(const SnapshotMetadata& md) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TruncateFrom(uint64_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Append(Entry entry, uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompactThrough(uint64_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Appends the stored entries [lo, hi) to *out while they fit in max_size
  // (tracked in *size). Returns false in *more if the limit was reached.
  absl::Status ReadFromDisk(uint64_t lo, uint64_t hi, uint64_t max_size, uint64_t* size,
                            std::vector<Entry>* out, bool* more) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<leveldb::DB> db_;
  const std::string dir_;
  const uint64_t cache_limit_;
  const uint64_t catch_up_entries_;

  mutable absl::Mutex mu_;
  HardState hard_state_ ABSL_GUARDED_BY(mu_);
  // index 0 means no snapshot. Its data stays on disk (see Snapshot()).
  SnapshotMetadata snap_meta_ ABSL_GUARDED_BY(mu_);
  // The last entry discarded from the log (the snapshot's unless entries
  // are kept behind it): start_index_ <= snap_index(), and when it is
  // below, the log holds snap_index() with the snapshot's term.
  uint64_t start_index_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t start_term_ ABSL_GUARDED_BY(mu_) = 0;
  // log_[k] describes entry first_index() + k. Invariant: log_ mirrors the
  // stored log keys exactly.
  std::vector<EntryInfo> log_ ABSL_GUARDED_BY(mu_);
  uint64_t log_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The last cache_.size() entries of the log. Invariant: cache_bytes_ <=
  // cache_limit_ after every mutation.
  std::deque<Entry> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t cache_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Not OK once a write failed: after a failed fsync the state of the write
  // is unknown, so the member must restart from disk (fail-stop).
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

absl::Status LevelDbRaftLogStore::Recover(leveldb::Status* corruption) {
  absl::MutexLock lock(&mu_);
  auto data_loss = [this](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("raft log store ", dir_, ": ", what));
  };
  auto read_error = [this, corruption](const leveldb::Status& s) {
    if (s.IsCorruption()) *corruption = s;
    return FromLevelDb(s, absl::StrCat("raft log store ", dir_, ": recovery"));
  };
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;

  // Hard state and snapshot metadata first: the log keys sort before them
  // but are checked against them.
  std::string value;
  leveldb::Status s = db_->Get(ro, keys::kHardStateKey, &value);
  if (s.ok() && !hard_state_.ParseFromString(value)) {
    return data_loss(
        absl::StrCat("key ", keys::DescribeKey(keys::kHardStateKey), ": value is not a HardState"));
  }
  if (!s.ok() && !s.IsNotFound()) return read_error(s);
  s = db_->Get(ro, keys::kSnapshotMetaKey, &value);
  const bool has_meta = s.ok();
  if (has_meta && (!snap_meta_.ParseFromString(value) || snap_meta_.index() == 0)) {
    return data_loss(absl::StrCat("key ", keys::DescribeKey(keys::kSnapshotMetaKey),
                                  ": value is not a SnapshotMetadata with an index"));
  }
  if (!s.ok() && !s.IsNotFound()) return read_error(s);
  start_index_ = snap_meta_.index();
  start_term_ = snap_meta_.term();
  s = db_->Get(ro, keys::kLogStartKey, &value);
  if (s.ok()) {
    Entry start;
    // Written only when entries are kept, so strictly before the snapshot.
    if (!start.ParseFromString(value) || !has_meta || start.index() >= snap_meta_.index() ||
        start.term() > snap_meta_.term() || (start.index() == 0 && start.term() != 0)) {
      return data_loss(absl::StrCat("key ", keys::DescribeKey(keys::kLogStartKey),
                                    ": value is not an entry's index and term before the "
                                    "snapshot's (",
                                    snap_meta_.index(), ", term ", snap_meta_.term(), ")"));
    }
    start_index_ = start.index();
    start_term_ = start.term();
  }
  if (!s.ok() && !s.IsNotFound()) return read_error(s);

  std::optional<std::string> version;
  bool has_data = false;
  bool other_keys = false;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  // A LevelDB iterator steps over a block that fails its checksum and only
  // reports it in status(), so what looks like a gap may be a damaged block:
  // report the damage, which names the cause.
  auto bad_content = [&](absl::string_view what) {
    return it->status().ok() ? data_loss(what) : read_error(it->status());
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const absl::string_view key(it->key().data(), it->key().size());
    if (key == keys::kFormatVersionKey) {
      version = it->value().ToString();
      continue;
    }
    other_keys = true;
    if (key == keys::kHardStateKey || key == keys::kSnapshotMetaKey || key == keys::kLogStartKey) {
      continue;
    }
    if (key == keys::kSnapshotDataKey) {
      has_data = true;
      continue;
    }
    const std::optional<uint64_t> index = keys::DecodeLogKey(key);
    if (!index) return bad_content(absl::StrCat("unknown key ", keys::DescribeKey(key)));
    Entry entry;
    if (!entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return bad_content(absl::StrCat("key ", keys::DescribeKey(key), ": value is not an Entry"));
    }
    if (entry.index() != *index) {
      return bad_content(absl::StrCat("key ", keys::DescribeKey(key), " holds the entry of index ",
                                      entry.index()));
    }
    const uint64_t want = last_index() + 1;
    if (*index != want && log_.empty()) {
      if (snap_index() == 0) {
        return bad_content(absl::StrCat("the first entry is log/", *index,
                                        " but there is no snapshot: entries 1..", *index - 1,
                                        " are missing (a lost snapshot?)"));
      }
      return bad_content(absl::StrCat("the first entry is log/", *index,
                                      start_index_ == snap_index() ? " but the snapshot index is "
                                                                   : " but the log starts after ",
                                      start_index_, " (want log/", want, ")"));
    }
    if (*index != want) {
      return bad_content(absl::StrCat("index gap: log/", *index, " follows log/", want - 1,
                                      " (want log/", want, ")"));
    }
    if (entry.term() < TermAt(want - 1)) {
      return bad_content(absl::StrCat("the term ", entry.term(), " of log/", *index,
                                      " is below the term ", TermAt(want - 1), " before it"));
    }
    Append(std::move(entry), it->value().size());
  }
  if (!it->status().ok()) return read_error(it->status());
  it.reset();

  if (!version) {
    if (other_keys) {
      return data_loss(absl::StrCat("the format version key ",
                                    keys::DescribeKey(keys::kFormatVersionKey), " is missing"));
    }
    leveldb::WriteBatch batch;
    batch.Put(keys::kFormatVersionKey, keys::kFormatVersion);
    return Write(&batch, /*sync=*/true);
  }
  if (*version != keys::kFormatVersion && *version != keys::kFormatVersionWithoutLogStart) {
    return absl::FailedPreconditionError(
        absl::StrCat("raft log store ", dir_, ": unsupported format version \"", *version, "\""));
  }
  if (has_meta != has_data) {
    return data_loss(has_meta ? "the snapshot metadata has no snapshot data key"
                              : "snapshot data is stored without snapshot metadata");
  }
  if (start_index_ < snap_index() &&
      (last_index() < snap_index() || TermAt(snap_index()) != snap_meta_.term())) {
    return data_loss(absl::StrCat(
        "the log kept behind the snapshot at ", snap_index(), " (term ", snap_meta_.term(),
        ") does not reach it with its term: it ends at ", last_index(),
        last_index() >= snap_index() ? absl::StrCat(" and has term ", TermAt(snap_index()))
                                     : std::string()));
  }
  const std::string problem = CheckHardState(hard_state_, snap_index(), snap_meta_.term(),
                                             last_index(), TermAt(last_index()));
  if (!problem.empty()) {
    return data_loss(absl::StrCat("key ", keys::DescribeKey(keys::kHardStateKey), ": ", problem));
  }
  return absl::OkStatus();
}

absl::StatusOr<raft::StorageState> LevelDbRaftLogStore::InitialState() const {
  absl::MutexLock lock(&mu_);
  raft::StorageState st;
  st.hard_state = hard_state_;
  st.conf_state = snap_meta_.conf_state();
  return st;
}

absl::StatusOr<std::vector<Entry>> LevelDbRaftLogStore::Entries(uint64_t lo, uint64_t hi,
                                                                uint64_t max_size) const {
  absl::MutexLock lock(&mu_);
  if (lo <= start_index_) return raft::ErrCompacted();
  if (lo > hi) {
    return absl::InvalidArgumentError(absl::StrCat("Entries: invalid range [", lo, ", ", hi, ")"));
  }
  if (hi > last_index() + 1 || log_.empty()) return raft::ErrUnavailable();

  std::vector<Entry> out;
  uint64_t size = 0;
  const uint64_t from_cache = std::max(lo, cache_first());
  if (lo < from_cache) {
    bool more = true;
    absl::Status s = ReadFromDisk(lo, std::min(hi, from_cache), max_size, &size, &out, &more);
    if (!s.ok()) return s;
    if (!more) return out;
  }
  for (uint64_t i = from_cache; i < hi; ++i) {
    const Entry& e = cache_[i - cache_first()];
    const uint64_t es = raft::EntrySize(e);
    if (!out.empty() && size + es > max_size) break;
    size += es;
    out.push_back(e);
  }
  return out;
}

absl::Status LevelDbRaftLogStore::ReadFromDisk(uint64_t lo, uint64_t hi, uint64_t max_size,
                                               uint64_t* size, std::vector<Entry>* out,
                                               bool* more) const {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  uint64_t want = lo;
  for (it->Seek(keys::LogKey(lo)); want < hi; it->Next(), ++want) {
    const std::string key = keys::LogKey(want);
    if (!it->Valid() || it->key() != key) {
      if (!it->status().ok()) break;
      return absl::DataLossError(
          absl::StrCat("raft log store ", dir_, ": log/", want, " is missing from the database"));
    }
    Entry e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("raft log store ", dir_, ": log/", want, ": value is not an Entry"));
    }
    const uint64_t es = raft::EntrySize(e);
    if (!out->empty() && *size + es > max_size) {
      *more = false;
      return absl::OkStatus();
    }
    *size += es;
    out->push_back(std::move(e));
  }
  return FromLevelDb(it->status(), absl::StrCat("raft log store ", dir_, ": reading entries"));
}

absl::StatusOr<uint64_t> LevelDbRaftLogStore::Term(uint64_t i) const {
  absl::MutexLock lock(&mu_);
  if (i < start_index_) return raft::ErrCompacted();
  if (i > last_index()) return raft::ErrUnavailable();
  return TermAt(i);
}

absl::StatusOr<uint64_t> LevelDbRaftLogStore::LastIndex() const {
  absl::MutexLock lock(&mu_);
  return last_index();
}

absl::StatusOr<uint64_t> LevelDbRaftLogStore::FirstIndex() const {
  absl::MutexLock lock(&mu_);
  return first_index();
}

absl::StatusOr<raftpb::Snapshot> LevelDbRaftLogStore::Snapshot() const {
  raftpb::Snapshot snap;
  const leveldb::Snapshot* view = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (snap_index() == 0) return snap;
    *snap.mutable_metadata() = snap_meta_;
    // The metadata and the data are written in one batch, so a LevelDB
    // snapshot taken under the lock reads the matching data without holding
    // the lock during a possibly large read.
    view = db_->GetSnapshot();
  }
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.snapshot = view;
  std::string* data = snap.mutable_data();
  leveldb::Status s = db_->Get(ro, keys::kSnapshotDataKey, data);
  db_->ReleaseSnapshot(view);
  if (s.IsNotFound()) {
    return absl::DataLossError(absl::StrCat("raft log store ", dir_, ": snapshot data key ",
                                            keys::DescribeKey(keys::kSnapshotDataKey),
                                            " is missing"));
  }
  absl::Status st = FromLevelDb(s, absl::StrCat("raft log store ", dir_, ": reading snapshot"));
  if (!st.ok()) return st;
  return snap;
}

bool LevelDbRaftLogStore::IsEmpty() const {
  absl::MutexLock lock(&mu_);
  return IsEmptyLocked();
}

uint64_t LevelDbRaftLogStore::ApproximateLogBytes() const {
  absl::MutexLock lock(&mu_);
  return log_bytes_;
}

absl::Status LevelDbRaftLogStore::Write(leveldb::WriteBatch* batch, bool sync) {
  leveldb::WriteOptions wo;
  wo.sync = sync;
  leveldb::Status s = db_->Write(wo, batch);
  if (s.ok()) return absl::OkStatus();
  // Never retry: after a failed fsync the kernel may have dropped the dirty
  // pages, so a retried fsync could "succeed" with the data gone.
  broken_ = FromLevelDb(
      s, absl::StrCat("raft log store ", dir_, ": write failed; the store takes no more writes"));
  return broken_;
}

absl::Status LevelDbRaftLogStore::Bootstrap(const ConfState& conf_state) {
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  if (!IsEmptyLocked()) {
    return absl::FailedPreconditionError(
        absl::StrCat("raft log store ", dir_, ": Bootstrap of a store that is not empty"));
  }
  SnapshotMetadata md;
  md.set_index(1);
  md.set_term(1);
  *md.mutable_conf_state() = conf_state;
  HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  leveldb::WriteBatch batch;
  batch.Put(keys::kSnapshotMetaKey, md.SerializeAsString());
  batch.Put(keys::kSnapshotDataKey, "");
  batch.Put(keys::kHardStateKey, hs.SerializeAsString());
  absl::Status s = Write(&batch, /*sync=*/true);
  if (!s.ok()) return s;
  ResetToSnapshot(md);
  hard_state_ = hs;
  return absl::OkStatus();
}

absl::Status LevelDbRaftLogStore::Save(const HardState& hard_state,
                                       const std::vector<Entry>& entries,
                                       const raft::Snapshot& snapshot, bool sync) {
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  const bool has_snap = !raft::IsEmptySnapshot(snapshot);
  const SnapshotMetadata& md = snapshot.metadata();
  if (has_snap && md.index() <= snap_index()) return raft::ErrSnapOutOfDate();

  // The log as it will be once the snapshot (if any) is installed.
  const uint64_t base_index = has_snap ? md.index() : snap_index();
  const uint64_t old_last = has_snap ? md.index() : last_index();
  auto term_before = [&](uint64_t i) ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return has_snap ? md.term() : TermAt(i);
  };

  // Entries the snapshot already covers are skipped (as MemoryStorage::Append).
  size_t skip = 0;
  while (skip < entries.size() && entries[skip].index() <= base_index) ++skip;
  const bool appending = skip < entries.size();
  uint64_t new_last = old_last;
  uint64_t new_last_term = term_before(old_last);
  if (appending) {
    const uint64_t at = entries[skip].index();
    if (at > old_last + 1) {
      return absl::InvalidArgumentError(absl::StrCat("raft log store ", dir_, ": Save: entry ", at,
                                                     " would leave a gap after ", old_last));
    }
    uint64_t prev_term = term_before(at - 1);
    for (size_t k = skip; k < entries.size(); ++k) {
      if (k > skip && entries[k].index() != entries[k - 1].index() + 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "raft log store ", dir_, ": Save: entries are not contiguous at ", entries[k].index()));
      }
      if (entries[k].term() < prev_term) {
        return absl::InvalidArgumentError(absl::StrCat("raft log store ", dir_, ": Save: entry ",
                                                       entries[k].index(), " has a lower term ",
                                                       entries[k].term(), " than its predecessor"));
      }
      prev_term = entries[k].term();
    }
    new_last = entries.back().index();
    new_last_term = entries.back().term();
  }
  const bool has_hs = !raft::IsEmptyHardState(hard_state);
  const std::string problem =
      CheckHardState(has_hs ? hard_state : hard_state_, base_index,
                     has_snap ? md.term() : snap_meta_.term(), new_last, new_last_term);
  if (!problem.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "raft log store ", dir_, ": Save would store an inconsistent state: ", problem));
  }
  if (!has_snap && !appending && !has_hs) return absl::OkStatus();

  leveldb::WriteBatch batch;
  if (has_snap) {
    for (uint64_t i = first_index(); i <= last_index(); ++i) batch.Delete(keys::LogKey(i));
    batch.Delete(keys::kLogStartKey);
    batch.Put(keys::kSnapshotMetaKey, md.SerializeAsString());
    batch.Put(keys::kSnapshotDataKey, snapshot.data());
  }
  std::vector<uint64_t> sizes;
  if (appending) {
    // Stale entries past the new end (a conflicting suffix that is longer).
    for (uint64_t i = new_last + 1; i <= old_last; ++i) batch.Delete(keys::LogKey(i));
    std::string value;
    for (size_t k = skip; k < entries.size(); ++k) {
      entries[k].SerializeToString(&value);
      batch.Put(keys::LogKey(entries[k].index()), value);
      sizes.push_back(value.size());
    }
  }
  if (has_hs) batch.Put(keys::kHardStateKey, hard_state.SerializeAsString());
  absl::Status s = Write(&batch, sync);
  if (!s.ok()) return s;

  if (has_snap) ResetToSnapshot(md);
  if (appending) {
    TruncateFrom(entries[skip].index());
    for (size_t k = skip; k < entries.size(); ++k) Append(entries[k], sizes[k - skip]);
  }
  if (has_hs) hard_state_ = hard_state;
  return absl::OkStatus();
}

absl::Status LevelDbRaftLogStore::CreateSnapshot(uint64_t index, const ConfState& conf_state,
                                                 std::string data) {
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  if (index <= snap_index()) return raft::ErrSnapOutOfDate();
  if (index > last_index() || index > hard_state_.commit()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "raft log store ", dir_, ": CreateSnapshot at ", index, " beyond the last index ",
        last_index(), " or the commit index ", hard_state_.commit()));
  }
  SnapshotMetadata md;
  md.set_index(index);
  md.set_term(TermAt(index));
  *md.mutable_conf_state() = conf_state;
  // The last entry to discard: catch_up_entries_ are kept up to index.
  const uint64_t compact =
      std::max(start_index_, index > catch_up_entries_ ? index - catch_up_entries_ : 0);
  leveldb::WriteBatch batch;
  batch.Put(keys::kSnapshotMetaKey, md.SerializeAsString());
  batch.Put(keys::kSnapshotDataKey, data);
  for (uint64_t i = first_index(); i <= compact; ++i) batch.Delete(keys::LogKey(i));
  if (compact < index) {
    Entry start;
    start.set_index(compact);
    start.set_term(TermAt(compact));
    batch.Put(keys::kLogStartKey, start.SerializeAsString());
    batch.Put(keys::kFormatVersionKey, keys::kFormatVersion);
  } else {
    batch.Delete(keys::kLogStartKey);
  }
  absl::Status s = Write(&batch, /*sync=*/true);
  if (!s.ok()) return s;
  CompactThrough(compact);
  snap_meta_ = std::move(md);
  return absl::OkStatus();
}

void LevelDbRaftLogStore::ResetToSnapshot(const SnapshotMetadata& md) {
  snap_meta_ = md;
  start_index_ = md.index();
  start_term_ = md.term();
  log_.clear();
  log_bytes_ = 0;
  cache_.clear();
  cache_bytes_ = 0;
}

void LevelDbRaftLogStore::TruncateFrom(uint64_t index) {
  while (!cache_.empty() && cache_.back().index() >= index) {
    cache_bytes_ -= raft::EntrySize(cache_.back());
    cache_.pop_back();
  }
  while (!log_.empty() && last_index() >= index) {
    log_bytes_ -= log_.back().bytes;
    log_.pop_back();
  }
}

void LevelDbRaftLogStore::Append(Entry entry, uint64_t bytes) {
  log_.push_back({entry.term(), bytes});
  log_bytes_ += bytes;
  cache_bytes_ += raft::EntrySize(entry);
  cache_.push_back(std::move(entry));
  while (!cache_.empty() && cache_bytes_ > cache_limit_) {
    cache_bytes_ -= raft::EntrySize(cache_.front());
    cache_.pop_front();
  }
}

void LevelDbRaftLogStore::CompactThrough(uint64_t index) {
  while (!cache_.empty() && cache_.front().index() <= index) {
    cache_bytes_ -= raft::EntrySize(cache_.front());
    cache_.pop_front();
  }
  const size_t n = static_cast<size_t>(index - start_index_);
  for (size_t k = 0; k < n; ++k) log_bytes_ -= log_[k].bytes;
  start_term_ = TermAt(index);
  log_.erase(log_.begin(), log_.begin() + static_cast<ptrdiff_t>(n));
  start_index_ = index;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RaftLogStore>> RaftLogStore::Open(const std::string& dir,
                                                                 const Options& options) {
  leveldb::Env* env = options.env != nullptr ? options.env : leveldb::Env::Default();
  leveldb::Options lo;
  lo.env = env;
  lo.create_if_missing = options.create_if_missing;
  // Stop at the first checksum mismatch instead of skipping what is damaged:
  // a member must never come up with a silently shortened log.
  lo.paranoid_checks = true;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(lo, dir, &raw);
  if (s.IsCorruption()) return CorruptionError(env, dir, s);
  if (!s.ok()) return FromLevelDb(s, absl::StrCat("opening raft log store ", dir));

  auto store = std::make_unique<LevelDbRaftLogStore>(
      std::unique_ptr<leveldb::DB>(raw), dir, options.entry_cache_bytes, options.catch_up_entries);
  leveldb::Status corruption;
  absl::Status st = store->Recover(&corruption);
  if (!st.ok()) {
    store.reset();  // close the database before reading its files
    if (!corruption.ok()) return CorruptionError(env, dir, corruption);
    return st;
  }
  return store;
}

}  // namespace arbiter::kv
