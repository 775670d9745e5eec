// KvStateMachine: opening and rebuilding, snapshots, the state hash, and
// record reads. Apply is in kv_apply.cc, the read paths in kv_read.cc.
#include "kvstore/kv_state_machine.h"

#include <memory>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kvstore/buffered_log_env.h"
#include "kvstore/kv_internal.h"
#include "kvstore/leveldb_check.h"
#include "kvstore/mvcc_keys.h"
#include "leveldb/cache.h"
#include "leveldb/db.h"
#include "leveldb/env.h"
#include "leveldb/filter_policy.h"
#include "leveldb/iterator.h"
#include "leveldb/options.h"
#include "leveldb/write_batch.h"

namespace arbiter::kv {
namespace {

namespace mk = mvcc_keys;

// Snapshot framing: magic, record count, records, CRC32C of all before it.
constexpr absl::string_view kSnapshotMagic = "ARBMVCC1";

absl::Status FromLevelDb(const leveldb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(context, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() && absl::StrContains(s.ToString(), "No space left on device")) {
    return absl::ResourceExhaustedError(msg);
  }
  // Any other failure to read or write the state stops the member.
  return absl::InternalError(msg);
}

absl::Status Corrupt(absl::string_view key, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("mvcc state: ", mk::DescribeKey(key), ": ", what));
}

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintLength(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

bool ReadVarint(absl::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// (key, value) records in key order, over a LevelDB iterator or a parsed
// snapshot, for LoadState.
class DbRecords {
 public:
  explicit DbRecords(leveldb::Iterator* it) : it_(it) { it_->SeekToFirst(); }
  bool Valid() const { return it_->Valid(); }
  void Next() { it_->Next(); }
  absl::string_view key() const { return {it_->key().data(), it_->key().size()}; }
  absl::string_view value() const { return {it_->value().data(), it_->value().size()}; }
  absl::Status status() const { return FromLevelDb(it_->status(), "mvcc state: iterate"); }

 private:
  leveldb::Iterator* it_;
};

class VectorRecords {
 public:
  explicit VectorRecords(const std::vector<std::pair<absl::string_view, absl::string_view>>& r)
      : records_(r) {}
  bool Valid() const { return pos_ < records_.size(); }
  void Next() { ++pos_; }
  absl::string_view key() const { return records_[pos_].first; }
  absl::string_view value() const { return records_[pos_].second; }
  absl::Status status() const { return absl::OkStatus(); }

 private:
  const std::vector<std::pair<absl::string_view, absl::string_view>>& records_;
  size_t pos_ = 0;
};

// FNV-1a, 64 bits: stable across processes and builds (unlike absl::Hash),
// so members can compare their digests.
void Fnv(uint64_t* h, absl::string_view data) {
  for (unsigned char c : data) {
    *h ^= c;
    *h *= 0x100000001b3ull;
  }
}

// Splits a snapshot into its records (views into data), checking the frame.
absl::Status ParseSnapshot(absl::string_view data,
                           std::vector<std::pair<absl::string_view, absl::string_view>>* records) {
  auto bad = [](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("mvcc snapshot: ", what));
  };
  if (data.size() < kSnapshotMagic.size() + 8 + 4 || !absl::StartsWith(data, kSnapshotMagic)) {
    return bad("not a state snapshot");
  }
  const absl::string_view framed = data.substr(0, data.size() - 4);
  const absl::string_view tail = data.substr(data.size() - 4);
  const uint32_t want = (static_cast<uint32_t>(static_cast<uint8_t>(tail[0])) << 24) |
                        (static_cast<uint32_t>(static_cast<uint8_t>(tail[1])) << 16) |
                        (static_cast<uint32_t>(static_cast<uint8_t>(tail[2])) << 8) |
                        static_cast<uint32_t>(static_cast<uint8_t>(tail[3]));
  if (Crc32c(0, framed) != want) return bad("checksum mismatch");
  absl::string_view in = framed.substr(kSnapshotMagic.size());
  const uint64_t count = mk::DecodeBE64(in);
  in.remove_prefix(8);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t klen = 0, vlen = 0;
    if (!ReadVarint(&in, &klen) || klen > in.size()) return bad("truncated record");
    const absl::string_view key = in.substr(0, klen);
    in.remove_prefix(klen);
    if (!ReadVarint(&in, &vlen) || vlen > in.size()) return bad("truncated record");
    if (!records->empty() && key <= records->back().first) return bad("records out of order");
    records->emplace_back(key, in.substr(0, vlen));
    in.remove_prefix(vlen);
  }
  if (!in.empty()) return bad("trailing bytes");
  return absl::OkStatus();
}

// Adds one "r/" record to the rebuilt index, checking that it continues the
// key's history.
template <typename Index>
absl::Status LoadRecord(absl::string_view key, absl::string_view value, Revision rev,
                        Index* index) {
  mvccpb::KeyValue kv;
  if (!kv.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Corrupt(key, "KeyValue does not parse");
  }
  if (kv.mod_revision() != rev.main) return Corrupt(key, "mod_revision differs from the key");
  auto& entry = (*index)[kv.key()];
  KeyIndex& ki = entry.history;
  if (kv.version() == 0) {
    if (!ki.IsLive()) return Corrupt(key, "tombstone of a key that is not live");
    if (!ki.Tombstone(rev).ok()) return Corrupt(key, "revision out of order");
    entry.lease = 0;
    return absl::OkStatus();
  }
  if (ki.IsEmpty()) {
    // The first record left by compaction: the middle of a generation.
    ki.Restore(Revision{kv.create_revision(), 0}, rev, kv.version());
  } else if (ki.IsLive()) {
    const Generation& g = ki.generations().back();
    if (kv.create_revision() != g.created.main || kv.version() != g.ver + 1) {
      return Corrupt(key, "create_revision or version does not continue the key's history");
    }
    if (!ki.Put(rev).ok()) return Corrupt(key, "revision out of order");
  } else {
    if (kv.create_revision() != rev.main || kv.version() != 1) {
      return Corrupt(key, "re-creation with create_revision or version not its own");
    }
    if (!ki.Put(rev).ok()) return Corrupt(key, "revision out of order");
  }
  entry.lease = kv.lease();
  return absl::OkStatus();
}

}  // namespace

template <typename Records>
absl::Status KvStateMachine::LoadState(Records& records, State* state) {
  bool saw_rev = false;
  for (; records.Valid(); records.Next()) {
    const absl::string_view key = records.key();
    const absl::string_view value = records.value();
    if (std::optional<Revision> rev = mk::DecodeRevisionKey(key)) {
      if (rev->main > state->current_rev) return Corrupt(key, "revision above the current one");
      if (absl::Status s = LoadRecord(key, value, *rev, &state->index); !s.ok()) return s;
    } else if (std::optional<uint64_t> id = mk::DecodeIdKey(key, mk::kLeasePrefix)) {
      LeaseState& l = state->leases[static_cast<int64_t>(*id)];
      if (!mk::DecodeLeaseValue(value, &l.ttl, &l.remaining_ttl)) {
        return Corrupt(key, "bad lease record");
      }
    } else if (std::optional<uint64_t> id = mk::DecodeIdKey(key, mk::kMemberPrefix)) {
      internalpb::MemberAttributes& m = state->members[*id];
      if (!m.ParseFromArray(value.data(), static_cast<int>(value.size())) || m.id() != *id) {
        return Corrupt(key, "bad member record");
      }
    } else if (key == mk::kRevisionKey || key == mk::kCompactKey) {
      std::optional<uint64_t> v = mk::DecodeMetaU64(value);
      if (!v.has_value() || *v > static_cast<uint64_t>(INT64_MAX)) return Corrupt(key, "bad value");
      if (key == mk::kRevisionKey) {
        state->current_rev = static_cast<int64_t>(*v);
        saw_rev = true;
      } else {
        state->compact_rev = static_cast<int64_t>(*v) - 1;
      }
    } else if (key == mk::kFormatVersionKey) {
      if (value != mk::kFormatVersion) return Corrupt(key, "unknown format version");
    } else if (key != mk::kAppliedKey) {
      return Corrupt(key, "unknown key");
    }
  }
  if (absl::Status s = records.status(); !s.ok()) return s;
  if (!saw_rev && !state->index.empty()) return Corrupt(mk::kRevisionKey, "missing");
  if (state->compact_rev > state->current_rev) {
    return Corrupt(mk::kCompactKey, "compacted revision above the current one");
  }
  for (const auto& [key, entry] : state->index) {
    if (entry.lease == 0) continue;
    const int64_t lease = entry.lease;
    auto l = state->leases.find(lease);
    if (l == state->leases.end()) {
      return Corrupt(mk::LeaseKey(lease),
                     absl::StrCat("missing, but attached to \"", absl::CEscape(key), "\""));
    }
    l->second.keys.insert(key);
  }
  // Keys whose last generation compaction emptied are not kept.
  absl::erase_if(state->index, [](const auto& e) { return e.second.history.IsEmpty(); });
  return absl::OkStatus();
}

void KvStateMachine::InstallState(State state) {
  index_ = std::move(state.index);
  current_rev_.store(state.current_rev, std::memory_order_seq_cst);
  compact_rev_.store(state.compact_rev, std::memory_order_seq_cst);
  leases_ = std::move(state.leases);
  members_ = std::move(state.members);
}

KvStateMachine::KvStateMachine(const Options& options, std::unique_ptr<leveldb::Env> env,
                               std::unique_ptr<leveldb::Cache> cache,
                               std::unique_ptr<const leveldb::FilterPolicy> filter,
                               std::unique_ptr<leveldb::DB> db)
    : options_(options),
      env_(std::move(env)),
      cache_(std::move(cache)),
      filter_(std::move(filter)),
      db_(std::move(db)),
      scratch_(std::make_unique<ApplyScratch>()) {}

KvStateMachine::~KvStateMachine() = default;

absl::StatusOr<std::unique_ptr<KvStateMachine>> KvStateMachine::Open(const std::string& dir,
                                                                     const Options& options) {
  std::unique_ptr<leveldb::Cache> cache(leveldb::NewLRUCache(options.block_cache_bytes));
  std::unique_ptr<const leveldb::FilterPolicy> filter(leveldb::NewBloomFilterPolicy(10));
  // Only Sync() syncs this database (see Write), so on the file system its
  // log writes are gathered in memory too (buffered_log_env.h). An injected
  // Env (tests) sees every write as it is made, so that a fault or a stall
  // it injects hits the write that causes it. Either way the logs LevelDB
  // closes wait for Sync(), which syncs them.
  std::unique_ptr<leveldb::Env> env = std::make_unique<BufferedLogEnv>(
      options.env != nullptr ? options.env : leveldb::Env::Default(),
      /*gather=*/options.env == nullptr);
  leveldb::Options opts;
  opts.env = env.get();
  opts.create_if_missing = options.create_if_missing;
  opts.block_cache = cache.get();
  opts.filter_policy = filter.get();
  opts.write_buffer_size = options.write_buffer_bytes;
  leveldb::DB* raw = nullptr;
  if (absl::Status s = FromLevelDb(leveldb::DB::Open(opts, dir, &raw), "mvcc state: open " + dir);
      !s.ok()) {
    return s;
  }
  std::unique_ptr<leveldb::DB> db(raw);

  State state;
  bool empty = true;
  bool has_format = false;
  uint64_t applied = 0;
  {
    std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
    it->SeekToFirst();
    empty = !it->Valid();
    it->Seek(mk::kFormatVersionKey);
    has_format = it->Valid() && it->key() == mk::kFormatVersionKey;
    it->Seek(mk::kAppliedKey);
    if (it->Valid() && it->key() == mk::kAppliedKey) {
      std::optional<uint64_t> v = mk::DecodeMetaU64({it->value().data(), it->value().size()});
      if (!v.has_value()) return Corrupt(mk::kAppliedKey, "bad value");
      applied = *v;
    }
    if (!empty && !has_format) {
      return Corrupt(mk::kFormatVersionKey, "missing in a database that holds data");
    }
    DbRecords records(it.get());
    if (absl::Status s = LoadState(records, &state); !s.ok()) return s;
  }
  if (empty) {
    // Written before any command's batch, so any batch LevelDB recovers
    // after a crash comes with it.
    if (absl::Status s =
            FromLevelDb(db->Put(leveldb::WriteOptions(), mk::kFormatVersionKey, mk::kFormatVersion),
                        "mvcc state: write format");
        !s.ok()) {
      return s;
    }
  }
  std::unique_ptr<KvStateMachine> sm(new KvStateMachine(options, std::move(env), std::move(cache),
                                                        std::move(filter), std::move(db)));
  {
    absl::MutexLock lock(&sm->mu_);
    sm->InstallState(std::move(state));
  }
  sm->applied_index_.store(applied, std::memory_order_release);
  return sm;
}

absl::Status KvStateMachine::Write(leveldb::WriteBatch* batch) {
  // No fsync: the raft log is synced, and a lost batch is replayed.
  return FromLevelDb(db_->Write(leveldb::WriteOptions(), batch), "mvcc state: write");
}

absl::Status KvStateMachine::ReadRecord(Revision rev, std::string* scratch_key,
                                        std::string* scratch_value, mvccpb::KeyValue* kv) const {
  mk::RevisionKeyInto(rev, scratch_key);
  std::string& value = *scratch_value;
  leveldb::Status s = db_->Get(leveldb::ReadOptions(), *scratch_key, &value);
  if (s.IsNotFound()) {
    return absl::DataLossError(absl::StrCat("mvcc state: ", mk::DescribeKey(*scratch_key),
                                            ": in the index but not stored"));
  }
  if (absl::Status st = FromLevelDb(s, "mvcc state: read"); !st.ok()) return st;
  if (!kv->ParseFromString(value)) return Corrupt(*scratch_key, "KeyValue does not parse");
  return absl::OkStatus();
}

namespace {

// The Snapshot() format of what db holds (as of snap, if not null).
absl::StatusOr<std::string> SerializeDb(leveldb::DB* db, const leveldb::Snapshot* snap,
                                        const std::atomic<bool>* cancel) {
  leveldb::ReadOptions ro;
  ro.fill_cache = false;
  ro.snapshot = snap;
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ro));
  // The exact size first (a pass over the same iterator, so the same view):
  // a string grown by doubling holds its old and new buffers at once, up to
  // twice the state when the state is large. The pass reads every block a
  // second time (off the cache), which the builder thread can afford.
  size_t size = kSnapshotMagic.size() + 8 + 4;
  uint64_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++count) {
    if (it->key() == mk::kAppliedKey) continue;
    if (cancel != nullptr && count % 4096 == 0 && cancel->load(std::memory_order_relaxed)) {
      return absl::CancelledError("mvcc state: snapshot cancelled");
    }
    size += VarintLength(it->key().size()) + it->key().size() + VarintLength(it->value().size()) +
            it->value().size();
  }
  if (absl::Status s = FromLevelDb(it->status(), "mvcc state: snapshot"); !s.ok()) return s;
  // Built in place (the count is patched in at the end): the state is
  // copied once.
  std::string out;
  out.reserve(size);
  out.append(kSnapshotMagic.data(), kSnapshotMagic.size());
  const size_t count_at = out.size();
  mk::AppendBE64(&out, 0);
  count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key() == mk::kAppliedKey) continue;
    if (cancel != nullptr && count % 4096 == 0 && cancel->load(std::memory_order_relaxed)) {
      return absl::CancelledError("mvcc state: snapshot cancelled");
    }
    AppendVarint(&out, it->key().size());
    out.append(it->key().data(), it->key().size());
    AppendVarint(&out, it->value().size());
    out.append(it->value().data(), it->value().size());
    ++count;
  }
  if (absl::Status s = FromLevelDb(it->status(), "mvcc state: snapshot"); !s.ok()) return s;
  std::string be;
  mk::AppendBE64(&be, count);
  out.replace(count_at, be.size(), be);
  const uint32_t crc = Crc32c(0, out);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(crc >> shift));
  return out;
}

}  // namespace

absl::StatusOr<std::string> KvStateMachine::Snapshot() const {
  return SerializeDb(db_.get(), nullptr, nullptr);
}

KvStateMachine::FrozenState::~FrozenState() { db_->ReleaseSnapshot(snap_); }

absl::StatusOr<std::string> KvStateMachine::FrozenState::Serialize(
    const std::atomic<bool>* cancel) const {
  return SerializeDb(db_, snap_, cancel);
}

std::unique_ptr<KvStateMachine::FrozenState> KvStateMachine::Freeze() const {
  return absl::WrapUnique(new FrozenState(db_.get(), db_->GetSnapshot()));
}

absl::Status KvStateMachine::Sync() {
  if (!failed_.ok()) return failed_;
  if (AppliedIndex() == 0) return absl::OkStatus();  // nothing to keep
  // The logs LevelDB moved on from, then a synced write of the applied
  // index, which syncs the current log: together they hold every write not
  // yet in a table file (tables are synced as LevelDB writes them).
  absl::Status s = FromLevelDb(static_cast<BufferedLogEnv*>(env_.get())->SyncClosedLogs(),
                               "mvcc state: sync closed logs");
  if (!s.ok()) {
    failed_ = s;
    return s;
  }
  leveldb::WriteBatch batch;
  batch.Put(mk::kAppliedKey, mk::EncodeBE64(AppliedIndex()));
  leveldb::WriteOptions wo;
  wo.sync = true;
  s = FromLevelDb(db_->Write(wo, &batch), "mvcc state: sync");
  if (!s.ok()) failed_ = s;
  return s;
}

absl::Status KvStateMachine::Restore(uint64_t index, std::string data) {
  if (!failed_.ok()) return failed_;
  std::vector<std::pair<absl::string_view, absl::string_view>> records;
  // Empty data is the empty state (a new cluster's first snapshot).
  if (!data.empty()) {
    if (absl::Status s = ParseSnapshot(data, &records); !s.ok()) return s;
  }
  State state;
  VectorRecords source(records);
  if (absl::Status s = LoadState(source, &state); !s.ok()) return s;

  leveldb::WriteBatch batch;
  {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(it->key());
    if (absl::Status s = FromLevelDb(it->status(), "mvcc state: restore"); !s.ok()) return s;
  }
  for (const auto& [key, value] : records) {
    batch.Put(leveldb::Slice(key.data(), key.size()), leveldb::Slice(value.data(), value.size()));
  }
  batch.Put(mk::kFormatVersionKey, mk::kFormatVersion);
  batch.Put(mk::kAppliedKey, mk::EncodeBE64(index));
  // The batch holds copies of the records now, and LevelDB's memtable will
  // hold another: the snapshot itself is not needed for the write.
  std::vector<std::pair<absl::string_view, absl::string_view>>().swap(records);
  std::string().swap(data);
  const int64_t rev = state.current_rev;
  {
    // A seqlock: the epoch is odd while the database and the index may
    // disagree, and readers that overlap any of it retry.
    absl::MutexLock lock(&mu_);
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    absl::Status s = Write(&batch);
    // A failed write changed nothing (LevelDB applies a batch only once its
    // log record is written), so the old state stays consistent for readers.
    if (s.ok()) InstallState(std::move(state));
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (!s.ok()) {
      failed_ = s;
      return s;
    }
  }
  applied_index_.store(index, std::memory_order_release);
  if (EventListener* listener = listener_.load(std::memory_order_acquire)) {
    listener->OnRestore(rev);
  }
  return absl::OkStatus();
}

uint64_t KvStateMachine::Hash() const {
  leveldb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  uint64_t h = 0xcbf29ce484222325ull;
  std::string len;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key() == mk::kAppliedKey) continue;
    len.clear();
    AppendVarint(&len, it->key().size());
    AppendVarint(&len, it->value().size());
    Fnv(&h, len);
    Fnv(&h, {it->key().data(), it->key().size()});
    Fnv(&h, {it->value().data(), it->value().size()});
  }
  return h;
}

}  // namespace arbiter::kv
