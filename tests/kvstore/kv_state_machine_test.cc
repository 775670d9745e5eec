// Tests of KvStateMachine's semantics: revisions, puts, deletes, txns,
// compaction, leases, members, events, snapshots, crash recovery, and
// readers running while commands are applied.
#include "kvstore/kv_state_machine.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kvstore/kv_errors.h"
#include "kvstore/mvcc_keys.h"
#include "leveldb/db.h"
#include "leveldb/iterator.h"
#include "tests/kvstore/kv_test_util.h"

namespace arbiter::kv {
namespace {

using etcdserverpb::Compare;
using testing::Cmp;
using testing::CmpValue;
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

const std::string kAll(1, '\0');

TEST(KvStateMachineTest, FreshStoreIsAtRevisionOne) {
  KvHarness h;
  EXPECT_EQ(h.sm()->CurrentRevision(), 1);
  EXPECT_EQ(h.sm()->CompactRevision(), -1);
  EXPECT_EQ(h.sm()->AppliedIndex(), 0u);
  etcdserverpb::RangeResponse r = h.Get("a");
  EXPECT_EQ(r.header().revision(), 1);
  EXPECT_EQ(r.count(), 0);
}

TEST(KvStateMachineTest, PutCreatesAndModifies) {
  KvHarness h;
  internalpb::Response r1 = h.Apply(PutReq("foo", "bar"));
  ASSERT_TRUE(r1.has_put());
  EXPECT_EQ(r1.put().header().revision(), 2);
  EXPECT_FALSE(r1.put().has_prev_kv());
  // The same value again still takes a revision.
  internalpb::Request again = PutReq("foo", "bar");
  again.mutable_put()->set_prev_kv(true);
  internalpb::Response r2 = h.Apply(again);
  EXPECT_EQ(r2.put().header().revision(), 3);
  EXPECT_EQ(r2.put().prev_kv().mod_revision(), 2);
  EXPECT_EQ(r2.put().prev_kv().value(), "bar");

  etcdserverpb::RangeResponse got = h.Get("foo");
  ASSERT_EQ(got.kvs_size(), 1);
  EXPECT_EQ(got.kvs(0).key(), "foo");
  EXPECT_EQ(got.kvs(0).value(), "bar");
  EXPECT_EQ(got.kvs(0).create_revision(), 2);
  EXPECT_EQ(got.kvs(0).mod_revision(), 3);
  EXPECT_EQ(got.kvs(0).version(), 2);
  EXPECT_EQ(got.kvs(0).lease(), 0);
  EXPECT_EQ(got.header().revision(), 3);
  EXPECT_EQ(h.sm()->AppliedIndex(), 2u);
}

TEST(KvStateMachineTest, DeleteBumpsOnlyWhenSomethingIsDeleted) {
  KvHarness h;
  internalpb::Response none = h.Apply(DelReq("nothing"));
  EXPECT_EQ(none.delete_range().deleted(), 0);
  EXPECT_EQ(none.delete_range().header().revision(), 1);
  EXPECT_EQ(h.sm()->CurrentRevision(), 1);
  // The index still advances for a no-op.
  EXPECT_EQ(h.sm()->AppliedIndex(), 1u);

  h.Apply(PutReq("a", "1"));
  h.Apply(PutReq("b", "2"));
  h.Apply(PutReq("c", "3"));
  internalpb::Response del = h.Apply(DelReq("a", "c", /*prev_kv=*/true));
  EXPECT_EQ(del.delete_range().deleted(), 2);
  EXPECT_EQ(del.delete_range().header().revision(), 5);
  ASSERT_EQ(del.delete_range().prev_kvs_size(), 2);
  EXPECT_EQ(del.delete_range().prev_kvs(0).key(), "a");
  EXPECT_EQ(del.delete_range().prev_kvs(1).value(), "2");
  EXPECT_EQ(h.Get("a", "\xff").count(), 1);

  // Re-creation starts a new generation.
  h.Apply(PutReq("a", "again"));
  etcdserverpb::RangeResponse got = h.Get("a");
  ASSERT_EQ(got.kvs_size(), 1);
  EXPECT_EQ(got.kvs(0).create_revision(), 6);
  EXPECT_EQ(got.kvs(0).version(), 1);
  // The old generation is still readable at its revisions.
  etcdserverpb::RangeRequest old = RangeReq("a");
  old.set_revision(4);
  got = h.Get(old);
  ASSERT_EQ(got.kvs_size(), 1);
  EXPECT_EQ(got.kvs(0).value(), "1");
  EXPECT_EQ(got.header().revision(), 6);
  old.set_revision(5);
  EXPECT_EQ(h.Get(old).kvs_size(), 0);
}

TEST(KvStateMachineTest, TxnWritesShareOneRevision) {
  KvHarness h;
  h.Apply(PutReq("k", "v0"));
  etcdserverpb::TxnRequest t;
  *t.add_compare() = Cmp("k", Compare::VERSION, Compare::EQUAL, 1);
  *t.add_success() = PutOp("a", "1");
  *t.add_success() = PutOp("b", "2");
  *t.add_success() = RangeOp("a", "c");  // sees the two puts above
  *t.add_success() = DelOp("k");
  *t.add_failure() = PutOp("never", "x");
  internalpb::Response r = h.Txn(t);
  ASSERT_TRUE(r.has_txn()) << r.error_message();
  EXPECT_TRUE(r.txn().succeeded());
  EXPECT_EQ(r.txn().header().revision(), 3);
  ASSERT_EQ(r.txn().responses_size(), 4);
  EXPECT_EQ(r.txn().responses(0).response_put().header().revision(), 3);
  const etcdserverpb::RangeResponse& inner = r.txn().responses(2).response_range();
  EXPECT_EQ(inner.count(), 2);
  EXPECT_EQ(inner.header().revision(), 3);
  EXPECT_EQ(inner.kvs(1).value(), "2");
  EXPECT_EQ(r.txn().responses(3).response_delete_range().deleted(), 1);
  EXPECT_EQ(h.sm()->CurrentRevision(), 3);

  etcdserverpb::RangeResponse all = h.Get(kAll, kAll);
  ASSERT_EQ(all.kvs_size(), 2);
  EXPECT_EQ(all.kvs(0).mod_revision(), 3);
  EXPECT_EQ(all.kvs(1).mod_revision(), 3);

  // Sub revisions order the changes: the events come out in op order.
  std::vector<mvccpb::Event> events;
  absl::StatusOr<EventBatch> batch = h.sm()->ReadEvents(kAll, kAll, 3, 3, false, 0);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->events.size(), 3u);
  EXPECT_EQ(batch->events[0].kv().key(), "a");
  EXPECT_EQ(batch->events[1].kv().key(), "b");
  EXPECT_EQ(batch->events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(batch->events[2].kv().key(), "k");
  EXPECT_EQ(batch->events[2].kv().mod_revision(), 3);
  EXPECT_EQ(batch->events[2].kv().version(), 0);
  EXPECT_EQ(batch->next_revision, 4);
}

TEST(KvStateMachineTest, TxnWithoutWritesKeepsTheRevision) {
  KvHarness h;
  h.Apply(PutReq("k", "v"));
  etcdserverpb::TxnRequest t;
  *t.add_compare() = CmpValue("k", Compare::EQUAL, "other");
  *t.add_success() = PutOp("k", "changed");
  *t.add_failure() = RangeOp("k");
  *t.add_failure() = DelOp("missing");
  internalpb::Response r = h.Txn(t);
  EXPECT_FALSE(r.txn().succeeded());
  EXPECT_EQ(r.txn().header().revision(), 2);
  EXPECT_EQ(r.txn().responses(0).response_range().kvs(0).value(), "v");
  EXPECT_EQ(r.txn().responses(1).response_delete_range().header().revision(), 2);
  EXPECT_EQ(h.sm()->CurrentRevision(), 2);
}

TEST(KvStateMachineTest, CompareOnMissingKeys) {
  KvHarness h;
  struct {
    Compare c;
    bool want;
  } tests[] = {
      // No key: VALUE fails whatever the operator; others compare with 0.
      {CmpValue("m", Compare::EQUAL, ""), false},
      {CmpValue("m", Compare::NOT_EQUAL, "x"), false},
      {Cmp("m", Compare::CREATE, Compare::EQUAL, 0), true},
      {Cmp("m", Compare::VERSION, Compare::EQUAL, 0), true},
      {Cmp("m", Compare::MOD, Compare::LESS, 1), true},
      {Cmp("m", Compare::LEASE, Compare::EQUAL, 0), true},
      {Cmp("m", Compare::VERSION, Compare::GREATER, 0), false},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    etcdserverpb::TxnRequest t;
    *t.add_compare() = tests[i].c;
    EXPECT_EQ(h.Txn(t).txn().succeeded(), tests[i].want);
  }
}

TEST(KvStateMachineTest, CompareWithRangeEndMustHoldForEveryKey) {
  KvHarness h;
  h.Apply(PutReq("p/1", "x"));
  h.Apply(PutReq("p/2", "x"));
  h.Apply(PutReq("p/3", "y"));
  auto holds = [&](Compare c) {
    c.set_range_end("p0");
    etcdserverpb::TxnRequest t;
    *t.add_compare() = c;
    return h.Txn(t).txn().succeeded();
  };
  EXPECT_FALSE(holds(CmpValue("p/", Compare::EQUAL, "x")));
  EXPECT_TRUE(holds(CmpValue("p/", Compare::GREATER, "w")));
  EXPECT_TRUE(holds(Cmp("p/", Compare::VERSION, Compare::EQUAL, 1)));
  EXPECT_TRUE(holds(Cmp("p/", Compare::CREATE, Compare::LESS, 5)));
  EXPECT_FALSE(holds(Cmp("p/", Compare::MOD, Compare::LESS, 4)));
  // "\0": every key from p/2 on.
  Compare c = CmpValue("p/2", Compare::NOT_EQUAL, "z");
  c.set_range_end(std::string(1, '\0'));
  etcdserverpb::TxnRequest t;
  *t.add_compare() = c;
  EXPECT_TRUE(h.Txn(t).txn().succeeded());
}

TEST(KvStateMachineTest, NestedTxnComparesSeeTheStateBeforeTheTxn) {
  KvHarness h;
  etcdserverpb::TxnRequest inner;
  *inner.add_compare() = Cmp("x", Compare::VERSION, Compare::EQUAL, 0);
  *inner.add_success() = PutOp("y", "inner-success");
  *inner.add_failure() = PutOp("y", "inner-failure");
  etcdserverpb::TxnRequest outer;
  *outer.add_success() = PutOp("x", "1");
  *outer.add_success()->mutable_request_txn() = inner;
  internalpb::Response r = h.Txn(outer);
  ASSERT_TRUE(r.has_txn()) << r.error_message();
  // x did not exist before the txn, so the nested compare held.
  EXPECT_EQ(h.Get("y").kvs(0).value(), "inner-success");
  const etcdserverpb::TxnResponse& nested = r.txn().responses(1).response_txn();
  EXPECT_TRUE(nested.succeeded());
  EXPECT_EQ(nested.responses(0).response_put().header().revision(), 2);
  EXPECT_EQ(nested.header().revision(), 0);
  EXPECT_EQ(h.Get("y").kvs(0).mod_revision(), 2);
}

TEST(KvStateMachineTest, PutIgnoreValueAndLease) {
  KvHarness h;
  internalpb::Response g = h.Apply(GrantReq(60, 7));
  h.Apply(PutReq("k", "v1", 7));
  internalpb::Request r = PutReq("k", "");
  r.mutable_put()->set_ignore_value(true);
  r.mutable_put()->set_ignore_lease(true);
  ASSERT_TRUE(ResponseError(h.Apply(r)).ok());
  etcdserverpb::RangeResponse got = h.Get("k");
  EXPECT_EQ(got.kvs(0).value(), "v1");
  EXPECT_EQ(got.kvs(0).lease(), 7);
  EXPECT_EQ(got.kvs(0).version(), 2);
  // A put with lease 0 detaches the key.
  h.Apply(PutReq("k", "v2"));
  EXPECT_TRUE(h.sm()->GetLease(7, true)->keys.empty());
}

// The index holds no values: reads fetch them from the database, and a
// txn's later ops read what its earlier ops wrote before anything is stored.
TEST(KvStateMachineTest, ValuesComeFromTheStoreOrTheCommandsOwnWrites) {
  KvHarness h;
  h.Apply(GrantReq(60, 7));
  h.Apply(PutReq("a", "old", 7));
  etcdserverpb::TxnRequest t;
  *t.add_compare() = Cmp("a", Compare::LEASE, Compare::EQUAL, 7);
  *t.add_compare() = CmpValue("a", Compare::EQUAL, "old");
  etcdserverpb::RequestOp put = PutOp("a", "new");
  put.mutable_request_put()->set_prev_kv(true);
  *t.add_success() = put;
  *t.add_success() = RangeOp("a");
  internalpb::Response r = h.Txn(t);
  ASSERT_TRUE(r.has_txn()) << r.error_message();
  ASSERT_TRUE(r.txn().succeeded());
  EXPECT_EQ(r.txn().responses(0).response_put().prev_kv().value(), "old");
  EXPECT_EQ(r.txn().responses(0).response_put().prev_kv().lease(), 7);
  const etcdserverpb::RangeResponse& inner = r.txn().responses(1).response_range();
  ASSERT_EQ(inner.kvs_size(), 1);
  EXPECT_EQ(inner.kvs(0).value(), "new");
  EXPECT_EQ(inner.kvs(0).version(), 2);
  EXPECT_EQ(inner.kvs(0).lease(), 0);
  EXPECT_TRUE(h.sm()->GetLease(7, true)->keys.empty());

  // The older value is still readable at its revision.
  etcdserverpb::RangeRequest at = RangeReq("a");
  at.set_revision(2);
  etcdserverpb::RangeResponse old;
  ASSERT_TRUE(h.sm()->Range(at, &old).ok());
  ASSERT_EQ(old.kvs_size(), 1);
  EXPECT_EQ(old.kvs(0).value(), "old");
  internalpb::Response del = h.Apply(DelReq("a", "", /*prev_kv=*/true));
  ASSERT_EQ(del.delete_range().prev_kvs_size(), 1);
  EXPECT_EQ(del.delete_range().prev_kvs(0).value(), "new");
  EXPECT_EQ(h.Get("a").kvs_size(), 0);
}

// Applies are not synced; Sync() makes all of them survive a power loss.
// The applies after it are lost with the power (the crash is real).
TEST(KvStateMachineTest, SyncKeepsEveryApplyThroughPowerLoss) {
  KvHarness h;
  EXPECT_TRUE(h.sm()->Sync().ok()) << "nothing applied yet";
  for (int i = 0; i < 50; ++i) h.Apply(PutReq(absl::StrCat("k", i), std::string(100, 'v')));
  ASSERT_TRUE(h.sm()->Sync().ok());
  h.Apply(PutReq("late1", "x"));
  h.Apply(PutReq("late2", "x"));
  h.Crash();
  EXPECT_EQ(h.sm()->AppliedIndex(), 50u);
  EXPECT_EQ(h.Get("k49").kvs_size(), 1);
  EXPECT_EQ(h.Get("late1").kvs_size(), 0);
}

TEST(KvStateMachineTest, CompactionRemovesOldRevisionsPhysically) {
  KvHarness h;
  h.Apply(PutReq("a", "1"));  // 2
  h.Apply(PutReq("a", "2"));  // 3
  h.Apply(PutReq("b", "1"));  // 4
  h.Apply(DelReq("b"));       // 5
  h.Apply(PutReq("a", "3"));  // 6
  internalpb::Response c = h.Apply(CompactReq(5));
  ASSERT_TRUE(ResponseError(c).ok()) << c.error_message();
  EXPECT_EQ(c.compaction().header().revision(), 6);
  EXPECT_EQ(h.sm()->CompactRevision(), 5);
  etcdserverpb::RangeRequest at5 = RangeReq("a");
  at5.set_revision(5);
  EXPECT_EQ(h.Get(at5).kvs(0).value(), "2");
  at5.set_revision(4);
  etcdserverpb::RangeResponse resp;
  EXPECT_TRUE(IsKvError(h.sm()->Range(at5, &resp), ErrCompacted()));

  // Left on disk: a@3 (the value at 5) and a@6; a@2 and both b records
  // (deleted at 5) are gone.
  h.Reopen();
  EXPECT_EQ(h.sm()->CompactRevision(), 5);
  KvStateMachine* sm = h.sm();
  (void)sm;
  std::vector<int64_t> revs;
  absl::StatusOr<EventBatch> events = h.sm()->ReadEvents(kAll, kAll, 5, 0, false, 0);
  ASSERT_TRUE(events.ok());
  for (const mvccpb::Event& e : events->events) revs.push_back(e.kv().mod_revision());
  EXPECT_EQ(revs, std::vector<int64_t>({6}));
  EXPECT_EQ(h.Get(at5.key()).kvs(0).version(), 3);
}

TEST(KvStateMachineTest, LeaseRevokeDeletesKeysInOneRevision) {
  KvHarness h;
  const int64_t id = h.Apply(GrantReq(10)).lease_grant().id();
  ASSERT_GT(id, 0);
  h.Apply(PutReq("l/b", "x", id));
  h.Apply(PutReq("l/a", "x", id));
  h.Apply(PutReq("other", "x"));
  std::optional<LeaseInfo> info = h.sm()->GetLease(id, true);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->keys, std::vector<std::string>({"l/a", "l/b"}));
  internalpb::Response r = h.Apply(RevokeReq(id));
  ASSERT_TRUE(ResponseError(r).ok());
  EXPECT_EQ(r.lease_revoke().header().revision(), 5);
  EXPECT_EQ(h.sm()->CurrentRevision(), 5);
  EXPECT_EQ(h.Get("l/", "l0").count(), 0);
  EXPECT_EQ(h.Get("other").count(), 1);
  EXPECT_FALSE(h.sm()->GetLease(id, false).has_value());
  absl::StatusOr<EventBatch> ev = h.sm()->ReadEvents("l/", "l0", 5, 5, false, 0);
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->events.size(), 2u);
  EXPECT_EQ(ev->events[0].kv().key(), "l/a");
  // A lease without keys is revoked without a new revision.
  const int64_t empty = h.Apply(GrantReq(10)).lease_grant().id();
  EXPECT_EQ(h.Apply(RevokeReq(empty)).lease_revoke().header().revision(), 5);
}

TEST(KvStateMachineTest, LeaseIdsAreDerivedFromTheLogIndex) {
  KvHarness a, b;
  for (int i = 0; i < 20; ++i) {
    const int64_t ia = a.Apply(GrantReq(5)).lease_grant().id();
    const int64_t ib = b.Apply(GrantReq(5)).lease_grant().id();
    EXPECT_EQ(ia, ib);
    EXPECT_GT(ia, 0);
  }
  EXPECT_EQ(a.sm()->Leases().size(), 20u);
  EXPECT_EQ(a.sm()->Hash(), b.sm()->Hash());
}

TEST(KvStateMachineTest, LeaseTtlAndCheckpoint) {
  KvStateMachine::Options options;
  options.min_lease_ttl = 5;
  KvHarness h(options);
  internalpb::Response g = h.Apply(GrantReq(1, 42));
  EXPECT_EQ(g.lease_grant().id(), 42);
  EXPECT_EQ(g.lease_grant().ttl(), 5);
  EXPECT_EQ(h.Apply(GrantReq(9000000000, 43)).lease_grant().ttl(), 9000000000);
  internalpb::Request cp;
  etcdserverpb::LeaseCheckpoint* c = cp.mutable_lease_checkpoint()->add_checkpoints();
  c->set_id(43);
  c->set_remaining_ttl(1234);
  cp.mutable_lease_checkpoint()->add_checkpoints()->set_id(999);  // unknown: ignored
  ASSERT_TRUE(ResponseError(h.Apply(cp)).ok());
  h.Reopen();
  std::vector<LeaseInfo> leases = h.sm()->Leases();
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].id, 42);
  EXPECT_EQ(leases[0].remaining_ttl, 0);
  EXPECT_EQ(leases[1].ttl, 9000000000);
  EXPECT_EQ(leases[1].remaining_ttl, 1234);
}

TEST(KvStateMachineTest, MemberTable) {
  KvHarness h;
  internalpb::Request r;
  internalpb::MemberAttributes* m = r.mutable_member_attributes();
  m->set_id(0xabc);
  m->set_name("one");
  m->add_peer_urls("http://127.0.0.1:2380");
  h.Apply(r);
  m->set_id(0x123);
  m->set_name("two");
  m->set_is_learner(true);
  h.Apply(r);
  m->set_id(0xabc);
  m->set_removed(true);
  h.Apply(r);
  h.Reopen();
  std::vector<internalpb::MemberAttributes> members = h.sm()->Members();
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].id(), 0x123u);
  EXPECT_TRUE(members[0].is_learner());
  EXPECT_TRUE(members[1].removed());
  EXPECT_EQ(h.sm()->CurrentRevision(), 1);
}

class RecordingListener : public EventListener {
 public:
  explicit RecordingListener(bool prev) : prev_(prev) {}
  bool WantsPrevKv() const override { return prev_; }
  void OnRevision(int64_t revision, std::vector<mvccpb::Event> events) override {
    revisions.push_back(revision);
    for (mvccpb::Event& e : events) this->events.push_back(std::move(e));
  }
  void OnRestore(int64_t revision) override { restored.push_back(revision); }

  std::vector<int64_t> revisions;
  std::vector<mvccpb::Event> events;
  std::vector<int64_t> restored;

 private:
  bool prev_;
};

TEST(KvStateMachineTest, ListenerGetsEachRevisionsEvents) {
  KvHarness h;
  RecordingListener l(/*prev=*/true);
  h.sm()->SetEventListener(&l);
  h.Apply(PutReq("a", "1"));
  h.Apply(PutReq("a", "2"));
  h.Apply(DelReq("nothing"));
  h.Apply(DelReq("a"));
  EXPECT_EQ(l.revisions, std::vector<int64_t>({2, 3, 4}));
  ASSERT_EQ(l.events.size(), 3u);
  EXPECT_FALSE(l.events[0].has_prev_kv());
  EXPECT_EQ(l.events[1].prev_kv().value(), "1");
  EXPECT_EQ(l.events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(l.events[2].kv().key(), "a");
  EXPECT_EQ(l.events[2].kv().mod_revision(), 4);
  EXPECT_EQ(l.events[2].kv().value(), "");
  EXPECT_EQ(l.events[2].prev_kv().value(), "2");
  // The revision is readable when the listener hears of it.
  EXPECT_EQ(h.sm()->CurrentRevision(), 4);
  h.sm()->SetEventListener(nullptr);
}

TEST(KvStateMachineTest, ReadEventsInWholeRevisions) {
  KvHarness h;
  etcdserverpb::TxnRequest t;
  *t.add_success() = PutOp("a", "1");
  *t.add_success() = PutOp("b", "1");
  *t.add_success() = PutOp("c", "1");
  h.Txn(t);                   // 2
  h.Apply(PutReq("a", "2"));  // 3
  h.Apply(PutReq("z", "2"));  // 4
  absl::StatusOr<EventBatch> b = h.sm()->ReadEvents("a", "y", 1, 0, true, 2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->events.size(), 3u);  // revision 2 is not split
  EXPECT_EQ(b->next_revision, 3);
  b = h.sm()->ReadEvents("a", "y", b->next_revision, 0, true, 2);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->events.size(), 1u);
  EXPECT_EQ(b->events[0].prev_kv().value(), "1");
  EXPECT_EQ(b->next_revision, 5);
  h.Apply(CompactReq(3));
  EXPECT_TRUE(IsKvError(h.sm()->ReadEvents("a", "", 2, 0, false, 0).status(), ErrCompacted()));
  EXPECT_TRUE(h.sm()->ReadEvents("a", "", 3, 0, false, 0).ok());
}

TEST(KvStateMachineTest, SnapshotRestoresTheSameState) {
  KvHarness a;
  const int64_t id = a.Apply(GrantReq(30)).lease_grant().id();
  a.Apply(PutReq("x", "1", id));
  a.Apply(PutReq("y", "1"));
  a.Apply(PutReq("y", "2"));
  a.Apply(DelReq("x"));
  a.Apply(PutReq("x", "3", id));
  a.Apply(CompactReq(3));
  absl::StatusOr<std::string> snap = a.sm()->Snapshot();
  ASSERT_TRUE(snap.ok());

  KvHarness b;
  b.Apply(PutReq("junk", "gone"));
  RecordingListener l(false);
  b.sm()->SetEventListener(&l);
  ASSERT_TRUE(b.sm()->Restore(a.index(), *snap).ok());
  EXPECT_EQ(l.restored, std::vector<int64_t>({a.sm()->CurrentRevision()}));
  EXPECT_EQ(b.sm()->Hash(), a.sm()->Hash());
  EXPECT_EQ(b.sm()->AppliedIndex(), a.index());
  EXPECT_EQ(b.Get("junk").count(), 0);
  EXPECT_EQ(b.sm()->GetLease(id, true)->keys, std::vector<std::string>({"x"}));
  absl::StatusOr<HashKvResult> ha = a.sm()->HashKv(0), hb = b.sm()->HashKv(0);
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(ha->hash, hb->hash);
  EXPECT_EQ(hb->compact_revision, 3);
  // Both continue the same way.
  b.set_index(a.index());
  b.sm()->SetEventListener(nullptr);
  a.Apply(PutReq("z", "9"));
  b.Apply(PutReq("z", "9"));
  EXPECT_EQ(b.sm()->Hash(), a.sm()->Hash());
  b.Reopen();
  EXPECT_EQ(b.sm()->Hash(), a.sm()->Hash());
}

TEST(KvStateMachineTest, BadSnapshotChangesNothing) {
  KvHarness a;
  a.Apply(PutReq("k", "v"));
  std::string snap = *a.sm()->Snapshot();
  const uint64_t before = a.sm()->Hash();
  std::string flipped = snap;
  flipped[flipped.size() / 2] ^= 0x10;
  EXPECT_EQ(a.sm()->Restore(10, flipped).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(a.sm()->Restore(10, snap.substr(0, snap.size() - 3)).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(a.sm()->Restore(10, "not a snapshot at all").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(a.sm()->Hash(), before);
  EXPECT_EQ(a.sm()->AppliedIndex(), 1u);
}

// A new cluster's first snapshot holds no data: the empty state.
TEST(KvStateMachineTest, EmptySnapshotIsTheEmptyState) {
  KvHarness fresh, used;
  used.Apply(PutReq("k", "v"));
  used.Apply(GrantReq(10, 3));
  ASSERT_TRUE(used.sm()->Restore(5, "").ok());
  EXPECT_EQ(used.sm()->Hash(), fresh.sm()->Hash());
  EXPECT_EQ(used.sm()->CurrentRevision(), 1);
  EXPECT_EQ(used.sm()->AppliedIndex(), 5u);
  EXPECT_TRUE(used.sm()->Leases().empty());
  EXPECT_EQ(used.Get("k").count(), 0);
}

TEST(KvStateMachineTest, HashDependsOnStateNotIndex) {
  KvHarness a, b;
  a.Apply(PutReq("k", "v"));
  b.set_index(100);
  b.Apply(PutReq("k", "v"));
  EXPECT_EQ(a.sm()->Hash(), b.sm()->Hash());
  b.Apply(PutReq("k", "v"));
  EXPECT_NE(a.sm()->Hash(), b.sm()->Hash());
}

TEST(KvStateMachineTest, CrashLosesUnsyncedBatchesWhichReplayRestores) {
  KvHarness h;
  std::vector<internalpb::Request> log;
  for (int i = 0; i < 50; ++i) {
    log.push_back(PutReq(absl::StrCat("k", i % 7), absl::StrCat("v", i)));
    if (i % 10 == 9) log.push_back(DelReq("k3"));
  }
  for (const internalpb::Request& r : log) h.Apply(r);
  const uint64_t hash = h.sm()->Hash();
  const int64_t rev = h.sm()->CurrentRevision();
  h.Crash();
  // Nothing was synced, so LevelDB recovered a prefix (possibly empty) of
  // the batches; the applied index says which.
  const uint64_t applied = h.sm()->AppliedIndex();
  ASSERT_LE(applied, log.size());
  h.set_index(applied);
  for (uint64_t i = applied; i < log.size(); ++i) h.Apply(log[i]);
  EXPECT_EQ(h.sm()->Hash(), hash);
  EXPECT_EQ(h.sm()->CurrentRevision(), rev);
}

TEST(KvStateMachineTest, ApplyRefusesOldIndexes) {
  KvHarness h;
  h.Apply(PutReq("k", "v"));
  std::string out;
  EXPECT_FALSE(h.sm()->Apply(1, PutReq("k", "w").SerializeAsString(), &out).ok());
  EXPECT_EQ(h.Get("k").kvs(0).value(), "v");
}

TEST(KvStateMachineTest, MalformedCommandIsAnsweredAndApplied) {
  KvHarness h;
  std::string out;
  ASSERT_TRUE(h.sm()->Apply(1, "\xff\xff\xff", &out).ok());
  internalpb::Response r;
  ASSERT_TRUE(r.ParseFromString(out));
  EXPECT_EQ(r.error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(h.sm()->AppliedIndex(), 1u);
}

TEST(KvStateMachineTest, FailedWriteStopsTheStore) {
  KvHarness h;
  h.Apply(PutReq("k", "v"));
  h.fault_env()->set_no_space(true);
  std::string out;
  // LevelDB reports the failed log append; the store must refuse to go on.
  absl::Status s = h.sm()->Apply(2, PutReq("k", "w").SerializeAsString(), &out);
  EXPECT_FALSE(s.ok());
  h.fault_env()->set_no_space(false);
  EXPECT_FALSE(h.sm()->Apply(3, PutReq("k", "x").SerializeAsString(), &out).ok());
}

// Polls until the reader thread has done `target` reads, for at most 30 s.
bool WaitForReads(const std::atomic<int>& reads, int target) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (reads.load() < target) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Changes the closed store's database behind its back, then opens it.
absl::Status OpenTampered(KvHarness* h, const std::vector<std::string>& deletes,
                          const std::vector<std::pair<std::string, std::string>>& puts) {
  h->Close();
  leveldb::Options o;
  o.env = h->fault_env();
  leveldb::DB* raw = nullptr;
  EXPECT_TRUE(leveldb::DB::Open(o, h->dir(), &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  for (const std::string& k : deletes) EXPECT_TRUE(db->Delete({}, k).ok());
  for (const auto& [k, v] : puts) EXPECT_TRUE(db->Put({}, k, v).ok());
  db.reset();
  KvStateMachine::Options options;
  options.env = h->fault_env();
  return KvStateMachine::Open(h->dir(), options).status();
}

TEST(KvStateMachineTest, OpenRefusesForeignOrDamagedData) {
  auto filled = [] {
    auto h = std::make_unique<KvHarness>();
    const int64_t id = h->Apply(GrantReq(10, 5)).lease_grant().id();
    h->Apply(PutReq("k", "v", id));  // 2
    h->Apply(PutReq("k", "w", id));  // 3
    return h;
  };
  mvccpb::KeyValue kv;
  kv.set_key("k");
  kv.set_mod_revision(9);
  kv.set_create_revision(9);
  kv.set_version(1);
  const std::string bad_mod = kv.SerializeAsString();
  mvccpb::KeyValue tomb;
  tomb.set_key("never");
  tomb.set_mod_revision(3);
  struct {
    std::vector<std::string> deletes;
    std::vector<std::pair<std::string, std::string>> puts;
    std::string want;  // in the message
  } tests[] = {
      {{}, {{"zz", "x"}}, "unknown key"},
      {{}, {{mvcc_keys::kFormatVersionKey, "2"}}, "unknown format version"},
      {{mvcc_keys::kFormatVersionKey}, {}, "m/format"},
      {{}, {{mvcc_keys::RevisionKey({3, 1}), bad_mod}}, "r/3.1: mod_revision"},
      {{}, {{mvcc_keys::RevisionKey({3, 1}), tomb.SerializeAsString()}}, "not live"},
      {{}, {{mvcc_keys::RevisionKey({3, 1}), "\xff garbage"}}, "does not parse"},
      {{mvcc_keys::LeaseKey(5)}, {}, "l/5: missing"},
      {{}, {{mvcc_keys::kRevisionKey, mvcc_keys::EncodeBE64(2)}}, "above the current"},
      {{}, {{mvcc_keys::kCompactKey, mvcc_keys::EncodeBE64(10)}}, "compacted revision above"},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    std::unique_ptr<KvHarness> h = filled();
    absl::Status s = OpenTampered(h.get(), tests[i].deletes, tests[i].puts);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_NE(s.message().find(tests[i].want), absl::string_view::npos) << s;
  }
  // The control: an untouched store opens.
  std::unique_ptr<KvHarness> h = filled();
  EXPECT_TRUE(OpenTampered(h.get(), {}, {}).ok());
}

TEST(KvStateMachineTest, ReadersSeeWholeRevisionsWhileApplying) {
  KvHarness h;
  h.Apply(PutReq("a", "0"));
  h.Apply(PutReq("b", "0"));
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!stop.load()) {
      etcdserverpb::RangeResponse r;
      absl::Status s = h.sm()->Range(RangeReq("a", "c"), &r);
      // A compaction above the revision being read may overtake a slow
      // reader: that read is answered as compacted, never torn.
      if (IsKvError(s, ErrCompacted())) continue;
      if (!s.ok() || r.kvs_size() != 2 || r.kvs(0).value() != r.kvs(1).value() ||
          r.kvs(0).mod_revision() > r.header().revision()) {
        torn.fetch_add(1);
      }
      reads.fetch_add(1);
    }
  });
  for (int i = 1; i <= 2000; ++i) {
    etcdserverpb::TxnRequest t;
    *t.add_success() = PutOp("a", std::to_string(i));
    *t.add_success() = PutOp("b", std::to_string(i));
    h.Txn(t);
    if (i % 500 == 0) h.Apply(CompactReq(h.sm()->CurrentRevision() - 10));
  }
  // Let the reader finish at least a few reads after the last write.
  EXPECT_TRUE(WaitForReads(reads, reads.load() + 10));
  stop.store(true);
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 10);
}

}  // namespace
}  // namespace arbiter::kv

namespace arbiter::kv {
namespace {

// Readers overlapping a Restore never mix the two states: each read sees
// the pair (a, b) equal, from one state or the other.
TEST(KvStateMachineTest, ReadersNeverSeeHalfARestore) {
  std::string snaps[2];
  for (int i = 0; i < 2; ++i) {
    KvHarness src;
    for (int n = 0; n <= i * 3; ++n) {
      etcdserverpb::TxnRequest t;
      *t.add_success() = PutOp("a", absl::StrCat("s", i, "-", n));
      *t.add_success() = PutOp("b", absl::StrCat("s", i, "-", n));
      src.Txn(t);
    }
    snaps[i] = *src.sm()->Snapshot();
  }
  KvHarness h;
  ASSERT_TRUE(h.sm()->Restore(1, snaps[0]).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, torn{0};
  std::thread reader([&] {
    while (!stop.load()) {
      etcdserverpb::RangeResponse r;
      absl::Status s = h.sm()->Range(RangeReq("a", "c"), &r);
      if (!s.ok() && !IsKvError(s, ErrCompacted())) torn.fetch_add(1);
      if (s.ok() && (r.kvs_size() != 2 || r.kvs(0).value() != r.kvs(1).value())) {
        torn.fetch_add(1);
      }
      reads.fetch_add(1);
    }
  });
  for (uint64_t i = 2; i < 300; ++i) ASSERT_TRUE(h.sm()->Restore(i, snaps[i % 2]).ok());
  EXPECT_TRUE(WaitForReads(reads, reads.load() + 10));
  stop.store(true);
  reader.join();
  EXPECT_EQ(torn.load(), 0);
}

}  // namespace
}  // namespace arbiter::kv
