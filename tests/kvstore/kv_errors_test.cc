// One test per etcd error the state machine reports: the exact gRPC code and
// message clients match on, from validation (before proposing) and from
// Apply (the same answer, with the index advanced and nothing written).
#include "kvstore/kv_errors.h"

#include <string>

#include "gtest/gtest.h"
#include "kvstore/kv_state_machine.h"
#include "kvstore/kv_validate.h"
#include "tests/kvstore/kv_test_util.h"

namespace arbiter::kv {
namespace {

using testing::CompactReq;
using testing::DelOp;
using testing::DelReq;
using testing::GrantReq;
using testing::KvHarness;
using testing::PutOp;
using testing::PutReq;
using testing::RangeOp;
using testing::RangeReq;
using testing::ResponseError;
using testing::RevokeReq;

void ExpectError(const absl::Status& s, absl::StatusCode code, const std::string& message) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_EQ(s.message(), message);
}

// Applies r, expects the error, and checks nothing but the index changed.
void ExpectApplyError(KvHarness* h, internalpb::Request r, absl::StatusCode code,
                      const std::string& message) {
  const int64_t rev = h->sm()->CurrentRevision();
  const uint64_t hash = h->sm()->Hash();
  const uint64_t index = h->sm()->AppliedIndex();
  internalpb::Response resp = h->Apply(std::move(r));
  ExpectError(ResponseError(resp), code, message);
  EXPECT_EQ(resp.response_case(), internalpb::Response::RESPONSE_NOT_SET);
  EXPECT_EQ(h->sm()->CurrentRevision(), rev);
  EXPECT_EQ(h->sm()->Hash(), hash);
  EXPECT_EQ(h->sm()->AppliedIndex(), index + 1);
}

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
constexpr auto kOutOfRange = absl::StatusCode::kOutOfRange;

TEST(KvErrorsTest, KeyIsNotProvided) {
  const std::string msg = "etcdserver: key is not provided";
  ExpectError(ValidateRange(RangeReq("")), kInvalid, msg);
  ExpectError(ValidatePut(PutReq("", "v").put()), kInvalid, msg);
  ExpectError(ValidateDeleteRange(DelReq("").delete_range()), kInvalid, msg);
  etcdserverpb::TxnRequest t;
  t.add_compare()->set_key("");
  ExpectError(ValidateTxn(t), kInvalid, msg);
  etcdserverpb::TxnRequest t2;
  *t2.add_failure() = RangeOp("");
  ExpectError(ValidateTxn(t2), kInvalid, msg);
  KvHarness h;
  ExpectApplyError(&h, PutReq("", "v"), kInvalid, msg);
  ExpectApplyError(&h, DelReq(""), kInvalid, msg);
  internalpb::Request r;
  *r.mutable_txn() = t;
  ExpectApplyError(&h, r, kInvalid, msg);
  EXPECT_TRUE(IsKvError(ValidatePut(PutReq("", "v").put()), ErrEmptyKey()));
}

TEST(KvErrorsTest, KeyNotFound) {
  const std::string msg = "etcdserver: key not found";
  KvHarness h;
  internalpb::Request r = PutReq("missing", "");
  r.mutable_put()->set_ignore_value(true);
  ExpectApplyError(&h, r, kInvalid, msg);
  r = PutReq("missing", "v");
  r.mutable_put()->set_ignore_lease(true);
  ExpectApplyError(&h, r, kInvalid, msg);
  // In a txn the check is made before any op runs: the txn writes nothing.
  internalpb::Request t;
  *t.mutable_txn()->add_success() = PutOp("first", "v");
  *t.mutable_txn()->add_success() = PutOp("missing", "");
  t.mutable_txn()->mutable_success(1)->mutable_request_put()->set_ignore_value(true);
  ExpectApplyError(&h, t, kInvalid, msg);
  EXPECT_EQ(h.Get("first").count(), 0);
  // A delete to the end of the key space escapes the duplicate check, so a
  // put that keeps the value of a key it deleted reaches apply (etcd 3.4
  // panics there); the txn is refused before it writes anything.
  h.Apply(PutReq("kept", "v"));
  internalpb::Request escape;
  *escape.mutable_txn()->add_success() = DelOp("k", std::string(1, '\0'));
  *escape.mutable_txn()->add_success() = PutOp("kept", "");
  escape.mutable_txn()->mutable_success(1)->mutable_request_put()->set_ignore_value(true);
  EXPECT_TRUE(ValidateRequest(escape).ok());
  ExpectApplyError(&h, escape, kInvalid, msg);
  EXPECT_EQ(h.Get("kept").count(), 1);
  // An empty op in a txn is reported the same way by etcd.
  etcdserverpb::TxnRequest empty_op;
  empty_op.add_success();
  ExpectError(ValidateTxn(empty_op), kInvalid, msg);
}

TEST(KvErrorsTest, ValueProvided) {
  internalpb::Request r = PutReq("k", "v");
  r.mutable_put()->set_ignore_value(true);
  ExpectError(ValidatePut(r.put()), kInvalid, "etcdserver: value is provided");
  KvHarness h;
  h.Apply(PutReq("k", "old"));
  ExpectApplyError(&h, r, kInvalid, "etcdserver: value is provided");
}

TEST(KvErrorsTest, LeaseProvided) {
  internalpb::Request r = PutReq("k", "v", 5);
  r.mutable_put()->set_ignore_lease(true);
  ExpectError(ValidatePut(r.put()), kInvalid, "etcdserver: lease is provided");
  KvHarness h;
  h.Apply(GrantReq(10, 5));
  h.Apply(PutReq("k", "old", 5));
  ExpectApplyError(&h, r, kInvalid, "etcdserver: lease is provided");
}

TEST(KvErrorsTest, TooManyOperations) {
  const std::string msg = "etcdserver: too many operations in txn request";
  etcdserverpb::TxnRequest t;
  for (int i = 0; i < 128; ++i) *t.add_success() = PutOp("k" + std::to_string(i), "v");
  EXPECT_TRUE(ValidateTxn(t).ok());
  *t.add_failure() = RangeOp("x");
  EXPECT_TRUE(ValidateTxn(t).ok());
  etcdserverpb::TxnRequest over = t;
  *over.add_success() = PutOp("k128", "v");
  ExpectError(ValidateTxn(over), kInvalid, msg);
  for (int i = 0; i < 129; ++i) over.add_compare()->set_key("c");
  ExpectError(ValidateTxn(over), kInvalid, msg);
  // A nested txn gets what its parent leaves: 128 - 100.
  etcdserverpb::TxnRequest parent;
  for (int i = 0; i < 99; ++i) *parent.add_success() = RangeOp("r");
  etcdserverpb::TxnRequest* child = parent.add_success()->mutable_request_txn();
  for (int i = 0; i < 28; ++i) *child->add_success() = RangeOp("r");
  EXPECT_TRUE(ValidateTxn(parent).ok());
  *child->add_success() = RangeOp("r");
  ExpectError(ValidateTxn(parent), kInvalid, msg);
  // The limit is the store's option.
  EXPECT_TRUE(ValidateTxn(over, 1000).ok());
  KvHarness h;
  internalpb::Request r;
  *r.mutable_txn() = over;
  ExpectApplyError(&h, r, kInvalid, msg);
}

TEST(KvErrorsTest, DuplicateKey) {
  const std::string msg = "etcdserver: duplicate key given in txn request";
  auto check = [](std::vector<etcdserverpb::RequestOp> ops) {
    etcdserverpb::TxnRequest t;
    for (auto& op : ops) *t.add_success() = op;
    return ValidateTxn(t);
  };
  ExpectError(check({PutOp("a", "1"), PutOp("a", "2")}), kInvalid, msg);
  ExpectError(check({PutOp("a", "1"), DelOp("a")}), kInvalid, msg);
  ExpectError(check({DelOp("a", "c"), PutOp("b", "1")}), kInvalid, msg);
  EXPECT_TRUE(check({DelOp("a", "c"), PutOp("c", "1")}).ok());
  EXPECT_TRUE(check({DelOp("a"), DelOp("a")}).ok());
  // As etcd 3.4: a delete to the end of the key space ("\0") is not checked.
  EXPECT_TRUE(check({DelOp("a", std::string(1, '\0')), PutOp("b", "1")}).ok());
  // Nested: a nested put against an outer delete or put fails; a key put in
  // both branches of one nested txn does not.
  etcdserverpb::RequestOp nested;
  *nested.mutable_request_txn()->add_success() = PutOp("n", "1");
  *nested.mutable_request_txn()->add_failure() = PutOp("n", "2");
  EXPECT_TRUE(check({nested}).ok());
  ExpectError(check({nested, PutOp("n", "3")}), kInvalid, msg);
  ExpectError(check({DelOp("m", "o"), nested}), kInvalid, msg);
  ExpectError(check({nested, nested}), kInvalid, msg);
  // Success and failure are checked separately.
  etcdserverpb::TxnRequest t;
  *t.add_success() = PutOp("a", "1");
  *t.add_failure() = PutOp("a", "2");
  EXPECT_TRUE(ValidateTxn(t).ok());
  KvHarness h;
  internalpb::Request r;
  *r.mutable_txn()->add_success() = PutOp("a", "1");
  *r.mutable_txn()->add_success() = PutOp("a", "2");
  ExpectApplyError(&h, r, kInvalid, msg);
}

TEST(KvErrorsTest, RequiredRevisionHasBeenCompacted) {
  const std::string msg = "etcdserver: mvcc: required revision has been compacted";
  KvHarness h;
  for (int i = 0; i < 5; ++i) h.Apply(PutReq("k", std::to_string(i)));  // revisions 2..6
  ASSERT_TRUE(ResponseError(h.Apply(CompactReq(4))).ok());
  etcdserverpb::RangeRequest r = RangeReq("k");
  r.set_revision(3);
  etcdserverpb::RangeResponse resp;
  ExpectError(h.sm()->Range(r, &resp), kOutOfRange, msg);
  r.set_revision(4);  // exactly the compacted revision is readable
  EXPECT_TRUE(h.sm()->Range(r, &resp).ok());
  ExpectApplyError(&h, CompactReq(4), kOutOfRange, msg);
  ExpectApplyError(&h, CompactReq(2), kOutOfRange, msg);
  internalpb::Request t;
  *t.mutable_txn()->add_success() = RangeOp("k");
  t.mutable_txn()->mutable_success(0)->mutable_request_range()->set_revision(3);
  *t.mutable_txn()->add_success() = PutOp("k", "x");
  ExpectApplyError(&h, t, kOutOfRange, msg);
  etcdserverpb::TxnResponse tr;
  etcdserverpb::TxnRequest ro;
  *ro.add_success() = RangeOp("k");
  ro.mutable_success(0)->mutable_request_range()->set_revision(3);
  ExpectError(h.sm()->ReadTxn(ro, &tr), kOutOfRange, msg);
  ExpectError(h.sm()->HashKv(4).status(), kOutOfRange, msg);
  ExpectError(h.sm()->ReadEvents("k", "", 3, 0, false, 0).status(), kOutOfRange, msg);
}

TEST(KvErrorsTest, RequiredRevisionIsAFutureRevision) {
  const std::string msg = "etcdserver: mvcc: required revision is a future revision";
  KvHarness h;
  h.Apply(PutReq("k", "v"));  // revision 2
  etcdserverpb::RangeRequest r = RangeReq("k");
  r.set_revision(3);
  etcdserverpb::RangeResponse resp;
  ExpectError(h.sm()->Range(r, &resp), kOutOfRange, msg);
  ExpectApplyError(&h, CompactReq(3), kOutOfRange, msg);
  internalpb::Request t;
  *t.mutable_txn()->add_success() = RangeOp("k");
  t.mutable_txn()->mutable_success(0)->mutable_request_range()->set_revision(3);
  ExpectApplyError(&h, t, kOutOfRange, msg);
  ExpectError(h.sm()->HashKv(3).status(), kOutOfRange, msg);
}

TEST(KvErrorsTest, TooLargeLeaseTtl) {
  KvHarness h;
  ExpectApplyError(&h, GrantReq(9000000001), kOutOfRange, "etcdserver: too large lease TTL");
  EXPECT_TRUE(ResponseError(h.Apply(GrantReq(9000000000))).ok());
}

TEST(KvErrorsTest, RequestedLeaseNotFound) {
  const std::string msg = "etcdserver: requested lease not found";
  constexpr auto kNotFound = absl::StatusCode::kNotFound;
  KvHarness h;
  ExpectApplyError(&h, PutReq("k", "v", 77), kNotFound, msg);
  ExpectApplyError(&h, RevokeReq(77), kNotFound, msg);
  internalpb::Request t;
  *t.mutable_txn()->add_success() = PutOp("a", "v");
  *t.mutable_txn()->add_success() = PutOp("b", "v", 77);
  ExpectApplyError(&h, t, kNotFound, msg);
  // Only the chosen branch is checked.
  internalpb::Request ok;
  *ok.mutable_txn()->add_failure() = PutOp("b", "v", 77);
  EXPECT_TRUE(ResponseError(h.Apply(ok)).ok());
  // A revoked lease is gone.
  h.Apply(GrantReq(10, 77));
  h.Apply(RevokeReq(77));
  ExpectApplyError(&h, PutReq("k", "v", 77), kNotFound, msg);
}

TEST(KvErrorsTest, LeaseAlreadyExists) {
  KvHarness h;
  h.Apply(GrantReq(10, 9));
  ExpectApplyError(&h, GrantReq(20, 9), absl::StatusCode::kFailedPrecondition,
                   "etcdserver: lease already exists");
  EXPECT_EQ(h.sm()->GetLease(9, false)->ttl, 10);
}

}  // namespace
}  // namespace arbiter::kv
