// The replicated key-value state machine: etcd 3.4's MVCC store and applier
// (mvcc/ and etcdserver/apply.go) over LevelDB. A member applies committed
// commands (serialized internalpb.Request) in log order; client reads are
// served concurrently from other threads.
//
// Model: a multi-version key space. Every write command that changes keys
// takes the next store revision (the store starts at revision 1; no-op
// deletes and txns take none); a key's history (create revision, mod
// revision, version, deletions) is kept in an in-memory index with
// generations (key_index.h) and every version's KeyValue in LevelDB (the
// index holds no values: a read fetches each value it returns). Reads
// at any revision at or above the compacted revision see the key space as it
// was then. Leases (granted TTL, last checkpointed remaining TTL, attached
// keys) and a member table are replicated alongside. The on-disk layout is
// in mvcc_keys.h; docs/mvcc.md describes the semantics.
//
// Crash semantics (server/state_machine.h is binding): the writes of each
// applied command and the applied index go into ONE LevelDB WriteBatch,
// written without fsync (the raft log is synced). After a crash LevelDB
// recovers a prefix of the batches; Open() rebuilds the index from what is
// there and AppliedIndex() says where it stands; the member replays the
// commands above it. A non-OK status from Apply (a failed write) leaves the
// in-memory state ahead of the disk: the object refuses further commands and
// the member must fail-stop and reopen.
//
// Determinism: Apply is a pure function of the state and the command (no
// clocks, no randomness; a lease ID the client left 0 is derived from the log
// index), and Options that change results (min_lease_ttl, max_txn_ops) must
// be equal on every member.
//
// Thread safety: Apply, Snapshot, Restore and Hash are called from one
// thread (the member's apply thread). Every other method may be called from
// any thread at any time. Readers never wait for a LevelDB write: they hold
// the index lock (shared) only to look up keys, in chunks of at most
// kIndexChunk, then read values from LevelDB without it; Apply holds the lock while it
// changes the index for one command, and releases it before writing. A read
// that a compaction above its revision overtakes answers ErrCompacted; one
// that a Restore overlaps runs again.
#ifndef ARBITER_KVSTORE_KV_STATE_MACHINE_H_
#define ARBITER_KVSTORE_KV_STATE_MACHINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "kvstore/key_index.h"
#include "kvstore/revision.h"
#include "proto/internal.pb.h"
#include "proto/kv.pb.h"
#include "proto/rpc.pb.h"

namespace leveldb {
class Cache;
class DB;
class Env;
class FilterPolicy;
struct ReadOptions;
class Snapshot;
class WriteBatch;
}  // namespace leveldb

namespace arbiter::kv {

// Receives the changes of each new revision, for the watch service.
class EventListener {
 public:
  virtual ~EventListener() = default;
  // Whether events should carry prev_kv. Asked on the apply thread before
  // each write command; reading previous values costs a lookup per change.
  virtual bool WantsPrevKv() const = 0;
  // Called on the apply thread once the revision's batch is written (so
  // reads at `revision` already see it), with the revision's events in
  // order. DELETE events carry only key and mod_revision, as in etcd.
  virtual void OnRevision(int64_t revision, std::vector<mvccpb::Event> events) = 0;
  // The whole state was replaced by a snapshot at store revision `revision`:
  // watchers must resynchronize from history (or be canceled if compacted).
  virtual void OnRestore(int64_t /*revision*/) {}
};

// A lease as the state machine knows it.
struct LeaseInfo {
  int64_t id = 0;
  // Granted TTL in seconds (after the minimum was applied).
  int64_t ttl = 0;
  // Remaining TTL recorded by the last LeaseCheckpoint; 0 if none.
  int64_t remaining_ttl = 0;
  // Attached keys, sorted (only when asked for).
  std::vector<std::string> keys;
};

// The result of HashKV, as etcd's HashKVResponse.
struct HashKvResult {
  uint32_t hash = 0;
  int64_t current_revision = 0;
  int64_t compact_revision = 0;
};

// A slice of history for the watch service.
struct EventBatch {
  std::vector<mvccpb::Event> events;
  // The first revision not covered yet: pass it as start_rev to continue.
  int64_t next_revision = 0;
};

class KvStateMachine {
 public:
  struct Options {
    // Not owned; nullptr means leveldb::Env::Default(), with the database's
    // log writes gathered in memory (kvstore/buffered_log_env.h).
    leveldb::Env* env = nullptr;
    bool create_if_missing = true;
    // Grants below this TTL (seconds) are raised to it (etcd: ceil(1.5 x
    // election timeout), 2 s by default). Must be equal on every member.
    int64_t min_lease_ttl = 2;
    // The txn size limit checked again at apply. Must be equal on every
    // member (and to what the server checks before proposing).
    int max_txn_ops = 128;
    // LevelDB tuning, at LevelDB's own defaults: the memtable and the block
    // cache (which also serves reads of current values) are, with the key
    // index, a member's largest memory users.
    size_t block_cache_bytes = 8 << 20;
    size_t write_buffer_bytes = 4 << 20;
  };

  // Keys whose revisions one critical section of a reader collects.
  static constexpr size_t kIndexChunk = 1024;

  // Opens (or creates) the state database in dir and rebuilds the index.
  // Errors: DataLoss (naming the key) if the contents break the invariants
  // of mvcc_keys.h; other codes for I/O errors.
  static absl::StatusOr<std::unique_ptr<KvStateMachine>> Open(const std::string& dir,
                                                              const Options& options);
  ~KvStateMachine();
  KvStateMachine(const KvStateMachine&) = delete;
  KvStateMachine& operator=(const KvStateMachine&) = delete;

  // ---- The StateMachine interface (apply thread) -------------------------

  // Applies the serialized internalpb.Request at index and sets *result to a
  // serialized internalpb.Response: the response, or an etcd error in
  // error_code/error_message (a rejected command is still applied: the index
  // advances). A non-OK status only for a storage failure (see above).
  // REQUIRES: index > AppliedIndex().
  absl::Status Apply(uint64_t index, absl::string_view command, std::string* result);
  // The same for a parsed request (consumed: values are moved out of it).
  absl::Status ApplyRequest(uint64_t index, internalpb::Request* request,
                            internalpb::Response* response);

  uint64_t AppliedIndex() const { return applied_index_.load(std::memory_order_acquire); }

  // The whole state (keys with their history above the compacted revision,
  // revisions, leases, members), not the applied index.
  absl::StatusOr<std::string> Snapshot() const;
  // The state as it is now, kept for serializing later from any thread
  // while applies go on (a LevelDB snapshot: it pins the files it needs).
  class FrozenState {
   public:
    ~FrozenState();
    FrozenState(const FrozenState&) = delete;
    FrozenState& operator=(const FrozenState&) = delete;
    // Snapshot()'s format, of the state when it was frozen. Thread-safe.
    // Gives up with Cancelled soon after *cancel (if given) turns true.
    absl::StatusOr<std::string> Serialize(const std::atomic<bool>* cancel = nullptr) const;

   private:
    friend class KvStateMachine;
    FrozenState(leveldb::DB* db, const leveldb::Snapshot* snap) : db_(db), snap_(snap) {}
    leveldb::DB* const db_;
    const leveldb::Snapshot* const snap_;
  };
  // REQUIRES: the result is destroyed before this object.
  std::unique_ptr<FrozenState> Freeze() const;

  // Makes everything applied so far survive a crash, power loss included
  // (applies are never synced on their own). Once it returns OK, the raft
  // log entries up to AppliedIndex() are no longer needed to rebuild the
  // state, which is what lets the member discard them without copying the
  // state into a raft snapshot.
  absl::Status Sync();
  // Replaces the whole state with a snapshot's, taken at log index `index`.
  // data is freed once its records are in the write batch, before the
  // batch is written: the state is held twice at most, not three times.
  // Errors: DataLoss if data does not parse or breaks an invariant (nothing
  // is changed then); other codes for a failed write (fail-stop).
  absl::Status Restore(uint64_t index, std::string data);
  // A digest of the state (not of the applied index): equal states give
  // equal hashes on every member.
  uint64_t Hash() const;

  // The listener for new revisions; nullptr to stop. Not owned. May also be
  // set from another thread before the member starts applying.
  void SetEventListener(EventListener* listener) {
    listener_.store(listener, std::memory_order_release);
  }

  // ---- Reads (any thread) -------------------------------------------------

  // etcd's Range with every option. resp->header gets only the revision (the
  // current one, even for a read at an older revision).
  // Errors: ErrCompacted, ErrFutureRev; Internal/DataLoss if a record the
  // index names cannot be read.
  absl::Status Range(const etcdserverpb::RangeRequest& r, etcdserverpb::RangeResponse* resp) const;
  // A txn whose ops are all Ranges (IsReadOnlyTxn), evaluated at one
  // revision without the log. Errors as Range. REQUIRES: IsReadOnlyTxn(r).
  absl::Status ReadTxn(const etcdserverpb::TxnRequest& r, etcdserverpb::TxnResponse* resp) const;

  int64_t CurrentRevision() const;
  // -1 until the first compaction (as etcd).
  int64_t CompactRevision() const;
  // etcd's HashKV: CRC32-Castagnoli of the records up to rev (0 = current)
  // that a compaction at rev would keep. Errors: ErrCompacted, ErrFutureRev.
  absl::StatusOr<HashKvResult> HashKv(int64_t rev) const;
  // Approximate bytes on disk.
  int64_t DbSize() const;

  // Every lease, by ID (without keys).
  std::vector<LeaseInfo> Leases() const;
  // One lease, with its keys if with_keys; nullopt if it does not exist.
  std::optional<LeaseInfo> GetLease(int64_t id, bool with_keys) const;
  // The member table, by ID, removed members included (marked removed).
  std::vector<internalpb::MemberAttributes> Members() const;

  // The events of revisions [start_rev, end_rev] (end_rev 0 = current) for
  // keys in [key, range_end) (etcd's range rules), oldest first, with
  // prev_kv if asked. Stops after the revision at which max_events is
  // reached (whole revisions only; 0 = no limit). Errors: ErrCompacted if
  // start_rev is below the compacted revision. Events at exactly the
  // compacted revision are what compaction kept (as in etcd, the deletions
  // of that revision are gone).
  absl::StatusOr<EventBatch> ReadEvents(absl::string_view key, absl::string_view range_end,
                                        int64_t start_rev, int64_t end_rev, bool prev_kv,
                                        size_t max_events) const;

 private:
  class ApplyTxn;
  class IndexReader;
  // One key: its history, and the lease of its newest value. Values live
  // only in LevelDB (reads fetch them through its block cache), so the
  // index costs a few dozen bytes per key whatever the value size.
  struct KeyEntry {
    KeyIndex history;
    // The lease the key's newest value names while the key is live; 0 if
    // none or the key is not live.
    int64_t lease = 0;
  };
  using Index = absl::btree_map<std::string, KeyEntry>;
  struct LeaseState {
    int64_t ttl = 0;
    int64_t remaining_ttl = 0;
    absl::btree_set<std::string> keys;
  };
  // Everything rebuilt from the database (or a snapshot) in one piece.
  struct State {
    Index index;
    int64_t current_rev = 1;
    int64_t compact_rev = -1;
    absl::flat_hash_map<int64_t, LeaseState> leases;
    absl::btree_map<uint64_t, internalpb::MemberAttributes> members;
  };

  KvStateMachine(const Options& options, std::unique_ptr<leveldb::Env> env,
                 std::unique_ptr<leveldb::Cache> cache,
                 std::unique_ptr<const leveldb::FilterPolicy> filter,
                 std::unique_ptr<leveldb::DB> db);

  // Records a command that does not parse: an error result, index advanced.
  absl::Status ApplyRejected(uint64_t index, internalpb::Response* resp);
  // Dispatches one command. Returns an etcd error (answered, nothing
  // written but the applied index) or a fatal one (IsFatal: fail-stop).
  absl::Status Dispatch(uint64_t index, internalpb::Request* req, ApplyTxn* txn,
                        internalpb::Response* resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // top_level: a Put command (its lease is checked here; a txn checks its
  // puts' leases before any op runs).
  absl::Status ApplyPut(etcdserverpb::PutRequest* r, ApplyTxn* txn, bool top_level,
                        etcdserverpb::PutResponse* resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyDeleteRange(const etcdserverpb::DeleteRangeRequest& r, ApplyTxn* txn,
                                etcdserverpb::DeleteRangeResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyTxnRequest(etcdserverpb::TxnRequest* r, ApplyTxn* txn,
                               etcdserverpb::TxnResponse* resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // etcd's checkRequestPut over the chosen ops, before any op runs.
  absl::Status CheckTxnPuts(const etcdserverpb::TxnRequest& r, const std::vector<bool>& path,
                            ApplyTxn* txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyTxnOps(etcdserverpb::TxnRequest* r, const std::vector<bool>& path, size_t* pos,
                           ApplyTxn* txn, etcdserverpb::TxnResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyCompaction(const etcdserverpb::CompactionRequest& r, ApplyTxn* txn,
                               etcdserverpb::CompactionResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyLeaseGrant(uint64_t index, const etcdserverpb::LeaseGrantRequest& r,
                               ApplyTxn* txn, etcdserverpb::LeaseGrantResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyLeaseRevoke(const etcdserverpb::LeaseRevokeRequest& r, ApplyTxn* txn,
                                etcdserverpb::LeaseRevokeResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyLeaseCheckpoint(const etcdserverpb::LeaseCheckpointRequest& r, ApplyTxn* txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyMember(const internalpb::MemberAttributes& m, ApplyTxn* txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Writes the batch of a command with the applied index, publishes its
  // revision and tells the listener.
  absl::Status Commit(uint64_t index, ApplyTxn* txn);
  absl::Status Write(leveldb::WriteBatch* batch);

  // The value of a stored revision, read without the index lock (the
  // scratch strings are reused from call to call).
  absl::Status ReadRecord(Revision rev, std::string* scratch_key, std::string* scratch_value,
                          mvccpb::KeyValue* kv) const;
  absl::StatusOr<EventBatch> ReadEventsOnce(absl::string_view key, absl::string_view range_end,
                                            int64_t start_rev, int64_t end_rev, bool prev_kv,
                                            size_t max_events, int64_t* min_lookup) const;
  // Sets ev's prev_kv to the value key had at rev, if it had one, read
  // from the snapshot of ro.
  void ReadPrevKv(const leveldb::ReadOptions& ro, const std::string& key, int64_t rev,
                  mvccpb::Event* ev) const;
  // Runs read (at most a few times) until no Restore overlapped it.
  template <typename F>
  absl::Status RetryOnRestore(F read) const;

  // Loads a State from (key, value) records in key order (from the database
  // or a snapshot). Errors: DataLoss naming the offending key.
  template <typename Records>
  static absl::Status LoadState(Records& records, State* state);
  void InstallState(State state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  // Declared before db_ so that they outlive it.
  // The database's: a BufferedLogEnv over the injected or default Env.
  std::unique_ptr<leveldb::Env> env_;
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;

  // Guards the in-memory state that readers share with the apply thread.
  mutable absl::Mutex mu_;
  // Key -> history. Keys whose history compaction emptied are removed.
  // While Apply runs, it may hold revisions above current_rev_ (not yet
  // written); readers never look above current_rev_.
  Index index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, LeaseState> leases_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<uint64_t, internalpb::MemberAttributes> members_ ABSL_GUARDED_BY(mu_);

  // Written by the apply thread only; readers load them without the lock.
  // The published revision: every record at or below it is written.
  std::atomic<int64_t> current_rev_{1};
  // A compaction (or Restore) stores it BEFORE its batch deletes anything,
  // so a reader that loads it after its reads sees any change that could
  // have removed a record it needed.
  std::atomic<int64_t> compact_rev_{-1};
  // A sequence count: odd while a Restore replaces the state; readers retry
  // if it changed during their reads.
  std::atomic<uint64_t> epoch_{0};
  std::atomic<uint64_t> applied_index_{0};

  // Apply thread only.
  struct ApplyScratch;
  std::unique_ptr<ApplyScratch> scratch_;
  std::atomic<EventListener*> listener_{nullptr};
  // Set after a failed write: the in-memory state is ahead of the disk.
  absl::Status failed_;
};

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_KV_STATE_MACHINE_H_
