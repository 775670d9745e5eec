// Linearizable reads (Raft thesis §6.4): ReadIndex in safe mode (a heartbeat
// quorum confirms leadership) and lease-based mode (CheckQuorum's lease is
// trusted), reads forwarded by followers, and the single-node shortcut.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/rand.h"
#include "raft/raw_node.h"
#include "tests/harness/network.h"

namespace arbiter::raft {
namespace {

using testing::CompletedRead;
using testing::Network;
using testing::NetworkOptions;
using testing::TestConfig;

// Counts messages by type going through the network (and lets them pass).
struct MessageCounts {
  std::map<MessageType, int> by_type;
  int Of(MessageType t) const {
    auto it = by_type.find(t);
    return it == by_type.end() ? 0 : it->second;
  }
};

void CountMessages(Network& n, MessageCounts* counts) {
  n.SetHook([counts](const Message& m) {
    ++counts->by_type[m.type()];
    return true;
  });
}

std::vector<std::string> Contexts(const std::vector<CompletedRead>& reads) {
  std::vector<std::string> out;
  for (const CompletedRead& r : reads) out.push_back(r.state.request_ctx);
  return out;
}

NetworkOptions LeaseOptions() {
  NetworkOptions opts;
  opts.config.read_only_option = ReadOnlyOption::kLeaseBased;
  opts.config.check_quorum = true;
  return opts;
}

// ---------------------------------------------------------------------------
// Safe mode

// Reads that arrive before the leader's next Ready share one heartbeat
// round: one heartbeat per follower, carrying the newest read's context,
// answers all of them.
TEST(ReadIndexTest, ConcurrentReadsShareOneHeartbeatRound) {
  Network n({1, 2, 3});
  n.Campaign(1);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  MessageCounts counts;
  CountMessages(n, &counts);
  for (int i = 0; i < 50; ++i) n.peer(1).node().ReadIndex("r" + std::to_string(i));
  n.Stabilize();
  EXPECT_EQ(counts.Of(raftpb::MSG_HEARTBEAT), 2);
  std::vector<CompletedRead>& reads = n.peer(1).reads();
  ASSERT_EQ(reads.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(reads[i].state.request_ctx, "r" + std::to_string(i));
}

// The read state is returned once a quorum answered the heartbeat carrying
// the request's context; its index is the commit index at request time.
TEST(ReadIndexTest, SafeReadAfterHeartbeatQuorum) {
  Network n({1, 2, 3});
  n.Campaign(1);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  const uint64_t committed = n.peer(1).raft().log().committed();

  // Heartbeats sent for the read carry a round number, not the read's
  // context (contexts are opaque and may repeat).
  int ctx_heartbeats = 0;
  n.SetHook([&](const Message& m) {
    if (m.type() == raftpb::MSG_HEARTBEAT && m.context().size() == 8) ++ctx_heartbeats;
    return true;
  });
  n.peer(1).node().ReadIndex("r1");
  // Nothing is answered before the round trip.
  EXPECT_TRUE(n.peer(1).raft().read_states().empty());
  n.Stabilize();
  EXPECT_EQ(ctx_heartbeats, 2);
  std::vector<CompletedRead>& reads = n.peer(1).reads();
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].state.request_ctx, "r1");
  EXPECT_EQ(reads[0].state.index, committed);
  EXPECT_GE(reads[0].applied_at_return, committed);

  // A read after a write sees the write's index.
  ASSERT_TRUE(n.Propose(1, "b=2").ok());
  n.peer(1).node().ReadIndex("r2");
  n.Stabilize();
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[1].state.index, committed + 1);
}

// One reachable follower out of two suffices: a majority is what counts.
TEST(ReadIndexTest, SafeReadWithOneFollowerDown) {
  Network n({1, 2, 3});
  n.Campaign(1);
  n.Isolate(3);
  n.peer(1).node().ReadIndex("r");
  n.Stabilize();
  ASSERT_EQ(n.peer(1).reads().size(), 1u);
  EXPECT_EQ(n.peer(1).reads()[0].state.index, n.peer(1).raft().log().committed());
}

// Many reads requested before any answer arrives are all answered, in
// order, at the same index.
TEST(ReadIndexTest, ManyConcurrentReadsAllAnswered) {
  Network n({1, 2, 3});
  n.Campaign(1);
  const uint64_t committed = n.peer(1).raft().log().committed();
  std::vector<std::string> want;
  for (int i = 0; i < 50; ++i) {
    want.push_back("ctx-" + std::to_string(i));
    n.peer(1).node().ReadIndex(want.back());
  }
  n.Stabilize();
  std::vector<CompletedRead>& reads = n.peer(1).reads();
  EXPECT_EQ(Contexts(reads), want);
  for (const CompletedRead& r : reads) EXPECT_EQ(r.state.index, committed) << r.state.request_ctx;

  // The same when acknowledgements arrive late: held heartbeat responses,
  // released together, answer every read queued before them.
  reads.clear();
  n.Ignore(raftpb::MSG_HEARTBEAT_RESP);
  for (int i = 0; i < 10; ++i) n.peer(1).node().ReadIndex("late-" + std::to_string(i));
  n.Stabilize();
  EXPECT_TRUE(reads.empty());
  n.Recover();
  n.Tick(1);  // the next heartbeat carries the newest pending context
  ASSERT_EQ(reads.size(), 10u);
  EXPECT_EQ(reads.front().state.request_ctx, "late-0");
  EXPECT_EQ(reads.back().state.request_ctx, "late-9");
}

// A leader cut off from the majority never returns a read state, even after
// the majority elected a new leader and the old one rejoined.
TEST(ReadIndexTest, PartitionedLeaderNeverReturnsReadState) {
  Network n({1, 2, 3, 4, 5});
  n.Campaign(1);
  n.Partition({{1, 2}, {3, 4, 5}});
  n.peer(1).node().ReadIndex("stale?");
  n.Stabilize();
  EXPECT_TRUE(n.peer(1).reads().empty());

  // The majority side elects a new leader and commits a write.
  for (int i = 0; i < 40 && n.Leader() == 1; ++i) {
    for (uint64_t id : {3, 4, 5}) n.peer(id).node().Tick();
    n.Stabilize();
  }
  uint64_t new_leader = kNone;
  for (uint64_t id : {3, 4, 5}) {
    if (n.peer(id).raft().state() == StateType::kLeader) new_leader = id;
  }
  ASSERT_NE(new_leader, kNone);
  ASSERT_TRUE(n.Propose(new_leader, "w=1").ok());
  EXPECT_TRUE(n.peer(1).reads().empty());

  // The old leader's heartbeats (with the read's context) reach everyone
  // again; it learns of the new term and steps down, without answering.
  n.Recover();
  n.Tick(1);
  n.Stabilize();
  EXPECT_NE(n.peer(1).raft().state(), StateType::kLeader);
  EXPECT_TRUE(n.peer(1).reads().empty());
}

// A follower forwards the read to the leader and gets the index back.
TEST(ReadIndexTest, ReadForwardedFromFollower) {
  Network n({1, 2, 3});
  n.Campaign(1);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  MessageCounts counts;
  CountMessages(n, &counts);
  n.peer(2).node().ReadIndex("from-2");
  n.Stabilize();
  EXPECT_EQ(counts.Of(raftpb::MSG_READ_INDEX), 1);
  EXPECT_EQ(counts.Of(raftpb::MSG_READ_INDEX_RESP), 1);
  ASSERT_EQ(n.peer(2).reads().size(), 1u);
  EXPECT_EQ(n.peer(2).reads()[0].state.request_ctx, "from-2");
  EXPECT_EQ(n.peer(2).reads()[0].state.index, n.peer(1).raft().log().committed());
  EXPECT_TRUE(n.peer(1).reads().empty());

  // A follower that knows no leader drops the request.
  Network fresh({1, 2, 3});
  MessageCounts fresh_counts;
  CountMessages(fresh, &fresh_counts);
  fresh.peer(2).node().ReadIndex("nowhere");
  fresh.Stabilize();
  EXPECT_EQ(fresh_counts.Of(raftpb::MSG_READ_INDEX), 0);
  EXPECT_TRUE(fresh.peer(2).reads().empty());
}

// A learner's read is forwarded too, but its heartbeat ack does not count
// toward the quorum that confirms leadership.
TEST(ReadIndexTest, LearnerReadNeedsVoterQuorum) {
  Network n({1, 2}, NetworkOptions(), /*learners=*/{3});
  n.Campaign(1);
  n.Cut(1, 2);
  n.peer(3).node().ReadIndex("learner");
  n.Stabilize();
  EXPECT_TRUE(n.peer(3).reads().empty());
  n.Recover();
  n.Tick(1);
  ASSERT_EQ(n.peer(3).reads().size(), 1u);
  EXPECT_EQ(n.peer(3).reads()[0].state.index, n.peer(1).raft().log().committed());
}

// A new leader does not know the latest commit index until it commits an
// entry of its own term; a read arriving before that is postponed, not
// answered with a possibly stale index.
TEST(ReadIndexTest, ReadPostponedUntilLeaderCommitsInItsTerm) {
  NetworkOptions opts;
  opts.config = TestConfig(/*pre_vote=*/false, /*check_quorum=*/false);
  Network n({1, 2, 3}, opts);
  n.Campaign(1);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  const uint64_t old_commit = n.peer(1).raft().log().committed();

  // 2 wins, but its term's first entry does not get out.
  n.Ignore(raftpb::MSG_APP);
  n.Campaign(2);
  ASSERT_EQ(n.Leader(), 2u);
  Raft& leader = n.peer(2).raft();
  ASSERT_EQ(leader.log().committed(), old_commit);
  ASSERT_EQ(leader.log().LastIndex(), old_commit + 1);

  int ctx_heartbeats = 0;
  n.SetHook([&](const Message& m) {
    if (m.type() == raftpb::MSG_HEARTBEAT && m.context() == "early") ++ctx_heartbeats;
    return true;
  });
  n.peer(2).node().ReadIndex("early");
  n.Stabilize();
  EXPECT_EQ(ctx_heartbeats, 0);
  EXPECT_TRUE(n.peer(2).reads().empty());

  // Once the term's entry commits, the read goes through a heartbeat round
  // and is answered at the new commit index.
  n.Recover();
  n.Tick(2);
  EXPECT_EQ(leader.log().committed(), old_commit + 1);
  ASSERT_EQ(n.peer(2).reads().size(), 1u);
  EXPECT_EQ(n.peer(2).reads()[0].state.request_ctx, "early");
  EXPECT_EQ(n.peer(2).reads()[0].state.index, old_commit + 1);
}

// Requests with the same context share one slot: one read state comes back.
// Contexts are the caller's business: a repeated context is a second,
// separate read, answered on its own (merging it into the first would give
// the second caller the first one's, possibly older, index).
TEST(ReadIndexTest, RepeatedContextIsASeparateRead) {
  Network n({1, 2, 3});
  n.Campaign(1);
  n.peer(1).node().ReadIndex("dup");
  n.Stabilize();
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  n.peer(1).node().ReadIndex("dup");
  n.Stabilize();
  ASSERT_EQ(Contexts(n.peer(1).reads()), (std::vector<std::string>{"dup", "dup"}));
  EXPECT_LT(n.peer(1).reads()[0].state.index, n.peer(1).reads()[1].state.index);
}

// An acknowledgement of an earlier round never confirms a later read: the
// leader is isolated after a first read completes (one follower's answer
// delayed), a new leader commits a write, and the old leader's second read
// must not be answered when the delayed answer finally arrives.
TEST(ReadIndexTest, LateAckOfEarlierRoundConfirmsNothingNew) {
  Network n({1, 2, 3});
  n.Campaign(1);
  std::vector<Message> held;
  n.SetHook([&](const Message& m) {
    if (m.type() == raftpb::MSG_HEARTBEAT_RESP && m.from() == 3) {
      held.push_back(m);
      return false;
    }
    return true;
  });
  n.peer(1).node().ReadIndex("x");
  n.Stabilize();
  ASSERT_EQ(n.peer(1).reads().size(), 1u);  // confirmed by 1 and 2
  ASSERT_FALSE(held.empty());
  n.Recover();
  n.Isolate(1);
  n.peer(1).node().ReadIndex("x");
  n.Stabilize();
  n.Recover();
  // Deliver only the held answer of the earlier round to the old leader.
  n.Send(held);
  EXPECT_EQ(n.peer(1).reads().size(), 1u);
}

// ---------------------------------------------------------------------------
// Lease-based mode and the single node

// With the lease, the leader answers at once from its commit index: no
// heartbeat round.
TEST(ReadIndexTest, LeaseBasedReadNeedsNoRoundTrip) {
  Network n({1, 2, 3}, LeaseOptions());
  n.Campaign(1);
  ASSERT_TRUE(n.Propose(1, "a=1").ok());
  // The lease starts with the first heartbeat round a quorum acknowledges.
  n.Tick(1);
  const uint64_t committed = n.peer(1).raft().log().committed();
  MessageCounts counts;
  CountMessages(n, &counts);

  n.peer(1).node().ReadIndex("lease");
  ASSERT_EQ(n.peer(1).raft().read_states().size(), 1u);
  EXPECT_EQ(n.peer(1).raft().read_states()[0].index, committed);
  n.Stabilize();
  EXPECT_EQ(counts.Of(raftpb::MSG_HEARTBEAT), 0);
  ASSERT_EQ(n.peer(1).reads().size(), 1u);
  EXPECT_EQ(n.peer(1).reads()[0].state.index, committed);

  // Forwarded from a follower: one request, one response, no heartbeats.
  n.peer(3).node().ReadIndex("lease-3");
  n.Stabilize();
  EXPECT_EQ(counts.Of(raftpb::MSG_READ_INDEX), 1);
  EXPECT_EQ(counts.Of(raftpb::MSG_READ_INDEX_RESP), 1);
  EXPECT_EQ(counts.Of(raftpb::MSG_HEARTBEAT), 0);
  ASSERT_EQ(n.peer(3).reads().size(), 1u);
  EXPECT_EQ(n.peer(3).reads()[0].state.index, committed);
}

// Once the lease has run out (no round acknowledged for an election
// timeout, here because the leader is cut off) a lease read falls back to a
// heartbeat round, which a cut-off leader cannot complete; before the lease
// ran out it was answered at once.
TEST(ReadIndexTest, ExpiredLeaseFallsBackToARound) {
  Network n({1, 2, 3}, LeaseOptions());
  n.Campaign(1);
  n.Tick(1);
  n.Isolate(1);
  n.peer(1).node().ReadIndex("in-lease");
  n.Stabilize();
  ASSERT_EQ(Contexts(n.peer(1).reads()), (std::vector<std::string>{"in-lease"}));
  // Without CheckQuorum stepping it down first, run the leader's clock past
  // the lease (election timeout minus the margin).
  for (int i = 0; i < 9 && n.peer(1).raft().state() == StateType::kLeader; ++i) n.Tick(1);
  ASSERT_EQ(n.peer(1).raft().state(), StateType::kLeader);
  n.peer(1).node().ReadIndex("expired");
  n.Stabilize();
  EXPECT_EQ(Contexts(n.peer(1).reads()), (std::vector<std::string>{"in-lease"}));
}

// After a MsgTimeoutNow its recipient may win at any time, even inside the
// voters' leases: the old leader no longer trusts its lease in that term.
TEST(ReadIndexTest, NoLeaseAfterTimeoutNow) {
  Network n({1, 2, 3}, LeaseOptions());
  n.Campaign(1);
  n.Tick(1);
  n.Ignore(raftpb::MSG_TIMEOUT_NOW);
  n.peer(1).node().TransferLeader(2);
  n.Stabilize();
  ASSERT_EQ(n.peer(1).raft().state(), StateType::kLeader);
  MessageCounts counts;
  CountMessages(n, &counts);
  n.peer(1).node().ReadIndex("after-transfer");
  n.Stabilize();
  EXPECT_GT(counts.Of(raftpb::MSG_HEARTBEAT), 0);
}

// The lease is only sound with CheckQuorum (a leader that lost the quorum
// must step down within the lease), so the config refuses it otherwise.
TEST(ReadIndexTest, LeaseBasedRequiresCheckQuorum) {
  MemoryStorage storage;
  SeededRand rand(1);
  Config cfg = TestConfig(/*pre_vote=*/true, /*check_quorum=*/false);
  cfg.id = 1;
  cfg.storage = &storage;
  cfg.rand = &rand;
  cfg.read_only_option = ReadOnlyOption::kLeaseBased;
  absl::Status s = cfg.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  auto node = RawNode::Create(cfg);
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);

  cfg.check_quorum = true;
  EXPECT_TRUE(cfg.Validate().ok());
  cfg.read_only_option = ReadOnlyOption::kSafe;
  cfg.check_quorum = false;
  EXPECT_TRUE(cfg.Validate().ok());
}

// A single voter answers at once in either mode: no one else can have been
// elected.
TEST(ReadIndexTest, SingleNodeReadIsImmediate) {
  for (ReadOnlyOption option : {ReadOnlyOption::kSafe, ReadOnlyOption::kLeaseBased}) {
    SCOPED_TRACE(static_cast<int>(option));
    NetworkOptions opts;
    opts.config.read_only_option = option;
    Network n({1}, opts);
    n.Campaign(1);
    ASSERT_EQ(n.Leader(), 1u);
    ASSERT_TRUE(n.Propose(1, "a=1").ok());
    n.peer(1).node().ReadIndex("solo");
    ASSERT_EQ(n.peer(1).raft().read_states().size(), 1u);
    EXPECT_EQ(n.peer(1).raft().read_states()[0].index, n.peer(1).raft().log().committed());
    n.Stabilize();
    ASSERT_EQ(n.peer(1).reads().size(), 1u);
    EXPECT_EQ(n.peer(1).reads()[0].state.request_ctx, "solo");
  }
}

}  // namespace
}  // namespace arbiter::raft
