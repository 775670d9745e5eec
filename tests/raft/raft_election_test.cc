// Tests of elections and liveness on the simulated network: who wins with
// nodes down, dueling candidates, PreVote (a partitioned node does not raise
// its term and cannot depose a healthy leader when it returns), CheckQuorum
// (a leader without a quorum steps down; followers in a leader lease ignore
// vote requests), learners, conf changes that block a campaign, and bounded
// time to elect a leader over many seeds. Scenarios follow etcd-io/raft's
// raft_test.go where it has one.
//
// The harness bootstraps every node with its membership, so a fresh cluster
// starts at some term t0 with a log ending at li0; expectations are stated
// relative to those.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
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

Network::Options Opts(bool pre_vote, bool check_quorum, uint64_t seed = 1) {
  Network::Options o;
  o.config = harness::TestConfig(pre_vote, check_quorum);
  EXPECT_EQ(o.config.election_tick, kElectionTick);
  o.seed = seed;
  return o;
}

std::vector<uint64_t> Ids(int n) {
  std::vector<uint64_t> ids;
  for (int i = 1; i <= n; ++i) ids.push_back(static_cast<uint64_t>(i));
  return ids;
}

Message Msg(uint64_t from, uint64_t to, MessageType type, uint64_t term) {
  Message m;
  m.set_from(from);
  m.set_to(to);
  m.set_type(type);
  m.set_term(term);
  return m;
}

// ---------------------------------------------------------------------------
// Who wins

// A candidate wins with a majority of the whole cluster, down nodes
// included; without one it stays a (pre-)candidate. With PreVote the term
// is raised only once the pre-vote is won.
void CheckLeaderElection(bool pre_vote) {
  struct Case {
    int size;
    std::set<uint64_t> down;
    bool wins;
  };
  const std::vector<Case> cases = {
      {3, {}, true}, {3, {3}, true}, {3, {2, 3}, false}, {4, {2, 3}, false}, {5, {2, 3}, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Network net(Ids(cases[i].size), Opts(pre_vote, false));
    const uint64_t t0 = net.peer(1).raft().term();
    for (uint64_t id : cases[i].down) net.Crash(id);

    net.Campaign(1);

    const Raft& r = net.peer(1).raft();
    if (cases[i].wins) {
      EXPECT_EQ(r.state(), StateType::kLeader);
      EXPECT_EQ(r.term(), t0 + 1);
    } else if (pre_vote) {
      EXPECT_EQ(r.state(), StateType::kPreCandidate);
      EXPECT_EQ(r.term(), t0);
    } else {
      EXPECT_EQ(r.state(), StateType::kCandidate);
      EXPECT_EQ(r.term(), t0 + 1);
    }
  }
}

TEST(RaftElectionTest, LeaderElection) { CheckLeaderElection(false); }
TEST(RaftElectionTest, LeaderElectionPreVote) { CheckLeaderElection(true); }

// Three of five voters have logs further along in the same term: they
// reject node 1, which loses and returns to follower. Without PreVote the
// losing campaign still raised every term by one.
void CheckElectionLostToLongerLogs(bool pre_vote) {
  Network net(Ids(5), Opts(pre_vote, false));
  const uint64_t t0 = net.peer(1).raft().term();
  const uint64_t li0 = net.peer(1).raft().log().LastIndex();
  for (uint64_t id : {2, 3, 4}) {
    net.Crash(id);
    Entry e;
    e.set_index(li0 + 1);
    e.set_term(t0);
    ASSERT_TRUE(net.peer(id).storage().Append({e}).ok());
    net.Restart(id);
  }

  net.Campaign(1);

  EXPECT_EQ(net.peer(1).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.peer(1).raft().term(), pre_vote ? t0 : t0 + 1);
  EXPECT_EQ(net.peer(2).raft().term(), pre_vote ? t0 : t0 + 1);
  EXPECT_EQ(net.peer(2).raft().vote(), kNone);
  EXPECT_EQ(net.Leader(), kNone);
}

TEST(RaftElectionTest, ElectionLostToLongerLogs) { CheckElectionLostToLongerLogs(false); }
TEST(RaftElectionTest, ElectionLostToLongerLogsPreVote) { CheckElectionLostToLongerLogs(true); }

// A single voter elects itself at its first timeout and commits its empty
// entry alone.
TEST(RaftElectionTest, SingleNodeSelfElects) {
  for (bool pre_vote : {false, true}) {
    SCOPED_TRACE(pre_vote);
    Network net({1}, Opts(pre_vote, true));
    const uint64_t t0 = net.peer(1).raft().term();
    const uint64_t li0 = net.peer(1).raft().log().LastIndex();

    const int ticks = TickUntil(
        net, [&] { return net.Leader() == 1; }, 2 * kElectionTick);

    EXPECT_GE(ticks, kElectionTick);
    EXPECT_LT(ticks, 2 * kElectionTick);
    EXPECT_EQ(net.peer(1).raft().term(), t0 + 1);
    EXPECT_EQ(net.peer(1).raft().log().committed(), li0 + 1);
    ASSERT_TRUE(net.Propose(1, "k=v").ok());
    EXPECT_EQ(net.peer(1).sm().kv().at("k"), "v");
  }
}

// A leader's MsgHup (a late election timeout, or an explicit Campaign) is a
// no-op: it neither raises its term nor steps down.
TEST(RaftElectionTest, CampaignWhileLeaderIsNoop) {
  for (bool pre_vote : {false, true}) {
    SCOPED_TRACE(pre_vote);
    Network net({1}, Opts(pre_vote, false));
    net.Campaign(1);
    ASSERT_EQ(net.Leader(), 1u);
    const uint64_t term = net.peer(1).raft().term();

    net.Campaign(1);

    EXPECT_EQ(net.peer(1).raft().state(), StateType::kLeader);
    EXPECT_EQ(net.peer(1).raft().term(), term);
  }
}

// Two candidates at once (etcd TestDuelingCandidates): 1 wins with 2's vote
// while 3, cut off from 1, stays a candidate. When the cut heals, 3's next
// campaign raises everyone's term and deposes 1, but nobody votes for 3's
// shorter log; a later election picks 1 or 2.
TEST(RaftElectionTest, DuelingCandidates) {
  Network net(Ids(3), Opts(false, false));
  const uint64_t t0 = net.peer(1).raft().term();
  const uint64_t li0 = net.peer(1).raft().log().LastIndex();
  net.Cut(1, 3);

  net.Campaign(1);
  net.Campaign(3);

  EXPECT_EQ(net.peer(1).raft().state(), StateType::kLeader);
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kCandidate);
  EXPECT_EQ(net.peer(3).raft().term(), t0 + 1);

  net.Recover();
  net.Campaign(3);

  const uint64_t want_last[] = {li0 + 1, li0 + 1, li0};
  for (uint64_t id : {1, 2, 3}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(net.peer(id).raft().state(), StateType::kFollower);
    EXPECT_EQ(net.peer(id).raft().term(), t0 + 2);
    EXPECT_EQ(net.peer(id).raft().log().LastIndex(), want_last[id - 1]);
  }

  ASSERT_GE(TickUntil(
                net, [&] { return net.Leader() != kNone; }, 4 * kElectionTick),
            0);
  EXPECT_NE(net.Leader(), 3u);
  EXPECT_GE(net.peer(net.Leader()).raft().term(), t0 + 3);
}

// The same duel with PreVote (etcd TestDuelingPreCandidates): 3's pre-vote
// fails, so its term never moves and leader 1 is not disturbed.
TEST(RaftElectionTest, DuelingPreCandidates) {
  Network net(Ids(3), Opts(true, false));
  const uint64_t t0 = net.peer(1).raft().term();
  const uint64_t li0 = net.peer(1).raft().log().LastIndex();
  net.Cut(1, 3);

  net.Campaign(1);
  net.Campaign(3);

  EXPECT_EQ(net.peer(1).raft().state(), StateType::kLeader);
  // 2 already voted in term t0+1 and refused; 3 learned that term from it.
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kFollower);

  net.Recover();
  net.Campaign(3);

  const StateType want_state[] = {StateType::kLeader, StateType::kFollower, StateType::kFollower};
  const uint64_t want_last[] = {li0 + 1, li0 + 1, li0};
  for (uint64_t id : {1, 2, 3}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(net.peer(id).raft().state(), want_state[id - 1]);
    EXPECT_EQ(net.peer(id).raft().term(), t0 + 1);
    EXPECT_EQ(net.peer(id).raft().log().LastIndex(), want_last[id - 1]);
  }
}

// ---------------------------------------------------------------------------
// Candidates and terms

// A candidate that hears from the leader of its own or a later term returns
// to follower and adopts that term (etcd testCandidateResetTerm).
TEST(RaftElectionTest, CandidateAdoptsLeaderTerm) {
  for (MessageType type : {raftpb::MSG_HEARTBEAT, raftpb::MSG_APP}) {
    SCOPED_TRACE(MessageTypeName(type));
    Network net(Ids(3), Opts(false, false));
    const uint64_t t0 = net.peer(1).raft().term();
    net.Campaign(1);
    net.Isolate(3);
    net.Campaign(2);
    net.Campaign(1);
    ASSERT_EQ(net.Leader(), 1u);
    ASSERT_EQ(net.peer(1).raft().term(), t0 + 3);
    net.Campaign(3);
    ASSERT_EQ(net.peer(3).raft().state(), StateType::kCandidate);
    ASSERT_EQ(net.peer(3).raft().term(), t0 + 2);

    net.Recover();
    Message m = Msg(1, 3, type, t0 + 3);
    if (type == raftpb::MSG_APP) {
      m.set_index(net.peer(3).raft().log().LastIndex());
      m.set_log_term(net.peer(3).raft().log().LastTerm());
    }
    net.Send({m});

    EXPECT_EQ(net.peer(3).raft().state(), StateType::kFollower);
    EXPECT_EQ(net.peer(3).raft().term(), t0 + 3);
    EXPECT_EQ(net.peer(3).raft().lead(), 1u);
  }
}

// Both followers time out together after the leader dies and split the vote
// in the same term; the next election, one term up, has a winner (etcd
// TestPreVoteWithSplitVote).
TEST(RaftElectionTest, PreVoteSplitVoteThenWinner) {
  Network net(Ids(3), Opts(true, false));
  const uint64_t t0 = net.peer(1).raft().term();
  net.Campaign(1);
  net.Isolate(1);

  ASSERT_TRUE(net.peer(2).node().Campaign().ok());
  ASSERT_TRUE(net.peer(3).node().Campaign().ok());
  net.Stabilize();

  for (uint64_t id : {2, 3}) {
    EXPECT_EQ(net.peer(id).raft().state(), StateType::kCandidate);
    EXPECT_EQ(net.peer(id).raft().term(), t0 + 2);
  }

  net.Campaign(2);

  EXPECT_EQ(net.peer(2).raft().state(), StateType::kLeader);
  EXPECT_EQ(net.peer(2).raft().term(), t0 + 3);
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.peer(3).raft().term(), t0 + 3);
}

// With PreVote, an isolated node stays at its old term while the others move
// on; when the leader then dies, the election still completes
// (etcd TestNodeWithSmallerTermCanCompleteElection).
TEST(RaftElectionTest, NodeWithSmallerTermCanCompleteElection) {
  Network net(Ids(3), Opts(true, false));
  const uint64_t t0 = net.peer(1).raft().term();
  net.Isolate(3);
  net.Campaign(1);
  net.Campaign(3);
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kPreCandidate);
  net.Campaign(2);

  EXPECT_EQ(net.peer(1).raft().term(), t0 + 2);
  EXPECT_EQ(net.peer(2).raft().term(), t0 + 2);
  EXPECT_EQ(net.peer(3).raft().term(), t0);
  EXPECT_EQ(net.Leader(), 2u);

  net.Recover();
  net.Isolate(2);
  net.Campaign(3);
  net.Campaign(1);

  EXPECT_EQ(net.peer(1).raft().state(), StateType::kLeader);
  EXPECT_EQ(net.peer(1).raft().term(), t0 + 3);
  EXPECT_EQ(net.peer(3).raft().lead(), 1u);
}

// ---------------------------------------------------------------------------
// Partitioned nodes: PreVote and CheckQuorum

// PreVote + CheckQuorum (the defaults): an isolated follower keeps timing
// out but never raises its term, because it never wins a pre-vote. When it
// returns, the others (in their leader lease) ignore its pre-votes, and the
// leader's heartbeat brings it back as a follower: the leader is not deposed.
TEST(RaftElectionTest, PartitionedNodeRejoinsWithoutDeposingLeader) {
  Network net(Ids(3), Opts(true, true));
  net.Campaign(1);
  const uint64_t term = net.peer(1).raft().term();
  net.Isolate(3);

  net.TickAll(10 * kElectionTick);
  ASSERT_TRUE(net.Propose(1, "k=1").ok());

  EXPECT_EQ(net.peer(3).raft().term(), term);
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kPreCandidate);
  EXPECT_EQ(net.peer(3).storage().hard_state().term(), term);
  EXPECT_EQ(net.Leader(), 1u);

  net.Recover();
  auto counts = CountMessages(net);
  net.TickAll(3 * kElectionTick);

  EXPECT_EQ(net.Leader(), 1u);
  EXPECT_EQ((*counts)[raftpb::MSG_VOTE], 0);
  EXPECT_EQ((*counts)[raftpb::MSG_PRE_VOTE_RESP], 0);
  for (uint64_t id : {1, 2, 3}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(net.peer(id).raft().term(), term);
    EXPECT_EQ(net.peer(id).raft().lead(), 1u);
    EXPECT_EQ(net.peer(id).sm().kv().at("k"), "1");
  }
}

// Without PreVote (and without CheckQuorum) an isolated node raises its term
// with each timeout. On its return it ignores the leader's lower-term
// heartbeats, and its next vote request deposes the leader, though its
// short log wins no votes; a leader with the committed entry takes over.
TEST(RaftElectionTest, RejoiningNodeWithHigherTermDisruptsWithoutPreVote) {
  Network net(Ids(3), Opts(false, false));
  net.Campaign(1);
  const uint64_t t1 = net.peer(1).raft().term();
  net.Isolate(3);
  net.Campaign(3);
  net.Campaign(3);
  ASSERT_TRUE(net.Propose(1, "k=1").ok());
  ASSERT_EQ(net.peer(3).raft().term(), t1 + 2);

  net.Recover();
  net.Tick(1);  // a heartbeat at the old term: ignored by 3
  EXPECT_EQ(net.Leader(), 1u);
  EXPECT_EQ(net.peer(3).raft().term(), t1 + 2);

  net.Campaign(3);

  EXPECT_EQ(net.Leader(), kNone);
  EXPECT_EQ(net.peer(1).raft().term(), t1 + 3);
  EXPECT_EQ(net.peer(2).raft().term(), t1 + 3);
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kFollower);

  ASSERT_GE(TickUntil(
                net, [&] { return net.Leader() != kNone; }, 4 * kElectionTick),
            0);
  const uint64_t lead = net.Leader();
  EXPECT_NE(lead, 3u);
  EXPECT_GT(net.peer(lead).raft().term(), t1 + 3);
  ASSERT_TRUE(net.Propose(lead, "k=2").ok());
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(net.peer(id).sm().kv().at("k"), "2");
}

// CheckQuorum without PreVote (etcd TestFreeStuckCandidateWithCheckQuorum):
// an isolated candidate climbs terms; its vote requests are ignored by the
// follower in lease. The leader's heartbeat is answered with the higher
// term, which makes the leader step down, so the stuck node is freed.
TEST(RaftElectionTest, CheckQuorumFreesStuckCandidate) {
  Network net(Ids(3), Opts(false, true));
  net.Campaign(1);
  const uint64_t t1 = net.peer(1).raft().term();
  net.Isolate(1);

  net.Campaign(3);
  EXPECT_EQ(net.peer(2).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.peer(2).raft().term(), t1);
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kCandidate);
  EXPECT_EQ(net.peer(3).raft().term(), t1 + 1);
  net.Campaign(3);
  EXPECT_EQ(net.peer(3).raft().term(), t1 + 2);

  net.Recover();
  net.Tick(1);  // heartbeat at t1; 3 answers at t1 + 2

  EXPECT_EQ(net.peer(1).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.peer(1).raft().term(), t1 + 2);

  net.Campaign(3);
  EXPECT_EQ(net.Leader(), 3u);
  EXPECT_EQ(net.peer(3).raft().term(), t1 + 3);
}

// CheckQuorum: a leader that stops hearing from a quorum steps down within
// two election timeouts (one interval to notice nobody answered), and the
// majority elects a new leader at a higher term. A connected leader stays.
TEST(RaftElectionTest, CheckQuorumLeaderStepsDownWhenIsolated) {
  Network net(Ids(3), Opts(true, true));
  net.Campaign(1);
  const uint64_t t1 = net.peer(1).raft().term();
  net.TickAll(10 * kElectionTick);
  ASSERT_EQ(net.Leader(), 1u);
  ASSERT_EQ(net.peer(1).raft().term(), t1);

  net.Isolate(1);
  net.Tick(1, kElectionTick);
  EXPECT_EQ(net.peer(1).raft().state(), StateType::kLeader);
  net.Tick(1, kElectionTick);
  EXPECT_EQ(net.peer(1).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.peer(1).raft().term(), t1);
  EXPECT_EQ(net.peer(1).raft().lead(), kNone);
  EXPECT_FALSE(net.peer(1).node().Propose("x").ok());

  ASSERT_GE(TickUntil(
                net, [&] { return net.Leader() != kNone; }, 4 * kElectionTick),
            0);
  EXPECT_NE(net.Leader(), 1u);
  EXPECT_EQ(net.peer(net.Leader()).raft().term(), t1 + 1);
}

// Leader lease (etcd TestLeaderSupersedingWithCheckQuorum): a follower that
// heard from its leader within the election timeout ignores a vote request,
// neither granting nor rejecting it nor adopting its term. Once the lease
// has run out it grants the vote.
TEST(RaftElectionTest, FollowerInLeaseIgnoresVoteRequests) {
  Network net(Ids(3), Opts(false, true));
  net.Campaign(1);
  const uint64_t t1 = net.peer(1).raft().term();
  auto counts = CountMessages(net);

  net.Campaign(3);

  EXPECT_EQ((*counts)[raftpb::MSG_VOTE], 2);
  EXPECT_EQ((*counts)[raftpb::MSG_VOTE_RESP], 0);
  EXPECT_EQ(net.peer(1).raft().state(), StateType::kLeader);
  EXPECT_EQ(net.peer(1).raft().term(), t1);
  EXPECT_EQ(net.peer(2).raft().term(), t1);
  EXPECT_EQ(net.peer(3).raft().state(), StateType::kCandidate);
  EXPECT_EQ(net.peer(3).raft().term(), t1 + 1);

  // Let 2's lease run out without letting it time out itself.
  net.peer(2).raft().set_randomized_election_timeout(kElectionTick + 1);
  net.Tick(2, kElectionTick);
  ASSERT_EQ(net.peer(2).raft().state(), StateType::kFollower);
  net.Campaign(3);

  EXPECT_EQ(net.peer(3).raft().state(), StateType::kLeader);
  EXPECT_EQ(net.peer(3).raft().term(), t1 + 2);
  EXPECT_EQ(net.peer(2).raft().vote(), 3u);
  EXPECT_EQ(net.peer(1).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.peer(1).raft().lead(), 3u);
}

// ---------------------------------------------------------------------------
// Bounded liveness

// With a connected quorum a leader emerges within a bounded number of ticks,
// from a cold start and again after the leader is cut off, and the new
// leader commits. Checked over 200 seeds. Usually the first node to time out
// wins, within two election timeouts. When the earliest timeouts fall on the
// same tick the vote splits (after an isolation only two voters are left, so
// that happens about one time in ten) and another round is needed: hence
// the bound of two rounds and the 90% target for one round.
void CheckBoundedLiveness(int size, int bound) {
  int elections = 0;
  int within_two_timeouts = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(::testing::Message() << "size " << size << " seed " << seed);
    Network net(Ids(size), Opts(true, true, seed));

    const int first = TickUntil(
        net, [&] { return net.Leader() != kNone; }, bound);
    ASSERT_GE(first, 0);

    const uint64_t old = net.Leader();
    const uint64_t old_term = net.peer(old).raft().term();
    net.Isolate(old);
    const int second = TickUntil(
        net, [&] { return net.Leader() != kNone && net.Leader() != old; }, bound);
    ASSERT_GE(second, 0);
    elections += 2;
    within_two_timeouts += (first < 2 * kElectionTick) + (second < 2 * kElectionTick);

    const uint64_t lead = net.Leader();
    EXPECT_GT(net.peer(lead).raft().term(), old_term);
    ASSERT_TRUE(net.Propose(lead, "k=v").ok());
    int applied = 0;
    for (uint64_t id : net.ids()) applied += net.peer(id).sm().kv().contains("k") ? 1 : 0;
    EXPECT_EQ(applied, size - 1);
    EXPECT_FALSE(net.peer(old).sm().kv().contains("k"));
  }
  EXPECT_GE(within_two_timeouts * 100, elections * 90);
}

TEST(RaftElectionTest, BoundedLivenessThreeNodes) { CheckBoundedLiveness(3, 4 * kElectionTick); }
TEST(RaftElectionTest, BoundedLivenessFiveNodes) { CheckBoundedLiveness(5, 4 * kElectionTick); }

// The bridge: five nodes where {1,2} and {4,5} reach each other only through
// 3. A leader emerges (on one side or at the bridge), keeps a quorum through
// 3, and commits; no node on the far side can depose it.
TEST(RaftElectionTest, BridgePartitionElectsAndCommits) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    SCOPED_TRACE(seed);
    Network net(Ids(5), Opts(true, true, seed));
    for (uint64_t a : {1, 2}) {
      for (uint64_t b : {4, 5}) net.Cut(a, b);
    }

    ASSERT_GE(TickUntil(
                  net, [&] { return net.Leader() != kNone; }, 3 * kElectionTick),
              0);
    const uint64_t lead = net.Leader();
    const uint64_t term = net.peer(lead).raft().term();
    ASSERT_TRUE(net.Propose(lead, "k=v").ok());
    net.TickAll(10 * kElectionTick);

    EXPECT_EQ(net.Leader(), lead);
    EXPECT_EQ(net.peer(lead).raft().term(), term);
    for (uint64_t id : {lead, uint64_t{3}}) {
      EXPECT_EQ(net.peer(id).sm().kv().at("k"), "v");
    }
    int applied = 0;
    for (uint64_t id : net.ids()) applied += net.peer(id).sm().kv().contains("k") ? 1 : 0;
    EXPECT_GE(applied, 3);

    net.Recover();
    net.TickAll(3 * kElectionTick);
    ASSERT_NE(net.Leader(), kNone);
    for (uint64_t id : net.ids()) EXPECT_EQ(net.peer(id).sm().kv().at("k"), "v");
  }
}

// ---------------------------------------------------------------------------
// Learners and conf changes

// A learner never campaigns (on timeout, Campaign or MsgTimeoutNow), yet it
// votes when asked: it may have been promoted by a conf change it has not
// applied yet (etcd TestLearnerCanVote, TestLearnerCampaign).
TEST(RaftElectionTest, LearnerVotesButNeverCampaigns) {
  Network net({1}, Opts(true, true), {2});
  net.Campaign(1);
  ASSERT_EQ(net.Leader(), 1u);
  const uint64_t t1 = net.peer(1).raft().term();
  net.Isolate(2);

  net.Tick(2, 10 * kElectionTick);
  net.Campaign(2);
  ASSERT_TRUE(net.peer(2).node().Step(Msg(1, 2, raftpb::MSG_TIMEOUT_NOW, t1)).ok());
  net.peer(2).ProcessReady();

  EXPECT_EQ(net.peer(2).raft().state(), StateType::kFollower);
  EXPECT_EQ(net.peer(2).raft().term(), t1);

  Message vote = Msg(1, 2, raftpb::MSG_VOTE, t1 + 1);
  vote.set_index(100);
  vote.set_log_term(t1 + 1);
  ASSERT_TRUE(net.peer(2).node().Step(vote).ok());
  std::vector<Message> out = net.peer(2).ProcessReady();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type(), raftpb::MSG_VOTE_RESP);
  EXPECT_FALSE(out[0].reject());
  EXPECT_EQ(net.peer(2).raft().vote(), 1u);
}

// A node must not campaign while a committed conf change is unapplied: the
// election could count votes under the wrong configuration (etcd
// TestConfChangeCheckBeforeCampaign). Once applied, it campaigns.
TEST(RaftElectionTest, NoCampaignWithUnappliedConfChange) {
  for (raftpb::EntryType type : {raftpb::ENTRY_CONF_CHANGE, raftpb::ENTRY_CONF_CHANGE_V2}) {
    SCOPED_TRACE(type);
    harness::Peer p(2, harness::TestConfig(false, false), 1);
    p.Bootstrap({1, 2, 3});
    p.Start();
    const uint64_t t0 = p.raft().term();
    const uint64_t li0 = p.raft().log().LastIndex();

    ConfChange cc;
    cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
    cc.set_node_id(4);
    ConfChangeV2 cc2;
    ConfChangeSingle* single = cc2.add_changes();
    single->set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
    single->set_node_id(4);
    Message app = Msg(1, 2, raftpb::MSG_APP, t0 + 1);
    app.set_index(li0);
    app.set_log_term(p.raft().log().LastTerm());
    app.set_commit(li0 + 1);
    Entry* e = app.add_entries();
    e->set_index(li0 + 1);
    e->set_term(t0 + 1);
    e->set_type(type);
    e->set_data(type == raftpb::ENTRY_CONF_CHANGE ? cc.SerializeAsString()
                                                  : cc2.SerializeAsString());
    ASSERT_TRUE(p.node().Step(app).ok());
    ASSERT_EQ(p.raft().log().committed(), li0 + 1);
    ASSERT_EQ(p.raft().log().applied(), li0);

    ASSERT_TRUE(p.node().Campaign().ok());
    ASSERT_TRUE(p.node().Step(Msg(1, 2, raftpb::MSG_TIMEOUT_NOW, t0 + 1)).ok());
    EXPECT_EQ(p.raft().state(), StateType::kFollower);
    EXPECT_EQ(p.raft().term(), t0 + 1);

    p.ProcessReady();  // applies the conf change
    ASSERT_EQ(p.raft().log().applied(), li0 + 1);
    EXPECT_EQ(p.conf_state().learners_size(), 1);
    ASSERT_TRUE(p.node().Campaign().ok());
    EXPECT_EQ(p.raft().state(), StateType::kCandidate);
    EXPECT_EQ(p.raft().term(), t0 + 2);
  }
}

}  // namespace
}  // namespace arbiter::raft
