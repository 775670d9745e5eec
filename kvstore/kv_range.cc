// etcd's Range, compare and txn-path logic (etcdserver/apply.go) over a
// ReadSource, shared by the apply thread and readers.
#include <algorithm>
#include <limits>

#include "kvstore/kv_errors.h"
#include "kvstore/kv_internal.h"
#include "kvstore/mvcc_mutants.h"

namespace arbiter::kv::internal {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using mvccpb::KeyValue;

int CompareInt64(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

// etcd's compareKV: the compare's operand is read only from the matching
// target_union case; any other case compares against 0 / empty.
bool CompareKv(const Compare& c, const KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE: {
      const absl::string_view want =
          c.target_union_case() == Compare::kValue ? absl::string_view(c.value()) : "";
      const int cmp = absl::string_view(kv.value()).compare(want);
      result = cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
      break;
    }
    case Compare::CREATE:
      result =
          CompareInt64(kv.create_revision(),
                       c.target_union_case() == Compare::kCreateRevision ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      result = CompareInt64(kv.mod_revision(),
                            c.target_union_case() == Compare::kModRevision ? c.mod_revision() : 0);
      break;
    case Compare::VERSION:
      result =
          CompareInt64(kv.version(), c.target_union_case() == Compare::kVersion ? c.version() : 0);
      break;
    case Compare::LEASE:
      result = CompareInt64(kv.lease(), c.target_union_case() == Compare::kLease ? c.lease() : 0);
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;
  }
}

// etcd's applyCompare: the compare must hold for every key in its range; no
// key at all fails a VALUE compare and compares the other targets with 0.
absl::StatusOr<bool> ApplyCompare(ReadSource* src, const Compare& c) {
  std::vector<Hit> hits;
  int64_t count = 0;
  if (absl::Status s = src->Collect(MakeKeyRange(c.key(), c.range_end()), src->rev(),
                                    std::numeric_limits<size_t>::max(), &hits, &count);
      !s.ok()) {
    return s;
  }
  if (hits.empty()) {
    if (c.target() == Compare::VALUE) return false;
    return CompareKv(c, KeyValue());
  }
  KeyValue kv;
  for (const Hit& hit : hits) {
    if (hit.newest && c.target() != Compare::VALUE) {
      // What the index knows of a key's newest value is all but the value.
      kv.Clear();
      kv.set_create_revision(hit.create_revision);
      kv.set_mod_revision(hit.rev.main);
      kv.set_version(hit.version);
      kv.set_lease(hit.lease);
    } else if (absl::Status s = src->Fetch(hit, &kv); !s.ok()) {
      return s;
    }
    if (!CompareKv(c, kv)) return false;
  }
  return true;
}

template <typename Key>
void SortKvs(google::protobuf::RepeatedPtrField<KeyValue>* kvs, bool descend, Key key) {
  auto less = [&key](const KeyValue* a, const KeyValue* b) { return key(*a) < key(*b); };
  if (descend) {
    std::stable_sort(kvs->pointer_begin(), kvs->pointer_end(),
                     [&less](const KeyValue* a, const KeyValue* b) { return less(b, a); });
  } else {
    std::stable_sort(kvs->pointer_begin(), kvs->pointer_end(), less);
  }
}

// Sorts as etcd: a target other than KEY with order NONE sorts ascending;
// KEY with NONE keeps the (key-ascending) index order. Ties keep key order.
void SortRange(const RangeRequest& r, google::protobuf::RepeatedPtrField<KeyValue>* kvs) {
  RangeRequest::SortOrder order = r.sort_order();
  if (r.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;
  }
  if (order != RangeRequest::ASCEND && order != RangeRequest::DESCEND) return;
  const bool descend = order == RangeRequest::DESCEND;
  switch (r.sort_target()) {
    case RangeRequest::KEY:
      if (descend) std::reverse(kvs->pointer_begin(), kvs->pointer_end());
      break;
    case RangeRequest::VERSION:
      SortKvs(kvs, descend, [](const KeyValue& kv) { return kv.version(); });
      break;
    case RangeRequest::CREATE:
      SortKvs(kvs, descend, [](const KeyValue& kv) { return kv.create_revision(); });
      break;
    case RangeRequest::MOD:
      SortKvs(kvs, descend, [](const KeyValue& kv) { return kv.mod_revision(); });
      break;
    case RangeRequest::VALUE:
      SortKvs(kvs, descend, [](const KeyValue& kv) { return absl::string_view(kv.value()); });
      break;
    default:
      break;
  }
}

// Drops the pairs outside the min/max mod/create filters (0 = unset).
void FilterRange(const RangeRequest& r, google::protobuf::RepeatedPtrField<KeyValue>* kvs) {
  auto keep = [&r](const KeyValue& kv) {
    if (r.max_mod_revision() != 0 && kv.mod_revision() > r.max_mod_revision()) return false;
    if (r.min_mod_revision() != 0 && kv.mod_revision() < r.min_mod_revision()) return false;
    if (r.max_create_revision() != 0 && kv.create_revision() > r.max_create_revision()) {
      return false;
    }
    if (r.min_create_revision() != 0 && kv.create_revision() < r.min_create_revision()) {
      return false;
    }
    return true;
  };
  int j = 0;
  for (int i = 0; i < kvs->size(); ++i) {
    if (keep(kvs->Get(i))) kvs->SwapElements(i, j++);
  }
  kvs->DeleteSubrange(j, kvs->size() - j);
}

}  // namespace

absl::Status RangeOn(ReadSource* src, const RangeRequest& r, etcdserverpb::RangeResponse* resp) {
  const int64_t cur = src->rev();
  int64_t rev = r.revision();
  if (rev > cur) return ErrFutureRev();
  if (rev <= 0) rev = cur;
  if (rev < src->first_rev()) return ErrCompacted();

  const bool filtered = r.min_mod_revision() != 0 || r.max_mod_revision() != 0 ||
                        r.min_create_revision() != 0 || r.max_create_revision() != 0;
  // Sorting or filtering needs every pair; otherwise one beyond the limit
  // tells whether there are more.
  size_t fetch = std::numeric_limits<size_t>::max();
  if (r.sort_order() == RangeRequest::NONE && !filtered && r.limit() > 0 &&
      static_cast<uint64_t>(r.limit()) < fetch - 1) {
    fetch = static_cast<size_t>(r.limit()) + 1;
  }
  if (r.count_only()) fetch = 0;

  std::vector<Hit> hits;
  int64_t count = 0;
  if (absl::Status s =
          src->Collect(MakeKeyRange(r.key(), r.range_end()), rev, fetch, &hits, &count);
      !s.ok()) {
    return s;
  }
  if (ARBITER_MUTANT_COUNT_HONOURS_LIMIT && r.limit() > 0 && count > r.limit()) {
    count = r.limit();
  }
  resp->mutable_header()->set_revision(cur);
  // The count is taken before the limit and the filters, as etcd's.
  resp->set_count(count);
  auto* kvs = resp->mutable_kvs();
  kvs->Reserve(static_cast<int>(hits.size()));
  for (const Hit& hit : hits) {
    if (absl::Status s = src->Fetch(hit, kvs->Add()); !s.ok()) return s;
  }
  if (filtered) FilterRange(r, kvs);
  SortRange(r, kvs);
  if (r.limit() > 0 && kvs->size() > r.limit()) {
    const int limit = static_cast<int>(r.limit());
    kvs->DeleteSubrange(limit, kvs->size() - limit);
    resp->set_more(true);
  }
  if (r.keys_only()) {
    for (KeyValue& kv : *kvs) kv.clear_value();
  }
  return absl::OkStatus();
}

absl::Status ComputeTxnPath(ReadSource* src, const etcdserverpb::TxnRequest& r,
                            std::vector<bool>* path) {
  bool ok = true;
  for (const Compare& c : r.compare()) {
    absl::StatusOr<bool> holds = ApplyCompare(src, c);
    if (!holds.ok()) return holds.status();
    if (!*holds) {
      ok = false;
      break;
    }
  }
  path->push_back(ok);
  for (const etcdserverpb::RequestOp& op : ok ? r.success() : r.failure()) {
    if (!op.has_request_txn()) continue;
    if (absl::Status s = ComputeTxnPath(src, op.request_txn(), path); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckTxnRanges(const ReadSource& src, const etcdserverpb::TxnRequest& r,
                            const std::vector<bool>& path) {
  size_t pos = 0;
  return ForEachChosenOp(r, path, &pos, [&src](const etcdserverpb::RequestOp& op) {
    if (!op.has_request_range()) return absl::OkStatus();
    const int64_t rev = op.request_range().revision();
    if (rev == 0) return absl::OkStatus();
    if (rev > src.rev()) return ErrFutureRev();
    if (rev < src.first_rev()) return ErrCompacted();
    return absl::OkStatus();
  });
}

absl::Status ExecuteReadOnlyTxn(ReadSource* src, const etcdserverpb::TxnRequest& r,
                                const std::vector<bool>& path, size_t* pos,
                                etcdserverpb::TxnResponse* resp) {
  const bool succeeded = path[(*pos)++];
  resp->set_succeeded(succeeded);
  resp->mutable_header();
  for (const etcdserverpb::RequestOp& op : succeeded ? r.success() : r.failure()) {
    etcdserverpb::ResponseOp* out = resp->add_responses();
    if (op.has_request_range()) {
      if (absl::Status s = RangeOn(src, op.request_range(), out->mutable_response_range());
          !s.ok()) {
        return s;
      }
    } else if (op.has_request_txn()) {
      if (absl::Status s =
              ExecuteReadOnlyTxn(src, op.request_txn(), path, pos, out->mutable_response_txn());
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace arbiter::kv::internal
