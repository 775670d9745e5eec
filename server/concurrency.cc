#include "server/concurrency.h"

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace arbiter::server {

std::string ContenderKey(const std::string& prefix, int64_t lease) {
  return prefix + absl::StrFormat("%x", lease);
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

grpc::Status CreateContender(KvService* kv, const std::string& prefix, int64_t lease,
                             const std::string& value, absl::Time deadline, Contender* out) {
  out->key = ContenderKey(prefix, lease);
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* cmp = txn.add_compare();
  cmp->set_key(out->key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(0);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(out->key);
  put->set_value(value);
  put->set_lease(lease);
  txn.add_failure()->mutable_request_range()->set_key(out->key);
  etcdserverpb::TxnResponse resp;
  if (grpc::Status s = kv->DoTxn(txn, &resp, deadline); !s.ok()) return s;
  out->header = resp.header();
  if (resp.succeeded()) {
    out->rev = resp.header().revision();
    out->existed = false;
    return grpc::Status::OK;
  }
  const etcdserverpb::RangeResponse& got = resp.responses(0).response_range();
  if (got.kvs_size() == 0) {
    // Deleted between the compare and the read: cannot happen within one
    // txn, so report it rather than guess.
    return grpc::Status(grpc::StatusCode::INTERNAL, "contender key vanished");
  }
  out->rev = got.kvs(0).create_revision();
  out->existing_value = got.kvs(0).value();
  out->existed = true;
  return grpc::Status::OK;
}

grpc::Status FirstCreated(KvService* kv, const std::string& prefix, absl::Time deadline,
                          mvccpb::KeyValue* kv_out, bool* found,
                          etcdserverpb::ResponseHeader* header) {
  etcdserverpb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(PrefixEnd(prefix));
  r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  r.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  r.set_limit(1);
  etcdserverpb::RangeResponse resp;
  if (grpc::Status s = kv->DoRange(r, &resp, deadline); !s.ok()) return s;
  *header = resp.header();
  *found = resp.kvs_size() > 0;
  if (*found) *kv_out = resp.kvs(0);
  return grpc::Status::OK;
}

grpc::Status WaitDeletes(KvService* kv, kv::WatchHub* hub, const std::string& prefix,
                         int64_t max_create_rev, absl::Time deadline,
                         const std::function<bool()>& cancelled) {
  while (true) {
    // The newest key created before ours (clientv3's WithLastCreate and
    // WithMaxCreateRev).
    etcdserverpb::RangeRequest r;
    r.set_key(prefix);
    r.set_range_end(PrefixEnd(prefix));
    r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    r.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    r.set_limit(1);
    r.set_max_create_revision(max_create_rev);
    etcdserverpb::RangeResponse resp;
    if (grpc::Status s = kv->DoRange(r, &resp, deadline); !s.ok()) return s;
    if (resp.kvs_size() == 0) return grpc::Status::OK;
    // Wait for that key's deletion, from the revision the read saw.
    std::unique_ptr<kv::WatchStream> ws = hub->NewStream();
    etcdserverpb::WatchCreateRequest wc;
    wc.set_key(resp.kvs(0).key());
    wc.set_start_revision(resp.header().revision() + 1);
    wc.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    ws->Create(wc);
    bool deleted = false;
    while (!deleted) {
      if (cancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "request canceled");
      if (absl::Now() >= deadline) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
      }
      etcdserverpb::WatchResponse w;
      if (!ws->Next(&w, std::min(deadline, absl::Now() + absl::Milliseconds(200)))) continue;
      if (w.canceled()) break;  // compacted meanwhile: read again
      for (const mvccpb::Event& e : w.events()) {
        if (e.type() == mvccpb::Event::DELETE) deleted = true;
      }
    }
  }
}

}  // namespace arbiter::server
