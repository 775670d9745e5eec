// The RawNode driver and its Ready contract (raft/ready.h): what each Ready
// carries, when committed entries and soft state are reported, that Advance
// must follow every GetReady, that inputs stepped between GetReady and
// Advance are not lost, and how a restart resumes from storage.
#include "raft/raw_node.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "raft/errors.h"
#include "raft/memory_storage.h"
#include "raft/rand.h"
#include "tests/harness/peer.h"

namespace arbiter::raft {
namespace {

using testing::TestConfig;

Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

Message MakeMsg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

// A RawNode over its own MemoryStorage, handled by the test.
class TestNode {
 public:
  // A node of a new cluster with the given voters (no PreVote, so Campaign
  // goes straight to a vote). setup may fill the storage first (a restart).
  TestNode(uint64_t id, const std::vector<uint64_t>& voters, uint64_t applied = 0,
           const std::function<void(MemoryStorage&)>& setup = nullptr) {
    ConfState cs;
    for (uint64_t v : voters) cs.add_voters(v);
    storage_.BootstrapConfState(cs);
    if (setup) setup(storage_);
    cfg_ = TestConfig(/*pre_vote=*/false, /*check_quorum=*/false);
    cfg_.id = id;
    cfg_.storage = &storage_;
    cfg_.rand = &rand_;
    cfg_.applied = applied;
    auto node = RawNode::Create(cfg_);
    EXPECT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
  }

  RawNode& node() { return *node_; }
  MemoryStorage& storage() { return storage_; }

  // Persists a Ready the way the contract demands (before anything else).
  void Persist(const Ready& rd) {
    if (!IsEmptySnapshot(rd.snapshot)) {
      ASSERT_TRUE(storage_.ApplySnapshot(rd.snapshot).ok());
    }
    if (!rd.entries.empty()) {
      ASSERT_TRUE(storage_.Append(rd.entries).ok());
    }
    if (!IsEmptyHardState(rd.hard_state)) storage_.SetHardState(rd.hard_state);
  }

  // GetReady, persist, Advance; returns the Ready.
  Ready Handle() {
    Ready rd = node_->GetReady();
    Persist(rd);
    node_->Advance();
    return rd;
  }

 private:
  MemoryStorage storage_;
  SeededRand rand_{3};
  Config cfg_;
  std::unique_ptr<RawNode> node_;
};

std::vector<uint64_t> Indexes(const std::vector<Entry>& ents) {
  std::vector<uint64_t> out;
  for (const Entry& e : ents) out.push_back(e.index());
  return out;
}

using Idx = std::vector<uint64_t>;

// A single-voter leader's first Ready: the new soft and hard state, its
// empty entry to persist (synced), and that entry as committed. Applying it
// in the same Ready is safe because the contract persists first.
TEST(RawNodeTest, NewSingleNodeLeaderFirstReady) {
  TestNode t(1, {1});
  EXPECT_FALSE(t.node().HasReady());
  ASSERT_TRUE(t.node().Campaign().ok());
  ASSERT_TRUE(t.node().HasReady());
  Ready rd = t.node().GetReady();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(rd.soft_state->lead, 1u);
  EXPECT_EQ(rd.soft_state->raft_state, StateType::kLeader);
  EXPECT_EQ(rd.hard_state.term(), 1u);
  EXPECT_EQ(rd.hard_state.vote(), 1u);
  EXPECT_EQ(rd.hard_state.commit(), 1u);
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].index(), 1u);
  EXPECT_EQ(rd.entries[0].term(), 1u);
  EXPECT_TRUE(rd.entries[0].data().empty());
  EXPECT_TRUE(rd.must_sync);
  EXPECT_EQ(Indexes(rd.committed_entries), Idx{1});
  EXPECT_TRUE(rd.messages.empty());
  t.Persist(rd);
  t.node().Advance();
  EXPECT_FALSE(t.node().HasReady());
  EXPECT_EQ(t.node().Status().applied, 1u);
}

// In a cluster, a new leader's entry commits only after a follower
// acknowledges it, and the follower can only do so after the leader
// persisted it (the MsgApp leaves with the Ready that persists it). The
// commit-only Ready needs no sync.
TEST(RawNodeTest, LeaderCommitsOnlyAfterPersistAndAck) {
  TestNode t(1, {1, 2, 3});
  ASSERT_TRUE(t.node().Campaign().ok());
  Ready rd = t.Handle();
  EXPECT_EQ(rd.soft_state->raft_state, StateType::kCandidate);
  EXPECT_EQ(rd.hard_state.term(), 1u);
  EXPECT_EQ(rd.hard_state.vote(), 1u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_EQ(rd.messages.size(), 2u);  // vote requests

  ASSERT_TRUE(t.node().Step(MakeMsg(raftpb::MSG_VOTE_RESP, 2, 1, 1)).ok());
  rd = t.node().GetReady();
  EXPECT_EQ(rd.soft_state->raft_state, StateType::kLeader);
  EXPECT_TRUE(IsEmptyHardState(rd.hard_state));  // term and vote unchanged
  EXPECT_EQ(Indexes(rd.entries), Idx{1});
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(rd.committed_entries.empty());
  ASSERT_EQ(rd.messages.size(), 2u);
  for (const Message& m : rd.messages) EXPECT_EQ(m.type(), raftpb::MSG_APP);
  t.Persist(rd);
  t.node().Advance();

  Message ack = MakeMsg(raftpb::MSG_APP_RESP, 2, 1, 1);
  ack.set_index(1);
  ASSERT_TRUE(t.node().Step(ack).ok());
  rd = t.Handle();
  EXPECT_FALSE(rd.soft_state.has_value());
  EXPECT_EQ(rd.hard_state.commit(), 1u);
  EXPECT_TRUE(rd.entries.empty());
  EXPECT_FALSE(rd.must_sync);
  EXPECT_EQ(Indexes(rd.committed_entries), Idx{1});
}

// A follower may learn that entries are committed in the same message that
// brings them; they come out in one Ready, and every committed entry handed
// out is either already stored or among the entries this Ready persists.
TEST(RawNodeTest, CommittedEntriesCoveredByPersist) {
  TestNode t(2, {1, 2, 3});
  Message app = MakeMsg(raftpb::MSG_APP, 1, 2, 1);
  app.set_commit(2);
  *app.add_entries() = MakeEntry(1, 1, "a");
  *app.add_entries() = MakeEntry(2, 1, "b");
  *app.add_entries() = MakeEntry(3, 1, "c");
  ASSERT_TRUE(t.node().Step(app).ok());
  Ready rd = t.node().GetReady();
  EXPECT_EQ(Indexes(rd.entries), (Idx{1, 2, 3}));
  EXPECT_EQ(Indexes(rd.committed_entries), (Idx{1, 2}));
  EXPECT_EQ(rd.hard_state.commit(), 2u);
  EXPECT_TRUE(rd.must_sync);
  const uint64_t stored = *t.storage().LastIndex();
  const uint64_t persisted_here = rd.entries.empty() ? 0 : rd.entries.back().index();
  for (const Entry& e : rd.committed_entries) {
    EXPECT_LE(e.index(), std::max(stored, persisted_here));
  }
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type(), raftpb::MSG_APP_RESP);
  EXPECT_EQ(rd.messages[0].index(), 3u);
  t.Persist(rd);
  t.node().Advance();

  // The rest commits with the next heartbeat; nothing is re-delivered.
  Message hb = MakeMsg(raftpb::MSG_HEARTBEAT, 1, 2, 1);
  hb.set_commit(3);
  ASSERT_TRUE(t.node().Step(hb).ok());
  rd = t.Handle();
  EXPECT_TRUE(rd.entries.empty());
  EXPECT_EQ(Indexes(rd.committed_entries), Idx{3});
  EXPECT_FALSE(rd.must_sync);
}

// GetReady may not be called again before Advance, nor Advance without a
// Ready; while a Ready is outstanding HasReady is false.
TEST(RawNodeDeathTest, AdvanceRequiredBeforeNextGetReady) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TestNode t(1, {1});
  ASSERT_TRUE(t.node().Campaign().ok());
  (void)t.node().GetReady();
  EXPECT_FALSE(t.node().HasReady());
  EXPECT_DEATH((void)t.node().GetReady(), "GetReady called before Advance");
  t.node().Advance();
  EXPECT_DEATH(t.node().Advance(), "Advance without an outstanding Ready");
}

// Inputs stepped while a Ready is outstanding are kept for the next Ready:
// a response generated in between is not lost, and entries appended in
// between are not marked stable by the Advance of the older Ready.
TEST(RawNodeTest, InputsBetweenGetReadyAndAdvanceAreKept) {
  TestNode t(2, {1, 2, 3});
  Message app = MakeMsg(raftpb::MSG_APP, 1, 2, 1);
  *app.add_entries() = MakeEntry(1, 1, "a");
  ASSERT_TRUE(t.node().Step(app).ok());
  Ready rd = t.node().GetReady();
  EXPECT_EQ(Indexes(rd.entries), Idx{1});

  Message hb = MakeMsg(raftpb::MSG_HEARTBEAT, 1, 2, 1);
  ASSERT_TRUE(t.node().Step(hb).ok());
  Message app2 = MakeMsg(raftpb::MSG_APP, 1, 2, 1);
  app2.set_index(1);
  app2.set_log_term(1);
  *app2.add_entries() = MakeEntry(2, 1, "b");
  *app2.add_entries() = MakeEntry(3, 1, "c");
  ASSERT_TRUE(t.node().Step(app2).ok());
  EXPECT_FALSE(t.node().HasReady());
  t.Persist(rd);
  t.node().Advance();

  ASSERT_TRUE(t.node().HasReady());
  rd = t.Handle();
  EXPECT_EQ(Indexes(rd.entries), (Idx{2, 3}));
  ASSERT_EQ(rd.messages.size(), 2u);
  EXPECT_EQ(rd.messages[0].type(), raftpb::MSG_HEARTBEAT_RESP);
  EXPECT_EQ(rd.messages[1].type(), raftpb::MSG_APP_RESP);
  EXPECT_EQ(rd.messages[1].index(), 3u);
}

// An entry handed out for persisting and then overwritten by a newer
// leader before Advance stays unstable: the new entry is handed out again.
TEST(RawNodeTest, EntryOverwrittenBeforeAdvanceIsHandedOutAgain) {
  TestNode t(2, {1, 2, 3});
  Message app = MakeMsg(raftpb::MSG_APP, 1, 2, 1);
  *app.add_entries() = MakeEntry(1, 1, "a");
  *app.add_entries() = MakeEntry(2, 1, "old");
  ASSERT_TRUE(t.node().Step(app).ok());
  Ready rd = t.node().GetReady();
  EXPECT_EQ(Indexes(rd.entries), (Idx{1, 2}));

  // Leader 3 of term 2 replaces entry 2.
  Message app3 = MakeMsg(raftpb::MSG_APP, 3, 2, 2);
  app3.set_index(1);
  app3.set_log_term(1);
  *app3.add_entries() = MakeEntry(2, 2, "new");
  ASSERT_TRUE(t.node().Step(app3).ok());
  t.Persist(rd);
  t.node().Advance();

  rd = t.Handle();
  ASSERT_FALSE(rd.entries.empty());
  EXPECT_EQ(rd.entries.back().index(), 2u);
  EXPECT_EQ(rd.entries.back().term(), 2u);
  EXPECT_EQ(rd.entries.back().data(), "new");
  EXPECT_EQ(*t.storage().Term(2), 2u);
}

// Soft state appears in a Ready only when it changed.
TEST(RawNodeTest, SoftStateReportedOnce) {
  TestNode t(1, {1, 2, 3});
  ASSERT_TRUE(t.node().Campaign().ok());
  Ready rd = t.Handle();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(*rd.soft_state, (SoftState{kNone, StateType::kCandidate}));
  ASSERT_TRUE(t.node().Step(MakeMsg(raftpb::MSG_VOTE_RESP, 2, 1, 1)).ok());
  rd = t.Handle();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(*rd.soft_state, (SoftState{1, StateType::kLeader}));

  // Proposals and acks change no soft state.
  ASSERT_TRUE(t.node().Propose("x").ok());
  rd = t.Handle();
  EXPECT_FALSE(rd.soft_state.has_value());
  EXPECT_EQ(rd.entries.size(), 1u);

  // A higher-term leader appears: reported once more.
  ASSERT_TRUE(t.node().Step(MakeMsg(raftpb::MSG_HEARTBEAT, 3, 1, 5)).ok());
  rd = t.Handle();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(*rd.soft_state, (SoftState{3, StateType::kFollower}));
  EXPECT_EQ(rd.hard_state.term(), 5u);
  EXPECT_TRUE(rd.must_sync);
  ASSERT_TRUE(t.node().Step(MakeMsg(raftpb::MSG_HEARTBEAT, 3, 1, 5)).ok());
  rd = t.Handle();
  EXPECT_FALSE(rd.soft_state.has_value());
}

// Read states come out in the next Ready, once.
TEST(RawNodeTest, ReadStatesDelivered) {
  TestNode t(1, {1});
  ASSERT_TRUE(t.node().Campaign().ok());
  t.Handle();
  t.node().ReadIndex("ctx");
  ASSERT_TRUE(t.node().HasReady());
  Ready rd = t.Handle();
  ASSERT_EQ(rd.read_states.size(), 1u);
  EXPECT_EQ(rd.read_states[0].request_ctx, "ctx");
  EXPECT_EQ(rd.read_states[0].index, 1u);
  EXPECT_FALSE(t.node().HasReady());

  // On a follower the request goes to the leader as a message.
  TestNode f(2, {1, 2, 3});
  ASSERT_TRUE(f.node().Step(MakeMsg(raftpb::MSG_HEARTBEAT, 1, 2, 1)).ok());
  f.Handle();
  f.node().ReadIndex("f");
  rd = f.Handle();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type(), raftpb::MSG_READ_INDEX);
  EXPECT_EQ(rd.messages[0].to(), 1u);
  Message resp = MakeMsg(raftpb::MSG_READ_INDEX_RESP, 1, 2, 1);
  resp.set_index(7);
  resp.add_entries()->set_data("f");
  ASSERT_TRUE(f.node().Step(resp).ok());
  rd = f.Handle();
  ASSERT_EQ(rd.read_states.size(), 1u);
  EXPECT_EQ(rd.read_states[0].index, 7u);
  EXPECT_EQ(rd.read_states[0].request_ctx, "f");
}

// On restart with an applied index, only entries after it are handed out;
// with everything applied, nothing is.
TEST(RawNodeTest, RestartDoesNotRedeliverAppliedEntries) {
  auto fill = [](MemoryStorage& s) {
    std::vector<Entry> ents;
    for (uint64_t i = 1; i <= 5; ++i) ents.push_back(MakeEntry(i, 1, "e" + std::to_string(i)));
    ASSERT_TRUE(s.Append(ents).ok());
    HardState hs;
    hs.set_term(1);
    hs.set_commit(5);
    s.SetHardState(hs);
  };
  {
    TestNode t(1, {1, 2}, /*applied=*/3, fill);
    ASSERT_TRUE(t.node().HasReady());
    Ready rd = t.Handle();
    EXPECT_EQ(Indexes(rd.committed_entries), (Idx{4, 5}));
    EXPECT_TRUE(rd.entries.empty());
    EXPECT_TRUE(IsEmptyHardState(rd.hard_state));  // unchanged since load
    EXPECT_FALSE(rd.must_sync);
    EXPECT_FALSE(t.node().HasReady());
  }
  {
    TestNode t(1, {1, 2}, /*applied=*/5, fill);
    EXPECT_FALSE(t.node().HasReady());
    EXPECT_EQ(t.node().Status().applied, 5u);
  }
  {
    // From a snapshot at 2 plus entries 3..4.
    auto from_snapshot = [](MemoryStorage& s) {
      Snapshot snap;
      snap.mutable_metadata()->set_index(2);
      snap.mutable_metadata()->set_term(1);
      snap.mutable_metadata()->mutable_conf_state()->add_voters(1);
      snap.mutable_metadata()->mutable_conf_state()->add_voters(2);
      ASSERT_TRUE(s.ApplySnapshot(snap).ok());
      ASSERT_TRUE(s.Append({MakeEntry(3, 1, "c"), MakeEntry(4, 1, "d")}).ok());
      HardState hs;
      hs.set_term(1);
      hs.set_commit(4);
      s.SetHardState(hs);
    };
    TestNode t(1, {1, 2}, /*applied=*/2, from_snapshot);
    Ready rd = t.Handle();
    EXPECT_EQ(Indexes(rd.committed_entries), (Idx{3, 4}));
    EXPECT_TRUE(IsEmptySnapshot(rd.snapshot));
  }
}

// Status shows the progress of every node on the leader, and none on a
// follower.
TEST(RawNodeTest, StatusShowsProgressOnLeaderOnly) {
  TestNode t(1, {1, 2, 3});
  NodeStatus st = t.node().Status();
  EXPECT_EQ(st.id, 1u);
  EXPECT_EQ(st.soft_state.raft_state, StateType::kFollower);
  EXPECT_TRUE(st.progress.empty());

  ASSERT_TRUE(t.node().Campaign().ok());
  t.Handle();
  ASSERT_TRUE(t.node().Step(MakeMsg(raftpb::MSG_VOTE_RESP, 2, 1, 1)).ok());
  t.Handle();
  Message ack = MakeMsg(raftpb::MSG_APP_RESP, 2, 1, 1);
  ack.set_index(1);
  ASSERT_TRUE(t.node().Step(ack).ok());
  t.Handle();

  st = t.node().Status();
  EXPECT_EQ(st.soft_state.raft_state, StateType::kLeader);
  EXPECT_EQ(st.soft_state.lead, 1u);
  EXPECT_EQ(st.hard_state.term(), 1u);
  EXPECT_EQ(st.hard_state.commit(), 1u);
  EXPECT_EQ(st.applied, 1u);
  ASSERT_EQ(st.progress.size(), 3u);
  EXPECT_EQ(st.progress.at(1).match, 1u);
  EXPECT_EQ(st.progress.at(2).match, 1u);
  EXPECT_EQ(st.progress.at(2).state, ProgressState::kReplicate);
  EXPECT_EQ(st.progress.at(3).match, 0u);
  EXPECT_EQ(st.progress.at(3).state, ProgressState::kProbe);
  EXPECT_EQ(st.config.voters.Ids(), (std::vector<uint64_t>{1, 2, 3}));

  // Deposed: the progress disappears from the status.
  ASSERT_TRUE(t.node().Step(MakeMsg(raftpb::MSG_HEARTBEAT, 2, 1, 2)).ok());
  st = t.node().Status();
  EXPECT_EQ(st.soft_state.raft_state, StateType::kFollower);
  EXPECT_EQ(st.soft_state.lead, 2u);
  EXPECT_TRUE(st.progress.empty());
}

// A conf change proposed through RawNode comes out committed and, applied,
// yields the new ConfState.
TEST(RawNodeTest, ProposeAndApplyConfChange) {
  TestNode t(1, {1});
  ASSERT_TRUE(t.node().Campaign().ok());
  t.Handle();
  ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
  cc.set_node_id(2);
  ASSERT_TRUE(t.node().ProposeConfChange(cc).ok());
  Ready rd = t.node().GetReady();
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  const Entry& e = rd.committed_entries[0];
  EXPECT_EQ(e.type(), raftpb::ENTRY_CONF_CHANGE);
  ConfChange got;
  ASSERT_TRUE(got.ParseFromString(e.data()));
  ConfState cs = t.node().ApplyConfChange(got);
  t.Persist(rd);
  t.node().Advance();
  ASSERT_EQ(cs.voters_size(), 1);
  EXPECT_EQ(cs.voters(0), 1u);
  ASSERT_EQ(cs.learners_size(), 1);
  EXPECT_EQ(cs.learners(0), 2u);
  EXPECT_TRUE(t.node().raft().tracker().progress.contains(2));
}

// Step refuses local message types and responses from strangers, leaving
// the node unchanged.
TEST(RawNodeTest, StepRejectsLocalAndUnknownPeerMessages) {
  TestNode t(1, {1, 2});
  for (MessageType type : {raftpb::MSG_HUP, raftpb::MSG_BEAT, raftpb::MSG_UNREACHABLE,
                           raftpb::MSG_SNAP_STATUS, raftpb::MSG_CHECK_QUORUM}) {
    SCOPED_TRACE(MessageTypeName(type));
    EXPECT_TRUE(IsStepLocalMsg(t.node().Step(MakeMsg(type, 2, 1, 0))));
  }
  EXPECT_EQ(t.node().raft().state(), StateType::kFollower);
  EXPECT_TRUE(IsStepPeerNotFound(t.node().Step(MakeMsg(raftpb::MSG_APP_RESP, 9, 1, 1))));
  EXPECT_FALSE(t.node().HasReady());
}

// Only a leader whose term and vote are already durable may send before
// persisting (raft/ready.h): a candidate's vote request, a voter's grant and
// a follower's acknowledgement promise what their persist makes true.
TEST(RawNodeTest, OnlyAnEstablishedLeaderMaySendBeforePersisting) {
  TestNode leader(1, {1, 2, 3});
  TestNode follower(2, {1, 2, 3});

  ASSERT_TRUE(leader.node().Campaign().ok());
  Ready rd = leader.Handle();
  ASSERT_FALSE(rd.messages.empty());  // the vote requests
  EXPECT_FALSE(rd.send_before_persist) << "a candidate's new term and vote";

  Message vote;
  for (const Message& m : rd.messages) {
    if (m.to() == 2) vote = m;
  }
  ASSERT_EQ(vote.type(), raftpb::MSG_VOTE);
  ASSERT_TRUE(follower.node().Step(vote).ok());
  rd = follower.Handle();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type(), raftpb::MSG_VOTE_RESP);
  EXPECT_FALSE(rd.send_before_persist) << "a voter's grant";

  ASSERT_TRUE(leader.node().Step(rd.messages[0]).ok());
  ASSERT_EQ(leader.node().raft().state(), StateType::kLeader);
  rd = leader.Handle();
  ASSERT_FALSE(rd.entries.empty());  // the new term's empty entry
  ASSERT_FALSE(rd.messages.empty());
  EXPECT_TRUE(rd.send_before_persist) << "a leader replicating its own log";

  Message app;
  for (const Message& m : rd.messages) {
    if (m.to() == 2) app = m;
  }
  ASSERT_EQ(app.type(), raftpb::MSG_APP);
  ASSERT_TRUE(follower.node().Step(app).ok());
  rd = follower.Handle();
  ASSERT_FALSE(rd.entries.empty());
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type(), raftpb::MSG_APP_RESP);
  EXPECT_FALSE(rd.send_before_persist) << "a follower's acknowledgement";

  // The leader counts the follower's acknowledgement and commits; its
  // commit index alone changed in its hard state.
  ASSERT_TRUE(leader.node().Step(rd.messages[0]).ok());
  ASSERT_TRUE(leader.node().Propose("x").ok());
  rd = leader.Handle();
  EXPECT_TRUE(rd.send_before_persist);
}

}  // namespace
}  // namespace arbiter::raft
