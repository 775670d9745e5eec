// Hostile and impossible peer messages (testing-under-faults.md (c) item 6):
// every message here is stepped into a member of a running 3-node cluster the
// way a transport would (RawNode::Step). Each must be rejected or ignored
// without crashing and without corrupting the node's state, and the cluster
// must keep committing afterwards. The death tests at the end show that a
// broken internal invariant aborts with the node's state dumped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "raft/errors.h"
#include "raft/memory_storage.h"
#include "raft/raft_log.h"
#include "raft/raw_node.h"
#include "tests/harness/network.h"

namespace arbiter::raft::testing {
namespace {

constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();

// Records warnings and errors, so tests can check that an impossible message
// was reported.
class CapturingLogger final : public Logger {
 public:
  bool Enabled(LogLevel level) const override { return level >= LogLevel::kWarning; }
  void Log(LogLevel, std::string_view message) override { lines_.emplace_back(message); }
  bool Contains(std::string_view needle) const {
    for (const std::string& l : lines_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::vector<std::string> lines_;
};

// The part of a node's state that a rejected message must not change.
struct NodeState {
  uint64_t term = 0;
  uint64_t vote = 0;
  uint64_t commit = 0;
  uint64_t last_index = 0;
  uint64_t last_term = 0;
  uint64_t lead = 0;
  StateType state = StateType::kFollower;
  bool pending_snapshot = false;
  bool operator==(const NodeState&) const = default;
};

void PrintTo(const NodeState& s, std::ostream* os) {
  *os << "{term=" << s.term << " vote=" << s.vote << " commit=" << s.commit
      << " last=" << s.last_term << "/" << s.last_index << " lead=" << s.lead << " "
      << StateTypeName(s.state) << (s.pending_snapshot ? " pending-snapshot" : "") << "}";
}

NodeState StateOf(const Raft& r) {
  NodeState s;
  s.term = r.term();
  s.vote = r.vote();
  s.commit = r.log().committed();
  s.last_index = r.log().LastIndex();
  s.last_term = r.log().LastTerm();
  s.lead = r.lead();
  s.state = r.state();
  s.pending_snapshot = r.log().HasPendingSnapshot();
  return s;
}

Message Msg(MessageType type, uint64_t from, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_term(term);
  return m;
}

Entry Ent(uint64_t index, uint64_t term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

Snapshot Snap(uint64_t index, uint64_t term, const std::vector<uint64_t>& voters) {
  Snapshot s;
  s.mutable_metadata()->set_index(index);
  s.mutable_metadata()->set_term(term);
  for (uint64_t v : voters) s.mutable_metadata()->mutable_conf_state()->add_voters(v);
  return s;
}

bool IsInvalidArgument(const absl::Status& s) { return absl::IsInvalidArgument(s); }

// A message and what RawNode::Step must answer to it.
struct HostileCase {
  std::string name;
  Message msg;
  std::function<bool(const absl::Status&)> expect;
};

NetworkOptions OptionsWithLogger(Logger* logger) {
  NetworkOptions opts;
  opts.config.logger = logger;
  return opts;
}

class HostileMessageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    net_.Campaign(1);
    ASSERT_EQ(net_.Leader(), 1u);
    // Two leadership transfers raise the term to 3, so there are older terms
    // to forge.
    Transfer(1, 2);
    Transfer(2, 1);
    ASSERT_EQ(net_.Leader(), 1u);
    ASSERT_GE(Term(), 3u);
    ASSERT_TRUE(net_.Propose(1, "a=1").ok());
  }

  void Transfer(uint64_t from, uint64_t to) {
    net_.peer(from).node().TransferLeader(to);
    net_.Stabilize();
  }

  Raft& R(uint64_t id) { return net_.peer(id).raft(); }
  uint64_t Term() { return R(1).term(); }

  std::map<uint64_t, NodeState> ClusterState() {
    std::map<uint64_t, NodeState> out;
    for (uint64_t id : net_.ids()) out[id] = StateOf(R(id));
    return out;
  }

  // Steps m into node `to` as a transport would, then lets the cluster
  // handle whatever the node sent in reply.
  absl::Status Inject(uint64_t to, Message m) {
    m.set_to(to);
    absl::Status s = net_.peer(to).node().Step(std::move(m));
    net_.Stabilize();
    return s;
  }

  // Injects each case into `to`, expecting its status and no change to any
  // node's state.
  void ExpectRejectedWithoutChange(uint64_t to, const std::vector<HostileCase>& cases) {
    for (const HostileCase& c : cases) {
      SCOPED_TRACE(c.name + " -> " + std::to_string(to) + ": " + DescribeMessage(c.msg));
      const auto before = ClusterState();
      absl::Status s = Inject(to, c.msg);
      EXPECT_TRUE(c.expect(s)) << s;
      EXPECT_EQ(ClusterState(), before);
    }
  }

  // A peer of `to` that sends it messages: the leader, or for the leader a
  // follower.
  static uint64_t PeerOf(uint64_t to) { return to == 1 ? 2 : 1; }

  // Messages that are impossible whatever the receiver's role: their type,
  // sender or term alone disqualifies them.
  std::vector<HostileCase> HeaderCases(uint64_t to) {
    const uint64_t from = PeerOf(to);
    const uint64_t t = Term();
    std::vector<HostileCase> cases;
    auto add = [&](std::string name, Message m, std::function<bool(const absl::Status&)> expect) {
      cases.push_back({std::move(name), std::move(m), std::move(expect)});
    };
    for (MessageType type : {raftpb::MSG_HUP, raftpb::MSG_BEAT, raftpb::MSG_CHECK_QUORUM,
                             raftpb::MSG_UNREACHABLE, raftpb::MSG_SNAP_STATUS}) {
      add("local type", Msg(type, from, t), IsStepLocalMsg);
      add("local type, no term", Msg(type, from, 0), IsStepLocalMsg);
    }
    for (MessageType type : {raftpb::MSG_APP, raftpb::MSG_HEARTBEAT, raftpb::MSG_VOTE,
                             raftpb::MSG_APP_RESP, raftpb::MSG_TIMEOUT_NOW}) {
      add("sender 0", Msg(type, kNone, t), IsInvalidArgument);
      add("sender is self", Msg(type, to, t), IsInvalidArgument);
    }
    Message prop = Msg(raftpb::MSG_PROP, to, 0);
    prop.add_entries()->set_data("x=self");
    add("proposal from self", prop, IsInvalidArgument);
    for (MessageType type :
         {raftpb::MSG_APP_RESP, raftpb::MSG_HEARTBEAT_RESP, raftpb::MSG_VOTE_RESP,
          raftpb::MSG_PRE_VOTE_RESP, raftpb::MSG_READ_INDEX_RESP}) {
      Message m = Msg(type, 9, t);
      m.set_index(kMaxU64);
      add("response from unknown sender", m, IsStepPeerNotFound);
    }
    for (int type : {19, 99, 1000, -1}) {
      add("unknown type " + std::to_string(type), Msg(static_cast<MessageType>(type), from, t),
          IsInvalidArgument);
    }
    // Messages of every kind a peer sends, with contents that would do harm
    // if the header were trusted.
    auto peer_msgs = [&](uint64_t term) {
      std::vector<Message> out;
      Message app = Msg(raftpb::MSG_APP, from, term);
      app.set_index(R(to).log().LastIndex());
      app.set_log_term(R(to).log().LastTerm());
      *app.add_entries() = Ent(app.index() + 1, std::max<uint64_t>(term, 1), "x=evil");
      app.set_commit(app.index() + 1);
      out.push_back(app);
      Message hb = Msg(raftpb::MSG_HEARTBEAT, from, term);
      hb.set_commit(kMaxU64);
      out.push_back(hb);
      Message snap = Msg(raftpb::MSG_SNAP, from, term);
      *snap.mutable_snapshot() = Snap(R(to).log().LastIndex() + 10, 1, {1, 2, 3});
      out.push_back(snap);
      for (MessageType type : {raftpb::MSG_VOTE, raftpb::MSG_PRE_VOTE}) {
        Message vote = Msg(type, from, term);
        vote.set_index(kMaxU64 - 1);
        vote.set_log_term(kMaxU64 - 1);
        out.push_back(vote);
      }
      Message resp = Msg(raftpb::MSG_APP_RESP, from, term);
      resp.set_index(R(to).log().LastIndex());
      out.push_back(resp);
      for (MessageType type : {raftpb::MSG_HEARTBEAT_RESP, raftpb::MSG_VOTE_RESP,
                               raftpb::MSG_PRE_VOTE_RESP, raftpb::MSG_TIMEOUT_NOW}) {
        out.push_back(Msg(type, from, term));
      }
      Message ri = Msg(raftpb::MSG_READ_INDEX_RESP, from, term);
      ri.set_index(kMaxU64);
      ri.add_entries()->set_data("ctx");
      out.push_back(ri);
      return out;
    };
    // Stale terms: ignored (at most answered with our term).
    for (uint64_t stale : {t - 1, uint64_t{1}}) {
      for (Message& m : peer_msgs(stale)) {
        add("stale term", std::move(m), [](const absl::Status& s) { return s.ok(); });
      }
    }
    // A term no node can reach: term + 1 would wrap.
    for (Message& m : peer_msgs(kMaxU64)) add("term 2^64-1", std::move(m), IsInvalidArgument);
    // Only proposals, read requests and transfer requests travel without a
    // term.
    for (Message& m : peer_msgs(0)) add("term 0", std::move(m), IsInvalidArgument);
    return cases;
  }

  // A proposal at the leader commits and applies on every node, and every
  // node's log is the same.
  void ExpectClusterWorks() {
    const uint64_t lead = net_.Leader();
    ASSERT_NE(lead, kNone);
    const std::string key = "k" + std::to_string(++proposals_);
    ASSERT_TRUE(net_.Propose(lead, key + "=v").ok());
    const uint64_t commit = R(lead).log().committed();
    EXPECT_EQ(R(lead).log().LastIndex(), commit);
    const std::vector<Entry> want = R(lead).log().AllEntries();
    for (uint64_t id : net_.ids()) {
      SCOPED_TRACE("node " + std::to_string(id));
      EXPECT_EQ(R(id).term(), R(lead).term());
      EXPECT_EQ(R(id).lead(), lead);
      EXPECT_EQ(R(id).log().committed(), commit);
      EXPECT_EQ(net_.peer(id).sm().kv().count(key), 1u);
      EXPECT_EQ(net_.peer(id).sm().kv().count("x"), 0u) << "a forged entry was applied";
      const std::vector<Entry> got = R(id).log().AllEntries();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(DescribeEntry(got[i]), DescribeEntry(want[i]));
        EXPECT_EQ(got[i].data(), want[i].data());
      }
    }
  }

  // Elects a leader again after a disruption (ticks until one is stable).
  void ElectLeader() {
    for (int i = 0; i < 100; ++i) {
      const uint64_t lead = net_.Leader();
      bool settled = lead != kNone;
      for (uint64_t id : net_.ids()) {
        settled = settled && R(id).lead() == lead && R(id).term() == R(lead).term();
      }
      if (settled) return;
      net_.TickAll();
    }
    FAIL() << "no leader elected";
  }

  CapturingLogger logger_;
  Network net_{{1, 2, 3}, OptionsWithLogger(&logger_)};
  int proposals_ = 0;
};

// ---------------------------------------------------------------------------
// Impossible headers, stepped into every role.

TEST_F(HostileMessageTest, ImpossibleHeadersToFollowerAreRejected) {
  ExpectRejectedWithoutChange(2, HeaderCases(2));
  ExpectRejectedWithoutChange(3, HeaderCases(3));
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, ImpossibleHeadersToLeaderAreRejected) {
  ExpectRejectedWithoutChange(1, HeaderCases(1));
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, ImpossibleHeadersToPreCandidateAreRejected) {
  net_.Isolate(3);
  ASSERT_TRUE(net_.peer(3).node().Campaign().ok());
  net_.Stabilize();
  ASSERT_EQ(R(3).state(), StateType::kPreCandidate);
  ExpectRejectedWithoutChange(3, HeaderCases(3));
  net_.Recover();
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, ImpossibleHeadersToCandidateAreRejected) {
  // MsgTimeoutNow makes 3 campaign at once, skipping the pre-vote; isolated,
  // it stays a candidate at term + 1.
  net_.Isolate(3);
  ASSERT_TRUE(Inject(3, Msg(raftpb::MSG_TIMEOUT_NOW, 1, Term())).ok());
  ASSERT_EQ(R(3).state(), StateType::kCandidate);
  ExpectRejectedWithoutChange(3, HeaderCases(3));
  net_.Recover();
  ElectLeader();
  ExpectClusterWorks();
}

// ---------------------------------------------------------------------------
// MsgApp and MsgHeartbeat with impossible contents, from the real leader.

TEST_F(HostileMessageTest, MalformedAppendEntriesAreIgnored) {
  const uint64_t t = Term();
  const uint64_t li = R(2).log().LastIndex();
  const uint64_t lt = R(2).log().LastTerm();
  auto app = [&](std::vector<Entry> ents) {
    Message m = Msg(raftpb::MSG_APP, 1, t);
    m.set_index(li);
    m.set_log_term(lt);
    m.set_commit(li);
    for (Entry& e : ents) *m.add_entries() = std::move(e);
    return m;
  };
  auto ok = [](const absl::Status& s) { return s.ok(); };
  std::vector<HostileCase> cases = {
      {"gap between entries", app({Ent(li + 1, t, "x=1"), Ent(li + 3, t, "x=3")}), ok},
      {"first entry does not follow index", app({Ent(li + 2, t, "x=2")}), ok},
      {"repeated index", app({Ent(li + 1, t, "x=1"), Ent(li + 1, t, "x=1")}), ok},
      {"entry term above message term", app({Ent(li + 1, t + 1, "x=1")}), ok},
      {"decreasing terms", app({Ent(li + 1, t, "x=1"), Ent(li + 2, t - 1, "x=2")}), ok},
      {"entry term below log_term", app({Ent(li + 1, lt - 1, "x=1")}), ok},
  };
  ExpectRejectedWithoutChange(2, cases);
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, AppendFarBeyondTheLogIsRejected) {
  const uint64_t t = Term();
  const uint64_t li = R(2).log().LastIndex();
  auto ok = [](const absl::Status& s) { return s.ok(); };
  std::vector<HostileCase> cases;
  for (uint64_t index : {li + 1, li + 1'000'000, kMaxU64 - 2, kMaxU64 - 1, kMaxU64}) {
    Message m = Msg(raftpb::MSG_APP, 1, t);
    m.set_index(index);
    m.set_log_term(t);
    m.set_commit(kMaxU64);
    // index + 1 wraps to 0 for the last one: the entries still "follow" it.
    *m.add_entries() = Ent(index + 1, t, "x=far");
    cases.push_back({"index " + std::to_string(index), m, ok});
    m.clear_entries();
    cases.push_back({"no entries, index " + std::to_string(index), m, ok});
  }
  ExpectRejectedWithoutChange(2, cases);
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, AppendCommitIsCappedAtItsLastEntry) {
  // 3 misses two entries; the leader commits them with 2.
  net_.Cut(1, 3);
  ASSERT_TRUE(net_.Propose(1, "b=1").ok());
  ASSERT_TRUE(net_.Propose(1, "b=2").ok());
  net_.Recover();
  const uint64_t li = R(3).log().LastIndex();
  ASSERT_EQ(R(1).log().committed(), li + 2);

  // The leader's next entry, claiming a commit index far past it: 3 commits
  // only what the message shows it holds.
  auto next = R(1).log().Slice(li + 1, li + 2, kNoLimit);
  ASSERT_TRUE(next.ok());
  for (uint64_t commit : {li + 100, kMaxU64}) {
    Message m = Msg(raftpb::MSG_APP, 1, Term());
    m.set_index(li);
    m.set_log_term(R(3).log().LastTerm());
    m.set_commit(commit);
    *m.add_entries() = (*next)[0];
    ASSERT_TRUE(net_.peer(3).node().Step(m).ok());
    EXPECT_EQ(R(3).log().LastIndex(), li + 1);
    EXPECT_EQ(R(3).log().committed(), li + 1);
    // Without entries the commit stops at the message's index.
    m.clear_entries();
    m.set_index(li + 1);
    ASSERT_TRUE(net_.peer(3).node().Step(m).ok());
    EXPECT_EQ(R(3).log().committed(), li + 1);
  }
  net_.Stabilize();
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, HeartbeatCommitPastLastIndexIsIgnored) {
  std::vector<HostileCase> cases;
  for (uint64_t commit : {R(2).log().LastIndex() + 1, kMaxU64}) {
    Message m = Msg(raftpb::MSG_HEARTBEAT, 1, Term());
    m.set_commit(commit);
    cases.push_back(
        {"commit " + std::to_string(commit), m, [](const absl::Status& s) { return s.ok(); }});
  }
  ExpectRejectedWithoutChange(2, cases);
  EXPECT_TRUE(logger_.Contains("beyond last index"));
  ExpectClusterWorks();
}

// Proposals and read requests travel without a term; one that carries a
// term is forged (forwarding it would also break the sender's invariants).
TEST_F(HostileMessageTest, ProposalOrReadRequestWithATermIsRejected) {
  for (uint64_t node : {1, 2}) {
    std::vector<HostileCase> cases;
    for (MessageType t : {raftpb::MSG_PROP, raftpb::MSG_READ_INDEX}) {
      for (uint64_t term : {Term(), Term() + 1}) {
        Message m = Msg(t, node == 1 ? 2 : 3, term);
        *m.add_entries() = Ent(0, 0, "x=1");
        cases.push_back({std::string(MessageTypeName(t)) + " term " + std::to_string(term), m,
                         IsInvalidArgument});
      }
    }
    ExpectRejectedWithoutChange(node, cases);
  }
  ExpectClusterWorks();
}

// A snapshot whose membership is malformed, or whose index no log can pass,
// is refused before anything is restored.
TEST_F(HostileMessageTest, SnapshotWithInvalidMetadataIsIgnored) {
  const uint64_t index = R(2).log().committed() + 5;
  Snapshot both = Snap(index, Term(), {1, 2, 3});
  both.mutable_metadata()->mutable_conf_state()->add_learners(2);  // voter and learner
  Snapshot huge = Snap(kMaxU64, Term(), {1, 2, 3});
  std::vector<HostileCase> cases;
  for (const Snapshot* snap : {&both, &huge}) {
    Message m = Msg(raftpb::MSG_SNAP, 1, Term());
    *m.mutable_snapshot() = *snap;
    cases.push_back({"snapshot at " + std::to_string(snap->metadata().index()), m,
                     [](const absl::Status& s) { return s.ok(); }});
  }
  ExpectRejectedWithoutChange(2, cases);
  ExpectClusterWorks();
}

// ---------------------------------------------------------------------------
// Forged acknowledgements to the leader.

TEST_F(HostileMessageTest, AppRespBeyondLastIndexDoesNotAdvanceCommit) {
  // The leader holds an entry no follower has: only a forged ack could
  // commit it.
  net_.Isolate(1);
  ASSERT_TRUE(net_.peer(1).node().Propose("b=1").ok());
  net_.Stabilize();
  const uint64_t commit = R(1).log().committed();
  const uint64_t last = R(1).log().LastIndex();
  ASSERT_EQ(last, commit + 1);
  std::vector<HostileCase> cases;
  for (uint64_t from : {2, 3}) {
    for (uint64_t index : {last + 1, last + 1000, kMaxU64}) {
      Message m = Msg(raftpb::MSG_APP_RESP, from, Term());
      m.set_index(index);
      cases.push_back(
          {"ack of " + std::to_string(index), m, [](const absl::Status& s) { return s.ok(); }});
    }
  }
  ExpectRejectedWithoutChange(1, cases);
  EXPECT_EQ(R(1).log().committed(), commit);
  for (uint64_t id : {2, 3}) EXPECT_LT(R(1).tracker().progress.at(id).match, last);
  net_.Recover();
  net_.Tick(1);  // a heartbeat round brings the followers up to date
  EXPECT_EQ(R(1).log().committed(), last);
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, AppRespRejectWithAbsurdHintsIsSafe) {
  // 3 lags two entries behind, so its rejections are not all stale.
  net_.Cut(1, 3);
  ASSERT_TRUE(net_.Propose(1, "b=1").ok());
  ASSERT_TRUE(net_.Propose(1, "b=2").ok());
  const uint64_t last = R(1).log().LastIndex();
  for (uint64_t index : {uint64_t{0}, uint64_t{1}, last - 1, last, last + 1, kMaxU64}) {
    for (uint64_t hint : {uint64_t{0}, last + 5, kMaxU64}) {
      for (uint64_t log_term : {uint64_t{0}, Term() + 5, kMaxU64}) {
        Message m = Msg(raftpb::MSG_APP_RESP, 3, Term());
        m.set_reject(true);
        m.set_index(index);
        m.set_reject_hint(hint);
        m.set_log_term(log_term);
        SCOPED_TRACE(DescribeMessage(m));
        const NodeState before = StateOf(R(1));
        ASSERT_TRUE(Inject(1, m).ok());
        EXPECT_EQ(StateOf(R(1)), before);
        const Progress& pr = R(1).tracker().progress.at(3);
        EXPECT_LT(pr.match, pr.next);
        EXPECT_LE(pr.next, last + 1);
      }
    }
  }
  net_.Recover();
  net_.Tick(1);
  ExpectClusterWorks();
}

// ---------------------------------------------------------------------------
// Snapshots.

TEST_F(HostileMessageTest, UselessOrForeignSnapshotsAreIgnored) {
  const uint64_t t = Term();
  const uint64_t commit = R(2).log().committed();
  const uint64_t last = R(2).log().LastIndex();
  auto snap_msg = [&](const Snapshot& s) {
    Message m = Msg(raftpb::MSG_SNAP, 1, t);
    *m.mutable_snapshot() = s;
    return m;
  };
  auto ok = [](const absl::Status& s) { return s.ok(); };
  Message no_snapshot = Msg(raftpb::MSG_SNAP, 1, t);
  std::vector<HostileCase> cases = {
      {"no snapshot", no_snapshot, ok},
      {"empty snapshot", snap_msg(Snapshot()), ok},
      {"empty snapshot with conf state", snap_msg(Snap(0, t, {1, 2, 3})), ok},
      {"older than commit",
       snap_msg(Snap(commit - 1, R(2).log().ZeroTermOnErr(commit - 1), {1, 2, 3})), ok},
      {"at commit", snap_msg(Snap(commit, R(2).log().ZeroTermOnErr(commit), {1, 2, 3})), ok},
      {"omits the receiver", snap_msg(Snap(last + 10, t, {1, 3})), ok},
      {"no voters at all", snap_msg(Snap(last + 10, t, {})), ok},
      {"snapshot term above message term", snap_msg(Snap(last + 10, t + 5, {1, 2, 3})), ok},
  };
  ExpectRejectedWithoutChange(2, cases);
  ExpectClusterWorks();
}

// ---------------------------------------------------------------------------
// Proposals and reads.

TEST_F(HostileMessageTest, EmptyProposalIsRejected) {
  const uint64_t last = R(1).log().LastIndex();
  EXPECT_TRUE(absl::IsInvalidArgument(Inject(1, Msg(raftpb::MSG_PROP, 2, 0))));
  EXPECT_TRUE(absl::IsInvalidArgument(Inject(2, Msg(raftpb::MSG_PROP, 3, 0))));
  EXPECT_EQ(R(1).log().LastIndex(), last);
  EXPECT_EQ(R(2).log().LastIndex(), last);
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, ReadIndexWithWrongEntryCountIsIgnored) {
  std::vector<HostileCase> to_leader, to_follower, resp;
  for (int n : {0, 2}) {
    Message req = Msg(raftpb::MSG_READ_INDEX, 2, 0);
    for (int i = 0; i < n; ++i) req.add_entries()->set_data("ctx" + std::to_string(i));
    to_leader.push_back({"MsgReadIndex with " + std::to_string(n) + " entries", req,
                         [](const absl::Status& s) { return s.ok(); }});
    req.set_from(3);
    to_follower.push_back(
        {"MsgReadIndex with " + std::to_string(n) + " entries", req, IsInvalidArgument});
    Message r = Msg(raftpb::MSG_READ_INDEX_RESP, 1, Term());
    r.set_index(R(1).log().committed());
    for (int i = 0; i < n; ++i) r.add_entries()->set_data("ctx" + std::to_string(i));
    resp.push_back({"MsgReadIndexResp with " + std::to_string(n) + " entries", r,
                    [](const absl::Status& s) { return s.ok(); }});
  }
  ExpectRejectedWithoutChange(1, to_leader);
  ExpectRejectedWithoutChange(2, to_follower);
  ExpectRejectedWithoutChange(2, resp);
  for (uint64_t id : net_.ids()) EXPECT_TRUE(net_.peer(id).reads().empty()) << id;

  // A well-formed request through the same path is answered.
  Message ok = Msg(raftpb::MSG_READ_INDEX, 3, 0);
  ok.add_entries()->set_data("good");
  ASSERT_TRUE(Inject(2, ok).ok());
  ASSERT_EQ(net_.peer(3).reads().size(), 1u);
  EXPECT_EQ(net_.peer(3).reads()[0].state.request_ctx, "good");
  ExpectClusterWorks();
}

// ---------------------------------------------------------------------------
// Duplicated and reordered messages.

TEST_F(HostileMessageTest, DuplicatedAndReorderedAppendsConverge) {
  // Hold back everything the leader sends to 3 while three entries commit.
  std::vector<Message> held;
  net_.SetHook([&](const Message& m) {
    if (m.to() != 3) return true;
    held.push_back(m);
    return false;
  });
  for (const char* p : {"b=1", "b=2", "b=3"}) ASSERT_TRUE(net_.Propose(1, p).ok());
  net_.Recover();
  ASSERT_GE(held.size(), 3u);
  // Newest first, each twice: the first is rejected (a gap), the leader
  // backs up and resends; the older copies arrive after they are useless.
  for (auto it = held.rbegin(); it != held.rend(); ++it) {
    ASSERT_TRUE(Inject(3, *it).ok());
    ASSERT_TRUE(Inject(3, *it).ok());
  }
  EXPECT_EQ(StateOf(R(3)).last_index, R(1).log().LastIndex());
  EXPECT_EQ(R(3).log().committed(), R(1).log().committed());
  // Replaying the whole history again, in order, changes nothing.
  const auto before = ClusterState();
  for (const Message& m : held) ASSERT_TRUE(Inject(3, m).ok());
  EXPECT_EQ(ClusterState(), before);
  EXPECT_EQ(net_.peer(3).sm().kv().at("b"), "3");
  ExpectClusterWorks();
}

TEST_F(HostileMessageTest, DuplicatedAndReorderedAcksAreIgnored) {
  std::vector<Message> acks;
  net_.SetHook([&](const Message& m) {
    if (m.from() == 2 && m.type() == raftpb::MSG_APP_RESP) acks.push_back(m);
    return true;
  });
  for (const char* p : {"b=1", "b=2", "b=3"}) ASSERT_TRUE(net_.Propose(1, p).ok());
  net_.Recover();
  ASSERT_GE(acks.size(), 3u);
  const auto before = ClusterState();
  const uint64_t match = R(1).tracker().progress.at(2).match;
  for (auto it = acks.rbegin(); it != acks.rend(); ++it) {
    ASSERT_TRUE(Inject(1, *it).ok());
    ASSERT_TRUE(Inject(1, *it).ok());
  }
  EXPECT_EQ(ClusterState(), before);
  EXPECT_EQ(R(1).tracker().progress.at(2).match, match);
  ExpectClusterWorks();
}

// ---------------------------------------------------------------------------
// A second leader in the same term (Raft §5.2 Election Safety): impossible
// from an honest peer. Detect and report it; never apply its entries.

TEST_F(HostileMessageTest, SecondLeaderOfSameTermIsNeverFollowed) {
  const uint64_t t = Term();
  auto claims = [&](uint64_t from, uint64_t to) {
    const uint64_t li = R(to).log().LastIndex();
    std::vector<Message> out;
    Message app = Msg(raftpb::MSG_APP, from, t);
    app.set_index(li);
    app.set_log_term(R(to).log().LastTerm());
    app.set_commit(li + 1);
    *app.add_entries() = Ent(li + 1, t, "x=evil");
    out.push_back(app);
    Message hb = Msg(raftpb::MSG_HEARTBEAT, from, t);
    hb.set_commit(li);
    out.push_back(hb);
    Message snap = Msg(raftpb::MSG_SNAP, from, t);
    *snap.mutable_snapshot() = Snap(li + 10, t, {1, 2, 3});
    snap.mutable_snapshot()->set_data(
        "x\x01"
        "evil\x01"
        "1\x02");
    out.push_back(snap);
    return out;
  };
  // Node 2 claims leadership of the leader's own term, to the leader and to
  // the other follower; then node 3 does the same to 2.
  for (auto [from, to] : std::vector<std::pair<uint64_t, uint64_t>>{{2, 1}, {2, 3}, {3, 2}}) {
    for (const Message& m : claims(from, to)) {
      SCOPED_TRACE(DescribeMessage(m) + " -> " + std::to_string(to));
      const auto before = ClusterState();
      absl::Status s = Inject(to, m);
      EXPECT_FALSE(s.ok()) << "the second leader was not reported";
      EXPECT_EQ(ClusterState(), before);
    }
  }
  EXPECT_TRUE(logger_.Contains("claims leadership"));
  // The next real entry lands at the index the forged one claimed, with the
  // same term: had a follower kept the forgery, it would now apply it.
  ExpectClusterWorks();
}

}  // namespace

// ---------------------------------------------------------------------------
// Broken internal invariants abort with the node's state dumped.

TEST(HostileMessageDeathTest, CommitPastLastIndexInStorageAbortsConstruction) {
  MemoryStorage storage;
  ConfState cs;
  cs.add_voters(0x2a);
  storage.BootstrapConfState(cs);
  HardState hs;
  hs.set_term(4);
  hs.set_commit(5);  // the log is empty: entries 1..5 were lost
  storage.SetHardState(hs);
  SeededRand rand(1);
  Config c = TestConfig();
  c.id = 0x2a;
  c.storage = &storage;
  c.rand = &rand;
  EXPECT_DEATH((void)RawNode::Create(c), "state.commit 5 is out of range.*node 2a StateFollower");
}

TEST(HostileMessageDeathTest, GetReadyTwiceWithoutAdvanceAborts) {
  MemoryStorage storage;
  ConfState cs;
  cs.add_voters(1);
  storage.BootstrapConfState(cs);
  SeededRand rand(1);
  Config c = TestConfig();
  c.id = 1;
  c.storage = &storage;
  c.rand = &rand;
  auto node = RawNode::Create(c);
  ASSERT_TRUE(node.ok());
  ASSERT_TRUE((*node)->Campaign().ok());
  ASSERT_TRUE((*node)->HasReady());
  Ready rd = (*node)->GetReady();
  ASSERT_TRUE(storage.Append(rd.entries).ok());
  EXPECT_FALSE((*node)->HasReady());
  EXPECT_DEATH((void)(*node)->GetReady(),
               "GetReady called before Advance; node 1 StateLeader term=1");
  (*node)->Advance();
  EXPECT_DEATH((*node)->Advance(), "Advance without an outstanding Ready; node 1");
}

TEST(HostileMessageDeathTest, CommitPastLastIndexInLogAborts) {
  MemoryStorage storage;
  RaftLog log(&storage, nullptr, kNoLimit);
  log.Append({Ent(1, 1), Ent(2, 1)});
  EXPECT_DEATH(log.CommitTo(3), "tocommit\\(3\\) is out of range \\[lastIndex\\(2\\)\\]");
}

TEST(HostileMessageDeathTest, OverwritingCommittedEntryAborts) {
  MemoryStorage storage;
  RaftLog log(&storage, nullptr, kNoLimit);
  log.Append({Ent(1, 1), Ent(2, 1)});
  log.CommitTo(2);
  // A MsgApp that matched at index 1 but rewrites committed entry 2.
  EXPECT_DEATH((void)log.MaybeAppend(1, 1, 2, {Ent(2, 2)}),
               "entry 2 conflicts with committed entry \\[committed\\(2\\)\\]");
}

}  // namespace arbiter::raft::testing
