// Tests of the rules in Figure 2 and §5 of the Raft paper, continued from
// raft_paper_test.cc (which explains the form): §5.3 (log replication),
// §5.4 (safety) and Figure 2's persistent state. The scenarios follow
// etcd-io/raft's raft_paper_test.go.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/rand.h"
#include "raft/raw_node.h"
#include "tests/harness/peer.h"
#include "tests/raft/raft_paper_util.h"

namespace arbiter::raft::paper_test {
namespace {

namespace harness = ::arbiter::raft::testing;

// ---------------------------------------------------------------------------
// §5.3 Log replication

// §5.3: "The leader appends the command to its log as a new entry, then
// issues AppendEntries RPCs in parallel to each of the other servers to
// replicate the entry." "When sending an AppendEntries RPC, the leader
// includes the index and term of the entry in its log that immediately
// precedes the new entries." The new entry is to be written to stable
// storage (it is in the unstable part, handed out by the next Ready).
TEST(RaftPaperTest, LeaderStartReplication) {
  Node n(1, {1, 2, 3});
  ElectAndCommitEmptyEntry(n);
  const uint64_t li = n.r().log().LastIndex();

  Propose(n.r(), "some data");

  EXPECT_EQ(n.r().log().LastIndex(), li + 1);
  EXPECT_EQ(n.r().log().committed(), li);
  const Entry want_ent = Ent(li + 1, 1, "some data");
  std::vector<Message> want;
  for (uint64_t to : {2, 3}) {
    Message m = Msg(1, to, raftpb::MSG_APP, 1);
    m.set_index(li);
    m.set_log_term(1);
    m.set_commit(li);
    *m.add_entries() = want_ent;
    want.push_back(m);
  }
  EXPECT_EQ(Strs(Take(n.r())), Strs(want));
  EXPECT_EQ(Strs(n.r().log().UnstableEntries()), Strs(std::vector<Entry>{want_ent}));
}

// §5.3: "When the entry has been safely replicated, the leader applies the
// entry to its state machine". "The leader keeps track of the highest index
// it knows to be committed, and it includes that index in future
// AppendEntries RPCs (including heartbeats) so that the other servers
// eventually find out."
TEST(RaftPaperTest, LeaderCommitEntry) {
  Node n(1, {1, 2, 3});
  ElectAndCommitEmptyEntry(n);
  const uint64_t li = n.r().log().LastIndex();
  Propose(n.r(), "some data");

  for (const Message& m : Take(n.r())) ASSERT_TRUE(n.r().Step(AcceptAndReply(m)).ok());

  EXPECT_EQ(n.r().log().committed(), li + 1);
  EXPECT_EQ(Strs(n.r().log().NextCommittedEntries(true)),
            Strs(std::vector<Entry>{Ent(li + 1, 1, "some data")}));
  std::vector<Message> msgs = Take(n.r());
  ASSERT_EQ(msgs.size(), 2u);
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(msgs[i].to(), i + 2);
    EXPECT_EQ(msgs[i].type(), raftpb::MSG_APP);
    EXPECT_EQ(msgs[i].commit(), li + 1);
  }
}

// §5.3: "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers".
TEST(RaftPaperTest, LeaderAcknowledgeCommit) {
  struct Case {
    int size;
    std::set<uint64_t> acceptors;
    bool want_commit;
  };
  const std::vector<Case> cases = {
      {1, {}, true},     {3, {}, false},       {3, {2}, true},
      {3, {2, 3}, true}, {5, {}, false},       {5, {2}, false},
      {5, {2, 3}, true}, {5, {2, 3, 4}, true}, {5, {2, 3, 4, 5}, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    std::vector<uint64_t> ids;
    for (int id = 1; id <= cases[i].size; ++id) ids.push_back(static_cast<uint64_t>(id));
    Node n(1, ids);
    ElectAndCommitEmptyEntry(n);
    const uint64_t li = n.r().log().LastIndex();
    Propose(n.r(), "some data");

    for (const Message& m : Take(n.r())) {
      if (cases[i].acceptors.contains(m.to())) {
        ASSERT_TRUE(n.r().Step(AcceptAndReply(m)).ok());
      }
    }

    EXPECT_EQ(n.r().log().committed(), cases[i].want_commit ? li + 1 : li);
  }
}

// §5.3: "This also commits all preceding entries in the leader's log,
// including entries created by previous leaders." Figure 2: "If commitIndex
// > lastApplied: increment lastApplied, apply log[lastApplied] to state
// machine" (in log order).
TEST(RaftPaperTest, LeaderCommitPrecedingEntries) {
  const std::vector<std::vector<Entry>> cases = {{}, Ents(1, {2}), Ents(1, {1, 2}), Ents(1, {1})};
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2, 3}, cases[i], Hs(2));
    std::vector<Message> apps = MakeLeader(n.r());
    ASSERT_EQ(n.r().term(), 3u);
    Propose(n.r(), "some data");

    AckAll(n.r(), std::move(apps));

    std::vector<Entry> want = cases[i];
    const uint64_t li = cases[i].size();
    want.push_back(Ent(li + 1, 3));
    want.push_back(Ent(li + 2, 3, "some data"));
    EXPECT_EQ(Strs(n.r().log().NextCommittedEntries(true)), Strs(want));
  }
}

// §5.3: "Once a follower learns that a log entry is committed, it applies
// the entry to its local state machine (in log order)."
TEST(RaftPaperTest, FollowerCommitEntry) {
  struct Case {
    std::vector<Entry> ents;
    uint64_t commit;
  };
  const std::vector<Case> cases = {
      {{Ent(1, 1, "some data")}, 1},
      {{Ent(1, 1, "some data"), Ent(2, 1, "some data2")}, 2},
      {{Ent(1, 1, "some data2"), Ent(2, 1, "some data")}, 2},
      {{Ent(1, 1, "some data"), Ent(2, 1, "some data2")}, 1},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2, 3});
    MakeFollower(n.r(), 1, 2);

    Message m = Msg(2, 1, raftpb::MSG_APP, 1);
    for (const Entry& e : cases[i].ents) *m.add_entries() = e;
    m.set_commit(cases[i].commit);
    ASSERT_TRUE(n.r().Step(m).ok());

    EXPECT_EQ(n.r().log().committed(), cases[i].commit);
    std::vector<Entry> want(cases[i].ents.begin(), cases[i].ents.begin() + cases[i].commit);
    EXPECT_EQ(Strs(n.r().log().NextCommittedEntries(true)), Strs(want));
  }
}

// §5.3: "If the follower does not find an entry in its log with the same
// index and term, then it refuses the new entries." Figure 2: "Reply false
// if log doesn't contain an entry at prevLogIndex whose term matches
// prevLogTerm". A refusal carries a hint (the last index where the logs may
// match, and its term) for fast backtracking.
TEST(RaftPaperTest, FollowerCheckMsgApp) {
  struct Case {
    uint64_t log_term, index;
    uint64_t want_index;
    bool want_reject;
    uint64_t want_hint, want_hint_term;
  };
  const std::vector<Case> cases = {
      // Matches a committed entry.
      {0, 0, 1, false, 0, 0},
      {1, 1, 1, false, 0, 0},
      // Matches an uncommitted entry.
      {2, 2, 2, false, 0, 0},
      // Conflicts with an existing entry.
      {1, 2, 2, true, 1, 1},
      // Names entries we do not have: the hint is our last entry.
      {3, 3, 3, true, 2, 2},
      {3, 5, 5, true, 2, 2},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2, 3}, Ents(1, {1, 2}), Hs(0, kNone, 1));
    MakeFollower(n.r(), 2, 2);

    Message m = Msg(2, 1, raftpb::MSG_APP, 2);
    m.set_log_term(cases[i].log_term);
    m.set_index(cases[i].index);
    ASSERT_TRUE(n.r().Step(m).ok());

    Message want = Msg(1, 2, raftpb::MSG_APP_RESP, 2);
    want.set_index(cases[i].want_index);
    if (cases[i].want_reject) {
      want.set_reject(true);
      want.set_reject_hint(cases[i].want_hint);
      want.set_log_term(cases[i].want_hint_term);
    }
    EXPECT_EQ(Strs(Take(n.r())), Strs(std::vector<Message>{want}));
  }
}

// §5.3: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it; append
// any new entries not already in the log" (Figure 2). The new entries are to
// be written to stable storage (they are in the unstable part).
TEST(RaftPaperTest, FollowerAppendEntries) {
  struct Case {
    uint64_t index, log_term;
    std::vector<Entry> ents, want_all, want_unstable;
  };
  // The appends come from a leader at term 4: a leader never sends entries
  // of a term newer than its own (our core drops such an append as forged).
  const std::vector<Case> cases = {
      {2, 2, Ents(3, {3}), Ents(1, {1, 2, 3}), Ents(3, {3})},
      {1, 1, Ents(2, {3, 4}), Ents(1, {1, 3, 4}), Ents(2, {3, 4})},
      {0, 0, Ents(1, {1}), Ents(1, {1, 2}), {}},
      {0, 0, Ents(1, {3}), Ents(1, {3}), Ents(1, {3})},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2, 3}, Ents(1, {1, 2}));
    MakeFollower(n.r(), 4, 2);

    Message m = Msg(2, 1, raftpb::MSG_APP, 4);
    m.set_index(cases[i].index);
    m.set_log_term(cases[i].log_term);
    for (const Entry& e : cases[i].ents) *m.add_entries() = e;
    ASSERT_TRUE(n.r().Step(m).ok());

    EXPECT_EQ(Strs(n.r().log().AllEntries()), Strs(cases[i].want_all));
    EXPECT_EQ(Strs(n.r().log().UnstableEntries()), Strs(cases[i].want_unstable));
  }
}

// §5.3: "After a rejection, the leader decrements nextIndex and retries the
// AppendEntries RPC." With the follower's hint it skips the whole
// conflicting term at once (the optimization §5.3 sketches).
TEST(RaftPaperTest, LeaderRetriesAppendAfterRejection) {
  struct Case {
    uint64_t hint, hint_term;
    uint64_t want_index, want_log_term;
    std::vector<Entry> want_ents;
  };
  const std::vector<Case> cases = {
      // No term hint: back off by one entry.
      {3, 0, 3, 2, Ents(4, {2, 3})},
      // The follower's log has term 1 up to index 2: skip term 2.
      {2, 1, 2, 1, Ents(3, {2, 2, 3})},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2}, Ents(1, {1, 1, 2, 2}), Hs(2));
    std::vector<Message> apps = MakeLeader(n.r());
    ASSERT_EQ(apps.size(), 1u);
    ASSERT_EQ(apps[0].index(), 4u);

    Message rej = Msg(2, 1, raftpb::MSG_APP_RESP, 3);
    rej.set_index(4);
    rej.set_reject(true);
    rej.set_reject_hint(cases[i].hint);
    rej.set_log_term(cases[i].hint_term);
    ASSERT_TRUE(n.r().Step(rej).ok());

    std::vector<Message> msgs = Take(n.r());
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type(), raftpb::MSG_APP);
    EXPECT_EQ(msgs[0].index(), cases[i].want_index);
    EXPECT_EQ(msgs[0].log_term(), cases[i].want_log_term);
    EXPECT_EQ(Strs(std::vector<Entry>(msgs[0].entries().begin(), msgs[0].entries().end())),
              Strs(cases[i].want_ents));
  }
}

// §5.3: "the leader handles inconsistencies by forcing the followers' logs
// to duplicate its own." "Eventually nextIndex will reach a point where the
// leader and follower logs match. ... Once AppendEntries succeeds, the
// follower's log is consistent with the leader's". The follower logs are
// those of Figure 7 (a)-(f); the leader's is the top one, at term 8.
TEST(RaftPaperTest, LeaderSyncFollowerLog) {
  const std::vector<Entry> leader_ents = Ents(1, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6});
  const std::vector<std::vector<Entry>> followers = {
      Ents(1, {1, 1, 1, 4, 4, 5, 5, 6, 6}),           // (a)
      Ents(1, {1, 1, 1, 4}),                          // (b)
      Ents(1, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}),     // (c)
      Ents(1, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}),  // (d)
      Ents(1, {1, 1, 1, 4, 4, 4, 4}),                 // (e)
      Ents(1, {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}),     // (f)
  };
  for (size_t i = 0; i < followers.size(); ++i) {
    SCOPED_TRACE(i);
    Node lead(1, {1, 2, 3}, leader_ents, Hs(8, kNone, leader_ents.size()));
    Node follower(2, {1, 2, 3}, followers[i], Hs(7));
    // Node 3 is down; its vote is delivered by hand, since the follower may
    // have the more up-to-date log and refuse its own.
    const std::map<uint64_t, Raft*> nodes = {{1, &lead.r()}, {2, &follower.r()}};
    Hup(lead.r());
    Pump(nodes, Take(lead.r()));
    Pump(nodes, {Msg(3, 1, raftpb::MSG_VOTE_RESP, 9)});
    ASSERT_EQ(lead.r().state(), StateType::kLeader);
    Propose(lead.r(), "");
    Pump(nodes, Take(lead.r()));

    EXPECT_EQ(lead.r().log().LastIndex(), 12u);
    EXPECT_EQ(Strs(follower.r().log().AllEntries()), Strs(lead.r().log().AllEntries()));
    EXPECT_EQ(follower.r().log().committed(), 12u);
    EXPECT_EQ(lead.r().log().committed(), 12u);
  }
}

// ---------------------------------------------------------------------------
// §5.4 Safety

// §5.4.1: "The RequestVote RPC implements this restriction: the RPC includes
// information about the candidate's log". Figure 2: RequestVote carries
// "lastLogIndex: index of candidate's last log entry; lastLogTerm: term of
// candidate's last log entry", and goes to all other servers.
TEST(RaftPaperTest, VoteRequest) {
  struct Case {
    std::vector<Entry> ents;
    uint64_t want_term;
  };
  const std::vector<Case> cases = {{Ents(1, {1}), 2}, {Ents(1, {1, 2}), 3}};
  for (size_t j = 0; j < cases.size(); ++j) {
    SCOPED_TRACE(j);
    Node n(1, {1, 2, 3});
    Message app = Msg(2, 1, raftpb::MSG_APP, cases[j].want_term - 1);
    for (const Entry& e : cases[j].ents) *app.add_entries() = e;
    ASSERT_TRUE(n.r().Step(app).ok());
    Take(n.r());

    TickN(n.r(), 2 * kElectionTick - 1);

    std::vector<Message> want;
    for (uint64_t to : {2, 3}) {
      Message m = Msg(1, to, raftpb::MSG_VOTE, cases[j].want_term);
      m.set_index(cases[j].ents.back().index());
      m.set_log_term(cases[j].ents.back().term());
      want.push_back(m);
    }
    EXPECT_EQ(Strs(Take(n.r())), Strs(want));
  }
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate." "If the logs have last entries with different
// terms, then the log with the later term is more up-to-date. If the logs
// end with the same term, then whichever log is longer is more up-to-date."
TEST(RaftPaperTest, Voter) {
  struct Case {
    std::vector<Entry> ents;
    uint64_t log_term, index;
    bool want_reject;
  };
  const std::vector<Case> cases = {
      // Same last term: the longer log wins.
      {Ents(1, {1}), 1, 1, false},
      {Ents(1, {1}), 1, 2, false},
      {Ents(1, {1, 1}), 1, 1, true},
      // The candidate's last term is later.
      {Ents(1, {1}), 2, 1, false},
      {Ents(1, {1}), 2, 2, false},
      {Ents(1, {1, 1}), 2, 1, false},
      // The voter's last term is later.
      {Ents(1, {2}), 1, 1, true},
      {Ents(1, {2}), 1, 2, true},
      {Ents(1, {2, 2}), 1, 1, true},
      {Ents(1, {1, 1}), 1, 1, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2}, cases[i].ents);

    Message m = Msg(2, 1, raftpb::MSG_VOTE, 3);
    m.set_log_term(cases[i].log_term);
    m.set_index(cases[i].index);
    ASSERT_TRUE(n.r().Step(m).ok());

    Message want = Msg(1, 2, raftpb::MSG_VOTE_RESP, 3);
    want.set_reject(cases[i].want_reject);
    EXPECT_EQ(Strs(Take(n.r())), Strs(std::vector<Message>{want}));
    EXPECT_EQ(n.r().vote(), cases[i].want_reject ? kNone : 2u);
  }
}

// §5.4.2: "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed by
// counting replicas".
TEST(RaftPaperTest, LeaderOnlyCommitsLogFromCurrentTerm) {
  struct Case {
    uint64_t index, want_commit;
  };
  const std::vector<Case> cases = {
      // Entries of earlier terms are not committed by replication alone.
      {1, 0},
      {2, 0},
      // The leader's empty entry of term 3 is, and with it all before it.
      {3, 3},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2}, Ents(1, {1, 2}), Hs(2));
    MakeLeader(n.r());
    ASSERT_EQ(n.r().term(), 3u);
    Propose(n.r(), "");

    Message ack = Msg(2, 1, raftpb::MSG_APP_RESP, 3);
    ack.set_index(cases[i].index);
    ASSERT_TRUE(n.r().Step(ack).ok());

    EXPECT_EQ(n.r().log().committed(), cases[i].want_commit);
  }
}

// ---------------------------------------------------------------------------
// Figure 2, persistent state

// Figure 2: "Persistent state on all servers: (Updated on stable storage
// before responding to RPCs) currentTerm, votedFor, log[]". The vote and the
// response leave in the same Ready, which must be synced before sending.
TEST(RaftPaperTest, VoteIsPersistedWithItsResponse) {
  MemoryStorage storage;
  ConfState cs;
  for (uint64_t v : {1, 2, 3}) cs.add_voters(v);
  storage.BootstrapConfState(cs);
  SeededRand rand(1);
  Config c = harness::TestConfig(/*pre_vote=*/false, /*check_quorum=*/false);
  c.id = 1;
  c.storage = &storage;
  c.rand = &rand;
  auto node = RawNode::Create(c);
  ASSERT_TRUE(node.ok());

  ASSERT_TRUE((*node)->Step(Msg(2, 1, raftpb::MSG_VOTE, 5)).ok());
  Ready rd = (*node)->GetReady();

  EXPECT_EQ(rd.hard_state.term(), 5u);
  EXPECT_EQ(rd.hard_state.vote(), 2u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_EQ(Strs(rd.messages), Strs(std::vector<Message>{Msg(1, 2, raftpb::MSG_VOTE_RESP, 5)}));
}

}  // namespace
}  // namespace arbiter::raft::paper_test
