// Membership: learners, single-server changes (ConfChange), joint consensus
// (ConfChangeV2), the one-pending-change rule, removing the leader, adding a
// node that catches up by snapshot, and leadership transfer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "raft/errors.h"
#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/rand.h"
#include "tests/harness/network.h"

namespace arbiter::raft {
namespace {

using testing::Network;
using testing::NetworkOptions;
using testing::Peer;
using testing::TestConfig;

using Ids = std::vector<uint64_t>;

ConfChange MakeCC(raftpb::ConfChangeType type, uint64_t id) {
  ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(id);
  return cc;
}

ConfChangeV2 MakeCCV2(raftpb::ConfChangeTransition transition,
                      const std::vector<std::pair<raftpb::ConfChangeType, uint64_t>>& changes) {
  ConfChangeV2 cc;
  cc.set_transition(transition);
  for (const auto& [type, id] : changes) {
    ConfChangeSingle* s = cc.add_changes();
    s->set_type(type);
    s->set_node_id(id);
  }
  return cc;
}

template <typename CC>
absl::Status ProposeCC(Network& n, uint64_t at, const CC& cc) {
  absl::Status s = n.peer(at).node().ProposeConfChange(cc);
  n.Stabilize();
  return s;
}

Ids Sorted(const google::protobuf::RepeatedField<uint64_t>& ids) {
  Ids out(ids.begin(), ids.end());
  std::sort(out.begin(), out.end());
  return out;
}

Ids Voters(const ConfState& cs) { return Sorted(cs.voters()); }
Ids Outgoing(const ConfState& cs) { return Sorted(cs.voters_outgoing()); }
Ids Learners(const ConfState& cs) { return Sorted(cs.learners()); }

Entry LastEntry(const Raft& r) { return r.log().AllEntries().back(); }

// Counts messages of one type going through the network.
class Counter {
 public:
  explicit Counter(MessageType t) : type_(t) {}
  void Attach(Network& n) {
    n.SetHook([this](const Message& m) {
      if (m.type() == type_) ++count_;
      return true;
    });
  }
  int count() const { return count_; }

 private:
  MessageType type_;
  int count_ = 0;
};

// ---------------------------------------------------------------------------
// Learners

// Learners receive and apply the log, but their acknowledgements do not
// count toward the commit quorum.
// A change that cannot be applied (removing the last voter, an unknown
// change type, node id 0) is replaced by an empty entry when proposed: if it
// were committed, every member would fail to apply it, on every restart.
TEST(MembershipTest, InapplicableChangeIsNeverCommitted) {
  Network n({1});
  n.Campaign(1);
  ConfChange remove_last;
  remove_last.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
  remove_last.set_node_id(1);
  ASSERT_TRUE(n.peer(1).node().ProposeConfChange(remove_last).ok());
  n.Stabilize();
  ConfChangeV2 unknown;
  ConfChangeSingle* c = unknown.add_changes();
  c->set_type(static_cast<raftpb::ConfChangeType>(42));
  c->set_node_id(2);
  ASSERT_TRUE(n.peer(1).node().ProposeConfChange(unknown).ok());
  n.Stabilize();
  ConfChange zero;
  zero.set_type(raftpb::CONF_CHANGE_ADD_NODE);
  ASSERT_TRUE(n.peer(1).node().ProposeConfChange(zero).ok());
  n.Stabilize();

  for (const Entry& e : n.peer(1).applied_entries()) EXPECT_EQ(e.type(), raftpb::ENTRY_NORMAL);
  EXPECT_EQ(n.peer(1).conf_state().voters_size(), 1);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  EXPECT_EQ(n.peer(1).sm().kv().at("a"), "1");
}

TEST(MembershipTest, LearnersReplicateButDoNotCountForCommit) {
  Network n({1, 2, 3}, NetworkOptions(), /*learners=*/{4, 5});
  n.Campaign(1);
  ASSERT_EQ(n.Leader(), 1u);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  for (uint64_t id : {4, 5}) {
    EXPECT_TRUE(n.peer(id).raft().is_learner()) << id;
    EXPECT_EQ(n.peer(id).sm().kv().at("a"), "1") << id;
  }
  Raft& leader = n.peer(1).raft();
  const uint64_t committed = leader.log().committed();

  // The leader and both learners have the next entry: three copies, but only
  // one voter.
  n.Cut(1, 2);
  n.Cut(1, 3);
  ASSERT_TRUE(n.Propose(1, "b=2").ok());
  EXPECT_EQ(leader.tracker().progress.at(4).match, committed + 1);
  EXPECT_EQ(leader.tracker().progress.at(5).match, committed + 1);
  EXPECT_EQ(leader.log().committed(), committed);
  EXPECT_FALSE(n.peer(4).sm().kv().contains("b"));

  n.Recover();
  n.Tick(1);
  EXPECT_EQ(leader.log().committed(), committed + 1);
  EXPECT_EQ(n.peer(4).sm().kv().at("b"), "2");
}

// A learner never campaigns, and candidates do not ask learners for votes.
TEST(MembershipTest, LearnersDoNotCampaignOrGetAskedForVotes) {
  Network n({1, 2}, NetworkOptions(), /*learners=*/{3});
  int vote_requests_from_3 = 0, vote_requests_to_3 = 0;
  n.SetHook([&](const Message& m) {
    const bool vote = m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE;
    if (vote && m.from() == 3) ++vote_requests_from_3;
    if (vote && m.to() == 3) ++vote_requests_to_3;
    return true;
  });
  n.Tick(3, 50);  // far past any election timeout
  EXPECT_EQ(n.peer(3).raft().state(), StateType::kFollower);
  EXPECT_EQ(vote_requests_from_3, 0);
  (void)n.peer(3).node().Campaign();
  n.Stabilize();
  EXPECT_EQ(vote_requests_from_3, 0);
  EXPECT_EQ(n.Leader(), kNone);

  // 1 cannot win without 2, whatever the learner thinks.
  n.Cut(1, 2);
  n.Campaign(1);
  EXPECT_EQ(vote_requests_to_3, 0);
  EXPECT_NE(n.peer(1).raft().state(), StateType::kLeader);
  n.Recover();
  n.Campaign(1);
  EXPECT_EQ(n.Leader(), 1u);
}

// A learner promoted by a conf change votes and can be elected.
TEST(MembershipTest, LearnerPromotedToVoter) {
  NetworkOptions opts;
  opts.config = TestConfig(/*pre_vote=*/false, /*check_quorum=*/false);
  Network n({1, 2}, opts, /*learners=*/{3});
  n.Campaign(1);
  n.Campaign(3);
  EXPECT_EQ(n.Leader(), 1u);  // still a learner: Campaign is a no-op

  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_ADD_NODE, 3)).ok());
  for (uint64_t id : {1, 2, 3}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(Voters(n.peer(id).conf_state()), (Ids{1, 2, 3}));
    EXPECT_TRUE(Learners(n.peer(id).conf_state()).empty());
  }
  EXPECT_FALSE(n.peer(3).raft().is_learner());
  EXPECT_FALSE(n.peer(1).raft().tracker().progress.at(3).is_learner);

  const uint64_t term = n.peer(1).raft().term();
  n.Campaign(3);
  EXPECT_EQ(n.Leader(), 3u);
  EXPECT_EQ(n.peer(3).raft().term(), term + 1);
}

// ---------------------------------------------------------------------------
// Single-server changes

// Adding a voter raises the quorum: with 4 voters, 2 acks no longer commit.
TEST(MembershipTest, AddVoterRaisesQuorum) {
  Network n({1, 2, 3});
  n.Campaign(1);
  // Node 4 does not run yet: the change commits with the old quorum.
  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_ADD_NODE, 4)).ok());
  Raft& leader = n.peer(1).raft();
  EXPECT_EQ(Voters(n.peer(1).conf_state()), (Ids{1, 2, 3, 4}));
  EXPECT_EQ(Voters(n.peer(2).conf_state()), (Ids{1, 2, 3, 4}));
  ASSERT_TRUE(leader.tracker().progress.contains(4));
  const uint64_t committed = leader.log().committed();
  EXPECT_EQ(committed, leader.log().LastIndex());

  n.Crash(3);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  EXPECT_EQ(leader.log().committed(), committed);  // 1 and 2 of 4
  n.Restart(3);
  n.Tick(1);
  EXPECT_EQ(leader.log().committed(), committed + 1);
}

// Removing voters lowers the quorum; once alone, the leader commits by itself.
TEST(MembershipTest, RemoveVotersLowersQuorum) {
  Network n({1, 2, 3});
  n.Campaign(1);
  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_REMOVE_NODE, 3)).ok());
  EXPECT_EQ(Voters(n.peer(1).conf_state()), (Ids{1, 2}));
  EXPECT_EQ(Voters(n.peer(2).conf_state()), (Ids{1, 2}));
  EXPECT_FALSE(n.peer(1).raft().tracker().progress.contains(3));
  // A response from the removed node is refused.
  Message resp;
  resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
  resp.set_from(3);
  resp.set_to(1);
  resp.set_term(n.peer(1).raft().term());
  EXPECT_TRUE(IsStepPeerNotFound(n.peer(1).node().Step(resp)));

  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_REMOVE_NODE, 2)).ok());
  EXPECT_EQ(Voters(n.peer(1).conf_state()), (Ids{1}));
  n.Crash(2);
  n.Crash(3);
  Raft& leader = n.peer(1).raft();
  const uint64_t committed = leader.log().committed();
  ASSERT_TRUE(n.Propose(1, "solo=1").ok());
  EXPECT_EQ(leader.log().committed(), committed + 1);
  EXPECT_EQ(n.peer(1).sm().kv().at("solo"), "1");
}

// An entry held back by a voter that never acknowledges commits as soon as
// the removal of that voter is applied.
TEST(MembershipTest, PendingEntryCommitsWhenBlockingVoterRemoved) {
  MemoryStorage storage;
  ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  storage.BootstrapConfState(cs);
  SeededRand rand(1);
  Config cfg = TestConfig(/*pre_vote=*/false, /*check_quorum=*/false);
  cfg.id = 1;
  cfg.storage = &storage;
  cfg.rand = &rand;
  Raft r(cfg);
  Message hup;
  hup.set_type(raftpb::MSG_HUP);
  ASSERT_TRUE(r.Step(hup).ok());
  Message vote;
  vote.set_type(raftpb::MSG_VOTE_RESP);
  vote.set_from(2);
  vote.set_to(1);
  vote.set_term(r.term());
  ASSERT_TRUE(r.Step(vote).ok());
  ASSERT_EQ(r.state(), StateType::kLeader);

  Message prop;
  prop.set_type(raftpb::MSG_PROP);
  prop.set_from(1);
  prop.add_entries()->set_data("x");
  ASSERT_TRUE(r.Step(prop).ok());
  EXPECT_EQ(r.log().LastIndex(), 2u);
  EXPECT_EQ(r.log().committed(), 0u);

  ConfChangeV2 remove =
      MakeCCV2(raftpb::CONF_CHANGE_TRANSITION_AUTO, {{raftpb::CONF_CHANGE_REMOVE_NODE, 2}});
  ConfState now = r.ApplyConfChange(remove);
  EXPECT_EQ(Voters(now), (Ids{1}));
  EXPECT_EQ(r.log().committed(), 2u);
}

// ---------------------------------------------------------------------------
// Joint consensus

// A ConfChangeV2 with several changes goes through a joint configuration
// and, with the auto transition, leaves it on its own once applied.
TEST(MembershipTest, JointConsensusWithAutoLeave) {
  Network n({1, 2, 3}, NetworkOptions(), /*learners=*/{4, 5});
  n.Campaign(1);
  const uint64_t before = n.peer(1).raft().log().LastIndex();
  ConfChangeV2 cc =
      MakeCCV2(raftpb::CONF_CHANGE_TRANSITION_AUTO, {{raftpb::CONF_CHANGE_ADD_NODE, 4},
                                                     {raftpb::CONF_CHANGE_ADD_NODE, 5},
                                                     {raftpb::CONF_CHANGE_REMOVE_NODE, 3}});
  ASSERT_TRUE(ProposeCC(n, 1, cc).ok());

  Raft& leader = n.peer(1).raft();
  // Two conf change entries: entering the joint config, then leaving it.
  std::vector<Entry> ents = leader.log().AllEntries();
  ASSERT_EQ(leader.log().LastIndex(), before + 2);
  const Entry& enter = ents[ents.size() - 2];
  const Entry& leave = ents.back();
  EXPECT_EQ(enter.type(), raftpb::ENTRY_CONF_CHANGE_V2);
  EXPECT_EQ(leave.type(), raftpb::ENTRY_CONF_CHANGE_V2);
  ConfChangeV2 parsed;
  ASSERT_TRUE(parsed.ParseFromString(leave.data()));
  EXPECT_EQ(parsed.changes_size(), 0);

  for (uint64_t id : {1, 2, 4, 5}) {
    SCOPED_TRACE(id);
    const ConfState& cs = n.peer(id).conf_state();
    EXPECT_EQ(Voters(cs), (Ids{1, 2, 4, 5}));
    EXPECT_TRUE(Outgoing(cs).empty());
    EXPECT_TRUE(Learners(cs).empty());
    EXPECT_FALSE(cs.auto_leave());
    EXPECT_EQ(n.peer(id).raft().log().committed(), before + 2);
  }
  EXPECT_FALSE(leader.tracker().config.voters.IsJoint());
  EXPECT_FALSE(leader.tracker().progress.contains(3));
}

// With the explicit transition the joint config stays until an empty
// ConfChangeV2 leaves it; meanwhile both majorities are needed to commit,
// and no other conf change is accepted.
TEST(MembershipTest, JointConsensusWithExplicitLeave) {
  Network n({1, 2, 3}, NetworkOptions(), /*learners=*/{4, 5});
  n.Campaign(1);
  ConfChangeV2 cc = MakeCCV2(raftpb::CONF_CHANGE_TRANSITION_JOINT_EXPLICIT,
                             {{raftpb::CONF_CHANGE_ADD_NODE, 4},
                              {raftpb::CONF_CHANGE_ADD_NODE, 5},
                              {raftpb::CONF_CHANGE_REMOVE_NODE, 3}});
  ASSERT_TRUE(ProposeCC(n, 1, cc).ok());
  Raft& leader = n.peer(1).raft();
  for (uint64_t id : {1, 2, 3, 4, 5}) {
    SCOPED_TRACE(id);
    const ConfState& cs = n.peer(id).conf_state();
    EXPECT_EQ(Voters(cs), (Ids{1, 2, 4, 5}));
    EXPECT_EQ(Outgoing(cs), (Ids{1, 2, 3}));
    EXPECT_FALSE(cs.auto_leave());
  }
  ASSERT_TRUE(leader.tracker().config.voters.IsJoint());
  uint64_t committed = leader.log().committed();

  // The outgoing majority {1, 2} alone does not commit...
  n.Crash(4);
  n.Crash(5);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  EXPECT_EQ(leader.log().committed(), committed);
  n.Restart(4);
  n.Restart(5);
  n.Tick(1);
  EXPECT_EQ(leader.log().committed(), ++committed);
  // ...and neither does the incoming majority {1, 4, 5}.
  n.Crash(2);
  n.Crash(3);
  ASSERT_TRUE(n.Propose(1, "b=2").ok());
  EXPECT_EQ(leader.log().committed(), committed);
  n.Restart(2);
  n.Restart(3);
  n.Tick(1);
  EXPECT_EQ(leader.log().committed(), ++committed);

  // Another change is refused while joint: it becomes an empty entry.
  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 6)).ok());
  EXPECT_EQ(LastEntry(leader).type(), raftpb::ENTRY_NORMAL);
  EXPECT_TRUE(LastEntry(leader).data().empty());
  EXPECT_TRUE(leader.tracker().config.voters.IsJoint());

  ASSERT_TRUE(ProposeCC(n, 1, ConfChangeV2()).ok());
  for (uint64_t id : {1, 2, 4, 5}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(Voters(n.peer(id).conf_state()), (Ids{1, 2, 4, 5}));
    EXPECT_TRUE(Outgoing(n.peer(id).conf_state()).empty());
  }
  EXPECT_FALSE(leader.tracker().config.voters.IsJoint());
  // An empty ConfChangeV2 outside a joint config is refused likewise.
  ASSERT_TRUE(ProposeCC(n, 1, ConfChangeV2()).ok());
  EXPECT_EQ(LastEntry(leader).type(), raftpb::ENTRY_NORMAL);
}

// Only one conf change may be pending: a second one proposed before the
// first is applied is replaced by an empty entry and never takes effect.
TEST(MembershipTest, OnePendingConfChangeAtATime) {
  Network n({1, 2, 3});
  n.Campaign(1);
  Raft& leader = n.peer(1).raft();
  const uint64_t before = leader.log().LastIndex();
  RawNode& node = n.peer(1).node();
  ASSERT_TRUE(node.ProposeConfChange(MakeCC(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 4)).ok());
  EXPECT_EQ(leader.pending_conf_index(), before + 1);
  ASSERT_TRUE(node.ProposeConfChange(MakeCC(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 5)).ok());
  EXPECT_EQ(leader.pending_conf_index(), before + 1);
  std::vector<Entry> ents = leader.log().AllEntries();
  ASSERT_EQ(ents.back().index(), before + 2);
  EXPECT_EQ(ents[ents.size() - 2].type(), raftpb::ENTRY_CONF_CHANGE);
  EXPECT_EQ(ents.back().type(), raftpb::ENTRY_NORMAL);
  EXPECT_TRUE(ents.back().data().empty());

  n.Stabilize();
  EXPECT_EQ(Learners(n.peer(1).conf_state()), (Ids{4}));
  EXPECT_EQ(Learners(n.peer(2).conf_state()), (Ids{4}));

  // Applied: the next change is accepted.
  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 5)).ok());
  EXPECT_EQ(Learners(n.peer(1).conf_state()), (Ids{4, 5}));
}

// A removed leader steps down; the remaining voters elect a new leader
// among themselves.
TEST(MembershipTest, RemovedLeaderStepsDown) {
  Network n({1, 2, 3});
  n.Campaign(1);
  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_REMOVE_NODE, 1)).ok());
  EXPECT_EQ(n.peer(1).raft().state(), StateType::kFollower);
  EXPECT_EQ(n.Leader(), kNone);
  EXPECT_TRUE(IsProposalDropped(n.Propose(1, "a=1")));
  for (uint64_t id : {2, 3}) EXPECT_EQ(Voters(n.peer(id).conf_state()), (Ids{2, 3})) << id;

  int votes_from_1 = 0;
  n.SetHook([&](const Message& m) {
    if (m.from() == 1 && (m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE)) {
      ++votes_from_1;
    }
    return true;
  });
  n.TickAll(40);
  const uint64_t leader = n.Leader();
  EXPECT_TRUE(leader == 2 || leader == 3) << leader;
  EXPECT_EQ(votes_from_1, 0);
  ASSERT_NE(leader, kNone);
  ASSERT_TRUE(n.Propose(leader, "b=2").ok());
  EXPECT_EQ(n.peer(2).sm().kv().at("b"), "2");
  EXPECT_EQ(n.peer(3).sm().kv().at("b"), "2");
}

// Without step_down_on_removal the removed leader stays leader but refuses
// proposals: it has no say in commits any more.
TEST(MembershipTest, RemovedLeaderWithoutStepDownDropsProposals) {
  NetworkOptions opts;
  opts.config.step_down_on_removal = false;
  Network n({1, 2, 3}, opts);
  n.Campaign(1);
  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_REMOVE_NODE, 1)).ok());
  EXPECT_EQ(n.peer(1).raft().state(), StateType::kLeader);
  EXPECT_TRUE(IsProposalDropped(n.Propose(1, "a=1")));
}

// A node added after the leader compacted its log catches up by snapshot,
// learning its membership from it.
TEST(MembershipTest, AddedNodeCatchesUpBySnapshot) {
  Network n({1, 2, 3});
  n.Campaign(1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(n.Propose(1, "k" + std::to_string(i) + "=v").ok());
  // Node 4 is not running yet; messages to it are lost.
  ASSERT_TRUE(ProposeCC(n, 1, MakeCC(raftpb::CONF_CHANGE_ADD_NODE, 4)).ok());
  ASSERT_TRUE(n.Propose(1, "after=1").ok());
  n.peer(1).CompactLog();
  const uint64_t snap_index = n.peer(1).storage().Snapshot()->metadata().index();
  ASSERT_EQ(snap_index, n.peer(1).raft().log().committed());
  EXPECT_EQ(Voters(n.peer(1).storage().Snapshot()->metadata().conf_state()), (Ids{1, 2, 3, 4}));

  n.AddPeer(4);
  Counter snaps(raftpb::MSG_SNAP);
  snaps.Attach(n);
  n.Tick(1);
  EXPECT_EQ(snaps.count(), 1);
  Peer& added = n.peer(4);
  EXPECT_EQ(added.storage().Snapshot()->metadata().index(), snap_index);
  EXPECT_EQ(Voters(added.conf_state()), (Ids{1, 2, 3, 4}));
  EXPECT_EQ(added.sm().kv(), n.peer(1).sm().kv());
  EXPECT_EQ(n.peer(1).raft().tracker().progress.at(4).match, snap_index);

  // And it counts: with 3 down, 1 + 2 + 4 still make a quorum of four.
  n.Crash(3);
  ASSERT_TRUE(n.Propose(1, "more=1").ok());
  EXPECT_EQ(added.sm().kv().at("more"), "1");
  EXPECT_EQ(n.peer(1).sm().kv().at("more"), "1");
}

// ---------------------------------------------------------------------------
// Leadership transfer

// Transfer to an up-to-date follower: MsgTimeoutNow at once, and the
// follower wins the next term despite the leader lease of the others.
TEST(MembershipTest, TransferToUpToDateFollower) {
  Network n({1, 2, 3});
  n.Campaign(1);
  const uint64_t term = n.peer(1).raft().term();
  Counter timeout_now(raftpb::MSG_TIMEOUT_NOW);
  timeout_now.Attach(n);
  n.peer(1).node().TransferLeader(2);
  n.Stabilize();
  EXPECT_EQ(timeout_now.count(), 1);
  EXPECT_EQ(n.Leader(), 2u);
  EXPECT_EQ(n.peer(2).raft().term(), term + 1);
  EXPECT_EQ(n.peer(1).raft().state(), StateType::kFollower);
  EXPECT_EQ(n.peer(1).raft().lead(), 2u);
  EXPECT_EQ(n.peer(1).raft().lead_transferee(), kNone);

  // Asked of a follower, the request is forwarded to the leader.
  n.peer(3).node().TransferLeader(3);
  n.Stabilize();
  EXPECT_EQ(n.Leader(), 3u);
  EXPECT_EQ(n.peer(3).raft().term(), term + 2);
  ASSERT_TRUE(n.Propose(3, "x=1").ok());
  EXPECT_EQ(n.peer(1).sm().kv().at("x"), "1");
}

// Transfer to a lagging follower: the leader first brings its log up to
// date, and sends MsgTimeoutNow only then.
TEST(MembershipTest, TransferToLaggingFollowerCatchesItUpFirst) {
  Network n({1, 2, 3});
  n.Campaign(1);
  n.Isolate(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.Propose(1, "k" + std::to_string(i) + "=v").ok());
  n.Recover();
  Raft& old_leader = n.peer(1).raft();
  const uint64_t last = old_leader.log().LastIndex();
  ASSERT_LT(n.peer(3).raft().log().LastIndex(), last);

  int timeout_now = 0;
  uint64_t match_at_timeout_now = 0;
  n.SetHook([&](const Message& m) {
    if (m.type() == raftpb::MSG_TIMEOUT_NOW) {
      ++timeout_now;
      match_at_timeout_now = n.peer(1).raft().tracker().progress.at(3).match;
    }
    return true;
  });
  n.peer(1).node().TransferLeader(3);
  n.Stabilize();
  EXPECT_EQ(timeout_now, 1);
  EXPECT_EQ(match_at_timeout_now, last);
  EXPECT_EQ(n.Leader(), 3u);
  EXPECT_EQ(n.peer(3).sm().kv().at("k2"), "v");
}

// The same when the transferee needs a snapshot first: MsgTimeoutNow
// follows its acknowledgement of the snapshot.
TEST(MembershipTest, TransferToFollowerNeedingSnapshot) {
  Network n({1, 2, 3});
  n.Campaign(1);
  n.Isolate(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.Propose(1, "k" + std::to_string(i) + "=v").ok());
  n.peer(1).CompactLog();
  n.Recover();
  Counter snaps(raftpb::MSG_SNAP);
  snaps.Attach(n);
  n.peer(1).node().TransferLeader(3);
  n.Stabilize();
  EXPECT_EQ(snaps.count(), 1);
  EXPECT_EQ(n.Leader(), 3u);
  EXPECT_EQ(n.peer(3).sm().kv().at("k2"), "v");
}

// Leadership cannot go to a learner, to a non-member, or to the leader
// itself; those requests change nothing.
TEST(MembershipTest, TransferToLearnerSelfOrStrangerIgnored) {
  Network n({1, 2}, NetworkOptions(), /*learners=*/{3});
  n.Campaign(1);
  Counter timeout_now(raftpb::MSG_TIMEOUT_NOW);
  timeout_now.Attach(n);
  for (uint64_t target : {3, 1, 9}) {
    SCOPED_TRACE(target);
    n.peer(1).node().TransferLeader(target);
    n.Stabilize();
    EXPECT_EQ(n.peer(1).raft().lead_transferee(), kNone);
    EXPECT_EQ(n.Leader(), 1u);
  }
  EXPECT_EQ(timeout_now.count(), 0);
  EXPECT_TRUE(n.Propose(1, "a=1").ok());
}

// A transfer that does not finish within an election timeout is abandoned;
// until then proposals are dropped.
TEST(MembershipTest, TransferAbortedAfterElectionTimeout) {
  Network n({1, 2, 3});
  n.Campaign(1);
  n.Isolate(3);
  n.peer(1).node().TransferLeader(3);
  n.Stabilize();
  Raft& leader = n.peer(1).raft();
  ASSERT_EQ(leader.lead_transferee(), 3u);
  EXPECT_TRUE(IsProposalDropped(n.Propose(1, "a=1")));

  const int election_tick = leader.config().election_tick;
  n.Tick(1, election_tick - 1);
  EXPECT_EQ(leader.lead_transferee(), 3u);
  EXPECT_TRUE(IsProposalDropped(n.Propose(1, "a=1")));
  n.Tick(1);
  EXPECT_EQ(leader.lead_transferee(), kNone);
  EXPECT_EQ(n.Leader(), 1u);
  EXPECT_TRUE(n.Propose(1, "a=1").ok());
  EXPECT_EQ(n.peer(2).sm().kv().at("a"), "1");
}

// A second transfer to another node replaces the first; one to the same
// node is not restarted (the timeout keeps counting); one to the leader
// itself cancels it.
TEST(MembershipTest, SecondTransferRequest) {
  Network n({1, 2, 3});
  n.Campaign(1);
  n.Isolate(3);
  n.peer(1).node().TransferLeader(3);
  n.Stabilize();
  Raft& leader = n.peer(1).raft();
  n.Tick(1, 5);
  n.peer(1).node().TransferLeader(3);
  n.Stabilize();
  EXPECT_EQ(leader.lead_transferee(), 3u);
  n.Tick(1, leader.config().election_tick - 5);
  EXPECT_EQ(leader.lead_transferee(), kNone);

  // Transferring back to the leader itself cancels the pending transfer.
  n.peer(1).node().TransferLeader(3);
  n.Stabilize();
  ASSERT_EQ(leader.lead_transferee(), 3u);
  n.peer(1).node().TransferLeader(1);
  n.Stabilize();
  EXPECT_EQ(leader.lead_transferee(), kNone);
  EXPECT_TRUE(n.Propose(1, "a=1").ok());

  n.peer(1).node().TransferLeader(3);
  n.Stabilize();
  ASSERT_EQ(leader.lead_transferee(), 3u);
  n.peer(1).node().TransferLeader(2);
  n.Stabilize();
  EXPECT_EQ(n.Leader(), 2u);
}

}  // namespace
}  // namespace arbiter::raft
