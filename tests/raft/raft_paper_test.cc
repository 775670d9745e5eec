// Tests of the rules in Figure 2 and §5 of the Raft paper ("In Search of an
// Understandable Consensus Algorithm", extended version), one rule per test.
// Each test quotes the sentence it checks and has three parts: init (put a
// node in the state the sentence assumes), act (step messages or ticks by
// hand) and check (the node's state and the messages it sent).
//
// This file covers §5.1 (terms) and §5.2 (leader election);
// raft_paper_log_test.cc covers §5.3 (log replication), §5.4 (safety) and
// Figure 2's persistent state.
//
// The nodes are bare Raft instances over a MemoryStorage (raft_paper_util.h),
// stepped by hand, with PreVote and CheckQuorum off so that they behave as
// the paper says (both extensions are tested in raft_election_test.cc). The
// scenarios follow etcd-io/raft's raft_paper_test.go. Our leader appends an
// empty entry when elected, as etcd's does.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "raft/raft.h"
#include "tests/raft/raft_paper_util.h"

namespace arbiter::raft::paper_test {
namespace {

// ---------------------------------------------------------------------------
// §5.1 Terms

// §5.1: "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value. If a candidate or leader
// discovers that its term is out of date, it immediately reverts to
// follower state." Figure 2: "If RPC request or response contains term T >
// currentTerm: set currentTerm = T, convert to follower".
void CheckUpdateTermFromMessage(StateType state) {
  for (MessageType type : {raftpb::MSG_APP, raftpb::MSG_APP_RESP, raftpb::MSG_VOTE}) {
    SCOPED_TRACE(MessageTypeName(type));
    // Init.
    Node n(1, {1, 2, 3});
    switch (state) {
      case StateType::kFollower:
        MakeFollower(n.r(), 1, 2);
        break;
      case StateType::kCandidate:
        MakeCandidate(n.r());
        break;
      default:
        MakeLeader(n.r());
        break;
    }
    ASSERT_EQ(n.r().term(), 1u);
    // Act.
    ASSERT_TRUE(n.r().Step(Msg(2, 1, type, 2)).ok());
    // Check: the term is adopted and only an append names a leader.
    EXPECT_EQ(n.r().term(), 2u);
    EXPECT_EQ(n.r().state(), StateType::kFollower);
    EXPECT_EQ(n.r().lead(), type == raftpb::MSG_APP ? 2u : kNone);
  }
}

TEST(RaftPaperTest, FollowerUpdatesTermFromMessage) {
  CheckUpdateTermFromMessage(StateType::kFollower);
}
TEST(RaftPaperTest, CandidateUpdatesTermFromMessage) {
  CheckUpdateTermFromMessage(StateType::kCandidate);
}
TEST(RaftPaperTest, LeaderUpdatesTermFromMessage) {
  CheckUpdateTermFromMessage(StateType::kLeader);
}

// §5.1: "If a server receives a request with a stale term number, it rejects
// the request." Figure 2: AppendEntries and RequestVote "Reply false if term
// < currentTerm". With neither CheckQuorum nor PreVote the node drops such
// requests silently: it sends nothing and changes nothing.
TEST(RaftPaperTest, RejectStaleTermMessage) {
  Node n(1, {1, 2, 3}, {}, Hs(2));

  Message app = Msg(2, 1, raftpb::MSG_APP, 1);
  *app.add_entries() = Ent(1, 1, "stale");
  app.set_commit(1);
  ASSERT_TRUE(n.r().Step(app).ok());
  Message vote = Msg(3, 1, raftpb::MSG_VOTE, 1);
  ASSERT_TRUE(n.r().Step(vote).ok());

  EXPECT_TRUE(Take(n.r()).empty());
  EXPECT_EQ(n.r().term(), 2u);
  EXPECT_EQ(n.r().lead(), kNone);
  EXPECT_EQ(n.r().vote(), kNone);
  EXPECT_EQ(n.r().log().LastIndex(), 0u);
  EXPECT_EQ(n.r().log().committed(), 0u);
}

// Same rule, with CheckQuorum on: a stale leader's append is answered with
// our current term, so that the stale leader learns it and steps down.
TEST(RaftPaperTest, StaleAppendIsAnsweredWithCurrentTermUnderCheckQuorum) {
  NodeOptions opts;
  opts.check_quorum = true;
  Node n(1, {1, 2, 3}, {}, Hs(2), opts);

  ASSERT_TRUE(n.r().Step(Msg(2, 1, raftpb::MSG_APP, 1)).ok());

  Message want = Msg(1, 2, raftpb::MSG_APP_RESP, 2);
  EXPECT_EQ(Strs(Take(n.r())), Strs(std::vector<Message>{want}));
  EXPECT_EQ(n.r().term(), 2u);
  EXPECT_EQ(n.r().lead(), kNone);
}

// ---------------------------------------------------------------------------
// §5.2 Leader election

// §5.2: "When servers start up, they begin as followers."
TEST(RaftPaperTest, StartAsFollower) {
  Node fresh(1, {1, 2, 3});
  EXPECT_EQ(fresh.r().state(), StateType::kFollower);
  EXPECT_EQ(fresh.r().term(), 0u);
  EXPECT_EQ(fresh.r().lead(), kNone);

  // A restart, even of a node that was leader, starts as a follower too.
  Node restarted(1, {1, 2, 3}, Ents(1, {5}), Hs(5, 1));
  EXPECT_EQ(restarted.r().state(), StateType::kFollower);
  EXPECT_EQ(restarted.r().term(), 5u);
  EXPECT_EQ(restarted.r().vote(), 1u);
}

// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no
// log entries) to all followers in order to maintain their authority."
TEST(RaftPaperTest, LeaderBcastBeat) {
  Node n(1, {1, 2, 3});
  std::vector<Message> msgs = MakeLeader(n.r());
  for (int i = 0; i < 10; ++i) Propose(n.r(), "x");
  Take(n.r());

  n.r().Tick();  // heartbeat_tick is 1

  // Heartbeats carry the leader's round number (for ReadIndex and the
  // lease; see read_only.h); compare the rest.
  auto without_round = [](std::vector<Message> msgs) {
    for (Message& m : msgs) {
      EXPECT_EQ(m.context().size(), 8u);
      m.clear_context();
    }
    return msgs;
  };
  std::vector<Message> want;
  for (uint64_t to : {2, 3}) want.push_back(Msg(1, to, raftpb::MSG_HEARTBEAT, 1));
  EXPECT_EQ(Strs(without_round(Take(n.r()))), Strs(want));

  // §5.3: the leader includes its commit index in heartbeats, but never
  // beyond what the follower is known to hold (3 acknowledged nothing).
  while (!msgs.empty()) {
    for (const Message& m : msgs) {
      if (m.type() == raftpb::MSG_APP && m.to() == 2) {
        ASSERT_TRUE(n.r().Step(AcceptAndReply(m)).ok());
      }
    }
    msgs = Take(n.r());
  }
  ASSERT_EQ(n.r().log().committed(), 11u);
  n.r().Tick();
  want[0].set_commit(11);
  EXPECT_EQ(Strs(without_round(Take(n.r()))), Strs(want));
}

// Figure 2, Leaders: "Upon election: send initial empty AppendEntries RPCs
// (heartbeat) to each server". Ours carry the leader's empty entry of the
// new term (§8: it lets the leader commit and learn the commit index).
TEST(RaftPaperTest, LeaderSendsAppendOnElection) {
  Node n(1, {1, 2, 3}, Ents(1, {1, 1}), Hs(1));

  std::vector<Message> got = MakeLeader(n.r());

  ASSERT_EQ(n.r().term(), 2u);
  std::vector<Message> want;
  for (uint64_t to : {2, 3}) {
    Message m = Msg(1, to, raftpb::MSG_APP, 2);
    m.set_index(2);
    m.set_log_term(1);
    *m.add_entries() = Ent(3, 2);
    want.push_back(m);
  }
  EXPECT_EQ(Strs(got), Strs(want));
}

// §5.2: "If a follower receives no communication over a period of time
// called the election timeout, then it assumes there is no viable leader and
// begins an election to choose a new leader. To begin an election, a
// follower increments its current term and transitions to candidate state.
// It then votes for itself and issues RequestVote RPCs in parallel to each
// of the other servers in the cluster." And: "If many followers become
// candidates at the same time, votes could be split so that no candidate
// obtains a majority. When this happens, each candidate will time out and
// start a new election by incrementing its term".
void CheckNonLeaderStartsElection(StateType state) {
  Node n(1, {1, 2, 3});
  if (state == StateType::kFollower) {
    MakeFollower(n.r(), 1, 2);
  } else {
    MakeCandidate(n.r());
  }

  // The timeout is in [10, 20): 19 ticks reach it exactly once.
  TickN(n.r(), 2 * kElectionTick - 1);

  EXPECT_EQ(n.r().term(), 2u);
  EXPECT_EQ(n.r().state(), StateType::kCandidate);
  EXPECT_EQ(n.r().vote(), 1u);
  EXPECT_EQ(n.r().tracker().votes, (std::map<uint64_t, bool>{{1, true}}));
  std::vector<Message> want;
  for (uint64_t to : {2, 3}) want.push_back(Msg(1, to, raftpb::MSG_VOTE, 2));
  EXPECT_EQ(Strs(Take(n.r())), Strs(want));
}

TEST(RaftPaperTest, FollowerStartElection) { CheckNonLeaderStartsElection(StateType::kFollower); }
TEST(RaftPaperTest, CandidateStartNewElection) {
  CheckNonLeaderStartsElection(StateType::kCandidate);
}

// §5.2: "A server remains in follower state as long as it receives valid
// RPCs from a leader or candidate." Figure 2, Followers: "If election
// timeout elapses without receiving AppendEntries RPC from current leader or
// granting vote to candidate: convert to candidate". (Two tests: heartbeat,
// granted vote.)
TEST(RaftPaperTest, HeartbeatResetsElectionTimer) {
  Node n(1, {1, 2, 3});
  MakeFollower(n.r(), 1, 2);
  n.r().set_randomized_election_timeout(10);

  // A heartbeat every 9 ticks holds the timeout off indefinitely.
  for (int round = 0; round < 10; ++round) {
    TickN(n.r(), 9);
    ASSERT_TRUE(n.r().Step(Msg(2, 1, raftpb::MSG_HEARTBEAT, 1)).ok());
  }
  Take(n.r());
  TickN(n.r(), 9);
  EXPECT_EQ(n.r().state(), StateType::kFollower);
  EXPECT_TRUE(Take(n.r()).empty());

  // Silence for a full timeout starts an election.
  n.r().Tick();
  EXPECT_EQ(n.r().state(), StateType::kCandidate);
  EXPECT_EQ(n.r().term(), 2u);
}

TEST(RaftPaperTest, GrantingVoteResetsElectionTimer) {
  // A follower at term 1 that knows no leader; the vote request is of the
  // same term, so no term change resets the timer on its own.
  Node n(1, {1, 2, 3}, {}, Hs(1));
  n.r().set_randomized_election_timeout(10);
  TickN(n.r(), 9);

  ASSERT_TRUE(n.r().Step(Msg(3, 1, raftpb::MSG_VOTE, 1)).ok());
  ASSERT_EQ(n.r().vote(), 3u);
  Take(n.r());
  TickN(n.r(), 9);
  EXPECT_EQ(n.r().state(), StateType::kFollower);
  EXPECT_TRUE(Take(n.r()).empty());

  n.r().Tick();
  EXPECT_EQ(n.r().state(), StateType::kCandidate);
  EXPECT_EQ(n.r().term(), 2u);
}

// §5.2: "A candidate continues in this state until one of three things
// happens: (a) it wins the election, (b) another server establishes itself
// as leader, or (c) a period of time goes by with no winner." "A candidate
// wins an election if it receives votes from a majority of the servers in
// the full cluster for the same term."
TEST(RaftPaperTest, LeaderElectionInOneRoundRPC) {
  struct Case {
    int size;
    std::map<uint64_t, bool> votes;
    StateType want;
  };
  const std::vector<Case> cases = {
      // A majority of votes wins.
      {1, {}, StateType::kLeader},
      {3, {{2, true}, {3, true}}, StateType::kLeader},
      {3, {{2, true}}, StateType::kLeader},
      {5, {{2, true}, {3, true}, {4, true}, {5, true}}, StateType::kLeader},
      {5, {{2, true}, {3, true}, {4, true}}, StateType::kLeader},
      {5, {{2, true}, {3, true}}, StateType::kLeader},
      // A majority of denials returns the candidate to follower.
      {3, {{2, false}, {3, false}}, StateType::kFollower},
      {5, {{2, false}, {3, false}, {4, false}, {5, false}}, StateType::kFollower},
      {5, {{2, true}, {3, false}, {4, false}, {5, false}}, StateType::kFollower},
      // Without a majority either way it stays a candidate.
      {3, {}, StateType::kCandidate},
      {5, {{2, true}}, StateType::kCandidate},
      {5, {{2, false}, {3, false}}, StateType::kCandidate},
      {5, {}, StateType::kCandidate},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    std::vector<uint64_t> ids;
    for (int id = 1; id <= c.size; ++id) ids.push_back(static_cast<uint64_t>(id));
    Node n(1, ids);

    Hup(n.r());
    for (const auto& [id, granted] : c.votes) {
      Message m = Msg(id, 1, raftpb::MSG_VOTE_RESP, n.r().term());
      m.set_reject(!granted);
      ASSERT_TRUE(n.r().Step(m).ok());
    }

    EXPECT_EQ(n.r().state(), c.want);
    EXPECT_EQ(n.r().term(), 1u);
  }
}

// §5.2: "Each server will vote for at most one candidate in a given term, on
// a first-come-first-served basis."
TEST(RaftPaperTest, FollowerVote) {
  struct Case {
    uint64_t vote;
    uint64_t candidate;
    bool want_reject;
  };
  const std::vector<Case> cases = {
      {kNone, 2, false}, {kNone, 3, false}, {2, 2, false},
      {3, 3, false},     {2, 3, true},      {3, 2, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Node n(1, {1, 2, 3}, {}, Hs(1, cases[i].vote));

    ASSERT_TRUE(n.r().Step(Msg(cases[i].candidate, 1, raftpb::MSG_VOTE, 1)).ok());

    Message want = Msg(1, cases[i].candidate, raftpb::MSG_VOTE_RESP, 1);
    want.set_reject(cases[i].want_reject);
    EXPECT_EQ(Strs(Take(n.r())), Strs(std::vector<Message>{want}));
    EXPECT_EQ(n.r().vote(), cases[i].vote == kNone ? cases[i].candidate : cases[i].vote);
  }
}

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries
// RPC from another server claiming to be leader. If the leader's term
// (included in its RPC) is at least as large as the candidate's current
// term, then the candidate recognizes the leader as legitimate and returns
// to follower state."
TEST(RaftPaperTest, CandidateFallback) {
  for (uint64_t term : {1, 2}) {
    SCOPED_TRACE(term);
    Node n(1, {1, 2, 3});
    MakeCandidate(n.r());
    ASSERT_EQ(n.r().term(), 1u);

    ASSERT_TRUE(n.r().Step(Msg(2, 1, raftpb::MSG_APP, term)).ok());

    EXPECT_EQ(n.r().state(), StateType::kFollower);
    EXPECT_EQ(n.r().term(), term);
    EXPECT_EQ(n.r().lead(), 2u);
  }
}

// §5.2: "Raft uses randomized election timeouts to ensure that split votes
// are rare ... election timeouts are chosen randomly from a fixed interval
// (e.g., 150–300ms)." Ours: uniformly from [election_tick, 2*election_tick).
void CheckElectionTimeoutRandomized(StateType state) {
  const int et = kElectionTick;
  Node n(1, {1, 2, 3});
  std::set<int> seen;
  for (int round = 0; round < 50 * et; ++round) {
    if (state == StateType::kFollower) {
      MakeFollower(n.r(), n.r().term() + 1, 2);
    } else {
      MakeCandidate(n.r());
    }
    int ticks = 0;
    while (n.r().msgs().empty() && ticks < 10 * et) {
      n.r().Tick();
      ++ticks;
    }
    seen.insert(ticks);
  }
  std::set<int> want;
  for (int d = et; d < 2 * et; ++d) want.insert(d);
  EXPECT_EQ(seen, want);
}

TEST(RaftPaperTest, FollowerElectionTimeoutRandomized) {
  CheckElectionTimeoutRandomized(StateType::kFollower);
}
TEST(RaftPaperTest, CandidateElectionTimeoutRandomized) {
  CheckElectionTimeoutRandomized(StateType::kCandidate);
}

// §5.2: "This spreads out the servers so that in most cases only a single
// server will time out; it wins the election and sends heartbeats before any
// other servers time out."
void CheckElectionTimeoutNonconflict(StateType state) {
  const std::vector<uint64_t> ids = {1, 2, 3, 4, 5};
  std::vector<std::unique_ptr<Node>> nodes;
  for (uint64_t id : ids) nodes.push_back(std::make_unique<Node>(id, ids));
  int conflicts = 0;
  for (int round = 0; round < 1000; ++round) {
    for (auto& n : nodes) {
      if (state == StateType::kFollower) {
        MakeFollower(n->r(), n->r().term() + 1, n->r().id() == 1 ? 2 : 1);
      } else {
        MakeCandidate(n->r());
      }
    }
    int timed_out = 0;
    while (timed_out == 0) {
      for (auto& n : nodes) {
        n->r().Tick();
        if (!Take(n->r()).empty()) ++timed_out;
      }
    }
    if (timed_out > 1) ++conflicts;
  }
  EXPECT_LE(conflicts, 300);
}

TEST(RaftPaperTest, FollowersElectionTimeoutNonconflict) {
  CheckElectionTimeoutNonconflict(StateType::kFollower);
}
TEST(RaftPaperTest, CandidatesElectionTimeoutNonconflict) {
  CheckElectionTimeoutNonconflict(StateType::kCandidate);
}

}  // namespace
}  // namespace arbiter::raft::paper_test
