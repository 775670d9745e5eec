// Bad input over the wire, differentially: the same sequence of raw gRPC
// requests (malformed, out of range, oversized, conflicting, mixed with a
// few valid ones that move the store forward) goes to a real etcd 3.4
// cluster and to an Arbiter cluster. Every request must get the same gRPC
// code and message, and every response the same content once the fields
// that legitimately differ (cluster and member IDs, raft term) are cleared.
// Afterwards each cluster must still serve on the same connection, be at
// the same revision as etcd (nothing a rejected request carried was
// applied), and every member must report the same HashKV, equal to etcd's.

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/rpc.grpc.pb.h"
#include "tests/client/test_cluster.h"

namespace arbiter::testing {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;

// What one request got back, in a form that compares across servers.
struct Outcome {
  int code = 0;
  std::string message;
  std::string response;  // normalized text; empty on error
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "code=" << o.code << " message=\"" << o.message << "\" response={" << o.response
            << "}";
}

// Clears what differs between two clusters in every response header,
// nested ones (inside txn responses) included.
void Normalize(google::protobuf::Message* m) {
  const google::protobuf::Reflection* r = m->GetReflection();
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  if (d->full_name() == "etcdserverpb.ResponseHeader") {
    auto* h = static_cast<etcdserverpb::ResponseHeader*>(m);
    h->clear_cluster_id();
    h->clear_member_id();
    h->clear_raft_term();
    return;
  }
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int j = 0; j < r->FieldSize(*m, f); ++j) Normalize(r->MutableRepeatedMessage(m, f, j));
    } else if (r->HasField(*m, f)) {
      Normalize(r->MutableMessage(m, f));
    }
  }
}

class Stubs {
 public:
  explicit Stubs(const std::string& endpoint)
      : channel_(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials())),
        kv_(etcdserverpb::KV::NewStub(channel_)),
        lease_(etcdserverpb::Lease::NewStub(channel_)),
        maintenance_(etcdserverpb::Maintenance::NewStub(channel_)) {}

  template <typename Stub, typename Req, typename Resp>
  Outcome Call(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
               const Req& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    Resp resp;
    grpc::Status s = (stub->*method)(&ctx, req, &resp);
    Outcome o;
    o.code = s.error_code();
    o.message = s.error_message();
    if (s.ok()) {
      Normalize(&resp);
      o.response = resp.ShortDebugString();
    }
    return o;
  }

  etcdserverpb::KV::Stub* kv() { return kv_.get(); }
  etcdserverpb::Lease::Stub* lease() { return lease_.get(); }
  etcdserverpb::Maintenance::Stub* maintenance() { return maintenance_.get(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance_;
};

struct Case {
  std::string name;
  std::function<Outcome(Stubs&)> run;
  // Only the code is compared: the message comes from the gRPC library
  // (Go's and C++'s word a too-large message differently).
  bool code_only = false;
  // Input that crashes an etcd 3.4 server: not sent to etcd; Arbiter must
  // answer this (what etcd 3.5, which fixed the crash, answers).
  std::optional<Outcome> etcd_crashes;
};

RangeRequest Range(const std::string& key, const std::string& end = "") {
  RangeRequest r;
  r.set_key(key);
  r.set_range_end(end);
  return r;
}

etcdserverpb::PutRequest Put(const std::string& key, const std::string& value) {
  etcdserverpb::PutRequest p;
  p.set_key(key);
  p.set_value(value);
  return p;
}

etcdserverpb::DeleteRangeRequest Delete(const std::string& key, const std::string& end = "") {
  etcdserverpb::DeleteRangeRequest d;
  d.set_key(key);
  d.set_range_end(end);
  return d;
}

etcdserverpb::CompactionRequest Compact(int64_t rev) {
  etcdserverpb::CompactionRequest c;
  c.set_revision(rev);
  return c;
}

etcdserverpb::LeaseGrantRequest Grant(int64_t ttl, int64_t id) {
  etcdserverpb::LeaseGrantRequest g;
  g.set_ttl(ttl);
  g.set_id(id);
  return g;
}

std::vector<Case> Cases() {
  using KV = etcdserverpb::KV::Stub;
  using Lease = etcdserverpb::Lease::Stub;
  std::vector<Case> c;
  auto range = [&c](std::string name, RangeRequest r) {
    c.push_back({std::move(name), [r](Stubs& s) { return s.Call(s.kv(), &KV::Range, r); }});
  };
  auto put = [&c](std::string name, etcdserverpb::PutRequest p, bool code_only = false) {
    c.push_back(
        {std::move(name), [p](Stubs& s) { return s.Call(s.kv(), &KV::Put, p); }, code_only});
  };
  auto del = [&c](std::string name, etcdserverpb::DeleteRangeRequest d) {
    c.push_back({std::move(name), [d](Stubs& s) { return s.Call(s.kv(), &KV::DeleteRange, d); }});
  };
  auto txn = [&c](std::string name, etcdserverpb::TxnRequest t) {
    c.push_back({std::move(name), [t](Stubs& s) { return s.Call(s.kv(), &KV::Txn, t); }});
  };
  auto compact = [&c](std::string name, int64_t rev) {
    c.push_back(
        {std::move(name), [rev](Stubs& s) { return s.Call(s.kv(), &KV::Compact, Compact(rev)); }});
  };
  auto grant = [&c](std::string name, int64_t ttl, int64_t id) {
    c.push_back({std::move(name), [ttl, id](Stubs& s) {
                   return s.Call(s.lease(), &Lease::LeaseGrant, Grant(ttl, id));
                 }});
  };

  // A small history, partly compacted: revisions 2..6, compacted at 3.
  put("put a", Put("a", "1"));
  put("put b", Put("b", "2"));
  put("put c", Put("c", "3"));
  put("put a again", Put("a", "4"));
  put("put d", Put("d", "5"));
  compact("compact 3", 3);

  range("range empty key", Range(""));
  range("range end before key", Range("c", "a"));
  range("range from key", Range("a", std::string(1, '\0')));
  {
    RangeRequest r = Range("a", "z");
    r.set_limit(-1);
    range("range negative limit", r);
    r.set_limit(int64_t{1} << 62);
    range("range huge limit", r);
  }
  {
    RangeRequest r = Range("a", "z");
    r.set_sort_order(static_cast<RangeRequest::SortOrder>(7));
    range("range unknown sort order", r);
  }
  {
    RangeRequest r = Range("a", "z");
    r.set_sort_order(RangeRequest::ASCEND);
    r.set_sort_target(static_cast<RangeRequest::SortTarget>(9));
    range("range unknown sort target", r);
    c.back().etcd_crashes = Outcome{3, "etcdserver: invalid sort option", ""};
  }
  {
    RangeRequest r = Range("a", "z");
    r.set_revision(99);
    range("range future revision", r);
    r.set_revision(2);
    range("range compacted revision", r);
    r.set_revision(3);
    range("range at the compact revision", r);
    r.set_revision(-5);
    range("range negative revision", r);
  }
  {
    RangeRequest r = Range("a", "z");
    r.set_min_mod_revision(-1);
    r.set_max_create_revision(-3);
    r.set_min_create_revision(-7);
    r.set_max_mod_revision(-2);
    range("range negative bounds", r);
  }
  range("range oversized key", Range(std::string(1600 * 1024, 'k')));

  put("put empty key", Put("", "v"));
  put("put oversized value", Put("big", std::string(1600 * 1024, 'v')));
  put("put value over the message limit", Put("bigger", std::string(3 * 1024 * 1024, 'v')),
      /*code_only=*/true);
  {
    etcdserverpb::PutRequest p = Put("a", "x");
    p.set_ignore_value(true);
    put("put ignore_value with a value", p);
    p = Put("missing", "");
    p.set_ignore_value(true);
    put("put ignore_value on a missing key", p);
    p = Put("a", "y");
    p.set_ignore_lease(true);
    p.set_lease(5);
    put("put ignore_lease with a lease", p);
    p = Put("a", "y");
    p.set_lease(12345);
    put("put unknown lease", p);
  }
  put("put NUL and invalid UTF-8", Put(std::string("n\0\xff\xfe", 4), std::string("\xc3\x28", 2)));

  del("delete empty key", Delete(""));
  del("delete end before key", Delete("c", "a"));

  {
    etcdserverpb::TxnRequest t;
    for (int i = 0; i < 129; ++i) {
      *t.add_success()->mutable_request_put() = Put(absl::StrCat("t", i), "v");
    }
    txn("txn too many operations", t);
  }
  {
    etcdserverpb::TxnRequest t;
    *t.add_success()->mutable_request_put() = Put("a", "1");
    *t.add_success()->mutable_request_put() = Put("a", "2");
    txn("txn duplicate put", t);
  }
  {
    etcdserverpb::TxnRequest t;
    *t.add_success()->mutable_request_put() = Put("b", "1");
    *t.add_success()->mutable_request_delete_range() = Delete("a", "c");
    txn("txn put inside a deleted range", t);
  }
  {
    etcdserverpb::TxnRequest t;
    Compare* cmp = t.add_compare();
    cmp->set_key("a");
    cmp->set_target(static_cast<Compare::CompareTarget>(9));
    cmp->set_result(Compare::EQUAL);
    *t.add_success()->mutable_request_put() = Put("e", "1");
    *t.add_failure()->mutable_request_put() = Put("f", "1");
    txn("txn unknown compare target", t);
  }
  {
    etcdserverpb::TxnRequest t;
    Compare* cmp = t.add_compare();
    cmp->set_key("a");
    cmp->set_target(Compare::VERSION);
    cmp->set_result(static_cast<Compare::CompareResult>(9));
    cmp->set_version(2);
    *t.add_success()->mutable_request_put() = Put("g", "1");
    *t.add_failure()->mutable_request_put() = Put("h", "1");
    txn("txn unknown compare result", t);
  }
  {
    etcdserverpb::TxnRequest t;
    t.add_success();
    txn("txn empty operation", t);
  }
  {
    etcdserverpb::TxnRequest t;
    RangeRequest* r = t.add_success()->mutable_request_range();
    *r = Range("a", "z");
    r->set_sort_order(static_cast<RangeRequest::SortOrder>(7));
    txn("txn range with an unknown sort order", t);
  }
  {
    etcdserverpb::TxnRequest t;
    *t.add_success()->mutable_request_put() = Put("", "v");
    txn("txn put with an empty key", t);
  }
  {
    etcdserverpb::TxnRequest t;
    RangeRequest* r = t.add_success()->mutable_request_range();
    *r = Range("a", "z");
    r->set_revision(99);
    txn("txn range at a future revision", t);
  }
  {
    // Three levels of nesting, valid: moves the store forward.
    etcdserverpb::TxnRequest inner;
    *inner.add_success()->mutable_request_put() = Put("n3", "3");
    etcdserverpb::TxnRequest middle;
    *middle.add_success()->mutable_request_put() = Put("n2", "2");
    *middle.add_success()->mutable_request_txn() = inner;
    etcdserverpb::TxnRequest t;
    *t.add_success()->mutable_request_put() = Put("n1", "1");
    *t.add_success()->mutable_request_txn() = middle;
    txn("txn nested three deep", t);
  }
  {
    etcdserverpb::TxnRequest inner;
    *inner.add_success()->mutable_request_put() = Put("n1", "x");
    etcdserverpb::TxnRequest t;
    *t.add_success()->mutable_request_put() = Put("n1", "y");
    *t.add_success()->mutable_request_txn() = inner;
    txn("txn nested duplicate put", t);
  }

  compact("compact a future revision", 99);
  compact("compact an already compacted revision", 2);
  compact("compact at the compact revision", 3);
  compact("compact zero", 0);
  compact("compact negative", -1);

  grant("lease grant TTL too large", 9000000001, 0);
  grant("lease grant negative TTL", -5, 100);
  grant("lease grant existing ID", 10, 100);
  c.push_back({"lease revoke unknown", [](Stubs& s) {
                 etcdserverpb::LeaseRevokeRequest r;
                 r.set_id(777);
                 return s.Call(s.lease(), &Lease::LeaseRevoke, r);
               }});
  c.push_back({"lease time-to-live unknown", [](Stubs& s) {
                 etcdserverpb::LeaseTimeToLiveRequest r;
                 r.set_id(777);
                 r.set_keys(true);
                 return s.Call(s.lease(), &Lease::LeaseTimeToLive, r);
               }});
  c.push_back({"lease revoke", [](Stubs& s) {
                 etcdserverpb::LeaseRevokeRequest r;
                 r.set_id(100);
                 return s.Call(s.lease(), &Lease::LeaseRevoke, r);
               }});

  // After all of it: the whole store, read on the same connection.
  range("range everything", Range(std::string(1, '\0'), std::string(1, '\0')));
  return c;
}

// Runs every case against the cluster's first member.
std::vector<Outcome> RunAll(TestCluster& cluster, bool is_etcd) {
  Stubs stubs(cluster.members().front().client_endpoint);
  std::vector<Outcome> out;
  for (const Case& c : Cases()) {
    if (is_etcd && c.etcd_crashes.has_value()) {
      out.push_back(*c.etcd_crashes);
      continue;
    }
    Outcome o = c.run(stubs);
    if (c.code_only) o.message.clear();
    out.push_back(std::move(o));
  }
  return out;
}

// HashKV at the current revision from every member.
std::vector<uint32_t> Hashes(TestCluster& cluster) {
  std::vector<uint32_t> hashes;
  for (const TestMember& m : cluster.members()) {
    Stubs stubs(m.client_endpoint);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    etcdserverpb::HashKVResponse resp;
    grpc::Status s = stubs.maintenance()->HashKV(&ctx, etcdserverpb::HashKVRequest(), &resp);
    EXPECT_TRUE(s.ok()) << m.name << ": " << s.error_message();
    hashes.push_back(resp.hash());
  }
  return hashes;
}

TEST(BadInputTest, ArbiterAnswersAsEtcdAndAppliesNothingRejected) {
  const ClusterKind etcd_kind = EtcdClusterKind();
  const ClusterKind arbiter_kind = ArbiterClusterKind();
  if (!etcd_kind.unavailable_reason.empty()) GTEST_SKIP() << etcd_kind.unavailable_reason;
  ASSERT_TRUE(arbiter_kind.unavailable_reason.empty()) << arbiter_kind.unavailable_reason;

  absl::StatusOr<std::unique_ptr<TestCluster>> etcd = etcd_kind.start(3);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  absl::StatusOr<std::unique_ptr<TestCluster>> arbiter = arbiter_kind.start(3);
  ASSERT_TRUE(arbiter.ok()) << arbiter.status();

  const std::vector<Outcome> want = RunAll(**etcd, /*is_etcd=*/true);
  const std::vector<Outcome> got = RunAll(**arbiter, /*is_etcd=*/false);
  const std::vector<Case> cases = Cases();
  ASSERT_EQ(want.size(), cases.size());
  ASSERT_EQ(got.size(), cases.size());
  int errors = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(got[i], want[i]) << cases[i].name;
    if (want[i].code != 0) ++errors;
  }
  // The sequence is mostly bad input: a change that made etcd accept
  // everything would not be a test of anything.
  EXPECT_GE(errors, 25);

  // Every member converges on the same store, and it is etcd's (followers
  // may still be applying the last entries: poll).
  auto all_equal = [](const std::vector<uint32_t>& v) {
    return !v.empty() && std::all_of(v.begin(), v.end(), [&](uint32_t h) { return h == v[0]; });
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::vector<uint32_t> etcd_hashes = Hashes(**etcd);
  std::vector<uint32_t> arbiter_hashes = Hashes(**arbiter);
  while (absl::Now() < deadline && !(all_equal(etcd_hashes) && all_equal(arbiter_hashes))) {
    absl::SleepFor(absl::Milliseconds(50));
    etcd_hashes = Hashes(**etcd);
    arbiter_hashes = Hashes(**arbiter);
  }
  ASSERT_TRUE(all_equal(etcd_hashes));
  ASSERT_TRUE(all_equal(arbiter_hashes));
  EXPECT_EQ(arbiter_hashes[0], etcd_hashes[0]);

  // Maintenance.Hash: Arbiter's members agree (its value is not etcd's).
  std::vector<uint32_t> whole;
  for (const TestMember& m : (*arbiter)->members()) {
    Stubs stubs(m.client_endpoint);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    etcdserverpb::HashResponse resp;
    grpc::Status s = stubs.maintenance()->Hash(&ctx, etcdserverpb::HashRequest(), &resp);
    ASSERT_TRUE(s.ok()) << m.name << ": " << s.error_message();
    EXPECT_GT(resp.header().revision(), 1);
    whole.push_back(resp.hash());
  }
  EXPECT_TRUE(all_equal(whole));
  EXPECT_NE(whole[0], 0u);
}

}  // namespace
}  // namespace arbiter::testing
