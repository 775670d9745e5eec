// Tests of a follower told that its leader's connection closed
// (RawNode::ReportConnectionLost): it campaigns within a few ticks instead
// of an election timeout, the other follower told the same grants its vote,
// a follower not told keeps its leader lease, a wrong report on a healthy
// cluster changes neither the leader nor the term (pre-vote), and hearing
// from the leader again restores the normal lease and timeout.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "raft/raft.h"
#include "tests/harness/network.h"

namespace arbiter::raft {
namespace {

namespace harness = ::arbiter::raft::testing;
using harness::CountMessages;
using harness::Network;
using harness::TickUntil;

constexpr int kElectionTick = 10;  // harness::TestConfig's

Network::Options Opts(uint64_t seed = 1) {
  Network::Options o;
  o.config = harness::TestConfig(/*pre_vote=*/true, /*check_quorum=*/true);
  EXPECT_EQ(o.config.election_tick, kElectionTick);
  EXPECT_TRUE(o.config.campaign_on_leader_loss);
  o.seed = seed;
  return o;
}

std::vector<uint64_t> Ids(int n) {
  std::vector<uint64_t> ids;
  for (int i = 1; i <= n; ++i) ids.push_back(static_cast<uint64_t>(i));
  return ids;
}

// Ticks left before node id's election timer fires.
int TicksToCampaign(Network& net, uint64_t id) {
  return net.peer(id).raft().randomized_election_timeout() - net.peer(id).raft().election_elapsed();
}

// The survivors take turns by rank among the voters other than the lost
// leader, two ticks apart.
TEST(RaftLeaderLossTest, DelayRangeFollowsRank) {
  using Range = std::pair<int, int>;
  Network net(Ids(3), Opts());
  EXPECT_EQ(net.peer(2).raft().LeaderLossDelayRange(1), Range(1, 2));
  EXPECT_EQ(net.peer(3).raft().LeaderLossDelayRange(1), Range(3, 4));
  EXPECT_EQ(net.peer(1).raft().LeaderLossDelayRange(2), Range(1, 2));
  EXPECT_EQ(net.peer(3).raft().LeaderLossDelayRange(2), Range(3, 4));
  Network five(Ids(5), Opts());
  EXPECT_EQ(five.peer(2).raft().LeaderLossDelayRange(1), Range(1, 2));
  EXPECT_EQ(five.peer(4).raft().LeaderLossDelayRange(1), Range(5, 6));
  EXPECT_EQ(five.peer(5).raft().LeaderLossDelayRange(1), Range(7, 8));
  EXPECT_EQ(five.peer(5).raft().LeaderLossDelayRange(3), Range(7, 8));
  EXPECT_EQ(five.peer(4).raft().LeaderLossDelayRange(5), Range(7, 8));
}

// The leader crashes; both followers are told. The one whose short timer
// fires first wins with the other's vote, well before an election timeout.
TEST(RaftLeaderLossTest, ToldFollowerCampaignsWithinBoundAndToldPeerVotesForIt) {
  Network net(Ids(3), Opts());
  net.Campaign(1);
  const uint64_t t1 = net.peer(1).raft().term();
  net.Crash(1);
  for (uint64_t id : {2, 3}) {
    net.peer(id).node().ReportConnectionLost(1);
    EXPECT_TRUE(net.peer(id).raft().leader_lost());
    const auto [lo, hi] = net.peer(id).raft().LeaderLossDelayRange(1);
    EXPECT_GE(TicksToCampaign(net, id), lo);
    EXPECT_LE(TicksToCampaign(net, id), hi);
  }
  // Only 2's clock runs: 3 grants because it no longer honours 1's lease.
  const int delay = TicksToCampaign(net, 2);
  net.Tick(2, delay);

  EXPECT_EQ(net.peer(2).raft().state(), StateType::kLeader);
  EXPECT_EQ(net.peer(2).raft().term(), t1 + 1);
  EXPECT_EQ(net.peer(3).raft().vote(), 2u);
  EXPECT_EQ(net.peer(3).raft().lead(), 2u);
  EXPECT_FALSE(net.peer(3).raft().leader_lost());
  ASSERT_TRUE(net.Propose(2, "k=v").ok());
  EXPECT_EQ(net.peer(3).sm().kv().at("k"), "v");
}

// Only 2 is told: its pre-vote reaches 3, which heard from 1 within the
// election timeout and ignores it. No term changes; 2 stays a pre-candidate
// until 3's own timeout elects someone the usual way.
TEST(RaftLeaderLossTest, FollowerNotToldKeepsRefusingInLease) {
  Network net(Ids(3), Opts());
  net.Campaign(1);
  const uint64_t t1 = net.peer(1).raft().term();
  net.Crash(1);
  auto counts = CountMessages(net);

  net.peer(2).node().ReportConnectionLost(1);
  net.Tick(2, TicksToCampaign(net, 2));

  // One pre-vote to each other voter; the crashed leader's is lost.
  EXPECT_EQ((*counts)[raftpb::MSG_PRE_VOTE], 2);
  EXPECT_EQ((*counts)[raftpb::MSG_PRE_VOTE_RESP], 0);
  EXPECT_EQ(net.peer(2).raft().state(), StateType::kPreCandidate);
  EXPECT_EQ(net.peer(2).raft().term(), t1);
  EXPECT_EQ(net.peer(3).raft().term(), t1);
  EXPECT_EQ(net.peer(3).raft().lead(), 1u);
  EXPECT_EQ(net.Leader(), kNone);
}

// A wrong report on one follower of a healthy cluster: it may pre-vote, but
// the leader's next heartbeat brings it back, and nothing changes the term
// or the leader.
TEST(RaftLeaderLossTest, WrongReportDoesNotDisruptAHealthyCluster) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    Network net(Ids(3), Opts(seed));
    net.Campaign(1);
    const uint64_t t1 = net.peer(1).raft().term();
    auto counts = CountMessages(net);

    net.peer(2).node().ReportConnectionLost(1);
    // Let 2's short timer fire before the leader's heartbeat reaches it.
    net.Tick(2, TicksToCampaign(net, 2));
    net.TickAll(3 * kElectionTick);
    ASSERT_TRUE(net.Propose(1, "k=v").ok());

    EXPECT_EQ(net.Leader(), 1u);
    EXPECT_EQ((*counts)[raftpb::MSG_VOTE], 0);
    for (uint64_t id : {1, 2, 3}) {
      SCOPED_TRACE(id);
      EXPECT_EQ(net.peer(id).raft().term(), t1);
      EXPECT_EQ(net.peer(id).raft().lead(), 1u);
      EXPECT_FALSE(net.peer(id).raft().leader_lost());
      EXPECT_EQ(net.peer(id).sm().kv().at("k"), "v");
    }
  }
}

// The leader's heartbeat arrives before the short timer fires: the lease
// and a full randomized timeout are back.
TEST(RaftLeaderLossTest, HearingFromTheLeaderRestoresLeaseAndTimeout) {
  Network net(Ids(3), Opts());
  net.Campaign(1);
  net.peer(2).node().ReportConnectionLost(1);
  ASSERT_TRUE(net.peer(2).raft().leader_lost());
  ASSERT_LE(TicksToCampaign(net, 2), net.peer(2).raft().LeaderLossDelayRange(1).second);

  net.Tick(1);  // a heartbeat

  EXPECT_FALSE(net.peer(2).raft().leader_lost());
  EXPECT_EQ(net.peer(2).raft().lead(), 1u);
  EXPECT_EQ(net.peer(2).raft().election_elapsed(), 0);
  EXPECT_GE(net.peer(2).raft().randomized_election_timeout(), kElectionTick);
  // In lease again: a vote request from 3 is ignored.
  const uint64_t t1 = net.peer(2).raft().term();
  net.Campaign(3);
  EXPECT_EQ(net.peer(2).raft().term(), t1);
  EXPECT_EQ(net.peer(2).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.Leader(), 1u);
}

// Reports that are not about this follower's leader change nothing.
TEST(RaftLeaderLossTest, IgnoredUnlessAboutTheFollowersLeader) {
  Network net(Ids(3), Opts());
  net.Campaign(1);
  const int before = TicksToCampaign(net, 2);
  net.peer(2).node().ReportConnectionLost(3);  // not the leader
  net.peer(2).node().ReportConnectionLost(kNone);
  net.peer(1).node().ReportConnectionLost(2);  // a leader has no leader
  EXPECT_FALSE(net.peer(2).raft().leader_lost());
  EXPECT_EQ(TicksToCampaign(net, 2), before);
  EXPECT_EQ(net.peer(1).raft().state(), StateType::kLeader);

  Network::Options off = Opts();
  off.config.campaign_on_leader_loss = false;
  Network net_off(Ids(3), off);
  net_off.Campaign(1);
  net_off.peer(2).node().ReportConnectionLost(1);
  EXPECT_FALSE(net_off.peer(2).raft().leader_lost());
  EXPECT_GE(TicksToCampaign(net_off, 2), kElectionTick);

  Network::Options lease = Opts();
  lease.config.read_only_option = ReadOnlyOption::kLeaseBased;
  Network net_lease(Ids(3), lease);
  net_lease.Campaign(1);
  net_lease.peer(2).node().ReportConnectionLost(1);
  EXPECT_FALSE(net_lease.peer(2).raft().leader_lost());
}

// A repeated report keeps the delay first drawn.
TEST(RaftLeaderLossTest, RepeatedReportKeepsTheDelay) {
  Network net(Ids(3), Opts());
  net.Campaign(1);
  net.Crash(1);
  net.peer(2).node().ReportConnectionLost(1);
  net.Tick(2);
  const int left = TicksToCampaign(net, 2);
  for (int i = 0; i < 10; ++i) net.peer(2).node().ReportConnectionLost(1);
  EXPECT_EQ(TicksToCampaign(net, 2), left);
}

// Over many seeds, with every node ticking in lockstep: after the leader
// crashes and both followers are told, the first survivor by rank wins by
// its second tick every time (the other campaigns two ticks later at the
// earliest, so their campaigns never collide and split the vote). Without
// the report none is done before an election timeout.
TEST(RaftLeaderLossTest, FailoverTicksOverSeeds) {
  int fast = 0;
  int fast_without = 0;
  constexpr int kSeeds = 100;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    for (bool report : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " report " << report);
      Network net(Ids(3), Opts(seed));
      net.Campaign(1);
      net.TickAll(seed % 7);  // vary the followers' election clocks
      const uint64_t t1 = net.peer(1).raft().term();
      net.Crash(1);
      if (report) {
        for (uint64_t id : {2, 3}) net.peer(id).node().ReportConnectionLost(1);
      }
      // The first survivor's latest campaign tick.
      const int bound = net.peer(2).raft().LeaderLossDelayRange(1).second;
      const int ticks = TickUntil(
          net, [&] { return net.Leader() != kNone; }, 10 * kElectionTick);
      ASSERT_GE(ticks, 0);
      EXPECT_GT(net.peer(net.Leader()).raft().term(), t1);
      if (report) {
        fast += ticks <= bound ? 1 : 0;
      } else {
        fast_without += ticks <= bound ? 1 : 0;
      }
    }
  }
  EXPECT_EQ(fast, kSeeds);
  EXPECT_EQ(fast_without, 0);
}

}  // namespace
}  // namespace arbiter::raft
