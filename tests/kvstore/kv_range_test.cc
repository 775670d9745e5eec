// One test per Range option, with etcd 3.4's rules: key ranges, limit and
// more, count, sorting (including the NONE rules), keys_only, count_only,
// historical revisions, and the min/max mod/create revision filters; and
// read-only txns at one revision.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kvstore/kv_errors.h"
#include "kvstore/kv_state_machine.h"
#include "tests/kvstore/kv_test_util.h"

namespace arbiter::kv {
namespace {

using etcdserverpb::RangeRequest;
using testing::DelReq;
using testing::KvHarness;
using testing::PutReq;
using testing::RangeOp;
using testing::RangeReq;

const std::string kNul(1, '\0');

std::vector<std::string> Keys(const etcdserverpb::RangeResponse& r) {
  std::vector<std::string> keys;
  for (const mvccpb::KeyValue& kv : r.kvs()) keys.push_back(kv.key());
  return keys;
}

// Keys with distinct create/mod revisions, versions and values:
//   rev 2 put c=1   rev 3 put a=3   rev 4 put b=2   rev 5 put c=0
//   rev 6 put e=9   rev 7 put d=5   rev 8 put a=4   rev 9 put a=7
// Now: a(create 3, mod 9, ver 3, "7"), b(4, 4, 1, "2"), c(2, 5, 2, "0"),
//      d(7, 7, 1, "5"), e(6, 6, 1, "9").
class KvRangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{{"c", "1"},
                                                                        {"a", "3"},
                                                                        {"b", "2"},
                                                                        {"c", "0"},
                                                                        {"e", "9"},
                                                                        {"d", "5"},
                                                                        {"a", "4"},
                                                                        {"a", "7"}}) {
      h_.Apply(PutReq(k, v));
    }
    ASSERT_EQ(h_.sm()->CurrentRevision(), 9);
  }

  etcdserverpb::RangeResponse All(RangeRequest r) {
    r.set_key("a");
    r.set_range_end("z");
    return h_.Get(r);
  }

  KvHarness h_;
};

TEST_F(KvRangeTest, SingleKey) {
  etcdserverpb::RangeResponse r = h_.Get("b");
  EXPECT_EQ(Keys(r), std::vector<std::string>({"b"}));
  EXPECT_EQ(r.count(), 1);
  EXPECT_FALSE(r.more());
  EXPECT_EQ(h_.Get("bb").count(), 0);
}

TEST_F(KvRangeTest, HalfOpenRange) {
  EXPECT_EQ(Keys(h_.Get("b", "d")), std::vector<std::string>({"b", "c"}));
  EXPECT_EQ(h_.Get("d", "b").count(), 0);  // end before key: nothing
}

TEST_F(KvRangeTest, FromKeyWithNulRangeEnd) {
  EXPECT_EQ(Keys(h_.Get("c", kNul)), std::vector<std::string>({"c", "d", "e"}));
  EXPECT_EQ(Keys(h_.Get(kNul, kNul)), std::vector<std::string>({"a", "b", "c", "d", "e"}));
}

TEST_F(KvRangeTest, Prefix) {
  h_.Apply(PutReq("p\xff", "x"));
  h_.Apply(PutReq("p\xff\xff", "y"));
  h_.Apply(PutReq("q", "z"));
  // The prefix end of "p\xff" is "q".
  EXPECT_EQ(h_.Get("p\xff", "q").count(), 2);
}

TEST_F(KvRangeTest, LimitAndMore) {
  RangeRequest r;
  r.set_limit(2);
  etcdserverpb::RangeResponse got = All(r);
  EXPECT_EQ(Keys(got), std::vector<std::string>({"a", "b"}));
  EXPECT_TRUE(got.more());
  EXPECT_EQ(got.count(), 5);  // count ignores the limit
  r.set_limit(5);
  got = All(r);
  EXPECT_EQ(got.kvs_size(), 5);
  EXPECT_FALSE(got.more());
  r.set_limit(0);
  EXPECT_EQ(All(r).kvs_size(), 5);
}

TEST_F(KvRangeTest, CountIgnoresFilters) {
  RangeRequest r;
  r.set_min_mod_revision(7);
  etcdserverpb::RangeResponse got = All(r);
  EXPECT_EQ(Keys(got), std::vector<std::string>({"a", "d"}));
  EXPECT_EQ(got.count(), 5);
}

TEST_F(KvRangeTest, CountOnly) {
  RangeRequest r;
  r.set_count_only(true);
  r.set_limit(1);
  etcdserverpb::RangeResponse got = All(r);
  EXPECT_EQ(got.kvs_size(), 0);
  EXPECT_EQ(got.count(), 5);
  EXPECT_FALSE(got.more());
}

TEST_F(KvRangeTest, KeysOnly) {
  RangeRequest r;
  r.set_keys_only(true);
  etcdserverpb::RangeResponse got = All(r);
  ASSERT_EQ(got.kvs_size(), 5);
  for (const mvccpb::KeyValue& kv : got.kvs()) {
    EXPECT_TRUE(kv.value().empty());
    EXPECT_GT(kv.mod_revision(), 0);
  }
}

TEST_F(KvRangeTest, SortByEachTarget) {
  struct {
    RangeRequest::SortTarget target;
    RangeRequest::SortOrder order;
    std::vector<std::string> want;
  } tests[] = {
      {RangeRequest::KEY, RangeRequest::NONE, {"a", "b", "c", "d", "e"}},
      {RangeRequest::KEY, RangeRequest::ASCEND, {"a", "b", "c", "d", "e"}},
      {RangeRequest::KEY, RangeRequest::DESCEND, {"e", "d", "c", "b", "a"}},
      // A target other than KEY with NONE sorts ascending.
      {RangeRequest::CREATE, RangeRequest::NONE, {"c", "a", "b", "e", "d"}},
      {RangeRequest::CREATE, RangeRequest::ASCEND, {"c", "a", "b", "e", "d"}},
      {RangeRequest::CREATE, RangeRequest::DESCEND, {"d", "e", "b", "a", "c"}},
      {RangeRequest::MOD, RangeRequest::ASCEND, {"b", "c", "e", "d", "a"}},
      {RangeRequest::MOD, RangeRequest::DESCEND, {"a", "d", "e", "c", "b"}},
      {RangeRequest::VALUE, RangeRequest::ASCEND, {"c", "b", "d", "a", "e"}},
      {RangeRequest::VALUE, RangeRequest::DESCEND, {"e", "a", "d", "b", "c"}},
      // Ties (version 1: b, d, e) keep key order.
      {RangeRequest::VERSION, RangeRequest::ASCEND, {"b", "d", "e", "c", "a"}},
      {RangeRequest::VERSION, RangeRequest::DESCEND, {"a", "c", "b", "d", "e"}},
  };
  for (const auto& tt : tests) {
    SCOPED_TRACE(::testing::PrintToString(tt.want));
    RangeRequest r;
    r.set_sort_target(tt.target);
    r.set_sort_order(tt.order);
    EXPECT_EQ(Keys(All(r)), tt.want);
  }
}

// etcd 3.4 (checked against the etcd binary): with sort_order NONE, a target
// other than KEY sorts ascending, but the limit is taken in key order first
// (one extra pair is read), so `etcdctl get a z --sort-by=CREATE --limit=1`
// answers "a", and with --order=ASCEND "c".
TEST_F(KvRangeTest, SortOrderNoneTakesTheLimitInKeyOrder) {
  RangeRequest r;
  r.set_sort_target(RangeRequest::CREATE);
  r.set_limit(1);
  etcdserverpb::RangeResponse got = All(r);
  EXPECT_EQ(Keys(got), std::vector<std::string>({"a"}));
  EXPECT_TRUE(got.more());
  EXPECT_EQ(got.count(), 5);
  r.set_sort_order(RangeRequest::ASCEND);
  EXPECT_EQ(Keys(All(r)), std::vector<std::string>({"c"}));
  r.set_limit(2);
  r.set_sort_order(RangeRequest::NONE);
  EXPECT_EQ(Keys(All(r)), std::vector<std::string>({"c", "a"}));
}

TEST_F(KvRangeTest, LimitAppliesAfterSorting) {
  RangeRequest r;
  r.set_sort_target(RangeRequest::CREATE);
  r.set_sort_order(RangeRequest::DESCEND);
  r.set_limit(1);
  etcdserverpb::RangeResponse got = All(r);
  EXPECT_EQ(Keys(got), std::vector<std::string>({"d"}));
  EXPECT_TRUE(got.more());
  EXPECT_EQ(got.count(), 5);
}

TEST_F(KvRangeTest, HistoricalRevision) {
  RangeRequest r;
  r.set_revision(4);
  etcdserverpb::RangeResponse got = All(r);
  EXPECT_EQ(Keys(got), std::vector<std::string>({"a", "b", "c"}));
  EXPECT_EQ(got.kvs(0).value(), "3");
  EXPECT_EQ(got.kvs(2).value(), "1");
  EXPECT_EQ(got.header().revision(), 9);  // the current revision
  r.set_revision(1);
  EXPECT_EQ(All(r).count(), 0);
  r.set_revision(10);
  etcdserverpb::RangeResponse resp;
  r.set_key("a");
  EXPECT_TRUE(IsKvError(h_.sm()->Range(r, &resp), ErrFutureRev()));
  // A deleted key is absent at and after its deletion.
  h_.Apply(DelReq("b"));
  r.set_revision(9);
  EXPECT_EQ(h_.Get(RangeReq("b")).count(), 0);
  etcdserverpb::RangeRequest b9 = RangeReq("b");
  b9.set_revision(9);
  EXPECT_EQ(h_.Get(b9).count(), 1);
}

TEST_F(KvRangeTest, ModRevisionFilters) {
  RangeRequest r;
  r.set_min_mod_revision(5);
  r.set_max_mod_revision(7);  // inclusive
  EXPECT_EQ(Keys(All(r)), std::vector<std::string>({"c", "d", "e"}));
}

TEST_F(KvRangeTest, CreateRevisionFilters) {
  RangeRequest r;
  r.set_min_create_revision(3);
  r.set_max_create_revision(6);
  EXPECT_EQ(Keys(All(r)), std::vector<std::string>({"a", "b", "e"}));
}

// etcdctl lock waits on the key created just before its own: sort by create
// descending, limit 1, max_create_revision = own - 1.
TEST_F(KvRangeTest, LockRecipeQuery) {
  RangeRequest r;
  r.set_sort_target(RangeRequest::CREATE);
  r.set_sort_order(RangeRequest::DESCEND);
  r.set_limit(1);
  r.set_max_create_revision(5);
  etcdserverpb::RangeResponse got = All(r);
  EXPECT_EQ(Keys(got), std::vector<std::string>({"b"}));
  EXPECT_TRUE(got.more());
}

TEST_F(KvRangeTest, ReadOnlyTxnAtOneRevision) {
  etcdserverpb::TxnRequest t;
  *t.add_compare() = testing::CmpValue("a", etcdserverpb::Compare::EQUAL, "7");
  *t.add_success() = RangeOp("a");
  *t.add_success() = RangeOp("a", "z");
  t.mutable_success(1)->mutable_request_range()->set_revision(4);
  *t.add_failure() = RangeOp("b");
  etcdserverpb::TxnResponse resp;
  ASSERT_TRUE(h_.sm()->ReadTxn(t, &resp).ok());
  EXPECT_TRUE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 9);
  ASSERT_EQ(resp.responses_size(), 2);
  EXPECT_EQ(resp.responses(0).response_range().kvs(0).value(), "7");
  EXPECT_EQ(resp.responses(1).response_range().count(), 3);
  EXPECT_EQ(resp.responses(1).response_range().header().revision(), 9);
  etcdserverpb::TxnRequest writes;
  *writes.add_success() = testing::PutOp("x", "y");
  EXPECT_FALSE(h_.sm()->ReadTxn(writes, &resp).ok());
}

TEST(KvRangeLargeTest, RangesAcrossIndexChunks) {
  KvHarness h;
  const int n = static_cast<int>(KvStateMachine::kIndexChunk) * 2 + 17;
  etcdserverpb::TxnRequest t;
  for (int i = 0; i < n; ++i) {
    char key[16];
    snprintf(key, sizeof(key), "k%06d", i);
    *t.add_success() = testing::PutOp(key, std::to_string(i));
    if (t.success_size() == 100 || i == n - 1) {
      h.Txn(t);
      t.Clear();
    }
  }
  h.Apply(DelReq("k000500", "k000600"));
  etcdserverpb::RangeResponse all = h.Get("k", "l");
  EXPECT_EQ(all.count(), n - 100);
  ASSERT_EQ(all.kvs_size(), n - 100);
  for (int i = 1; i < all.kvs_size(); ++i) EXPECT_LT(all.kvs(i - 1).key(), all.kvs(i).key());
  RangeRequest r = RangeReq("k", "l");
  r.set_limit(3);
  etcdserverpb::RangeResponse few = h.Get(r);
  EXPECT_EQ(few.count(), n - 100);
  EXPECT_EQ(few.kvs_size(), 3);
  EXPECT_TRUE(few.more());
}

}  // namespace
}  // namespace arbiter::kv
