// The apply side of KvStateMachine: one committed command at a time, as
// etcd's applierV3backend (etcdserver/apply.go) and storeTxnWrite
// (mvcc/kvstore_txn.go).
#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kvstore/kv_errors.h"
#include "kvstore/kv_internal.h"
#include "kvstore/kv_validate.h"
#include "kvstore/mvcc_keys.h"

namespace arbiter::kv {
namespace {

// etcd's lease.MaxLeaseTTL.
constexpr int64_t kMaxLeaseTtl = 9000000000;

// SplitMix64: spreads a log index over the ID space.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

#define KV_RETURN_IF_ERROR(expr) \
  do {                           \
    absl::Status _st = (expr);   \
    if (!_st.ok()) return _st;   \
  } while (0)

absl::Status ErrIndexNotAfterApplied() {
  return absl::FailedPreconditionError("mvcc: command index at or below the applied index");
}

}  // namespace

// ---- ApplyTxn --------------------------------------------------------------

int64_t KvStateMachine::ApplyTxn::first_rev() const {
  return sm_->compact_rev_.load(std::memory_order_relaxed);
}

absl::Status KvStateMachine::ApplyTxn::Collect(const internal::KeyRange& range, int64_t at_rev,
                                               size_t max_hits, std::vector<internal::Hit>* hits,
                                               int64_t* count) {
  sm_->mu_.AssertReaderHeld();
  if (range.single) {
    auto it = sm_->index_.find(range.key);
    if (it != sm_->index_.end()) internal::AddHit(it->second, at_rev, max_hits, hits, count);
    return absl::OkStatus();
  }
  for (auto it = sm_->index_.lower_bound(range.key);
       it != sm_->index_.end() && !range.Past(it->first); ++it) {
    internal::AddHit(it->second, at_rev, max_hits, hits, count);
  }
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyTxn::Fetch(const internal::Hit& hit, mvccpb::KeyValue* kv) {
  return ReadAt(hit.rev, kv);
}

absl::Status KvStateMachine::ApplyTxn::ReadAt(Revision rev, mvccpb::KeyValue* kv) {
  if (rev.main == begin_rev_ + 1) {
    // Written by this command: not in the database until Commit.
    if (rev.sub < 0 || static_cast<size_t>(rev.sub) >= changes_.size()) {
      return absl::InternalError(absl::StrCat("mvcc: revision {", rev.main, ",", rev.sub,
                                              "} of the current command was not written"));
    }
    *kv = changes_[rev.sub];
    return absl::OkStatus();
  }
  return sm_->ReadRecord(rev, &scratch_key_, &scratch_value_, kv);
}

absl::StatusOr<bool> KvStateMachine::ApplyTxn::Get(absl::string_view key, mvccpb::KeyValue* kv) {
  sm_->mu_.AssertReaderHeld();
  auto it = sm_->index_.find(key);
  if (it == sm_->index_.end() || !it->second.history.IsLive()) return false;
  KV_RETURN_IF_ERROR(ReadAt(it->second.history.modified(), kv));
  return true;
}

absl::Status KvStateMachine::ApplyTxn::CapturePrev(const KeyEntry* entry) {
  mvccpb::KeyValue& prev = prevs_.emplace_back();
  Revision rev;
  if (entry == nullptr || !entry->history.GetModified(begin_rev_, &rev)) return absl::OkStatus();
  // At or below begin_rev: written by an earlier command.
  return sm_->ReadRecord(rev, &scratch_key_, &scratch_value_, &prev);
}

void KvStateMachine::ApplyTxn::Detach(const std::string& key, const KeyEntry& entry) {
  sm_->mu_.AssertHeld();
  if (entry.lease == 0) return;
  auto lease = sm_->leases_.find(entry.lease);
  if (lease != sm_->leases_.end()) lease->second.keys.erase(key);
}

absl::Status KvStateMachine::ApplyTxn::Put(absl::string_view key, std::string* value,
                                           int64_t lease) {
  sm_->mu_.AssertHeld();
  const int64_t rev = begin_rev_ + 1;
  const Revision idx_rev{rev, static_cast<int64_t>(changes_.size())};
  auto it = sm_->index_.find(key);
  const bool inserted = it == sm_->index_.end();
  if (inserted) it = sm_->index_.emplace(std::string(key), KeyEntry()).first;
  KeyEntry& entry = it->second;
  if (want_prev_) KV_RETURN_IF_ERROR(CapturePrev(inserted ? nullptr : &entry));

  mvccpb::KeyValue kv;
  kv.set_key(it->first);
  kv.set_value(std::move(*value));
  // A live key's last generation holds its newest value's creation and
  // version.
  const bool live = entry.history.IsLive();
  const Generation& current = entry.history.generations().back();
  kv.set_create_revision(live ? current.created.main : rev);
  kv.set_mod_revision(rev);
  kv.set_version(live ? current.ver + 1 : 1);
  kv.set_lease(lease);
  kv.SerializeToString(&scratch_value_);
  mvcc_keys::RevisionKeyInto(idx_rev, &scratch_key_);
  batch_.Put(scratch_key_, scratch_value_);
  KV_RETURN_IF_ERROR(entry.history.Put(idx_rev));

  Detach(it->first, entry);
  if (lease != 0) {
    auto l = sm_->leases_.find(lease);
    if (l == sm_->leases_.end()) return absl::InternalError("mvcc: put with a missing lease");
    l->second.keys.insert(it->first);
  }
  entry.lease = lease;
  changes_.push_back(std::move(kv));
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyTxn::DeleteKey(const std::string& key, KeyEntry* entry) {
  sm_->mu_.AssertHeld();
  if (want_prev_) KV_RETURN_IF_ERROR(CapturePrev(entry));
  const Revision idx_rev{begin_rev_ + 1, static_cast<int64_t>(changes_.size())};
  mvccpb::KeyValue kv;
  kv.set_key(key);
  kv.set_mod_revision(idx_rev.main);
  kv.SerializeToString(&scratch_value_);
  mvcc_keys::RevisionKeyInto(idx_rev, &scratch_key_);
  batch_.Put(scratch_key_, scratch_value_);
  KV_RETURN_IF_ERROR(entry->history.Tombstone(idx_rev));
  Detach(key, *entry);
  entry->lease = 0;
  changes_.push_back(std::move(kv));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> KvStateMachine::ApplyTxn::DeleteRange(
    const internal::KeyRange& range, google::protobuf::RepeatedPtrField<mvccpb::KeyValue>* prev) {
  sm_->mu_.AssertHeld();
  // Tombstones change index entries, never the set of keys, so the iterator
  // stays valid. Only live keys are deleted; what an earlier op of this
  // command wrote is live too.
  int64_t deleted = 0;
  auto it = range.single ? sm_->index_.find(range.key) : sm_->index_.lower_bound(range.key);
  for (; it != sm_->index_.end() && !range.Past(it->first); ++it) {
    KeyEntry& entry = it->second;
    if (!entry.history.IsLive()) continue;
    if (prev != nullptr) KV_RETURN_IF_ERROR(ReadAt(entry.history.modified(), prev->Add()));
    KV_RETURN_IF_ERROR(DeleteKey(it->first, &entry));
    ++deleted;
    if (range.single) break;
  }
  return deleted;
}

std::vector<mvccpb::Event> KvStateMachine::ApplyTxn::TakeEvents() {
  std::vector<mvccpb::Event> events(changes_.size());
  for (size_t i = 0; i < changes_.size(); ++i) {
    mvccpb::KeyValue& kv = changes_[i];
    events[i].set_type(kv.version() == 0 ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
    if (want_prev_ && prevs_[i].version() != 0) *events[i].mutable_prev_kv() = std::move(prevs_[i]);
    *events[i].mutable_kv() = std::move(kv);
  }
  changes_.clear();
  return events;
}

// ---- Commands ----------------------------------------------------------------

absl::Status KvStateMachine::Apply(uint64_t index, absl::string_view command, std::string* result) {
  internalpb::Request req;
  internalpb::Response resp;
  const bool parsed = req.ParseFromArray(command.data(), static_cast<int>(command.size()));
  absl::Status s = parsed ? ApplyRequest(index, &req, &resp) : ApplyRejected(index, &resp);
  if (!s.ok()) return s;
  resp.SerializeToString(result);
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyRejected(uint64_t index, internalpb::Response* resp) {
  if (!failed_.ok()) return failed_;
  if (index <= AppliedIndex()) return ErrIndexNotAfterApplied();
  const absl::Status err = ErrMalformedCommand();
  resp->Clear();
  resp->set_error_code(static_cast<int>(err.code()));
  resp->set_error_message(std::string(err.message()));
  ApplyTxn txn(this, CurrentRevision(), /*want_prev=*/false);
  return Commit(index, &txn);
}

absl::Status KvStateMachine::ApplyRequest(uint64_t index, internalpb::Request* req,
                                          internalpb::Response* resp) {
  if (!failed_.ok()) return failed_;
  if (index <= AppliedIndex()) return ErrIndexNotAfterApplied();
  resp->Clear();
  EventListener* const listener = listener_.load(std::memory_order_acquire);
  const bool want_prev = listener != nullptr && listener->WantsPrevKv();
  // Only this thread changes current_rev_.
  ApplyTxn txn(this, CurrentRevision(), want_prev);
  absl::Status s;
  {
    absl::MutexLock lock(&mu_);
    s = Dispatch(index, req, &txn, resp);
  }
  if (!s.ok() && !internal::IsFatal(s) && txn.changed()) {
    s = absl::InternalError(absl::StrCat("mvcc: command failed after writing: ", s.message()));
  }
  if (internal::IsFatal(s)) {
    failed_ = s;
    return s;
  }
  if (!s.ok()) {
    resp->Clear();
    resp->set_error_code(static_cast<int>(s.code()));
    resp->set_error_message(std::string(s.message()));
  }
  return Commit(index, &txn);
}

absl::Status KvStateMachine::Dispatch(uint64_t index, internalpb::Request* req, ApplyTxn* txn,
                                      internalpb::Response* resp) {
  if (absl::Status s = ValidateRequest(*req, options_.max_txn_ops); !s.ok()) return s;
  switch (req->request_case()) {
    case internalpb::Request::kPut:
      return ApplyPut(req->mutable_put(), txn, /*top_level=*/true, resp->mutable_put());
    case internalpb::Request::kDeleteRange:
      return ApplyDeleteRange(req->delete_range(), txn, resp->mutable_delete_range());
    case internalpb::Request::kTxn:
      return ApplyTxnRequest(req->mutable_txn(), txn, resp->mutable_txn());
    case internalpb::Request::kCompaction:
      return ApplyCompaction(req->compaction(), txn, resp->mutable_compaction());
    case internalpb::Request::kLeaseGrant:
      return ApplyLeaseGrant(index, req->lease_grant(), txn, resp->mutable_lease_grant());
    case internalpb::Request::kLeaseRevoke:
      return ApplyLeaseRevoke(req->lease_revoke(), txn, resp->mutable_lease_revoke());
    case internalpb::Request::kLeaseCheckpoint:
      ApplyLeaseCheckpoint(req->lease_checkpoint(), txn);
      resp->mutable_lease_checkpoint()->mutable_header()->set_revision(txn->rev());
      return absl::OkStatus();
    case internalpb::Request::kMemberAttributes:
      ApplyMember(req->member_attributes(), txn);
      return absl::OkStatus();
    case internalpb::Request::REQUEST_NOT_SET:
      break;
  }
  // An empty command (or one from a newer version): nothing to do.
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyPut(etcdserverpb::PutRequest* r, ApplyTxn* txn, bool top_level,
                                      etcdserverpb::PutResponse* resp) {
  if (top_level && r->lease() != 0 && !leases_.contains(r->lease())) return ErrLeaseNotFound();
  mvccpb::KeyValue prev;
  bool found = false;
  if (r->ignore_value() || r->ignore_lease() || r->prev_kv()) {
    absl::StatusOr<bool> got = txn->Get(r->key(), &prev);
    if (!got.ok()) return got.status();
    found = *got;
  }
  if ((r->ignore_value() || r->ignore_lease()) && !found) return ErrKeyNotFound();
  std::string* value = r->mutable_value();
  if (r->ignore_value()) value = prev.mutable_value();
  const int64_t lease = r->ignore_lease() ? prev.lease() : r->lease();
  if (r->prev_kv() && found) *resp->mutable_prev_kv() = prev;
  KV_RETURN_IF_ERROR(txn->Put(r->key(), value, lease));
  resp->mutable_header()->set_revision(txn->begin_rev() + 1);
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyDeleteRange(const etcdserverpb::DeleteRangeRequest& r,
                                              ApplyTxn* txn,
                                              etcdserverpb::DeleteRangeResponse* resp) {
  absl::StatusOr<int64_t> deleted =
      txn->DeleteRange(internal::MakeKeyRange(r.key(), r.range_end()),
                       r.prev_kv() ? resp->mutable_prev_kvs() : nullptr);
  if (!deleted.ok()) return deleted.status();
  resp->set_deleted(*deleted);
  resp->mutable_header()->set_revision(txn->rev());
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyTxnRequest(etcdserverpb::TxnRequest* r, ApplyTxn* txn,
                                             etcdserverpb::TxnResponse* resp) {
  // Every compare, and the checks of the chosen ops, see the store before
  // any op runs (etcd evaluates them on a read view first).
  std::vector<bool> path;
  KV_RETURN_IF_ERROR(internal::ComputeTxnPath(txn, *r, &path));
  if (!IsReadOnlyTxn(*r)) KV_RETURN_IF_ERROR(CheckTxnPuts(*r, path, txn));
  KV_RETURN_IF_ERROR(internal::CheckTxnRanges(*txn, *r, path));
  size_t pos = 0;
  KV_RETURN_IF_ERROR(ApplyTxnOps(r, path, &pos, txn, resp));
  resp->mutable_header()->set_revision(txn->rev());
  return absl::OkStatus();
}

absl::Status KvStateMachine::CheckTxnPuts(const etcdserverpb::TxnRequest& r,
                                          const std::vector<bool>& path, ApplyTxn* txn) {
  // Deletes that run before a put: etcd lets a delete to the end of the key
  // space ("\0") and a put of a key in it share a branch, and then panics
  // if that put keeps the old value or lease of a key the delete removed.
  // Refusing the txn up front answers every member the same instead.
  std::vector<internal::KeyRange> earlier_deletes;
  size_t pos = 0;
  return internal::ForEachChosenOp(r, path, &pos, [&](const etcdserverpb::RequestOp& op) {
    if (op.has_request_delete_range()) {
      const etcdserverpb::DeleteRangeRequest& d = op.request_delete_range();
      earlier_deletes.push_back(internal::MakeKeyRange(d.key(), d.range_end()));
      return absl::OkStatus();
    }
    if (!op.has_request_put()) return absl::OkStatus();
    const etcdserverpb::PutRequest& p = op.request_put();
    if (p.ignore_value() || p.ignore_lease()) {
      mvccpb::KeyValue kv;
      absl::StatusOr<bool> got = txn->Get(p.key(), &kv);
      if (!got.ok()) return got.status();
      if (!*got) return ErrKeyNotFound();
      for (const internal::KeyRange& d : earlier_deletes) {
        if (d.Contains(p.key())) return ErrKeyNotFound();
      }
    }
    mu_.AssertHeld();  // held by the caller; the analysis does not see into lambdas
    if (p.lease() != 0 && !leases_.contains(p.lease())) return ErrLeaseNotFound();
    return absl::OkStatus();
  });
}

absl::Status KvStateMachine::ApplyTxnOps(etcdserverpb::TxnRequest* r, const std::vector<bool>& path,
                                         size_t* pos, ApplyTxn* txn,
                                         etcdserverpb::TxnResponse* resp) {
  const bool succeeded = path[(*pos)++];
  resp->set_succeeded(succeeded);
  resp->mutable_header();
  for (etcdserverpb::RequestOp& op : succeeded ? *r->mutable_success() : *r->mutable_failure()) {
    etcdserverpb::ResponseOp* out = resp->add_responses();
    absl::Status s;
    switch (op.request_case()) {
      case etcdserverpb::RequestOp::kRequestRange:
        s = internal::RangeOn(txn, op.request_range(), out->mutable_response_range());
        break;
      case etcdserverpb::RequestOp::kRequestPut:
        s = ApplyPut(op.mutable_request_put(), txn, /*top_level=*/false,
                     out->mutable_response_put());
        break;
      case etcdserverpb::RequestOp::kRequestDeleteRange:
        s = ApplyDeleteRange(op.request_delete_range(), txn, out->mutable_response_delete_range());
        break;
      case etcdserverpb::RequestOp::kRequestTxn:
        s = ApplyTxnOps(op.mutable_request_txn(), path, pos, txn, out->mutable_response_txn());
        break;
      case etcdserverpb::RequestOp::REQUEST_NOT_SET:
        break;
    }
    // The checks above rule out every etcd error here (etcd panics); one
    // now means the checks and the ops disagree, so stop the member.
    if (!s.ok() && !internal::IsFatal(s)) {
      return absl::InternalError(
          absl::StrCat("mvcc: txn op failed after its checks: ", s.message()));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyCompaction(const etcdserverpb::CompactionRequest& r,
                                             ApplyTxn* txn,
                                             etcdserverpb::CompactionResponse* resp) {
  const int64_t rev = r.revision();
  const int64_t current = current_rev_.load(std::memory_order_relaxed);
  if (rev <= compact_rev_.load(std::memory_order_relaxed)) return ErrCompacted();
  if (rev > current) return ErrFutureRev();
  // Published before the batch deletes anything (see compact_rev_).
  compact_rev_.store(rev, std::memory_order_seq_cst);
  txn->batch()->Put(mvcc_keys::kCompactKey, mvcc_keys::EncodeBE64(static_cast<uint64_t>(rev + 1)));
  // Every stored record is in the index, so the records a compaction
  // removes are the index revisions <= rev it does not keep.
  absl::flat_hash_set<Revision> keep;
  std::vector<Revision> old;
  std::string key;
  for (auto it = index_.begin(); it != index_.end();) {
    old.clear();
    for (const Generation& g : it->second.history.generations()) {
      for (const Revision& kr : g.revs) {
        if (kr.main > rev) break;
        old.push_back(kr);
      }
    }
    keep.clear();
    it->second.history.Compact(rev, &keep);
    for (const Revision& kr : old) {
      if (keep.contains(kr)) continue;
      mvcc_keys::RevisionKeyInto(kr, &key);
      txn->batch()->Delete(key);
    }
    it = it->second.history.IsEmpty() ? index_.erase(it) : std::next(it);
  }
  resp->mutable_header()->set_revision(current);
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyLeaseGrant(uint64_t index,
                                             const etcdserverpb::LeaseGrantRequest& r,
                                             ApplyTxn* txn,
                                             etcdserverpb::LeaseGrantResponse* resp) {
  int64_t id = r.id();
  if (id == 0) {
    // Derived from the entry, so every member picks the same positive ID.
    uint64_t x = index;
    do {
      x = Mix(x);
      id = static_cast<int64_t>(x & static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    } while (id == 0 || leases_.contains(id));
  }
  if (r.ttl() > kMaxLeaseTtl) return ErrLeaseTtlTooLarge();
  if (leases_.contains(id)) return ErrLeaseExists();
  const int64_t ttl = std::max(r.ttl(), options_.min_lease_ttl);
  leases_[id].ttl = ttl;
  txn->batch()->Put(mvcc_keys::LeaseKey(id), mvcc_keys::EncodeLeaseValue(ttl, 0));
  resp->set_id(id);
  resp->set_ttl(ttl);
  resp->mutable_header()->set_revision(txn->rev());
  return absl::OkStatus();
}

absl::Status KvStateMachine::ApplyLeaseRevoke(const etcdserverpb::LeaseRevokeRequest& r,
                                              ApplyTxn* txn,
                                              etcdserverpb::LeaseRevokeResponse* resp) {
  auto lease = leases_.find(r.id());
  if (lease == leases_.end()) return ErrLeaseNotFound();
  // In key order, all in one revision (as etcd, so every member's records
  // and hashes agree).
  const std::vector<std::string> keys(lease->second.keys.begin(), lease->second.keys.end());
  for (const std::string& key : keys) {
    absl::StatusOr<int64_t> n = txn->DeleteRange(internal::MakeKeyRange(key, ""), nullptr);
    if (!n.ok()) return n.status();
  }
  leases_.erase(r.id());
  txn->batch()->Delete(mvcc_keys::LeaseKey(r.id()));
  resp->mutable_header()->set_revision(txn->rev());
  return absl::OkStatus();
}

void KvStateMachine::ApplyLeaseCheckpoint(const etcdserverpb::LeaseCheckpointRequest& r,
                                          ApplyTxn* txn) {
  for (const etcdserverpb::LeaseCheckpoint& cp : r.checkpoints()) {
    auto lease = leases_.find(cp.id());
    if (lease == leases_.end()) continue;
    lease->second.remaining_ttl = cp.remaining_ttl();
    txn->batch()->Put(mvcc_keys::LeaseKey(cp.id()),
                      mvcc_keys::EncodeLeaseValue(lease->second.ttl, cp.remaining_ttl()));
  }
}

void KvStateMachine::ApplyMember(const internalpb::MemberAttributes& m, ApplyTxn* txn) {
  members_[m.id()] = m;
  txn->batch()->Put(mvcc_keys::MemberKey(m.id()), m.SerializeAsString());
}

absl::Status KvStateMachine::Commit(uint64_t index, ApplyTxn* txn) {
  leveldb::WriteBatch* batch = txn->batch();
  batch->Put(mvcc_keys::kAppliedKey, mvcc_keys::EncodeBE64(index));
  const bool changed = txn->changed();
  if (changed) {
    batch->Put(mvcc_keys::kRevisionKey,
               mvcc_keys::EncodeBE64(static_cast<uint64_t>(txn->begin_rev() + 1)));
  }
  if (absl::Status s = Write(batch); !s.ok()) {
    failed_ = s;
    return s;
  }
  if (changed) current_rev_.store(txn->begin_rev() + 1, std::memory_order_seq_cst);
  applied_index_.store(index, std::memory_order_release);
  EventListener* const listener = listener_.load(std::memory_order_acquire);
  if (changed && listener != nullptr) listener->OnRevision(txn->begin_rev() + 1, txn->TakeEvents());
  return absl::OkStatus();
}

}  // namespace arbiter::kv
