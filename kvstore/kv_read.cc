// The read paths of KvStateMachine: Range and read-only txns at one
// revision, HashKV, history for watchers, and the lease and member tables.
// None of them waits for a LevelDB write of the apply thread.
#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "kvstore/kv_errors.h"
#include "kvstore/kv_internal.h"
#include "kvstore/kv_validate.h"
#include "kvstore/leveldb_check.h"
#include "kvstore/mvcc_keys.h"
#include "leveldb/db.h"
#include "leveldb/iterator.h"
#include "leveldb/options.h"

namespace arbiter::kv {
namespace {

namespace mk = mvcc_keys;

// Restores are rare (a member catching up by snapshot); a read overlapping
// more than a few in a row is starved, and is answered as a compaction
// (clients retry at the current revision).
constexpr int kMaxReadAttempts = 4;

// Releases a LevelDB snapshot on every path.
class SnapshotHolder {
 public:
  explicit SnapshotHolder(leveldb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~SnapshotHolder() { db_->ReleaseSnapshot(snap_); }
  SnapshotHolder(const SnapshotHolder&) = delete;
  SnapshotHolder& operator=(const SnapshotHolder&) = delete;
  leveldb::ReadOptions Options() const {
    leveldb::ReadOptions ro;
    ro.snapshot = snap_;
    return ro;
  }

 private:
  leveldb::DB* db_;
  const leveldb::Snapshot* snap_;
};

}  // namespace

// ---- IndexReader -----------------------------------------------------------

KvStateMachine::IndexReader::IndexReader(const KvStateMachine* sm)
    : sm_(sm), epoch_(sm->epoch_.load(std::memory_order_seq_cst)) {
  // No lock: the epoch check after the reads catches a Restore that
  // replaced these (an odd epoch means one is under way).
  rev_ = sm->current_rev_.load(std::memory_order_seq_cst);
  first_rev_ = sm->compact_rev_.load(std::memory_order_seq_cst);
}

absl::Status KvStateMachine::IndexReader::Collect(const internal::KeyRange& range, int64_t at_rev,
                                                  size_t max_hits, std::vector<internal::Hit>* hits,
                                                  int64_t* count) {
  min_at_rev_ = std::min(min_at_rev_, at_rev);
  if (range.single) {
    absl::ReaderMutexLock lock(&sm_->mu_);
    auto it = sm_->index_.find(range.key);
    if (it != sm_->index_.end()) internal::AddHit(it->second, at_rev, max_hits, hits, count);
    return absl::OkStatus();
  }
  // Entries at or below at_rev do not change while we read (only a
  // compaction above at_rev could, and CheckCompaction catches that), so the
  // walk can let go of the lock between chunks and resume at the next key.
  std::string resume(range.key);
  while (true) {
    absl::ReaderMutexLock lock(&sm_->mu_);
    auto it = sm_->index_.lower_bound(resume);
    for (size_t n = 0; n < kIndexChunk; ++n, ++it) {
      if (it == sm_->index_.end() || range.Past(it->first)) return absl::OkStatus();
      internal::AddHit(it->second, at_rev, max_hits, hits, count);
    }
    if (it == sm_->index_.end()) return absl::OkStatus();
    resume = it->first;
  }
}

absl::Status KvStateMachine::IndexReader::Fetch(const internal::Hit& hit, mvccpb::KeyValue* kv) {
  return sm_->ReadRecord(hit.rev, &scratch_key_, &scratch_value_, kv);
}

bool KvStateMachine::IndexReader::Restored() const {
  return sm_->epoch_.load(std::memory_order_seq_cst) != epoch_ || (epoch_ & 1) != 0;
}

absl::Status KvStateMachine::IndexReader::CheckCompaction() const {
  if (sm_->compact_rev_.load(std::memory_order_seq_cst) > min_at_rev_) return ErrCompacted();
  return absl::OkStatus();
}

template <typename F>
absl::Status KvStateMachine::RetryOnRestore(F read) const {
  for (int attempt = 0; attempt < kMaxReadAttempts; ++attempt) {
    IndexReader reader(this);
    absl::Status s = read(&reader);
    if (reader.Restored()) {
      // A Restore holds the lock until the new state is in place.
      absl::ReaderMutexLock wait(&mu_);
      continue;
    }
    // A record missing because a compaction overtook the read is a
    // compaction, not damage.
    if (absl::Status c = reader.CheckCompaction(); !c.ok()) return c;
    return s;
  }
  return ErrCompacted();
}

// ---- Range and read-only txns ------------------------------------------------

absl::Status KvStateMachine::Range(const etcdserverpb::RangeRequest& r,
                                   etcdserverpb::RangeResponse* resp) const {
  return RetryOnRestore([&](IndexReader* reader) {
    resp->Clear();
    return internal::RangeOn(reader, r, resp);
  });
}

absl::Status KvStateMachine::ReadTxn(const etcdserverpb::TxnRequest& r,
                                     etcdserverpb::TxnResponse* resp) const {
  if (!IsReadOnlyTxn(r)) return absl::InvalidArgumentError("mvcc: txn is not read-only");
  return RetryOnRestore([&](IndexReader* reader) {
    resp->Clear();
    std::vector<bool> path;
    if (absl::Status s = internal::ComputeTxnPath(reader, r, &path); !s.ok()) return s;
    if (absl::Status s = internal::CheckTxnRanges(*reader, r, path); !s.ok()) return s;
    size_t pos = 0;
    if (absl::Status s = internal::ExecuteReadOnlyTxn(reader, r, path, &pos, resp); !s.ok()) {
      return s;
    }
    resp->mutable_header()->set_revision(reader->rev());
    return absl::OkStatus();
  });
}

int64_t KvStateMachine::CurrentRevision() const {
  return current_rev_.load(std::memory_order_seq_cst);
}

int64_t KvStateMachine::CompactRevision() const {
  return compact_rev_.load(std::memory_order_seq_cst);
}

// ---- Hashes and size -----------------------------------------------------------

absl::StatusOr<HashKvResult> KvStateMachine::HashKv(int64_t rev) const {
  HashKvResult result;
  absl::flat_hash_set<Revision> keep;
  std::unique_ptr<SnapshotHolder> snap;
  {
    // Held while the kept set is computed, so it matches the snapshot.
    // HashKV is a rare maintenance call.
    // The apply thread changes the revisions and the index only while it
    // holds the lock exclusively (a write it has not published is above
    // current_rev_ and is not hashed).
    absl::ReaderMutexLock lock(&mu_);
    result.current_revision = current_rev_.load(std::memory_order_seq_cst);
    result.compact_revision = compact_rev_.load(std::memory_order_seq_cst);
    if (rev > 0 && rev <= result.compact_revision) return ErrCompacted();
    if (rev > result.current_revision) return ErrFutureRev();
    if (rev <= 0) rev = result.current_revision;
    for (const auto& [key, entry] : index_) entry.history.Keep(rev, &keep);
    snap = std::make_unique<SnapshotHolder>(db_.get());
  }
  const Revision upper{rev + 1, 0};
  const Revision lower{result.compact_revision + 1, 0};
  uint32_t h = Crc32c(0, "key");
  leveldb::ReadOptions ro = snap->Options();
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(mk::kRevisionPrefix); it->Valid(); it->Next()) {
    const absl::string_view k(it->key().data(), it->key().size());
    std::optional<Revision> kr = mk::DecodeRevisionKey(k);
    if (!kr.has_value() || *kr >= upper) break;
    // Records a compaction at rev would remove do not count (etcd skips
    // them only when something is kept).
    if (*kr < lower && !keep.empty() && !keep.contains(*kr)) continue;
    // The record as etcd's backend holds it, so that a member's hash
    // equals an etcd member's for the same history: the key is
    // BE64(main) '_' BE64(sub), with a trailing 't' for a deletion, and a
    // deletion's value is a KeyValue holding only the key.
    const absl::string_view value(it->value().data(), it->value().size());
    mvccpb::KeyValue kv;
    if (!kv.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::InternalError(
          absl::StrCat("mvcc state: hash: unreadable record at ", kr->main, "_", kr->sub));
    }
    const absl::string_view rev_bytes = k.substr(mk::kPrefixLen);
    char etcd_key[18];
    std::memcpy(etcd_key, rev_bytes.data(), 8);
    etcd_key[8] = '_';
    std::memcpy(etcd_key + 9, rev_bytes.data() + 8, 8);
    if (kv.version() == 0) {
      etcd_key[17] = 't';
      h = Crc32c(h, absl::string_view(etcd_key, 18));
      mvccpb::KeyValue tombstone;
      tombstone.set_key(kv.key());
      h = Crc32c(h, tombstone.SerializeAsString());
    } else {
      h = Crc32c(h, absl::string_view(etcd_key, 17));
      h = Crc32c(h, value);
    }
  }
  if (!it->status().ok()) {
    return absl::InternalError("mvcc state: hash: " + it->status().ToString());
  }
  result.hash = h;
  return result;
}

int64_t KvStateMachine::DbSize() const {
  const leveldb::Range all("", "\xff\xff");
  uint64_t size = 0;
  db_->GetApproximateSizes(&all, 1, &size);
  std::string mem;
  if (db_->GetProperty("leveldb.approximate-memory-usage", &mem)) {
    size += std::strtoull(mem.c_str(), nullptr, 10);
  }
  return static_cast<int64_t>(size);
}

// ---- Leases and members --------------------------------------------------------

std::vector<LeaseInfo> KvStateMachine::Leases() const {
  std::vector<LeaseInfo> out;
  absl::ReaderMutexLock lock(&mu_);
  out.reserve(leases_.size());
  for (const auto& [id, l] : leases_) {
    out.push_back(LeaseInfo{id, l.ttl, l.remaining_ttl, {}});
  }
  std::sort(out.begin(), out.end(),
            [](const LeaseInfo& a, const LeaseInfo& b) { return a.id < b.id; });
  return out;
}

std::optional<LeaseInfo> KvStateMachine::GetLease(int64_t id, bool with_keys) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  LeaseInfo info{id, it->second.ttl, it->second.remaining_ttl, {}};
  if (with_keys) info.keys.assign(it->second.keys.begin(), it->second.keys.end());
  return info;
}

std::vector<internalpb::MemberAttributes> KvStateMachine::Members() const {
  std::vector<internalpb::MemberAttributes> out;
  absl::ReaderMutexLock lock(&mu_);
  out.reserve(members_.size());
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

// ---- History --------------------------------------------------------------------

absl::StatusOr<EventBatch> KvStateMachine::ReadEvents(absl::string_view key,
                                                      absl::string_view range_end,
                                                      int64_t start_rev, int64_t end_rev,
                                                      bool prev_kv, size_t max_events) const {
  for (int attempt = 0; attempt < kMaxReadAttempts; ++attempt) {
    const uint64_t epoch = epoch_.load(std::memory_order_seq_cst);
    int64_t min_lookup = std::numeric_limits<int64_t>::max();
    absl::StatusOr<EventBatch> batch =
        ReadEventsOnce(key, range_end, start_rev, end_rev, prev_kv, max_events, &min_lookup);
    if (epoch_.load(std::memory_order_seq_cst) != epoch || (epoch & 1) != 0) {
      // A Restore holds the lock until the new state is in place.
      absl::ReaderMutexLock wait(&mu_);
      continue;
    }
    // prev_kv lookups in the index below a compaction that overtook them
    // may have missed history.
    if (compact_rev_.load(std::memory_order_seq_cst) > min_lookup) return ErrCompacted();
    return batch;
  }
  return ErrCompacted();
}

void KvStateMachine::ReadPrevKv(const leveldb::ReadOptions& ro, const std::string& key, int64_t rev,
                                mvccpb::Event* ev) const {
  Revision kr;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it == index_.end() || !it->second.history.GetModified(rev, &kr)) return;
  }
  std::string rkey, value;
  mk::RevisionKeyInto(kr, &rkey);
  if (db_->Get(ro, rkey, &value).ok()) ev->mutable_prev_kv()->ParseFromString(value);
}

absl::StatusOr<EventBatch> KvStateMachine::ReadEventsOnce(absl::string_view key,
                                                          absl::string_view range_end,
                                                          int64_t start_rev, int64_t end_rev,
                                                          bool prev_kv, size_t max_events,
                                                          int64_t* min_lookup) const {
  const internal::KeyRange range = internal::MakeKeyRange(key, range_end);
  if (max_events == 0) max_events = std::numeric_limits<size_t>::max();
  int64_t compact = 0;
  std::unique_ptr<SnapshotHolder> snap;
  {
    absl::ReaderMutexLock lock(&mu_);
    compact = compact_rev_.load(std::memory_order_seq_cst);
    const int64_t current = current_rev_.load(std::memory_order_seq_cst);
    if (start_rev < compact) return ErrCompacted();
    if (end_rev <= 0 || end_rev > current) end_rev = current;
    snap = std::make_unique<SnapshotHolder>(db_.get());
  }
  EventBatch batch;
  batch.next_revision = end_rev + 1;
  const leveldb::ReadOptions ro = snap->Options();
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  int64_t current_main = -1;
  for (it->Seek(mk::RevisionKey(Revision{std::max<int64_t>(start_rev, 0), 0})); it->Valid();
       it->Next()) {
    std::optional<Revision> kr =
        mk::DecodeRevisionKey(absl::string_view(it->key().data(), it->key().size()));
    if (!kr.has_value() || kr->main > end_rev) break;
    // Whole revisions only: once full, stop at the next revision boundary.
    if (batch.events.size() >= max_events && kr->main != current_main) {
      batch.next_revision = kr->main;
      break;
    }
    current_main = kr->main;
    mvccpb::KeyValue kv;
    if (!kv.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("mvcc state: " + mk::DescribeKey(it->key().ToString()) +
                                 ": KeyValue does not parse");
    }
    if (!range.Contains(kv.key())) continue;
    mvccpb::Event& ev = batch.events.emplace_back();
    ev.set_type(kv.version() == 0 ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
    // The key as of the revision before (etcd reads prev_kv at rev - 1);
    // unknown below the compacted revision.
    if (prev_kv && kr->main - 1 >= compact && kr->main - 1 >= 1) {
      *min_lookup = std::min(*min_lookup, kr->main - 1);
      ReadPrevKv(ro, kv.key(), kr->main - 1, &ev);
    }
    *ev.mutable_kv() = std::move(kv);
  }
  if (!it->status().ok()) {
    return absl::InternalError("mvcc state: read events: " + it->status().ToString());
  }
  return batch;
}

}  // namespace arbiter::kv
