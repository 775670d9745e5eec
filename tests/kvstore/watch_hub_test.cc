// Tests of the watch hub over a real KvStateMachine: created before events,
// order with no gap and no duplicate (live, from history, and across the
// switch between them), slow streams falling back to history without
// blocking apply, filters, prev_kv, cancel, compaction (negative start
// revisions included) and progress.
#include "kvstore/watch_hub.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/kvstore/kv_test_util.h"

namespace arbiter::kv {
namespace {

using testing::CompactReq;
using testing::DelReq;
using testing::KvHarness;
using testing::PutReq;

const std::string kAll(1, '\0');

etcdserverpb::WatchCreateRequest CreateReq(const std::string& key, const std::string& end = "",
                                           int64_t start = 0) {
  etcdserverpb::WatchCreateRequest r;
  r.set_key(key);
  r.set_range_end(end);
  r.set_start_revision(start);
  return r;
}

// Everything a stream sends until it has nothing more within a short wait.
std::vector<etcdserverpb::WatchResponse> Drain(WatchStream* s) {
  std::vector<etcdserverpb::WatchResponse> out;
  etcdserverpb::WatchResponse r;
  while (s->Next(&r, absl::Now() + absl::Milliseconds(50))) out.push_back(r);
  return out;
}

// The (revision, key) of every event for watch id, in order received.
std::vector<std::pair<int64_t, std::string>> Events(
    const std::vector<etcdserverpb::WatchResponse>& rs, int64_t id) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (const auto& r : rs) {
    if (r.watch_id() != id) continue;
    for (const auto& e : r.events()) out.push_back({e.kv().mod_revision(), e.kv().key()});
  }
  return out;
}

class WatchHubTest : public ::testing::Test {
 protected:
  explicit WatchHubTest(WatchHub::Options o = {}) : hub_(h_.sm(), o) {
    h_.sm()->SetEventListener(&hub_);
  }
  KvHarness h_;
  WatchHub hub_;
};

TEST_F(WatchHubTest, CreatedComesFirstThenLiveEventsInOrder) {
  auto s = hub_.NewStream();
  s->Create(CreateReq("a", "z"));
  h_.Apply(PutReq("b", "1"));   // rev 2
  h_.Apply(PutReq("zz", "x"));  // rev 3, outside the range
  h_.Apply(DelReq("b"));        // rev 4
  auto rs = Drain(s.get());
  ASSERT_GE(rs.size(), 3u);
  EXPECT_TRUE(rs[0].created());
  EXPECT_EQ(rs[0].watch_id(), 0);  // the first ID on a stream is 0
  EXPECT_EQ(rs[0].header().revision(), 1);
  auto ev = Events(rs, 0);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0], std::make_pair(int64_t{2}, std::string("b")));
  EXPECT_EQ(ev[1], std::make_pair(int64_t{4}, std::string("b")));
  // A delete carries the key and its revision only.
  EXPECT_EQ(rs.back().events(0).type(), mvccpb::Event::DELETE);
  EXPECT_TRUE(rs.back().events(0).kv().value().empty());
}

TEST_F(WatchHubTest, ReplaysHistoryThenGoesLiveWithoutGapOrDuplicate) {
  for (int i = 0; i < 50; ++i) h_.Apply(PutReq(absl::StrCat("k", i % 7), absl::StrCat(i)));
  auto s = hub_.NewStream();
  s->Create(CreateReq("k", "l", 2));
  // Writes keep coming while the watcher catches up from history; what is
  // read in between must join up with what comes live.
  std::vector<etcdserverpb::WatchResponse> all;
  for (int i = 50; i < 150; ++i) {
    h_.Apply(PutReq(absl::StrCat("k", i % 7), absl::StrCat(i)));
    if (i % 10 == 0) {
      etcdserverpb::WatchResponse r;
      if (s->Next(&r, absl::Now() + absl::Milliseconds(50))) all.push_back(r);
    }
  }
  for (auto& r : Drain(s.get())) all.push_back(r);
  auto ev = Events(all, 0);
  ASSERT_EQ(ev.size(), 150u);  // revisions 2..151
  for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].first, static_cast<int64_t>(i) + 2);
}

class SlowStreamTest : public WatchHubTest {
 protected:
  static WatchHub::Options Small() {
    WatchHub::Options o;
    o.max_stream_queue = 4;
    o.max_catch_up_events = 3;
    return o;
  }
  SlowStreamTest() : WatchHubTest(Small()) {}
};

TEST_F(SlowStreamTest, FullQueueFallsBackToHistoryWithoutBlockingApply) {
  auto s = hub_.NewStream();
  s->Create(CreateReq("k", "l"));
  // Nobody reads the stream while 200 revisions are applied: apply must not
  // wait (it would hang here) and the queue stays bounded.
  for (int i = 0; i < 200; ++i) h_.Apply(PutReq(absl::StrCat("k", i % 5), "v"));
  auto rs = Drain(s.get());
  auto ev = Events(rs, 0);
  ASSERT_EQ(ev.size(), 200u);
  for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].first, static_cast<int64_t>(i) + 2);
}

TEST_F(WatchHubTest, FiltersPrevKvAndCancel) {
  h_.Apply(PutReq("a", "old"));  // rev 2
  auto s = hub_.NewStream();
  etcdserverpb::WatchCreateRequest nodelete = CreateReq("a");
  nodelete.add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  nodelete.set_prev_kv(true);
  s->Create(nodelete);  // id 0
  etcdserverpb::WatchCreateRequest noput = CreateReq("a");
  noput.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  s->Create(noput);              // id 1
  h_.Apply(PutReq("a", "new"));  // rev 3
  h_.Apply(DelReq("a"));         // rev 4
  auto rs = Drain(s.get());
  auto put_only = Events(rs, 0);
  auto del_only = Events(rs, 1);
  ASSERT_EQ(put_only.size(), 1u);
  EXPECT_EQ(put_only[0].first, 3);
  ASSERT_EQ(del_only.size(), 1u);
  EXPECT_EQ(del_only[0].first, 4);
  for (const auto& r : rs) {
    if (r.watch_id() == 0 && r.events_size() > 0) {
      EXPECT_EQ(r.events(0).prev_kv().value(), "old");
    }
    if (r.watch_id() == 1 && r.events_size() > 0) EXPECT_FALSE(r.events(0).has_prev_kv());
  }
  s->Cancel(0);
  s->Cancel(42);  // unknown: no reply
  h_.Apply(PutReq("a", "again"));
  rs = Drain(s.get());
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].canceled());
  EXPECT_EQ(rs[0].watch_id(), 0);
}

TEST_F(WatchHubTest, CompactedStartIsCanceledWithTheCompactRevision) {
  for (int i = 0; i < 5; ++i) h_.Apply(PutReq("a", absl::StrCat(i)));  // revs 2..6
  h_.Apply(CompactReq(4));
  auto s = hub_.NewStream();
  s->Create(CreateReq("a", "", 2));
  auto rs = Drain(s.get());
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_TRUE(rs[0].created());
  EXPECT_TRUE(rs[1].canceled());
  EXPECT_EQ(rs[1].compact_revision(), 4);
  // At the compact revision itself the watcher is fine.
  auto s2 = hub_.NewStream();
  s2->Create(CreateReq("a", "", 4));
  auto ev = Events(Drain(s2.get()), 0);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].first, 4);
}

// As etcd's syncWatchers: history read in one go is one response, whose
// header carries the store's revision (etcdctl -w json shows it).
TEST_F(WatchHubTest, HistoryComesInOneResponseAtTheStoresRevision) {
  h_.Apply(PutReq("a", "1"));  // rev 2
  h_.Apply(PutReq("b", "1"));  // rev 3
  h_.Apply(DelReq("a"));       // rev 4
  h_.Apply(PutReq("z", "1"));  // rev 5, outside the range
  auto s = hub_.NewStream();
  s->Create(CreateReq("a", "c", 2));
  auto rs = Drain(s.get());
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_TRUE(rs[0].created());
  EXPECT_EQ(rs[1].events_size(), 3);
  EXPECT_EQ(rs[1].header().revision(), 5);
}

// As etcd, whose compacted revision is -1 before any compaction: a start
// below it is compacted, -1 replays everything.
TEST_F(WatchHubTest, NegativeStartRevisionsAsEtcd) {
  h_.Apply(PutReq("a", "1"));  // rev 2
  auto s = hub_.NewStream();
  s->Create(CreateReq("a", "", -5));
  auto rs = Drain(s.get());
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_TRUE(rs[0].created());
  EXPECT_TRUE(rs[1].canceled());
  EXPECT_EQ(rs[1].compact_revision(), -1);
  auto all = hub_.NewStream();
  all->Create(CreateReq("a", "", -1));
  EXPECT_EQ(Events(Drain(all.get()), 0).size(), 1u);
  h_.Apply(PutReq("a", "2"));  // rev 3
  h_.Apply(CompactReq(3));
  auto late = hub_.NewStream();
  late->Create(CreateReq("a", "", -1));
  rs = Drain(late.get());
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].compact_revision(), 3);
}

TEST_F(WatchHubTest, BadCreatesAreRefusedInOrder) {
  auto s = hub_.NewStream();
  s->Create(CreateReq("b", "a"));  // empty range
  etcdserverpb::WatchCreateRequest mine = CreateReq("x");
  mine.set_watch_id(7);
  s->Create(mine);
  s->Create(mine);            // duplicate ID
  s->Create(CreateReq("y"));  // auto ID 0
  auto rs = Drain(s.get());
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_TRUE(rs[0].created() && rs[0].canceled());
  EXPECT_EQ(rs[0].watch_id(), -1);
  EXPECT_EQ(rs[0].cancel_reason(), "mvcc: watcher range is empty");
  EXPECT_EQ(rs[1].watch_id(), 7);
  EXPECT_FALSE(rs[1].canceled());
  EXPECT_EQ(rs[2].cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
  EXPECT_EQ(rs[3].watch_id(), 0);
}

TEST_F(WatchHubTest, ProgressRequestAndEmptyKeyMeansEverything) {
  auto s = hub_.NewStream();
  s->Create(CreateReq("", kAll));
  h_.Apply(PutReq("anything", "1"));
  s->RequestProgress();
  auto rs = Drain(s.get());
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(Events(rs, 0).size(), 1u);
  EXPECT_EQ(rs[2].watch_id(), -1);
  EXPECT_EQ(rs[2].header().revision(), 2);
}

TEST_F(WatchHubTest, SnapshotRestoreMakesWatchersResyncFromHistory) {
  auto s = hub_.NewStream();
  s->Create(CreateReq("k", "l"));
  h_.Apply(PutReq("k1", "a"));  // rev 2
  auto snap = h_.sm()->Snapshot();
  ASSERT_TRUE(snap.ok());
  Drain(s.get());
  // A second store receives more writes; restoring its snapshot here must
  // deliver them (from history), not skip them.
  KvHarness other;
  other.Apply(PutReq("k1", "a"));
  other.Apply(PutReq("k2", "b"));  // rev 3
  other.Apply(PutReq("k3", "c"));  // rev 4
  auto snap2 = other.sm()->Snapshot();
  ASSERT_TRUE(snap2.ok());
  ASSERT_TRUE(h_.sm()->Restore(100, *snap2).ok());
  auto ev = Events(Drain(s.get()), 0);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].first, 3);
  EXPECT_EQ(ev[1].first, 4);
}

}  // namespace
}  // namespace arbiter::kv
