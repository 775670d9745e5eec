#include "kvstore/kv_validate.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "kvstore/kv_errors.h"

namespace arbiter::kv {
namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

absl::Status ValidateOp(const RequestOp& op, int max_txn_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return ValidateRange(op.request_range());
    case RequestOp::kRequestPut:
      return ValidatePut(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return ValidateDeleteRange(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return ValidateTxn(op.request_txn(), max_txn_ops);
    case RequestOp::REQUEST_NOT_SET:
      break;
  }
  // etcd answers an empty op this way.
  return ErrKeyNotFound();
}

// A deleted interval [begin, end) in etcd's "affine" string order, where the
// empty string is above every other. A single-key delete is [key, key+"\0").
// A range_end of "\0" (every key >= key) is taken literally as etcd does, so
// such a delete overlaps no put: etcd 3.4 lets a txn put a key and delete
// from a smaller key to the end.
struct Interval {
  absl::string_view begin;
  std::string end;

  bool Contains(absl::string_view k) const {
    if (k < begin) return false;
    return end.empty() || k < end;
  }
};

bool AnyContains(const std::vector<Interval>& dels, absl::string_view k) {
  return std::any_of(dels.begin(), dels.end(), [k](const Interval& d) { return d.Contains(k); });
}

// etcd's checkIntervals: the puts and deletes of one branch (with those of
// nested txns), failing if a key is put twice or put and deleted. Then and
// else branches of a nested txn exclude each other, so a key put in both is
// fine.
absl::Status CheckIntervals(const google::protobuf::RepeatedPtrField<RequestOp>& ops,
                            absl::flat_hash_set<absl::string_view>* puts,
                            std::vector<Interval>* dels) {
  for (const RequestOp& op : ops) {
    if (!op.has_request_delete_range()) continue;
    const etcdserverpb::DeleteRangeRequest& d = op.request_delete_range();
    Interval iv{d.key(), d.range_end()};
    if (d.range_end().empty()) iv.end = std::string(d.key()) + '\0';
    dels->push_back(std::move(iv));
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_txn()) continue;
    absl::flat_hash_set<absl::string_view> puts_then, puts_else;
    std::vector<Interval> dels_then, dels_else;
    if (absl::Status s = CheckIntervals(op.request_txn().success(), &puts_then, &dels_then);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else);
        !s.ok()) {
      return s;
    }
    for (absl::string_view k : puts_then) {
      if (puts->contains(k) || AnyContains(*dels, k)) return ErrDuplicateKey();
      puts->insert(k);
    }
    for (absl::string_view k : puts_else) {
      if (puts->contains(k) && !puts_then.contains(k)) return ErrDuplicateKey();
      if (AnyContains(*dels, k)) return ErrDuplicateKey();
      puts->insert(k);
    }
    for (Interval& iv : dels_then) dels->push_back(std::move(iv));
    for (Interval& iv : dels_else) dels->push_back(std::move(iv));
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_put()) continue;
    const absl::string_view k = op.request_put().key();
    if (puts->contains(k) || AnyContains(*dels, k)) return ErrDuplicateKey();
    puts->insert(k);
  }
  return absl::OkStatus();
}

absl::Status CheckTxnOps(const TxnRequest& r, int max_txn_ops) {
  const int opc = std::max({r.compare_size(), r.success_size(), r.failure_size()});
  if (opc > max_txn_ops) return ErrTooManyOps();
  for (const etcdserverpb::Compare& c : r.compare()) {
    if (c.key().empty()) return ErrEmptyKey();
  }
  for (const RequestOp& op : r.success()) {
    if (absl::Status s = ValidateOp(op, max_txn_ops - opc); !s.ok()) return s;
  }
  for (const RequestOp& op : r.failure()) {
    if (absl::Status s = ValidateOp(op, max_txn_ops - opc); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRange(const etcdserverpb::RangeRequest& r) {
  if (r.key().empty()) return ErrEmptyKey();
  if (!etcdserverpb::RangeRequest::SortTarget_IsValid(r.sort_target())) {
    return ErrInvalidSortOption();
  }
  return absl::OkStatus();
}

absl::Status ValidatePut(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return ErrEmptyKey();
  if (r.ignore_value() && !r.value().empty()) return ErrValueProvided();
  if (r.ignore_lease() && r.lease() != 0) return ErrLeaseProvided();
  return absl::OkStatus();
}

absl::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return ErrEmptyKey();
  return absl::OkStatus();
}

absl::Status ValidateTxn(const TxnRequest& r, int max_txn_ops) {
  if (absl::Status s = CheckTxnOps(r, max_txn_ops); !s.ok()) return s;
  // After the op checks, as etcd, so a huge request fails cheaply first.
  for (const auto* branch : {&r.success(), &r.failure()}) {
    absl::flat_hash_set<absl::string_view> puts;
    std::vector<Interval> dels;
    if (absl::Status s = CheckIntervals(*branch, &puts, &dels); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const internalpb::Request& r, int max_txn_ops) {
  switch (r.request_case()) {
    case internalpb::Request::kPut:
      return ValidatePut(r.put());
    case internalpb::Request::kDeleteRange:
      return ValidateDeleteRange(r.delete_range());
    case internalpb::Request::kTxn:
      return ValidateTxn(r.txn(), max_txn_ops);
    default:
      return absl::OkStatus();
  }
}

bool IsReadOnlyTxn(const TxnRequest& r) {
  for (const auto* branch : {&r.success(), &r.failure()}) {
    for (const RequestOp& op : *branch) {
      if (!op.has_request_range()) return false;
    }
  }
  return true;
}

}  // namespace arbiter::kv
