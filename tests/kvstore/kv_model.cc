#include "tests/kvstore/kv_model.h"

#include <algorithm>

#include "kvstore/kv_errors.h"
#include "kvstore/kv_validate.h"

namespace arbiter::kv::testing {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using mvccpb::KeyValue;

bool InRange(const std::string& k, const std::string& key, const std::string& end) {
  if (end.empty()) return k == key;
  if (end == std::string(1, '\0')) return k >= key;
  return k >= key && k < end;
}

std::vector<const KeyValue*> Select(const KvModel::State& s, const std::string& key,
                                    const std::string& end) {
  std::vector<const KeyValue*> out;
  for (const auto& [k, kv] : s) {
    if (InRange(k, key, end)) out.push_back(&kv);
  }
  return out;
}

int Sign(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

bool CompareOne(const Compare& c, const KeyValue& kv) {
  int cmp = 0;
  switch (c.target()) {
    case Compare::VALUE: {
      const std::string want = c.has_value() ? c.value() : "";
      cmp = kv.value() < want ? -1 : (kv.value() > want ? 1 : 0);
      break;
    }
    case Compare::VERSION:
      cmp = Sign(kv.version(), c.has_version() ? c.version() : 0);
      break;
    case Compare::CREATE:
      cmp = Sign(kv.create_revision(), c.has_create_revision() ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      cmp = Sign(kv.mod_revision(), c.has_mod_revision() ? c.mod_revision() : 0);
      break;
    case Compare::LEASE:
      cmp = Sign(kv.lease(), c.has_lease() ? c.lease() : 0);
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return cmp == 0;
    case Compare::NOT_EQUAL:
      return cmp != 0;
    case Compare::GREATER:
      return cmp > 0;
    case Compare::LESS:
      return cmp < 0;
    default:
      return true;
  }
}

internalpb::Response ErrorResponse(const absl::Status& s) {
  internalpb::Response r;
  r.set_error_code(static_cast<int>(s.code()));
  r.set_error_message(std::string(s.message()));
  return r;
}

}  // namespace

struct KvModel::TxnContext {
  TxnContext(const State* before, int64_t rev) : pre(before), work(*before), pre_rev(rev) {}

  const State* pre = nullptr;
  State work;
  int64_t pre_rev = 0;
  bool changed = false;
  std::vector<mvccpb::Event> events;

  int64_t new_rev() const { return pre_rev + 1; }
  int64_t rev() const { return changed ? pre_rev + 1 : pre_rev; }
};

internalpb::Response KvModel::Apply(const internalpb::Request& r,
                                    const internalpb::Response& store_response) {
  if (absl::Status s = ValidateRequest(r); !s.ok()) return ErrorResponse(s);
  internalpb::Response resp;
  absl::Status s;
  switch (r.request_case()) {
    case internalpb::Request::kPut: {
      TxnContext ctx(&states_.at(rev_), rev_);
      s = Put(r.put(), /*top_level=*/true, &ctx, resp.mutable_put());
      if (s.ok()) Commit(&ctx);
      break;
    }
    case internalpb::Request::kDeleteRange: {
      TxnContext ctx(&states_.at(rev_), rev_);
      DeleteRange(r.delete_range(), &ctx, resp.mutable_delete_range());
      Commit(&ctx);
      break;
    }
    case internalpb::Request::kTxn:
      s = Txn(r.txn(), resp.mutable_txn());
      break;
    case internalpb::Request::kCompaction: {
      const int64_t c = r.compaction().revision();
      if (c <= compact_) {
        s = ErrCompacted();
      } else if (c > rev_) {
        s = ErrFutureRev();
      } else {
        compact_ = c;
        states_.erase(states_.begin(), states_.lower_bound(c));
        changes_.erase(changes_.begin(), changes_.lower_bound(c));
        resp.mutable_compaction()->mutable_header()->set_revision(rev_);
      }
      break;
    }
    case internalpb::Request::kLeaseGrant:
      s = LeaseGrant(r.lease_grant(), store_response, &resp);
      break;
    case internalpb::Request::kLeaseRevoke:
      s = LeaseRevoke(r.lease_revoke().id(), &resp);
      break;
    case internalpb::Request::kLeaseCheckpoint:
      for (const etcdserverpb::LeaseCheckpoint& cp : r.lease_checkpoint().checkpoints()) {
        auto it = leases_.find(cp.id());
        if (it != leases_.end()) it->second.remaining = cp.remaining_ttl();
      }
      resp.mutable_lease_checkpoint()->mutable_header()->set_revision(rev_);
      break;
    case internalpb::Request::kMemberAttributes:
      members_[r.member_attributes().id()] = r.member_attributes();
      break;
    default:
      break;
  }
  if (!s.ok()) return ErrorResponse(s);
  return resp;
}

absl::Status KvModel::LeaseGrant(const etcdserverpb::LeaseGrantRequest& r,
                                 const internalpb::Response& store_response,
                                 internalpb::Response* resp) {
  int64_t id = r.id();
  if (id == 0) id = store_response.lease_grant().id();  // checked by the caller
  if (r.ttl() > 9000000000) return ErrLeaseTtlTooLarge();
  if (leases_.count(id) > 0) return ErrLeaseExists();
  const int64_t ttl = std::max(r.ttl(), min_lease_ttl_);
  leases_[id].ttl = ttl;
  resp->mutable_lease_grant()->set_id(id);
  resp->mutable_lease_grant()->set_ttl(ttl);
  resp->mutable_lease_grant()->mutable_header()->set_revision(rev_);
  return absl::OkStatus();
}

absl::Status KvModel::LeaseRevoke(int64_t id, internalpb::Response* resp) {
  if (leases_.count(id) == 0) return ErrLeaseNotFound();
  TxnContext ctx(&states_.at(rev_), rev_);
  for (const auto& [k, kv] : *ctx.pre) {
    if (kv.lease() != id) continue;
    etcdserverpb::DeleteRangeRequest d;
    d.set_key(k);
    etcdserverpb::DeleteRangeResponse ignored;
    DeleteRange(d, &ctx, &ignored);
  }
  Commit(&ctx);
  leases_.erase(id);
  resp->mutable_lease_revoke()->mutable_header()->set_revision(rev_);
  return absl::OkStatus();
}

void KvModel::Commit(TxnContext* ctx) {
  if (!ctx->changed) return;
  rev_ = ctx->new_rev();
  states_[rev_] = std::move(ctx->work);
  changes_[rev_] = std::move(ctx->events);
}

absl::Status KvModel::Put(const etcdserverpb::PutRequest& r, bool top_level, TxnContext* ctx,
                          etcdserverpb::PutResponse* resp) {
  if (top_level && r.lease() != 0 && leases_.count(r.lease()) == 0) return ErrLeaseNotFound();
  auto it = ctx->work.find(r.key());
  const bool exists = it != ctx->work.end();
  if ((r.ignore_value() || r.ignore_lease()) && !exists) return ErrKeyNotFound();
  KeyValue kv;
  kv.set_key(r.key());
  kv.set_value(r.ignore_value() ? it->second.value() : r.value());
  kv.set_lease(r.ignore_lease() ? it->second.lease() : r.lease());
  kv.set_create_revision(exists ? it->second.create_revision() : ctx->new_rev());
  kv.set_mod_revision(ctx->new_rev());
  kv.set_version(exists ? it->second.version() + 1 : 1);
  if (r.prev_kv() && exists) *resp->mutable_prev_kv() = it->second;
  ctx->work[r.key()] = kv;
  mvccpb::Event& ev = ctx->events.emplace_back();
  *ev.mutable_kv() = kv;
  ctx->changed = true;
  resp->mutable_header()->set_revision(ctx->new_rev());
  return absl::OkStatus();
}

void KvModel::DeleteRange(const etcdserverpb::DeleteRangeRequest& r, TxnContext* ctx,
                          etcdserverpb::DeleteRangeResponse* resp) {
  std::vector<std::string> keys;
  for (const KeyValue* kv : Select(ctx->work, r.key(), r.range_end())) keys.push_back(kv->key());
  for (const std::string& k : keys) {
    if (r.prev_kv()) *resp->add_prev_kvs() = ctx->work.at(k);
    ctx->work.erase(k);
    mvccpb::Event& ev = ctx->events.emplace_back();
    ev.set_type(mvccpb::Event::DELETE);
    ev.mutable_kv()->set_key(k);
    ev.mutable_kv()->set_mod_revision(ctx->new_rev());
    ctx->changed = true;
  }
  resp->set_deleted(static_cast<int64_t>(keys.size()));
  resp->mutable_header()->set_revision(ctx->rev());
}

bool KvModel::Compares(const etcdserverpb::TxnRequest& r, const State& pre) const {
  for (const Compare& c : r.compare()) {
    std::vector<const KeyValue*> kvs = Select(pre, c.key(), c.range_end());
    if (kvs.empty()) {
      if (c.target() == Compare::VALUE || !CompareOne(c, KeyValue())) return false;
      continue;
    }
    for (const KeyValue* kv : kvs) {
      if (!CompareOne(c, *kv)) return false;
    }
  }
  return true;
}

absl::Status KvModel::CheckTxn(const etcdserverpb::TxnRequest& r, const State& pre, bool puts,
                               std::vector<std::pair<std::string, std::string>>* deletes) const {
  for (const RequestOp& op : Compares(r, pre) ? r.success() : r.failure()) {
    if (op.has_request_txn()) {
      if (absl::Status s = CheckTxn(op.request_txn(), pre, puts, deletes); !s.ok()) return s;
    } else if (op.has_request_delete_range()) {
      deletes->emplace_back(op.request_delete_range().key(), op.request_delete_range().range_end());
    } else if (puts && op.has_request_put()) {
      const etcdserverpb::PutRequest& p = op.request_put();
      if (p.ignore_value() || p.ignore_lease()) {
        // The key must exist before the txn and not be deleted by an
        // earlier op of it.
        if (pre.count(p.key()) == 0) return ErrKeyNotFound();
        for (const auto& [key, end] : *deletes) {
          if (InRange(p.key(), key, end)) return ErrKeyNotFound();
        }
      }
      if (p.lease() != 0 && leases_.count(p.lease()) == 0) return ErrLeaseNotFound();
    } else if (!puts && op.has_request_range()) {
      const int64_t rev = op.request_range().revision();
      if (rev > rev_) return ErrFutureRev();
      if (rev != 0 && rev < compact_) return ErrCompacted();
    }
  }
  return absl::OkStatus();
}

absl::Status KvModel::Txn(const etcdserverpb::TxnRequest& r, etcdserverpb::TxnResponse* resp) {
  const State& pre = states_.at(rev_);
  if (!IsReadOnlyTxn(r)) {
    std::vector<std::pair<std::string, std::string>> deletes;
    if (absl::Status s = CheckTxn(r, pre, /*puts=*/true, &deletes); !s.ok()) return s;
  }
  std::vector<std::pair<std::string, std::string>> deletes;
  if (absl::Status s = CheckTxn(r, pre, /*puts=*/false, &deletes); !s.ok()) return s;
  TxnContext ctx(&pre, rev_);
  RunTxn(r, pre, &ctx, resp);
  Commit(&ctx);
  resp->mutable_header()->set_revision(rev_);
  return absl::OkStatus();
}

void KvModel::RunTxn(const etcdserverpb::TxnRequest& r, const State& pre, TxnContext* ctx,
                     etcdserverpb::TxnResponse* resp) {
  const bool ok = Compares(r, pre);
  resp->set_succeeded(ok);
  resp->mutable_header();
  for (const RequestOp& op : ok ? r.success() : r.failure()) {
    etcdserverpb::ResponseOp* out = resp->add_responses();
    if (op.has_request_range()) {
      (void)RangeIn(op.request_range(), ctx->rev(), &ctx->work, out->mutable_response_range());
    } else if (op.has_request_put()) {
      (void)Put(op.request_put(), /*top_level=*/false, ctx, out->mutable_response_put());
    } else if (op.has_request_delete_range()) {
      DeleteRange(op.request_delete_range(), ctx, out->mutable_response_delete_range());
    } else if (op.has_request_txn()) {
      RunTxn(op.request_txn(), pre, ctx, out->mutable_response_txn());
    }
  }
}

absl::Status KvModel::Range(const RangeRequest& r, etcdserverpb::RangeResponse* resp) const {
  return RangeIn(r, rev_, &states_.at(rev_), resp);
}

void KvModel::Sort(const RangeRequest& r, std::vector<const KeyValue*>* kvs) {
  auto field = [&](const KeyValue* kv) -> std::string {
    switch (r.sort_target()) {
      case RangeRequest::KEY:
        return kv->key();
      case RangeRequest::VALUE:
        return kv->value();
      default: {
        const int64_t v = r.sort_target() == RangeRequest::VERSION  ? kv->version()
                          : r.sort_target() == RangeRequest::CREATE ? kv->create_revision()
                                                                    : kv->mod_revision();
        char buf[32];
        snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(v));
        return buf;
      }
    }
  };
  RangeRequest::SortOrder order = r.sort_order();
  if (order == RangeRequest::NONE && r.sort_target() != RangeRequest::KEY) {
    order = RangeRequest::ASCEND;
  }
  if (order == RangeRequest::ASCEND) {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const KeyValue* a, const KeyValue* b) { return field(a) < field(b); });
  } else if (order == RangeRequest::DESCEND) {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const KeyValue* a, const KeyValue* b) { return field(b) < field(a); });
  }
}

absl::Status KvModel::RangeIn(const RangeRequest& r, int64_t cur, const State* current,
                              etcdserverpb::RangeResponse* resp) const {
  const State* state = current;
  if (r.revision() > cur) return ErrFutureRev();
  if (r.revision() > 0) {
    if (r.revision() < compact_) return ErrCompacted();
    if (r.revision() != cur) state = &states_.at(r.revision());
  }
  std::vector<const KeyValue*> kvs = Select(*state, r.key(), r.range_end());
  resp->mutable_header()->set_revision(cur);
  resp->set_count(static_cast<int64_t>(kvs.size()));
  if (r.count_only()) return absl::OkStatus();
  // etcd 3.4 applies the limit before sorting when sort_order is NONE (even
  // for a target other than KEY, which it then sorts ascending): it reads
  // one more than the limit in key order, sorts those, and truncates.
  const bool filtered = r.min_mod_revision() != 0 || r.max_mod_revision() != 0 ||
                        r.min_create_revision() != 0 || r.max_create_revision() != 0;
  if (r.sort_order() == RangeRequest::NONE && !filtered && r.limit() > 0 &&
      static_cast<int64_t>(kvs.size()) > r.limit() + 1) {
    kvs.resize(r.limit() + 1);
  }
  auto drop = [&](auto pred) {
    kvs.erase(std::remove_if(kvs.begin(), kvs.end(), pred), kvs.end());
  };
  if (r.min_mod_revision() != 0) {
    drop([&](const KeyValue* kv) { return kv->mod_revision() < r.min_mod_revision(); });
  }
  if (r.max_mod_revision() != 0) {
    drop([&](const KeyValue* kv) { return kv->mod_revision() > r.max_mod_revision(); });
  }
  if (r.min_create_revision() != 0) {
    drop([&](const KeyValue* kv) { return kv->create_revision() < r.min_create_revision(); });
  }
  if (r.max_create_revision() != 0) {
    drop([&](const KeyValue* kv) { return kv->create_revision() > r.max_create_revision(); });
  }
  Sort(r, &kvs);
  if (r.limit() > 0 && static_cast<int64_t>(kvs.size()) > r.limit()) {
    kvs.resize(r.limit());
    resp->set_more(true);
  }
  for (const KeyValue* kv : kvs) {
    KeyValue* out = resp->add_kvs();
    *out = *kv;
    if (r.keys_only()) out->clear_value();
  }
  return absl::OkStatus();
}

absl::Status KvModel::Events(const std::string& key, const std::string& end, int64_t start,
                             int64_t end_rev, bool prev_kv, std::vector<mvccpb::Event>* out) const {
  if (start < compact_) return ErrCompacted();
  if (end_rev <= 0 || end_rev > rev_) end_rev = rev_;
  for (auto it = changes_.lower_bound(start); it != changes_.end() && it->first <= end_rev; ++it) {
    const int64_t rev = it->first;
    const std::vector<mvccpb::Event>& evs = it->second;
    for (size_t i = 0; i < evs.size(); ++i) {
      const mvccpb::Event& ev = evs[i];
      if (!InRange(ev.kv().key(), key, end)) continue;
      if (rev == compact_) {
        // Compaction kept only the last put of each key at its revision.
        if (ev.type() == mvccpb::Event::DELETE) continue;
        bool superseded = false;
        for (size_t j = i + 1; j < evs.size(); ++j)
          superseded |= evs[j].kv().key() == ev.kv().key();
        if (superseded) continue;
      }
      mvccpb::Event& e = out->emplace_back(ev);
      if (prev_kv && rev - 1 >= std::max<int64_t>(compact_, 1)) {
        const State& before = states_.at(rev - 1);
        auto p = before.find(ev.kv().key());
        if (p != before.end()) *e.mutable_prev_kv() = p->second;
      }
    }
  }
  return absl::OkStatus();
}

std::vector<LeaseInfo> KvModel::Leases() const {
  std::vector<LeaseInfo> out;
  for (const auto& [id, l] : leases_) {
    LeaseInfo& info = out.emplace_back();
    info.id = id;
    info.ttl = l.ttl;
    info.remaining_ttl = l.remaining;
    for (const auto& [k, kv] : current()) {
      if (kv.lease() == id) info.keys.push_back(k);
    }
  }
  return out;
}

std::vector<internalpb::MemberAttributes> KvModel::Members() const {
  std::vector<internalpb::MemberAttributes> out;
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

}  // namespace arbiter::kv::testing
