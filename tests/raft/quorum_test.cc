#include "raft/quorum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>

namespace arbiter::raft {
namespace {

constexpr uint64_t kInf = std::numeric_limits<uint64_t>::max();

MajorityConfig FromVector(const std::vector<uint64_t>& ids) {
  MajorityConfig c;
  for (uint64_t id : ids) c.Insert(id);
  return c;
}

TEST(MajorityConfigTest, KeepsIdsSortedAndUnique) {
  MajorityConfig c{5, 1, 3, 1};
  EXPECT_EQ(c.ids(), (std::vector<uint64_t>{1, 3, 5}));
  c.Insert(4);
  c.Insert(4);
  c.Insert(0);
  EXPECT_EQ(c.ids(), (std::vector<uint64_t>{0, 1, 3, 4, 5}));
  c.Erase(3);
  c.Erase(7);  // absent: no-op
  EXPECT_EQ(c.ids(), (std::vector<uint64_t>{0, 1, 4, 5}));
  EXPECT_TRUE(c.Contains(4));
  EXPECT_FALSE(c.Contains(3));
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(c.Describe(), "(0 1 4 5)");
  EXPECT_EQ(MajorityConfig().Describe(), "()");
  EXPECT_TRUE(MajorityConfig().empty());
  EXPECT_EQ(c, (MajorityConfig{5, 4, 1, 0}));
}

TEST(JointConfigTest, IdsDescribeContains) {
  JointConfig j{MajorityConfig{1, 2, 3}, MajorityConfig{2, 4, 10}};
  EXPECT_EQ(j.Ids(), (std::vector<uint64_t>{1, 2, 3, 4, 10}));
  EXPECT_EQ(j.Describe(), "(1 2 3)&&(2 4 10)");
  EXPECT_TRUE(j.IsJoint());
  EXPECT_TRUE(j.Contains(10));
  EXPECT_TRUE(j.Contains(1));
  EXPECT_FALSE(j.Contains(5));

  JointConfig simple{MajorityConfig{3, 1}, MajorityConfig{}};
  EXPECT_EQ(simple.Describe(), "(1 3)");
  EXPECT_FALSE(simple.IsJoint());
  EXPECT_EQ(simple.Ids(), (std::vector<uint64_t>{1, 3}));
}

TEST(VoteResultTest, Names) {
  EXPECT_STREQ(VoteResultName(VoteResult::kPending), "VotePending");
  EXPECT_STREQ(VoteResultName(VoteResult::kLost), "VoteLost");
  EXPECT_STREQ(VoteResultName(VoteResult::kWon), "VoteWon");
}

TEST(MapAckIndexerTest, Lookup) {
  MapAckIndexer m({{1, 5}, {2, 0}});
  EXPECT_EQ(m.AckedIndex(1), std::optional<uint64_t>(5));
  EXPECT_EQ(m.AckedIndex(2), std::optional<uint64_t>(0));
  EXPECT_EQ(m.AckedIndex(3), std::nullopt);
}

TEST(MajorityConfigTest, CommittedIndex) {
  struct Case {
    std::vector<uint64_t> ids;
    std::map<uint64_t, uint64_t> acked;  // ids missing here have not answered
    uint64_t want;
  };
  const Case cases[] = {
      // The empty config places no constraint.
      {{}, {}, kInf},
      {{}, {{1, 5}}, kInf},
      // One voter: its index, or 0 while it is unknown.
      {{1}, {}, 0},
      {{1}, {{1, 12}}, 12},
      // Two voters need both.
      {{1, 2}, {}, 0},
      {{1, 2}, {{1, 12}}, 0},
      {{1, 2}, {{1, 12}, {2, 5}}, 5},
      {{1, 2}, {{1, 5}, {2, 12}}, 5},
      // Three voters need two.
      {{1, 2, 3}, {{1, 12}}, 0},
      {{1, 2, 3}, {{1, 12}, {2, 5}}, 5},
      {{1, 2, 3}, {{1, 12}, {2, 5}, {3, 6}}, 6},
      {{1, 2, 3}, {{1, 12}, {2, 5}, {3, 4}}, 5},
      {{1, 2, 3}, {{1, 5}, {2, 5}}, 5},
      {{1, 2, 3}, {{1, 5}, {2, 5}, {3, 12}}, 5},
      {{1, 2, 3}, {{1, 100}, {2, 101}, {3, 103}}, 101},
      // Acks of non-members are ignored.
      {{1, 2, 3}, {{1, 100}, {4, 200}, {5, 200}}, 0},
      // Four voters need three.
      {{1, 2, 3, 4}, {{1, 100}, {2, 101}, {3, 102}, {4, 103}}, 101},
      {{1, 2, 3, 4}, {{1, 100}, {2, 101}, {3, 102}}, 100},
      {{1, 2, 3, 4}, {{1, 100}, {2, 101}}, 0},
      {{1, 2, 3, 4}, {{1, 7}, {2, 7}, {3, 7}, {4, 1}}, 7},
      // Five voters need three.
      {{1, 2, 3, 4, 5}, {{1, 101}, {2, 104}, {3, 103}, {4, 103}}, 103},
      {{1, 2, 3, 4, 5}, {{1, 101}, {2, 102}, {3, 103}, {4, 103}}, 102},
      {{1, 2, 3, 4, 5}, {{1, 101}, {2, 102}}, 0},
      {{1, 2, 3, 4, 5}, {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}}, 3},
      // Six voters need four.
      {{1, 2, 3, 4, 5, 6}, {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}}, 3},
      {{1, 2, 3, 4, 5, 6}, {{1, 9}, {2, 9}, {3, 9}}, 0},
      // Large (more than seven) configs work the same.
      {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}}, 3},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    EXPECT_EQ(FromVector(c.ids).CommittedIndex(MapAckIndexer(c.acked)), c.want);
  }
}

// Checks CommittedIndex against its definition: the largest index that at
// least a majority of voters has reached.
TEST(MajorityConfigTest, CommittedIndexMatchesDefinition) {
  std::mt19937_64 rng(42);
  for (int iter = 0; iter < 2000; ++iter) {
    SCOPED_TRACE(iter);
    const size_t n = 1 + rng() % 9;
    std::vector<uint64_t> ids;
    std::map<uint64_t, uint64_t> acked;
    for (uint64_t id = 1; id <= n; ++id) {
      ids.push_back(id);
      if (rng() % 4 != 0) acked[id] = rng() % 20;
    }
    uint64_t want = 0;
    for (uint64_t idx = 0; idx < 20; ++idx) {
      size_t reached = 0;
      for (uint64_t id : ids) {
        auto it = acked.find(id);
        if (it != acked.end() && it->second >= idx) ++reached;
      }
      if (reached >= n / 2 + 1) want = idx;
    }
    EXPECT_EQ(FromVector(ids).CommittedIndex(MapAckIndexer(acked)), want);
  }
}

TEST(JointConfigTest, CommittedIndexIsMinOfHalves) {
  struct Case {
    std::vector<uint64_t> incoming;
    std::vector<uint64_t> outgoing;
    std::map<uint64_t, uint64_t> acked;
    uint64_t want;
  };
  const Case cases[] = {
      // Both empty: no constraint.
      {{}, {}, {}, kInf},
      // Outgoing empty: behaves as the incoming half alone.
      {{1, 2, 3}, {}, {{1, 10}, {2, 20}, {3, 30}}, 20},
      // Incoming empty (never produced by changes, but well defined).
      {{}, {1, 2, 3}, {{1, 10}, {2, 20}, {3, 30}}, 20},
      // Same voters in both halves.
      {{1, 2, 3}, {1, 2, 3}, {{1, 10}, {2, 20}, {3, 30}}, 20},
      // Incoming lags.
      {{1, 2, 3}, {4, 5, 6}, {{1, 1}, {2, 2}, {3, 3}, {4, 10}, {5, 11}, {6, 12}}, 2},
      // Outgoing lags.
      {{1, 2, 3}, {4, 5, 6}, {{1, 10}, {2, 11}, {3, 12}, {4, 1}, {5, 2}, {6, 3}}, 2},
      // Overlapping halves; 4 has not answered so the outgoing half waits for 1 and 2.
      {{1, 2, 3}, {1, 2, 4}, {{1, 7}, {2, 5}, {3, 9}}, 5},
      {{1, 2, 3}, {1, 2, 4}, {{1, 7}, {2, 5}, {3, 9}, {4, 8}}, 7},
      // One half has no acks at all.
      {{1, 2, 3}, {4}, {{1, 7}, {2, 5}, {3, 9}}, 0},
      {{1}, {1, 2}, {{1, 7}, {2, 5}}, 5},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    JointConfig j{FromVector(c.incoming), FromVector(c.outgoing)};
    MapAckIndexer acked(c.acked);
    EXPECT_EQ(j.CommittedIndex(acked), c.want);
    EXPECT_EQ(j.CommittedIndex(acked),
              std::min(j.incoming.CommittedIndex(acked), j.outgoing.CommittedIndex(acked)));
  }
}

TEST(MajorityConfigTest, Vote) {
  struct Case {
    std::vector<uint64_t> ids;
    std::map<uint64_t, bool> votes;
    VoteResult want;
  };
  const VoteResult P = VoteResult::kPending, L = VoteResult::kLost, W = VoteResult::kWon;
  const Case cases[] = {
      // An empty config wins by convention.
      {{}, {}, W},
      {{}, {{1, false}}, W},
      {{1}, {}, P},
      {{1}, {{1, true}}, W},
      {{1}, {{1, false}}, L},
      {{1, 2}, {{1, true}}, P},
      {{1, 2}, {{1, true}, {2, false}}, L},
      {{1, 2}, {{1, true}, {2, true}}, W},
      {{1, 2}, {{2, false}}, L},
      {{1, 2, 3}, {}, P},
      {{1, 2, 3}, {{1, true}, {2, false}}, P},
      {{1, 2, 3}, {{1, true}, {2, true}}, W},
      {{1, 2, 3}, {{1, false}, {2, false}}, L},
      {{1, 2, 3}, {{1, true}, {2, false}, {3, false}}, L},
      // Even size: a tie is a loss once nobody is left.
      {{1, 2, 3, 4}, {{1, true}, {2, true}}, P},
      {{1, 2, 3, 4}, {{1, true}, {2, true}, {3, false}}, P},
      {{1, 2, 3, 4}, {{1, true}, {2, true}, {3, false}, {4, false}}, L},
      {{1, 2, 3, 4}, {{1, true}, {2, false}, {3, false}}, L},
      {{1, 2, 3, 4}, {{1, true}, {2, true}, {3, true}}, W},
      {{1, 2, 3, 4, 5}, {{1, true}, {2, true}, {3, false}, {4, false}}, P},
      {{1, 2, 3, 4, 5}, {{1, true}, {2, true}, {3, true}}, W},
      {{1, 2, 3, 4, 5}, {{1, false}, {2, false}, {3, false}}, L},
      // Votes from outside the config do not count.
      {{1, 2, 3}, {{1, true}, {4, true}, {5, true}}, P},
      {{1, 2, 3}, {{1, false}, {4, true}, {5, true}, {2, false}}, L},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    EXPECT_EQ(VoteResultName(FromVector(c.ids).Vote(c.votes)), VoteResultName(c.want));
  }
}

TEST(JointConfigTest, Vote) {
  struct Case {
    std::vector<uint64_t> incoming;
    std::vector<uint64_t> outgoing;
    std::map<uint64_t, bool> votes;
    VoteResult want;
  };
  const VoteResult P = VoteResult::kPending, L = VoteResult::kLost, W = VoteResult::kWon;
  const Case cases[] = {
      {{}, {}, {}, W},
      // Outgoing empty: the incoming half alone decides.
      {{1, 2, 3}, {}, {{1, true}}, P},
      {{1, 2, 3}, {}, {{1, true}, {2, true}}, W},
      {{1, 2, 3}, {}, {{1, false}, {2, false}}, L},
      // Both halves must win.
      {{1, 2, 3}, {4, 5, 6}, {{1, true}, {2, true}}, P},
      {{1, 2, 3}, {4, 5, 6}, {{1, true}, {2, true}, {4, true}, {5, true}}, W},
      {{1, 2, 3}, {4, 5, 6}, {{4, true}, {5, true}}, P},
      // Either half losing loses.
      {{1, 2, 3}, {4, 5, 6}, {{1, true}, {2, true}, {4, false}, {5, false}}, L},
      {{1, 2, 3}, {4, 5, 6}, {{1, false}, {2, false}, {4, true}, {5, true}}, L},
      {{1, 2, 3}, {4, 5, 6}, {{1, false}, {2, false}}, L},
      // Overlap: 1 and 2 carry both halves.
      {{1, 2, 3}, {1, 2, 4}, {{1, true}, {2, true}}, W},
      {{1, 2, 3}, {1, 2, 4}, {{1, true}, {3, true}}, P},
      {{1, 2, 3}, {1, 2, 4}, {{1, true}, {3, true}, {4, false}, {2, false}}, L},
      {{1, 2, 3}, {1, 2, 4}, {{1, true}, {3, true}, {4, true}}, W},
      // A single-voter outgoing half.
      {{1, 2, 3}, {4}, {{1, true}, {2, true}}, P},
      {{1, 2, 3}, {4}, {{1, true}, {2, true}, {4, false}}, L},
      {{1, 2, 3}, {4}, {{1, true}, {2, true}, {4, true}}, W},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    JointConfig j{FromVector(c.incoming), FromVector(c.outgoing)};
    EXPECT_EQ(VoteResultName(j.Vote(c.votes)), VoteResultName(c.want));
    // Swapping the halves does not change the outcome.
    JointConfig swapped{j.outgoing, j.incoming};
    EXPECT_EQ(VoteResultName(swapped.Vote(c.votes)), VoteResultName(c.want));
  }
}

}  // namespace
}  // namespace arbiter::raft
