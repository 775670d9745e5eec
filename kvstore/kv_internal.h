// Internals of KvStateMachine shared by its .cc files: key ranges, the read
// source a Range or a txn compare runs against (the apply thread's view with
// the current command's pending writes, or a reader's view at a fixed
// revision), etcd's Range/compare/txn-path logic over a source, and the two
// sources. Not part of the public interface.
//
// Thread safety: as the methods state; see kv_state_machine.h.
#ifndef ARBITER_KVSTORE_KV_INTERNAL_H_
#define ARBITER_KVSTORE_KV_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvstore/kv_state_machine.h"
#include "kvstore/revision.h"
#include "leveldb/write_batch.h"
#include "proto/kv.pb.h"
#include "proto/rpc.pb.h"

namespace arbiter::kv::internal {

// etcd's key/range_end pair: range_end empty = just key; "\0" = every key
// >= key; otherwise [key, range_end).
struct KeyRange {
  absl::string_view key;
  absl::string_view end;
  bool single = true;
  bool unbounded = false;

  bool Contains(absl::string_view k) const {
    if (single) return k == key;
    return k >= key && (unbounded || k < end);
  }
  // True if no key at or after k can be in the range.
  bool Past(absl::string_view k) const {
    if (single) return k > key;
    return !unbounded && k >= end;
  }
};

inline KeyRange MakeKeyRange(absl::string_view key, absl::string_view range_end) {
  KeyRange r;
  r.key = key;
  r.end = range_end;
  r.single = range_end.empty();
  r.unbounded = range_end.size() == 1 && range_end[0] == '\0';
  return r;
}

// A key found by a range walk: the revision of its value at the revision
// read and, when that is the key's newest value, what the index knows of it
// (a compare on anything but the value needs no fetch then).
struct Hit {
  Revision rev;
  bool newest = false;
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

// Where Range, compares and txn checks read from.
class ReadSource {
 public:
  virtual ~ReadSource() = default;
  // The revision reads default to (and RangeResponse.header.revision).
  virtual int64_t rev() const = 0;
  // The compacted revision (-1 if never compacted).
  virtual int64_t first_rev() const = 0;
  // For every key in range live at at_rev, in key order: ++*count, and
  // append it to *hits while hits->size() < max_hits.
  virtual absl::Status Collect(const KeyRange& range, int64_t at_rev, size_t max_hits,
                               std::vector<Hit>* hits, int64_t* count) = 0;
  // The KeyValue of a hit (read from the database unless the apply
  // thread's own command wrote it).
  virtual absl::Status Fetch(const Hit& hit, mvccpb::KeyValue* kv) = 0;
};

// Adds the key of entry to a range walk at at_rev (see ReadSource::Collect).
template <typename Entry>
void AddHit(const Entry& entry, int64_t at_rev, size_t max_hits, std::vector<Hit>* hits,
            int64_t* count) {
  Revision rev;
  if (!entry.history.GetModified(at_rev, &rev)) return;
  ++*count;
  if (hits->size() >= max_hits) return;
  Hit& hit = hits->emplace_back();
  hit.rev = rev;
  if (entry.history.IsLive() && rev == entry.history.modified()) {
    const Generation& g = entry.history.generations().back();
    hit.newest = true;
    hit.create_revision = g.created.main;
    hit.version = g.ver;
    hit.lease = entry.lease;
  }
}

// True for the statuses that mean storage failure or a broken invariant
// (fail-stop), as opposed to an etcd error answered to the client.
inline bool IsFatal(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss;
}

// etcd's Range (etcdserver/apply.go) over src.
absl::Status RangeOn(ReadSource* src, const etcdserverpb::RangeRequest& r,
                     etcdserverpb::RangeResponse* resp);

// etcd's compareToPath: whether each txn (this one, then nested ones in
// pre-order along the chosen branches) takes its success branch, evaluated
// entirely against src (before any op runs).
absl::Status ComputeTxnPath(ReadSource* src, const etcdserverpb::TxnRequest& r,
                            std::vector<bool>* path);

// etcd's checkRequestRange over the chosen ops: a Range's revision must be
// neither above src's revision nor below its compacted revision.
absl::Status CheckTxnRanges(const ReadSource& src, const etcdserverpb::TxnRequest& r,
                            const std::vector<bool>& path);

// Calls f(op) for each non-txn op on the chosen branches, in order.
template <typename F>
absl::Status ForEachChosenOp(const etcdserverpb::TxnRequest& r, const std::vector<bool>& path,
                             size_t* pos, F f) {
  const bool succeeded = path[(*pos)++];
  for (const etcdserverpb::RequestOp& op : succeeded ? r.success() : r.failure()) {
    absl::Status s = op.has_request_txn() ? ForEachChosenOp(op.request_txn(), path, pos, f) : f(op);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// A read-only txn's ops over src (ranges only).
absl::Status ExecuteReadOnlyTxn(ReadSource* src, const etcdserverpb::TxnRequest& r,
                                const std::vector<bool>& path, size_t* pos,
                                etcdserverpb::TxnResponse* resp);

}  // namespace arbiter::kv::internal

namespace arbiter::kv {

// Buffers the apply thread reuses from command to command.
struct KvStateMachine::ApplyScratch {
  leveldb::WriteBatch batch;
  std::string key;
  std::string value;
};

// The apply thread's view and write set for one command: reads see the
// store as of the command's start plus its own earlier writes (etcd's
// storeTxnWrite); writes go to one WriteBatch and into the index under the
// same main revision with increasing sub revisions.
// REQUIRES: sm->mu_ held (exclusively) for every call.
class KvStateMachine::ApplyTxn : public internal::ReadSource {
 public:
  ApplyTxn(KvStateMachine* sm, int64_t begin_rev, bool want_prev)
      : sm_(sm),
        begin_rev_(begin_rev),
        want_prev_(want_prev),
        batch_(sm->scratch_->batch),
        scratch_key_(sm->scratch_->key),
        scratch_value_(sm->scratch_->value) {
    batch_.Clear();
  }

  // begin_rev, plus one once the command changed a key (etcd's read rev).
  // The index already holds the command's writes, so reads see them.
  int64_t rev() const override { return begin_rev_ + (changes_.empty() ? 0 : 1); }
  int64_t first_rev() const override;
  absl::Status Collect(const internal::KeyRange& range, int64_t at_rev, size_t max_hits,
                       std::vector<internal::Hit>* hits, int64_t* count) override;
  absl::Status Fetch(const internal::Hit& hit, mvccpb::KeyValue* kv) override;

  // The key's current KeyValue (with this command's writes): false if none.
  absl::StatusOr<bool> Get(absl::string_view key, mvccpb::KeyValue* kv);
  // Puts key at the next sub revision; *value is moved from. REQUIRES: the
  // lease (if not 0) exists.
  absl::Status Put(absl::string_view key, std::string* value, int64_t lease);
  // Deletes the keys in range live now; appends their KeyValues to prev if
  // not null. Returns how many were deleted.
  absl::StatusOr<int64_t> DeleteRange(const internal::KeyRange& range,
                                      google::protobuf::RepeatedPtrField<mvccpb::KeyValue>* prev);

  int64_t begin_rev() const { return begin_rev_; }
  bool changed() const { return !changes_.empty(); }
  leveldb::WriteBatch* batch() { return &batch_; }
  // The events of this command, in order (moves the changes out).
  std::vector<mvccpb::Event> TakeEvents();

 private:
  // The KeyValue stored at rev: this command's own write, or a record.
  absl::Status ReadAt(Revision rev, mvccpb::KeyValue* kv);
  // The key's KeyValue as of begin_rev (for events' prev_kv).
  absl::Status CapturePrev(const KeyEntry* entry);
  absl::Status DeleteKey(const std::string& key, KeyEntry* entry);
  // Takes key off the lease its newest value names, if any.
  void Detach(const std::string& key, const KeyEntry& entry);

  KvStateMachine* const sm_;
  const int64_t begin_rev_;
  const bool want_prev_;
  // The KeyValue written at (begin_rev + 1, i) is changes_[i]; a tombstone
  // has only key and mod_revision.
  std::vector<mvccpb::KeyValue> changes_;
  // With want_prev_: the previous KeyValue of changes_[i] (empty if none).
  std::vector<mvccpb::KeyValue> prevs_;
  // Reused from command to command (apply thread only), so they keep
  // their capacity.
  leveldb::WriteBatch& batch_;
  std::string& scratch_key_;
  std::string& scratch_value_;
};

// A reader's view at the revision published when it was created. Looks up
// revisions in chunks under the index lock, reads values without it. Call
// Check() after the reads: an overlapping Restore or a compaction above a
// revision read invalidates them.
class KvStateMachine::IndexReader : public internal::ReadSource {
 public:
  explicit IndexReader(const KvStateMachine* sm);

  int64_t rev() const override { return rev_; }
  int64_t first_rev() const override { return first_rev_; }
  absl::Status Collect(const internal::KeyRange& range, int64_t at_rev, size_t max_hits,
                       std::vector<internal::Hit>* hits, int64_t* count) override;
  absl::Status Fetch(const internal::Hit& hit, mvccpb::KeyValue* kv) override;

  // True if a Restore overlapped the reads (retry them).
  bool Restored() const;
  // ErrCompacted if a compaction removed history the reads needed.
  absl::Status CheckCompaction() const;

 private:
  const KvStateMachine* const sm_;
  int64_t rev_ = 0;
  int64_t first_rev_ = 0;
  uint64_t epoch_ = 0;
  // The lowest revision looked up.
  int64_t min_at_rev_ = INT64_MAX;
  std::string scratch_key_;
  std::string scratch_value_;
};

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_KV_INTERNAL_H_
