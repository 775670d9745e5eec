// Log replication: per-follower flow control (probe, replicate, the inflight
// window), batching of entries per MsgApp, conflict resolution with fast
// backtracking, the commitment rule of Raft §5.4.2, proposal handling, and
// followers that catch up by snapshot or after a restart.
//
// Low-level tests drive a bare Raft by hand and read raft.msgs(); cluster
// tests use the synchronous test Network.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
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

Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

// Entries [first, last], all of term `term`.
std::vector<Entry> EntriesOfTerm(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(MakeEntry(i, term));
  return out;
}

// A Raft driven by hand, with the storage and random source it reads.
struct BareNode {
  MemoryStorage storage;
  SeededRand rand{42};
  std::unique_ptr<Raft> raft;
};

// No PreVote, so MsgHup makes a candidate at once; no CheckQuorum, so the
// leader never steps down on its own.
Config BareConfig() { return TestConfig(/*pre_vote=*/false, /*check_quorum=*/false); }

std::unique_ptr<BareNode> NewBareNode(uint64_t id, const std::vector<uint64_t>& voters,
                                      Config cfg = BareConfig(), std::vector<Entry> log = {},
                                      uint64_t term = 0, uint64_t commit = 0) {
  auto n = std::make_unique<BareNode>();
  ConfState cs;
  for (uint64_t v : voters) cs.add_voters(v);
  n->storage.BootstrapConfState(cs);
  EXPECT_TRUE(n->storage.Append(std::move(log)).ok());
  HardState hs;
  hs.set_term(term);
  hs.set_commit(commit);
  n->storage.SetHardState(hs);
  cfg.id = id;
  cfg.storage = &n->storage;
  cfg.rand = &n->rand;
  n->raft = std::make_unique<Raft>(cfg);
  return n;
}

std::vector<Message> TakeMsgs(Raft& r) {
  std::vector<Message> out;
  out.swap(r.msgs());
  return out;
}

Message MakeMsg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

// Makes r (configured without PreVote) leader with the votes of the other
// voters, discarding the messages sent on the way.
void ElectLeader(Raft& r) {
  EXPECT_TRUE(r.Step(MakeMsg(raftpb::MSG_HUP, r.id(), r.id(), 0)).ok());
  for (uint64_t v : r.tracker().config.voters.Ids()) {
    if (r.state() == StateType::kLeader) break;
    if (v == r.id()) continue;
    EXPECT_TRUE(r.Step(MakeMsg(raftpb::MSG_VOTE_RESP, v, r.id(), r.term())).ok());
  }
  EXPECT_EQ(r.state(), StateType::kLeader);
  TakeMsgs(r);
}

absl::Status Propose(Raft& r, const std::string& data) {
  Message m = MakeMsg(raftpb::MSG_PROP, r.id(), r.id(), 0);
  m.add_entries()->set_data(data);
  return r.Step(std::move(m));
}

absl::Status AppResp(Raft& r, uint64_t from, uint64_t index) {
  Message m = MakeMsg(raftpb::MSG_APP_RESP, from, r.id(), r.term());
  m.set_index(index);
  return r.Step(std::move(m));
}

absl::Status AppReject(Raft& r, uint64_t from, uint64_t index, uint64_t hint, uint64_t hint_term) {
  Message m = MakeMsg(raftpb::MSG_APP_RESP, from, r.id(), r.term());
  m.set_index(index);
  m.set_reject(true);
  m.set_reject_hint(hint);
  m.set_log_term(hint_term);
  return r.Step(std::move(m));
}

std::vector<Message> MsgAppsTo(const std::vector<Message>& msgs, uint64_t to) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type() == raftpb::MSG_APP && m.to() == to) out.push_back(m);
  }
  return out;
}

const Progress& Pr(const Raft& r, uint64_t id) { return r.tracker().progress.at(id); }

// (index, term) of every entry, for comparing logs.
std::vector<std::pair<uint64_t, uint64_t>> LogShape(const Raft& r) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const Entry& e : r.log().AllEntries()) out.emplace_back(e.index(), e.term());
  return out;
}

// ---------------------------------------------------------------------------
// Flow control

// A new leader probes each follower with one MsgApp and then waits; the first
// acknowledgement moves the follower to replicate, where appends are
// pipelined without waiting.
TEST(ReplicationTest, ProbeUntilAckedThenReplicate) {
  auto n = NewBareNode(1, {1, 2, 3});
  Raft& r = *n->raft;
  EXPECT_TRUE(r.Step(MakeMsg(raftpb::MSG_HUP, 1, 1, 0)).ok());
  TakeMsgs(r);
  ASSERT_TRUE(r.Step(MakeMsg(raftpb::MSG_VOTE_RESP, 2, 1, 1)).ok());
  ASSERT_EQ(r.state(), StateType::kLeader);

  std::vector<Message> msgs = TakeMsgs(r);
  for (uint64_t to : {2, 3}) {
    std::vector<Message> apps = MsgAppsTo(msgs, to);
    ASSERT_EQ(apps.size(), 1u) << "to " << to;
    EXPECT_EQ(apps[0].index(), 0u);
    EXPECT_EQ(apps[0].log_term(), 0u);
    ASSERT_EQ(apps[0].entries_size(), 1u);
    EXPECT_EQ(apps[0].entries(0).index(), 1u);
    EXPECT_EQ(Pr(r, to).state, ProgressState::kProbe);
    EXPECT_TRUE(Pr(r, to).IsPaused());
  }

  // While probing, new entries wait for the answer.
  ASSERT_TRUE(Propose(r, "a").ok());
  EXPECT_TRUE(TakeMsgs(r).empty());

  // 2 answers: replicate, and entry 2 goes out at once (it also commits 1).
  ASSERT_TRUE(AppResp(r, 2, 1).ok());
  EXPECT_EQ(Pr(r, 2).state, ProgressState::kReplicate);
  EXPECT_EQ(Pr(r, 2).match, 1u);
  EXPECT_EQ(r.log().committed(), 1u);
  msgs = TakeMsgs(r);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].to(), 2u);
  EXPECT_EQ(msgs[0].index(), 1u);
  EXPECT_EQ(msgs[0].log_term(), 1u);
  EXPECT_EQ(msgs[0].commit(), 1u);
  ASSERT_EQ(msgs[0].entries_size(), 1u);
  EXPECT_EQ(msgs[0].entries(0).data(), "a");
  EXPECT_EQ(Pr(r, 2).next, 3u);

  // Replicate pipelines: the next proposal goes to 2 before 2 acks entry 2;
  // 3 is still probing and gets nothing.
  ASSERT_TRUE(Propose(r, "b").ok());
  msgs = TakeMsgs(r);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].to(), 2u);
  EXPECT_EQ(msgs[0].index(), 2u);
  EXPECT_EQ(Pr(r, 2).next, 4u);
  EXPECT_EQ(Pr(r, 2).inflights.Count(), 2u);
  EXPECT_EQ(Pr(r, 3).next, 1u);

  // A heartbeat response unpauses the probing follower: it gets everything
  // from its next index in one probe, and is paused again.
  ASSERT_TRUE(r.Step(MakeMsg(raftpb::MSG_HEARTBEAT_RESP, 3, 1, 1)).ok());
  msgs = MsgAppsTo(TakeMsgs(r), 3);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].index(), 0u);
  EXPECT_EQ(msgs[0].entries_size(), 3);
  EXPECT_TRUE(Pr(r, 3).IsPaused());
  EXPECT_EQ(Pr(r, 3).state, ProgressState::kProbe);
}

// A full inflight window stops MsgApps to that follower; an acknowledgement
// frees the slots it covers and the waiting entries go out.
TEST(ReplicationTest, FullInflightWindowPausesAndAckFreesIt) {
  Config cfg = BareConfig();
  cfg.max_inflight_msgs = 3;
  auto n = NewBareNode(1, {1, 2}, cfg);
  Raft& r = *n->raft;
  ElectLeader(r);
  ASSERT_TRUE(AppResp(r, 2, 1).ok());  // replicate, commit 1
  TakeMsgs(r);

  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Propose(r, "x").ok());
    std::vector<Message> msgs = TakeMsgs(r);
    ASSERT_EQ(msgs.size(), 1u) << i;
    EXPECT_EQ(msgs[0].entries_size(), 1) << i;
  }
  EXPECT_TRUE(Pr(r, 2).inflights.Full());
  EXPECT_TRUE(Pr(r, 2).IsPaused());
  EXPECT_EQ(Pr(r, 2).next, 5u);

  // Window full: proposals are appended but nothing is sent.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Propose(r, "y").ok());
    EXPECT_TRUE(TakeMsgs(r).empty()) << i;
  }
  EXPECT_EQ(r.log().LastIndex(), 6u);

  // The ack of entry 2 frees one slot; entries 5 and 6 go out together and
  // fill it again.
  ASSERT_TRUE(AppResp(r, 2, 2).ok());
  EXPECT_EQ(r.log().committed(), 2u);
  std::vector<Message> msgs = TakeMsgs(r);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].index(), 4u);
  ASSERT_EQ(msgs[0].entries_size(), 2);
  EXPECT_EQ(msgs[0].entries(0).index(), 5u);
  EXPECT_EQ(msgs[0].entries(1).index(), 6u);
  EXPECT_EQ(Pr(r, 2).inflights.Count(), 3u);
  EXPECT_TRUE(Pr(r, 2).IsPaused());

  // A duplicate (stale) ack frees nothing and sends nothing.
  ASSERT_TRUE(AppResp(r, 2, 2).ok());
  EXPECT_TRUE(TakeMsgs(r).empty());
  EXPECT_EQ(Pr(r, 2).inflights.Count(), 3u);

  // A heartbeat response lets one empty MsgApp through a full window (it
  // carries the commit index and acts as a probe), then pauses again.
  ASSERT_TRUE(r.Step(MakeMsg(raftpb::MSG_HEARTBEAT_RESP, 2, 1, 1)).ok());
  msgs = TakeMsgs(r);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type(), raftpb::MSG_APP);
  EXPECT_EQ(msgs[0].entries_size(), 0);
  EXPECT_TRUE(Pr(r, 2).IsPaused());

  // Acknowledging everything empties the window.
  ASSERT_TRUE(AppResp(r, 2, 6).ok());
  EXPECT_EQ(Pr(r, 2).inflights.Count(), 0u);
  EXPECT_FALSE(Pr(r, 2).IsPaused());
  EXPECT_EQ(r.log().committed(), 6u);
}

// The inflight byte limit pauses sending too.
TEST(ReplicationTest, InflightByteLimitPauses) {
  Config cfg = BareConfig();
  cfg.max_size_per_msg = 200;
  cfg.max_inflight_bytes = 250;
  auto n = NewBareNode(1, {1, 2}, cfg);
  Raft& r = *n->raft;
  ElectLeader(r);
  ASSERT_TRUE(AppResp(r, 2, 1).ok());
  TakeMsgs(r);

  const std::string payload(100, 'p');
  ASSERT_TRUE(Propose(r, payload).ok());
  ASSERT_TRUE(Propose(r, payload).ok());
  EXPECT_EQ(MsgAppsTo(TakeMsgs(r), 2).size(), 2u);
  EXPECT_FALSE(Pr(r, 2).IsPaused());  // 200 bytes in flight
  ASSERT_TRUE(Propose(r, payload).ok());
  EXPECT_EQ(MsgAppsTo(TakeMsgs(r), 2).size(), 1u);
  EXPECT_TRUE(Pr(r, 2).IsPaused());  // 300 >= 250
  ASSERT_TRUE(Propose(r, payload).ok());
  EXPECT_TRUE(TakeMsgs(r).empty());
  EXPECT_EQ(Pr(r, 2).inflights.Bytes(), 300u);
}

// Entries are batched per MsgApp up to max_size_per_msg, but a single entry
// larger than the limit still goes out alone.
TEST(ReplicationTest, EntriesBatchedUpToMaxSizePerMsg) {
  const std::string payload(100, 'e');
  Entry probe;
  probe.set_data(payload);
  Config cfg = BareConfig();
  cfg.max_size_per_msg = 3 * EntrySize(probe);
  auto n = NewBareNode(1, {1, 2}, cfg);
  Raft& r = *n->raft;
  ElectLeader(r);

  // 2 is probing (paused): ten proposals accumulate.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Propose(r, payload).ok());
  EXPECT_TRUE(TakeMsgs(r).empty());

  ASSERT_TRUE(AppResp(r, 2, 1).ok());
  std::vector<Message> apps = MsgAppsTo(TakeMsgs(r), 2);
  ASSERT_EQ(apps.size(), 4u);
  const int want_sizes[] = {3, 3, 3, 1};
  uint64_t next = 2;
  for (size_t i = 0; i < apps.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(apps[i].index(), next - 1);
    ASSERT_EQ(apps[i].entries_size(), want_sizes[i]);
    for (const Entry& e : apps[i].entries()) EXPECT_EQ(e.index(), next++);
  }
  EXPECT_EQ(next, 12u);

  ASSERT_TRUE(Propose(r, std::string(1000, 'L')).ok());
  apps = MsgAppsTo(TakeMsgs(r), 2);
  ASSERT_EQ(apps.size(), 1u);
  ASSERT_EQ(apps[0].entries_size(), 1);
  EXPECT_EQ(apps[0].entries(0).index(), 12u);
}

// Out-of-date responses (acks and rejections at or below match) change
// nothing and send nothing.
TEST(ReplicationTest, StaleAppendResponsesIgnored) {
  auto n = NewBareNode(1, {1, 2, 3});
  Raft& r = *n->raft;
  ElectLeader(r);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Propose(r, "d").ok());
  ASSERT_TRUE(AppResp(r, 2, 1).ok());
  ASSERT_TRUE(AppResp(r, 2, 5).ok());
  TakeMsgs(r);
  ASSERT_EQ(Pr(r, 2).state, ProgressState::kReplicate);
  ASSERT_EQ(Pr(r, 2).match, 5u);
  const uint64_t next = Pr(r, 2).next;

  ASSERT_TRUE(AppResp(r, 2, 3).ok());
  EXPECT_TRUE(TakeMsgs(r).empty());
  EXPECT_EQ(Pr(r, 2).match, 5u);

  ASSERT_TRUE(AppReject(r, 2, 3, 2, 1).ok());
  EXPECT_TRUE(TakeMsgs(r).empty());
  EXPECT_EQ(Pr(r, 2).state, ProgressState::kReplicate);
  EXPECT_EQ(Pr(r, 2).next, next);
  EXPECT_EQ(Pr(r, 2).match, 5u);
}

// ---------------------------------------------------------------------------
// Conflicts

// A follower with a long divergent suffix converges in a few round trips:
// its rejection hints name the last index where its log can match, and the
// leader skips whole terms. Naive backtracking (one index per round trip)
// would need one rejection per divergent entry.
TEST(ReplicationTest, FastBacktrackingConvergesInFewRoundTrips) {
  struct Case {
    const char* name;
    std::vector<Entry> leader_log;  // also node 3's log
    uint64_t leader_term;
    std::vector<Entry> follower_log;
    uint64_t follower_term;
    int want_rejections;
  };
  auto concat = [](std::vector<Entry> a, const std::vector<Entry>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const Case cases[] = {
      // The follower's suffix has a lower term than the leader's entries
      // at the same indexes: one rejection jumps to index 3.
      {"lower-term suffix", concat(EntriesOfTerm(1, 3, 1), EntriesOfTerm(4, 100, 3)), 3,
       concat(EntriesOfTerm(1, 3, 1), EntriesOfTerm(4, 200, 2)), 3, 1},
      // The follower's suffix has a higher term than the leader's entries
      // there: the first rejection skips the leader's term-5 entry, the
      // second the follower's whole term-4 run.
      {"higher-term suffix",
       concat(concat(EntriesOfTerm(1, 3, 1), EntriesOfTerm(4, 50, 2)), EntriesOfTerm(51, 51, 5)), 5,
       concat(EntriesOfTerm(1, 3, 1), EntriesOfTerm(4, 100, 4)), 5, 2},
      // The follower is merely behind: its last index is the hint.
      {"short follower", concat(EntriesOfTerm(1, 3, 1), EntriesOfTerm(4, 80, 2)), 2,
       EntriesOfTerm(1, 3, 1), 2, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Network n({1, 2, 3});
    for (uint64_t id : {1, 2, 3}) {
      n.Crash(id);
      const bool divergent = id == 2;
      ASSERT_TRUE(n.peer(id).storage().Append(divergent ? c.follower_log : c.leader_log).ok());
      HardState hs;
      hs.set_term(divergent ? c.follower_term : c.leader_term);
      hs.set_commit(3);
      n.peer(id).storage().SetHardState(hs);
      n.Restart(id);
    }
    int rejections = 0;
    n.SetHook([&](const Message& m) {
      if (m.type() == raftpb::MSG_APP_RESP && m.from() == 2 && m.reject()) ++rejections;
      return true;
    });
    n.Campaign(1);
    ASSERT_EQ(n.Leader(), 1u);
    EXPECT_EQ(rejections, c.want_rejections);
    Raft& leader = n.peer(1).raft();
    EXPECT_EQ(LogShape(n.peer(2).raft()), LogShape(leader));
    EXPECT_EQ(n.peer(2).raft().log().committed(), leader.log().LastIndex());
    EXPECT_EQ(Pr(leader, 2).match, leader.log().LastIndex());
  }
}

// Raft §5.4.2 (Figure 8): "Raft never commits log entries from previous terms
// by counting replicas". Entry 2 (term 1) reaches a majority of five under a
// term-2 leader and stays uncommitted until the term-2 entry after it does.
TEST(ReplicationTest, CommitsOnlyCurrentTermEntriesByCounting) {
  auto n = NewBareNode(1, {1, 2, 3, 4, 5}, BareConfig(), EntriesOfTerm(1, 2, 1), /*term=*/1,
                       /*commit=*/1);
  Raft& r = *n->raft;
  ElectLeader(r);
  ASSERT_EQ(r.term(), 2u);
  ASSERT_EQ(r.log().LastIndex(), 3u);  // the term-2 empty entry

  ASSERT_TRUE(AppResp(r, 2, 2).ok());
  ASSERT_TRUE(AppResp(r, 3, 2).ok());
  // Entry 2 is on 1, 2 and 3: a majority, but of term 1.
  EXPECT_EQ(r.log().committed(), 1u);

  ASSERT_TRUE(AppResp(r, 2, 3).ok());
  EXPECT_EQ(r.log().committed(), 1u);
  ASSERT_TRUE(AppResp(r, 3, 3).ok());
  // Entry 3 (term 2) on a majority commits it and, with it, entry 2.
  EXPECT_EQ(r.log().committed(), 3u);
}

// The same rule in a cluster: a new leader with an old uncommitted entry
// commits it only together with an entry of its own term.
TEST(ReplicationTest, OldTermEntryCommitsWithNewLeadersEntry) {
  NetworkOptions opts;
  opts.config = TestConfig(/*pre_vote=*/false, /*check_quorum=*/false);
  Network n({1, 2, 3, 4, 5}, opts);
  n.Campaign(1);
  ASSERT_EQ(n.Leader(), 1u);
  const uint64_t term = n.peer(1).raft().term();
  const uint64_t base = n.peer(1).raft().log().committed();
  ASSERT_EQ(base, n.peer(1).raft().log().LastIndex());
  // Only 2 hears about the next two entries.
  for (uint64_t id : {3, 4, 5}) n.Cut(1, id);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  ASSERT_TRUE(n.Propose(1, "b=2").ok());
  EXPECT_EQ(n.peer(1).raft().log().committed(), base);
  EXPECT_EQ(n.peer(2).raft().log().LastIndex(), base + 2);

  // 2 wins the next term, but its appends are lost: nothing of the old term
  // commits, although the new leader holds both entries.
  n.Recover();
  n.Ignore(raftpb::MSG_APP);
  n.Campaign(2);
  ASSERT_EQ(n.Leader(), 2u);
  EXPECT_EQ(n.peer(2).raft().term(), term + 1);
  EXPECT_EQ(n.peer(2).raft().log().LastIndex(), base + 3);
  EXPECT_EQ(n.peer(2).raft().log().committed(), base);

  // Once appends flow, the new term's entry (base + 3) commits, and the two
  // old entries with it.
  n.Recover();
  n.Tick(2);
  for (uint64_t id : n.ids()) {
    SCOPED_TRACE(id);
    EXPECT_EQ(n.peer(id).raft().log().committed(), base + 3);
    EXPECT_EQ(n.peer(id).sm().kv().at("a"), "1");
    EXPECT_EQ(n.peer(id).sm().kv().at("b"), "2");
  }
}

// ---------------------------------------------------------------------------
// Proposals

// The leader drops proposals once the uncommitted payload would pass
// max_uncommitted_entries_size, and accepts them again once entries commit.
TEST(ReplicationTest, UncommittedSizeLimitDropsProposals) {
  NetworkOptions opts;
  opts.config.max_uncommitted_entries_size = 300;
  Network n({1, 2, 3}, opts);
  n.Campaign(1);
  ASSERT_EQ(n.Leader(), 1u);
  Raft& leader = n.peer(1).raft();
  EXPECT_EQ(leader.uncommitted_size(), 0u);
  const uint64_t base = leader.log().LastIndex();

  n.Isolate(1);
  const std::string payload(100, 'u');
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(n.Propose(1, payload).ok()) << i;
  EXPECT_EQ(leader.uncommitted_size(), 300u);
  absl::Status s = n.Propose(1, payload);
  EXPECT_TRUE(IsProposalDropped(s)) << s;
  // A batch over the limit is dropped as a whole.
  Message batch = MakeMsg(raftpb::MSG_PROP, 1, 1, 0);
  batch.add_entries()->set_data("a");
  batch.add_entries()->set_data("b");
  EXPECT_TRUE(IsProposalDropped(leader.Step(batch)));
  // Empty payloads are free.
  EXPECT_TRUE(n.Propose(1, "").ok());
  EXPECT_EQ(leader.uncommitted_size(), 300u);
  EXPECT_EQ(leader.log().LastIndex(), base + 4);

  // Commitment gives the budget back.
  n.Recover();
  n.Tick(1);
  EXPECT_EQ(leader.log().committed(), base + 4);
  EXPECT_EQ(leader.uncommitted_size(), 0u);
  EXPECT_TRUE(n.Propose(1, payload).ok());

  // With nothing uncommitted, one entry larger than the limit is accepted,
  // so a big entry cannot wedge the leader.
  EXPECT_EQ(leader.uncommitted_size(), 0u);
  EXPECT_TRUE(n.Propose(1, std::string(1000, 'B')).ok());
  EXPECT_EQ(leader.log().committed(), base + 6);
}

// A follower forwards proposals to its leader (unless forwarding is off).
TEST(ReplicationTest, FollowerForwardsProposals) {
  Network n({1, 2, 3});
  n.Campaign(1);
  const uint64_t base = n.peer(1).raft().log().LastIndex();
  int forwarded = 0;
  n.SetHook([&](const Message& m) {
    if (m.type() == raftpb::MSG_PROP && m.from() == 2 && m.to() == 1) ++forwarded;
    return true;
  });
  EXPECT_TRUE(n.Propose(2, "k=v").ok());
  EXPECT_EQ(forwarded, 1);
  for (uint64_t id : n.ids()) {
    EXPECT_EQ(n.peer(id).sm().kv().at("k"), "v") << id;
    EXPECT_EQ(n.peer(id).sm().WriteIndex("k"), base + 1) << id;
  }

  NetworkOptions opts;
  opts.config.disable_proposal_forwarding = true;
  Network m({1, 2, 3}, opts);
  m.Campaign(1);
  absl::Status s = m.Propose(2, "k=v");
  EXPECT_TRUE(IsProposalDropped(s)) << s;
  EXPECT_EQ(m.peer(1).raft().log().LastIndex(), base);
}

// Without a leader (follower or candidate) or during a leadership transfer,
// proposals are refused with ErrProposalDropped.
TEST(ReplicationTest, ProposalsDroppedWithoutLeaderOrDuringTransfer) {
  {
    Network n({1, 2, 3});
    const uint64_t last = n.peer(1).raft().log().LastIndex();
    absl::Status s = n.Propose(1, "a=1");
    EXPECT_TRUE(IsProposalDropped(s)) << s;
    EXPECT_EQ(n.peer(1).raft().log().LastIndex(), last);
  }
  {
    // A pre-candidate whose pre-votes are lost, then a candidate.
    Network n({1, 2, 3}, NetworkOptions{TestConfig(/*pre_vote=*/true), 1});
    n.Ignore(raftpb::MSG_PRE_VOTE);
    n.Campaign(1);
    ASSERT_EQ(n.peer(1).raft().state(), StateType::kPreCandidate);
    EXPECT_TRUE(IsProposalDropped(n.Propose(1, "a=1")));
  }
  {
    Network n({1, 2, 3}, NetworkOptions{TestConfig(/*pre_vote=*/false), 1});
    n.Ignore(raftpb::MSG_VOTE);
    n.Campaign(1);
    ASSERT_EQ(n.peer(1).raft().state(), StateType::kCandidate);
    EXPECT_TRUE(IsProposalDropped(n.Propose(1, "a=1")));
  }
  {
    Network n({1, 2, 3});
    n.Campaign(1);
    const uint64_t last = n.peer(1).raft().log().LastIndex();
    n.Isolate(3);
    n.peer(1).node().TransferLeader(3);
    n.Stabilize();
    ASSERT_EQ(n.peer(1).raft().lead_transferee(), 3u);
    EXPECT_TRUE(IsProposalDropped(n.Propose(1, "a=1")));
    // A follower forwards (it does not know of the transfer); the leader
    // drops the forwarded proposal.
    EXPECT_TRUE(n.Propose(2, "a=1").ok());
    EXPECT_EQ(n.peer(1).raft().log().LastIndex(), last);
  }
}

// ---------------------------------------------------------------------------
// Snapshots and catching up

// Cuts `lagging` off while the leader (1) commits `proposals` entries, then
// compacts the leader's log and heals the network. Returns the snapshot index.
uint64_t IsolateProposeAndCompact(Network& n, uint64_t lagging, int proposals) {
  n.Isolate(lagging);
  for (int i = 0; i < proposals; ++i) {
    EXPECT_TRUE(n.Propose(1, "k" + std::to_string(i) + "=v" + std::to_string(i)).ok());
  }
  n.peer(1).CompactLog();
  n.Recover();
  return n.peer(1).storage().Snapshot()->metadata().index();
}

// A follower that needs entries the leader compacted away gets a MsgSnap,
// restores it, and then replicates normally.
TEST(ReplicationTest, FollowerNeedingCompactedEntriesGetsSnapshot) {
  Network n({1, 2, 3});
  n.Campaign(1);
  const uint64_t base = n.peer(1).raft().log().LastIndex();
  const uint64_t snap_index = IsolateProposeAndCompact(n, 3, 10);
  ASSERT_EQ(snap_index, base + 10);
  ASSERT_EQ(*n.peer(1).storage().FirstIndex(), snap_index + 1);

  int snaps = 0;
  n.SetHook([&](const Message& m) {
    if (m.type() == raftpb::MSG_SNAP) {
      ++snaps;
      EXPECT_EQ(m.to(), 3u);
      EXPECT_EQ(m.snapshot().metadata().index(), snap_index);
    }
    return true;
  });
  n.Tick(1);  // the heartbeat response shows 3 is back
  EXPECT_EQ(snaps, 1);
  Peer& follower = n.peer(3);
  EXPECT_EQ(follower.storage().Snapshot()->metadata().index(), snap_index);
  EXPECT_EQ(follower.sm().kv(), n.peer(1).sm().kv());
  EXPECT_EQ(follower.sm().kv().size(), 10u);
  const Progress& pr = Pr(n.peer(1).raft(), 3);
  EXPECT_EQ(pr.state, ProgressState::kReplicate);
  EXPECT_EQ(pr.match, snap_index);

  // Afterwards plain MsgApps suffice.
  ASSERT_TRUE(n.Propose(1, "after=1").ok());
  EXPECT_EQ(snaps, 1);
  EXPECT_EQ(follower.sm().kv().at("after"), "1");
  EXPECT_EQ(follower.raft().log().committed(), snap_index + 1);
}

// A snapshot at or below the follower's commit index is ignored (restoring
// it would roll back committed state); one whose last entry the follower
// already has only fast-forwards the commit index; a newer one is restored.
TEST(ReplicationTest, FollowerSnapshotHandling) {
  auto snap_msg = [](uint64_t index, uint64_t term) {
    Message m = MakeMsg(raftpb::MSG_SNAP, 1, 2, 1);
    SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
    md->set_index(index);
    md->set_term(term);
    for (uint64_t v : {1, 2, 3}) md->mutable_conf_state()->add_voters(v);
    return m;
  };
  {
    SCOPED_TRACE("older than commit");
    auto n = NewBareNode(2, {1, 2, 3}, BareConfig(), EntriesOfTerm(1, 5, 1), 1, 5);
    Raft& r = *n->raft;
    ASSERT_TRUE(r.Step(snap_msg(3, 1)).ok());
    EXPECT_FALSE(r.log().HasPendingSnapshot());
    EXPECT_EQ(r.log().committed(), 5u);
    EXPECT_EQ(r.log().FirstIndex(), 1u);
    std::vector<Message> msgs = TakeMsgs(r);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type(), raftpb::MSG_APP_RESP);
    EXPECT_EQ(msgs[0].index(), 5u);
  }
  {
    SCOPED_TRACE("matching entry");
    auto n = NewBareNode(2, {1, 2, 3}, BareConfig(), EntriesOfTerm(1, 5, 1), 1, 2);
    Raft& r = *n->raft;
    ASSERT_TRUE(r.Step(snap_msg(4, 1)).ok());
    EXPECT_FALSE(r.log().HasPendingSnapshot());
    EXPECT_EQ(r.log().committed(), 4u);
    EXPECT_EQ(r.log().LastIndex(), 5u);
    std::vector<Message> msgs = TakeMsgs(r);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].index(), 4u);
  }
  {
    SCOPED_TRACE("newer");
    auto n = NewBareNode(2, {1, 2, 3}, BareConfig(), EntriesOfTerm(1, 5, 1), 1, 5);
    Raft& r = *n->raft;
    ASSERT_TRUE(r.Step(snap_msg(9, 1)).ok());
    EXPECT_TRUE(r.log().HasPendingSnapshot());
    EXPECT_EQ(r.log().committed(), 9u);
    EXPECT_EQ(r.log().LastIndex(), 9u);
    std::vector<Message> msgs = TakeMsgs(r);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].index(), 9u);
  }
}

// When sending a snapshot fails, the leader returns the follower to probe
// (paused until it hears from the follower) and sends a fresh snapshot
// later; after a successful report it probes just past the snapshot.
TEST(ReplicationTest, ReportSnapshotFailureReturnsToProbe) {
  Config cfg = BareConfig();
  cfg.applied = 10;
  auto n = NewBareNode(1, {1, 2}, cfg, EntriesOfTerm(1, 10, 1), /*term=*/1, /*commit=*/10);
  ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  ASSERT_TRUE(n->storage.CreateSnapshot(10, &cs, "state").ok());
  ASSERT_TRUE(n->storage.Compact(10).ok());
  Raft& r = *n->raft;
  ElectLeader(r);
  ASSERT_EQ(r.log().FirstIndex(), 11u);

  // 2 has nothing: its rejection sends the leader back past its first index.
  ASSERT_TRUE(AppReject(r, 2, 10, 0, 0).ok());
  std::vector<Message> msgs = TakeMsgs(r);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type(), raftpb::MSG_SNAP);
  EXPECT_EQ(msgs[0].snapshot().metadata().index(), 10u);
  EXPECT_EQ(msgs[0].snapshot().data(), "state");
  EXPECT_EQ(Pr(r, 2).state, ProgressState::kSnapshot);
  EXPECT_EQ(Pr(r, 2).pending_snapshot, 10u);
  // While the snapshot is in flight nothing else is sent.
  ASSERT_TRUE(Propose(r, "x").ok());
  EXPECT_TRUE(TakeMsgs(r).empty());

  Message failed = MakeMsg(raftpb::MSG_SNAP_STATUS, 2, 1, 0);
  failed.set_reject(true);
  ASSERT_TRUE(r.Step(failed).ok());
  EXPECT_EQ(Pr(r, 2).state, ProgressState::kProbe);
  EXPECT_EQ(Pr(r, 2).pending_snapshot, 0u);
  EXPECT_EQ(Pr(r, 2).next, 1u);
  EXPECT_TRUE(Pr(r, 2).IsPaused());
  EXPECT_TRUE(TakeMsgs(r).empty());
  // A status report in any other state is ignored.
  ASSERT_TRUE(r.Step(failed).ok());
  EXPECT_EQ(Pr(r, 2).state, ProgressState::kProbe);

  // Hearing from 2 resumes probing, which needs a snapshot again.
  ASSERT_TRUE(r.Step(MakeMsg(raftpb::MSG_HEARTBEAT_RESP, 2, 1, r.term())).ok());
  msgs = TakeMsgs(r);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type(), raftpb::MSG_SNAP);
  ASSERT_EQ(Pr(r, 2).state, ProgressState::kSnapshot);

  // This one arrived: probe right after it, once 2 is heard from.
  ASSERT_TRUE(r.Step(MakeMsg(raftpb::MSG_SNAP_STATUS, 2, 1, 0)).ok());
  EXPECT_EQ(Pr(r, 2).state, ProgressState::kProbe);
  EXPECT_EQ(Pr(r, 2).next, 11u);
  EXPECT_TRUE(Pr(r, 2).IsPaused());
  EXPECT_TRUE(TakeMsgs(r).empty());
  ASSERT_TRUE(r.Step(MakeMsg(raftpb::MSG_HEARTBEAT_RESP, 2, 1, r.term())).ok());
  msgs = MsgAppsTo(TakeMsgs(r), 2);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].index(), 10u);
  EXPECT_EQ(msgs[0].log_term(), 1u);
  EXPECT_EQ(msgs[0].entries_size(), 2);  // the empty entry and "x"
  ASSERT_TRUE(AppResp(r, 2, 12).ok());
  EXPECT_EQ(Pr(r, 2).state, ProgressState::kReplicate);
  EXPECT_EQ(r.log().committed(), 12u);
}

// A follower that crashed (losing everything not persisted) and restarted
// from its storage catches up with what it missed.
TEST(ReplicationTest, RestartedFollowerCatchesUp) {
  Network n({1, 2, 3});
  n.Campaign(1);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  const uint64_t base = n.peer(1).raft().log().LastIndex();
  const HardState before = n.peer(3).storage().hard_state();
  n.Crash(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(n.Propose(1, "b=" + std::to_string(i)).ok());
  EXPECT_EQ(n.peer(1).raft().log().committed(), base + 5);

  n.Restart(3);
  Raft& follower = n.peer(3).raft();
  // Restarted from storage: the term and log survived; the commit index is
  // the persisted one.
  EXPECT_EQ(follower.term(), before.term());
  EXPECT_EQ(follower.log().LastIndex(), base);
  EXPECT_EQ(follower.log().committed(), before.commit());

  n.Tick(1);
  EXPECT_EQ(follower.log().LastIndex(), base + 5);
  EXPECT_EQ(follower.log().committed(), base + 5);
  EXPECT_EQ(n.peer(3).sm().kv(), n.peer(1).sm().kv());
  EXPECT_EQ(n.peer(3).sm().kv().at("b"), "4");
  EXPECT_EQ(Pr(n.peer(1).raft(), 3).match, base + 5);
}

}  // namespace
}  // namespace arbiter::raft
