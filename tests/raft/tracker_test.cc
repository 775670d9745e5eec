#include "raft/tracker.h"

#include <gtest/gtest.h>

#include <limits>

namespace arbiter::raft {
namespace {

struct Node {
  uint64_t id;
  uint64_t match;
  bool recent_active;
};

// A tracker with the given voters (incoming, outgoing) and learners, whose
// progress has the given match and recent_active.
ProgressTracker MakeTracker(const std::vector<uint64_t>& incoming,
                            const std::vector<uint64_t>& outgoing,
                            const std::vector<uint64_t>& learners, const std::vector<Node>& nodes) {
  ProgressTracker t(256, 0);
  for (uint64_t id : incoming) t.config.voters.incoming.Insert(id);
  for (uint64_t id : outgoing) t.config.voters.outgoing.Insert(id);
  for (uint64_t id : learners) t.config.learners.insert(id);
  for (const Node& n : nodes) {
    Progress pr(n.match + 1, t.max_inflight, t.max_inflight_bytes,
                t.config.learners.count(n.id) > 0);
    pr.match = n.match;
    pr.recent_active = n.recent_active;
    t.progress.insert_or_assign(n.id, pr);
  }
  return t;
}

TEST(ProgressTrackerTest, Committed) {
  struct Case {
    std::vector<uint64_t> incoming;
    std::vector<uint64_t> outgoing;
    std::vector<uint64_t> learners;
    std::vector<Node> nodes;
    uint64_t want;
  };
  const Case cases[] = {
      {{1}, {}, {}, {{1, 7, true}}, 7},
      {{1, 2, 3}, {}, {}, {{1, 7, true}, {2, 5, true}, {3, 1, true}}, 5},
      // A voter without progress counts as 0.
      {{1, 2, 3}, {}, {}, {{1, 7, true}}, 0},
      // Learners are far ahead but do not count.
      {{1, 2, 3},
       {},
       {4, 5},
       {{1, 7, true}, {2, 5, true}, {3, 1, true}, {4, 9, true}, {5, 9, true}},
       5},
      {{1}, {}, {2, 3}, {{1, 2, true}, {2, 9, true}, {3, 9, true}}, 2},
      // Joint: both halves must have it.
      {{1, 2, 3},
       {3, 4, 5},
       {},
       {{1, 9, true}, {2, 9, true}, {3, 4, true}, {4, 2, true}, {5, 1, true}},
       2},
      {{1, 2, 3}, {1, 2, 4}, {}, {{1, 9, true}, {2, 8, true}, {3, 1, true}, {4, 1, true}}, 8},
      // Even-sized config.
      {{1, 2, 3, 4}, {}, {}, {{1, 4, true}, {2, 3, true}, {3, 2, true}, {4, 1, true}}, 2},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    ProgressTracker t = MakeTracker(c.incoming, c.outgoing, c.learners, c.nodes);
    EXPECT_EQ(t.Committed(), c.want);
  }
}

TEST(ProgressTrackerTest, CommittedOfEmptyConfigIsUnbounded) {
  ProgressTracker t(256, 0);
  EXPECT_EQ(t.Committed(), std::numeric_limits<uint64_t>::max());
}

TEST(ProgressTrackerTest, QuorumActive) {
  struct Case {
    std::vector<uint64_t> incoming;
    std::vector<uint64_t> outgoing;
    std::vector<uint64_t> learners;
    std::vector<Node> nodes;
    bool want;
  };
  const Case cases[] = {
      {{1}, {}, {}, {{1, 0, true}}, true},
      {{1}, {}, {}, {{1, 0, false}}, false},
      {{1, 2, 3}, {}, {}, {{1, 0, true}, {2, 0, true}, {3, 0, false}}, true},
      {{1, 2, 3}, {}, {}, {{1, 0, true}, {2, 0, false}, {3, 0, false}}, false},
      // Active learners do not make up for inactive voters.
      {{1, 2, 3},
       {},
       {4, 5},
       {{1, 0, true}, {2, 0, false}, {3, 0, false}, {4, 0, true}, {5, 0, true}},
       false},
      {{1, 2, 3, 4}, {}, {}, {{1, 0, true}, {2, 0, true}, {3, 0, false}, {4, 0, false}}, false},
      {{1, 2, 3, 4}, {}, {}, {{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 0, false}}, true},
      // Joint: both halves need an active quorum.
      {{1, 2, 3},
       {4, 5, 6},
       {},
       {{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 0, true}, {5, 0, false}, {6, 0, false}},
       false},
      {{1, 2, 3},
       {4, 5, 6},
       {},
       {{1, 0, true}, {2, 0, true}, {3, 0, false}, {4, 0, true}, {5, 0, true}, {6, 0, false}},
       true},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    EXPECT_EQ(MakeTracker(c.incoming, c.outgoing, c.learners, c.nodes).QuorumActive(), c.want);
  }
}

TEST(ProgressTrackerTest, TallyVotes) {
  struct Vote {
    uint64_t id;
    bool granted;
  };
  struct Case {
    std::vector<uint64_t> incoming;
    std::vector<uint64_t> outgoing;
    std::vector<uint64_t> learners;
    std::vector<Vote> votes;
    int want_granted;
    int want_rejected;
    VoteResult want;
  };
  const VoteResult P = VoteResult::kPending, L = VoteResult::kLost, W = VoteResult::kWon;
  const Case cases[] = {
      {{1, 2, 3}, {}, {}, {}, 0, 0, P},
      {{1, 2, 3}, {}, {}, {{1, true}}, 1, 0, P},
      {{1, 2, 3}, {}, {}, {{1, true}, {2, true}}, 2, 0, W},
      {{1, 2, 3}, {}, {}, {{1, true}, {2, false}}, 1, 1, P},
      {{1, 2, 3}, {}, {}, {{1, true}, {2, false}, {3, false}}, 1, 2, L},
      // A second vote from the same node is ignored.
      {{1, 2, 3}, {}, {}, {{1, true}, {2, false}, {2, true}}, 1, 1, P},
      // Learners and strangers are neither counted nor decisive.
      {{1, 2, 3}, {}, {4}, {{1, true}, {4, true}, {9, true}}, 1, 0, P},
      {{1, 2, 3}, {}, {4}, {{1, false}, {4, false}, {2, false}}, 0, 2, L},
      // Joint: counted once per node, decided by both halves.
      {{1, 2, 3}, {3, 4, 5}, {}, {{1, true}, {2, true}, {3, true}}, 3, 0, P},
      {{1, 2, 3}, {3, 4, 5}, {}, {{1, true}, {2, true}, {3, true}, {4, true}}, 4, 0, W},
      {{1, 2, 3}, {3, 4, 5}, {}, {{1, true}, {2, true}, {4, false}, {5, false}}, 2, 2, L},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    std::vector<Node> nodes;
    for (uint64_t id : c.incoming) nodes.push_back({id, 0, true});
    for (uint64_t id : c.outgoing) nodes.push_back({id, 0, true});
    for (uint64_t id : c.learners) nodes.push_back({id, 0, true});
    ProgressTracker t = MakeTracker(c.incoming, c.outgoing, c.learners, nodes);
    for (const Vote& v : c.votes) t.RecordVote(v.id, v.granted);
    ProgressTracker::Tally tally = t.TallyVotes();
    EXPECT_EQ(tally.granted, c.want_granted);
    EXPECT_EQ(tally.rejected, c.want_rejected);
    EXPECT_EQ(VoteResultName(tally.result), VoteResultName(c.want));

    t.ResetVotes();
    EXPECT_TRUE(t.votes.empty());
    ProgressTracker::Tally empty = t.TallyVotes();
    EXPECT_EQ(empty.granted, 0);
    EXPECT_EQ(empty.rejected, 0);
    EXPECT_EQ(VoteResultName(empty.result), VoteResultName(P));
  }
}

TEST(ProgressTrackerTest, ConfStateRoundTrip) {
  ProgressTracker t = MakeTracker({5, 1, 3}, {4, 1, 2}, {9, 7}, {});
  t.config.learners_next = {4, 2};
  t.config.auto_leave = true;
  raftpb::ConfState cs = t.ConfState();
  EXPECT_EQ(std::vector<uint64_t>(cs.voters().begin(), cs.voters().end()),
            (std::vector<uint64_t>{1, 3, 5}));
  EXPECT_EQ(std::vector<uint64_t>(cs.voters_outgoing().begin(), cs.voters_outgoing().end()),
            (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(std::vector<uint64_t>(cs.learners().begin(), cs.learners().end()),
            (std::vector<uint64_t>{7, 9}));
  EXPECT_EQ(std::vector<uint64_t>(cs.learners_next().begin(), cs.learners_next().end()),
            (std::vector<uint64_t>{2, 4}));
  EXPECT_TRUE(cs.auto_leave());
  EXPECT_EQ(
      DescribeConfState(cs),
      "Voters:[1 3 5] VotersOutgoing:[1 2 4] Learners:[7 9] LearnersNext:[2 4] AutoLeave:true");

  ProgressTracker simple = MakeTracker({2, 1}, {}, {}, {});
  raftpb::ConfState cs2 = simple.ConfState();
  EXPECT_EQ(cs2.voters_size(), 2);
  EXPECT_EQ(cs2.voters_outgoing_size(), 0);
  EXPECT_EQ(cs2.learners_size(), 0);
  EXPECT_EQ(cs2.learners_next_size(), 0);
  EXPECT_FALSE(cs2.auto_leave());
}

TEST(ProgressTrackerTest, NodesAndSingleton) {
  ProgressTracker t = MakeTracker({3, 1}, {4, 1}, {8, 6}, {});
  EXPECT_EQ(t.VoterNodes(), (std::vector<uint64_t>{1, 3, 4}));
  EXPECT_EQ(t.LearnerNodes(), (std::vector<uint64_t>{6, 8}));
  EXPECT_FALSE(t.IsSingleton());
  EXPECT_EQ(t.config.Describe(), "voters=(1 3)&&(1 4) learners=(6 8)");

  EXPECT_TRUE(MakeTracker({1}, {}, {2}, {}).IsSingleton());
  EXPECT_FALSE(MakeTracker({1}, {1}, {}, {}).IsSingleton());  // joint
  EXPECT_FALSE(MakeTracker({1, 2}, {}, {}, {}).IsSingleton());
  EXPECT_FALSE(MakeTracker({}, {}, {}, {}).IsSingleton());
  EXPECT_TRUE(MakeTracker({}, {}, {}, {}).LearnerNodes().empty());

  TrackerConfig cfg;
  cfg.voters.incoming = MajorityConfig{1, 2};
  cfg.voters.outgoing = MajorityConfig{1};
  cfg.learners_next = {3};
  cfg.auto_leave = true;
  EXPECT_EQ(cfg.Describe(), "voters=(1 2)&&(1) learners_next=(3) autoleave");
}

TEST(ProgressTrackerTest, VisitInIdOrderAndMutable) {
  ProgressTracker t = MakeTracker({5, 1, 3}, {}, {}, {{5, 0, true}, {1, 0, true}, {3, 0, true}});
  std::vector<uint64_t> seen;
  t.Visit([&](uint64_t id, Progress& pr) {
    seen.push_back(id);
    pr.recent_active = false;
  });
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 3, 5}));
  for (const auto& [id, pr] : t.progress) EXPECT_FALSE(pr.recent_active) << id;
  EXPECT_FALSE(t.QuorumActive());
}

}  // namespace
}  // namespace arbiter::raft
