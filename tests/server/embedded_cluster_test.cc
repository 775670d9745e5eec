// Three durable members in one process: elections, replication, partitions,
// crashes with lost unsynced data, catch-up by log and by snapshot, and
// the rule that a write is acknowledged only once a quorum made it durable.
#include "server/embedded_cluster.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/errors.h"
#include "server/test_state_machine.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::Deadline;

class EmbeddedClusterTest : public ::testing::Test {
 protected:
  void StartCluster(uint64_t snapshot_count = 10000, EmbeddedClusterOptions::Storage storage =
                                                         EmbeddedClusterOptions::Storage::kMemEnv) {
    EmbeddedClusterOptions o;
    o.size = 3;
    o.tick_interval = absl::Milliseconds(10);
    // 200-400 ms election timeouts: a loaded machine that stalls a thread
    // for a tick or two must not cause spurious elections.
    o.election_tick = 20;
    o.snapshot_count = snapshot_count;
    o.snapshot_catchup_entries = catchup_entries_;
    o.storage = storage;
    auto c = EmbeddedCluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
  }

  uint64_t WaitForLeader() {
    auto l = cluster_->WaitForLeader(Deadline());
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : 0;
  }

  // Proposes through member id, retrying while leadership settles (a
  // proposal that raced an election fails with a retryable error).
  void MustPropose(uint64_t id, const std::string& cmd) {
    const absl::Time deadline = Deadline();
    absl::Status last;
    while (absl::Now() < deadline) {
      auto r = cluster_->member(id)->Propose(cmd, deadline);
      if (r.ok()) return;
      last = r.status();
      ASSERT_TRUE(IsNoLeader(last) || IsLeadershipChanged(last) || IsTimeout(last)) << last;
      cluster_->WaitForLeader(deadline).IgnoreError();
    }
    FAIL() << "proposal " << cmd << " never succeeded: " << last;
  }

  // A linearizable read barrier on member id, retried while leadership
  // settles (an election may legitimately fail a pending read).
  void MustReadIndex(uint64_t id) {
    const absl::Time deadline = Deadline();
    absl::Status last;
    while (absl::Now() < deadline) {
      last = cluster_->member(id)->ReadIndex(deadline);
      if (last.ok()) return;
      ASSERT_TRUE(IsNoLeader(last) || IsLeadershipChanged(last) || IsTimeout(last)) << last;
      cluster_->WaitForLeader(deadline).IgnoreError();
    }
    FAIL() << "read index on " << id << " never succeeded: " << last;
  }

  std::optional<std::string> Get(uint64_t id, const std::string& key) {
    std::optional<std::string> v;
    absl::Status s = cluster_->member(id)->QueryStateMachine(
        [&](const StateMachine& sm) { v = static_cast<const TestStateMachine&>(sm).Get(key); },
        Deadline());
    EXPECT_TRUE(s.ok()) << s;
    return v;
  }

  // True once every running member applied the same index (at least
  // min_applied) and has the same state hash.
  bool Converged(uint64_t min_applied) {
    std::set<uint64_t> hashes, applied;
    for (uint64_t id : cluster_->ids()) {
      Member* m = cluster_->member(id);
      if (m == nullptr) continue;
      MemberStatus s = m->Status();
      if (s.applied < min_applied) return false;
      applied.insert(s.applied);
      auto h = m->AppliedHash(Deadline());
      if (!h.ok()) return false;
      hashes.insert(*h);
    }
    return hashes.size() == 1 && applied.size() == 1;
  }

  void ExpectConverged(uint64_t min_applied) {
    EXPECT_TRUE(cluster_->WaitFor([&] { return Converged(min_applied); }, Deadline()))
        << "members did not converge";
  }

  uint64_t OtherThan(uint64_t a, uint64_t b = 0) {
    for (uint64_t id : cluster_->ids()) {
      if (id != a && id != b) return id;
    }
    return 0;
  }

  std::unique_ptr<EmbeddedCluster> cluster_;
  // Set before StartCluster: EmbeddedClusterOptions::snapshot_catchup_entries.
  uint64_t catchup_entries_ = 0;
};

TEST_F(EmbeddedClusterTest, ElectsALeaderAndReplicatesFromAnyMember) {
  StartCluster();
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 10; ++i) MustPropose(leader, absl::StrCat("k", i, "=", i));
  // A follower forwards its proposal to the leader and completes when it
  // applies the entry itself.
  const uint64_t follower = OtherThan(leader);
  auto r = cluster_->member(follower)->Propose("from-follower=1", Deadline());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Get(follower, "from-follower"), "1");
  ExpectConverged(cluster_->member(leader)->Status().applied);
  for (uint64_t id : cluster_->ids()) EXPECT_EQ(Get(id, "k9"), "9") << "member " << id;
}

TEST_F(EmbeddedClusterTest, ReadIndexOnAFollowerSeesEarlierWrites) {
  StartCluster();
  const uint64_t leader = WaitForLeader();
  const uint64_t follower = OtherThan(leader);
  for (int i = 0; i < 20; ++i) {
    MustPropose(leader, absl::StrCat("x=", i));
    // Linearizable: once the write returned, a read anywhere must see it.
    MustReadIndex(follower);
    EXPECT_EQ(Get(follower, "x"), absl::StrCat(i));
  }
}

TEST_F(EmbeddedClusterTest, PartitionedLeaderCannotCommitAndHealConverges) {
  StartCluster();
  const uint64_t old_leader = WaitForLeader();
  MustPropose(old_leader, "before=1");
  cluster_->Isolate(old_leader);
  // The majority elects a new leader.
  uint64_t new_leader = 0;
  ASSERT_TRUE(cluster_->WaitFor(
      [&] { return (new_leader = cluster_->Leader()) != 0 && new_leader != old_leader; },
      Deadline()));
  // The old leader cannot commit: its write is never acknowledged.
  auto stale = cluster_->member(old_leader)->Propose("stale=1", absl::Now() + absl::Seconds(1));
  EXPECT_FALSE(stale.ok());
  MustPropose(new_leader, "after=1");
  // A read on the isolated member cannot be confirmed either.
  EXPECT_FALSE(cluster_->member(old_leader)->ReadIndex(absl::Now() + absl::Seconds(1)).ok());

  cluster_->Heal();
  ExpectConverged(cluster_->member(new_leader)->Status().applied);
  for (uint64_t id : cluster_->ids()) {
    EXPECT_EQ(Get(id, "before"), "1") << "member " << id;
    EXPECT_EQ(Get(id, "after"), "1") << "member " << id;
    EXPECT_EQ(Get(id, "stale"), std::nullopt) << "member " << id;
  }
}

TEST_F(EmbeddedClusterTest, KilledLeaderIsReplacedAndCatchesUpByLog) {
  StartCluster();
  const uint64_t old_leader = WaitForLeader();
  for (int i = 0; i < 5; ++i) MustPropose(old_leader, absl::StrCat("a", i, "=", i));
  ASSERT_TRUE(cluster_->Kill(old_leader).ok());
  uint64_t new_leader = 0;
  ASSERT_TRUE(
      cluster_->WaitFor([&] { return (new_leader = cluster_->Leader()) != 0; }, Deadline()));
  ASSERT_NE(new_leader, old_leader);
  for (int i = 0; i < 5; ++i) MustPropose(new_leader, absl::StrCat("b", i, "=", i));
  const uint64_t snapshot_before = cluster_->member(new_leader)->Status().snapshot_index;

  ASSERT_TRUE(cluster_->Restart(old_leader).ok());
  ExpectConverged(cluster_->member(new_leader)->Status().applied);
  EXPECT_EQ(Get(old_leader, "a4"), "4");
  EXPECT_EQ(Get(old_leader, "b4"), "4");
  // By log: nobody took a snapshot past the bootstrap one.
  EXPECT_EQ(cluster_->member(new_leader)->Status().snapshot_index, snapshot_before);
  EXPECT_EQ(cluster_->member(old_leader)->Status().snapshot_index, 1u);
}

TEST_F(EmbeddedClusterTest, RestartedMemberCatchesUpBySnapshot) {
  StartCluster(/*snapshot_count=*/5);
  const uint64_t leader = WaitForLeader();
  const uint64_t victim = OtherThan(leader);
  MustPropose(leader, "first=1");
  ASSERT_TRUE(cluster_->Kill(victim).ok());
  for (int i = 0; i < 30; ++i) MustPropose(leader, absl::StrCat("k", i, "=", i));
  const MemberStatus ls = cluster_->member(leader)->Status();
  ASSERT_GT(ls.snapshot_index, 20u) << "the leader compacted its log";

  const uint64_t snapshots_before = cluster_->network().snapshots_delivered();
  ASSERT_TRUE(cluster_->Restart(victim).ok());
  ExpectConverged(ls.applied);
  // The entries it missed were compacted away: it must have installed a
  // snapshot at least as new as the leader's when it restarted.
  EXPECT_GT(cluster_->network().snapshots_delivered(), snapshots_before);
  EXPECT_GE(cluster_->member(victim)->Status().snapshot_index, ls.snapshot_index);
  EXPECT_EQ(Get(victim, "k29"), "29");
  EXPECT_EQ(Get(victim, "first"), "1");
}

// With entries kept behind each snapshot (as etcd keeps 5,000), a member
// that missed fewer catches up from the log, with no snapshot sent; one
// that missed more still gets a snapshot. Members restart from stores
// whose log starts before their snapshot.
TEST_F(EmbeddedClusterTest, RestartedMemberCatchesUpFromEntriesKeptBehindSnapshots) {
  catchup_entries_ = 40;
  StartCluster(/*snapshot_count=*/5);
  const uint64_t leader = WaitForLeader();
  const uint64_t victim = OtherThan(leader);
  MustPropose(leader, "first=1");
  ASSERT_TRUE(cluster_->Kill(victim).ok());
  for (int i = 0; i < 30; ++i) MustPropose(leader, absl::StrCat("k", i, "=", i));
  MemberStatus ls = cluster_->member(leader)->Status();
  ASSERT_GT(ls.snapshot_index, 20u) << "the leader took snapshots past what the victim has";
  uint64_t snapshots_before = cluster_->network().snapshots_delivered();
  ASSERT_TRUE(cluster_->Restart(victim).ok());
  ExpectConverged(ls.applied);
  EXPECT_EQ(cluster_->network().snapshots_delivered(), snapshots_before);
  EXPECT_EQ(Get(victim, "k29"), "29");
  EXPECT_EQ(Get(victim, "first"), "1");

  // Further behind than the kept entries: a snapshot.
  ASSERT_TRUE(cluster_->Kill(victim).ok());
  for (int i = 0; i < 60; ++i) MustPropose(leader, absl::StrCat("m", i, "=", i));
  ls = cluster_->member(leader)->Status();
  snapshots_before = cluster_->network().snapshots_delivered();
  ASSERT_TRUE(cluster_->Restart(victim).ok());
  ExpectConverged(ls.applied);
  EXPECT_GT(cluster_->network().snapshots_delivered(), snapshots_before);
  EXPECT_EQ(Get(victim, "m59"), "59");

  // Every member restarts from its own store.
  for (uint64_t id : {leader, victim, OtherThan(leader, victim)}) {
    ASSERT_TRUE(cluster_->Kill(id).ok());
    ASSERT_TRUE(cluster_->Restart(id).ok());
  }
  const uint64_t new_leader = WaitForLeader();
  MustPropose(new_leader, "last=1");
  ExpectConverged(cluster_->member(new_leader)->Status().applied);
  EXPECT_EQ(Get(victim, "k0"), "0");
  EXPECT_EQ(Get(victim, "last"), "1");
}

TEST_F(EmbeddedClusterTest, KilledLeaderRestartsFromSnapshotAndLog) {
  StartCluster(/*snapshot_count=*/4);
  const uint64_t old_leader = WaitForLeader();
  for (int i = 0; i < 11; ++i) MustPropose(old_leader, absl::StrCat("a", i, "=", i));
  ASSERT_TRUE(cluster_->Kill(old_leader).ok());
  const uint64_t new_leader = WaitForLeader();
  ASSERT_NE(new_leader, 0u);
  for (int i = 0; i < 11; ++i) MustPropose(new_leader, absl::StrCat("b", i, "=", i));
  ASSERT_TRUE(cluster_->Restart(old_leader).ok());
  ExpectConverged(cluster_->member(new_leader)->Status().applied);
  EXPECT_EQ(Get(old_leader, "a10"), "10");
  EXPECT_EQ(Get(old_leader, "b10"), "10");
}

TEST_F(EmbeddedClusterTest, WriteIsAcknowledgedOnlyWhenDurableOnAQuorum) {
  StartCluster();
  const uint64_t leader = WaitForLeader();
  MustPropose(leader, "ok=1");
  // Both followers' disks now fail every fsync: they fail-stop rather than
  // acknowledge an entry they could not make durable.
  const uint64_t f1 = OtherThan(leader), f2 = OtherThan(leader, f1);
  cluster_->fault_env(f1)->set_sync_error(true);
  cluster_->fault_env(f2)->set_sync_error(true);
  auto r = cluster_->member(leader)->Propose("unsafe=1", absl::Now() + absl::Seconds(3));
  EXPECT_FALSE(r.ok()) << "acknowledged a write that no follower made durable";
  ASSERT_TRUE(cluster_->WaitFor(
      [&] {
        return !cluster_->member(f1)->Status().running && !cluster_->member(f2)->Status().running;
      },
      Deadline()));
  EXPECT_FALSE(cluster_->member(f1)->Status().failure.ok());
  EXPECT_EQ(Get(leader, "unsafe"), std::nullopt);
  EXPECT_EQ(Get(leader, "ok"), "1");

  // The followers crash (losing what they never synced) and come back on
  // healthy disks: the cluster recovers, and the acknowledged write is kept.
  for (uint64_t f : {f1, f2}) {
    ASSERT_TRUE(cluster_->Kill(f).ok());
    cluster_->fault_env(f)->set_sync_error(false);
    ASSERT_TRUE(cluster_->Restart(f).ok());
  }
  const uint64_t now_leader = WaitForLeader();
  ASSERT_NE(now_leader, 0u);
  MustPropose(now_leader, "later=1");
  ExpectConverged(cluster_->member(now_leader)->Status().applied);
  for (uint64_t id : cluster_->ids()) EXPECT_EQ(Get(id, "ok"), "1") << "member " << id;
}

TEST_F(EmbeddedClusterTest, TransferAndCleanStopHandOverLeadership) {
  StartCluster();
  const uint64_t leader = WaitForLeader();
  MustPropose(leader, "a=1");
  const uint64_t target = OtherThan(leader);
  // Retried: an election racing the transfer may make one attempt fail.
  ASSERT_TRUE(cluster_->WaitFor(
      [&] {
        const uint64_t now = cluster_->Leader();
        if (now == target) return true;
        if (now != 0) {
          cluster_->member(now)
              ->TransferLeadership(target, absl::Now() + absl::Seconds(1))
              .IgnoreError();
        }
        return cluster_->Leader() == target;
      },
      Deadline()));

  // A clean stop of the leader hands leadership over before stopping.
  const uint64_t term = cluster_->member(target)->Status().term;
  ASSERT_TRUE(cluster_->Stop(target).ok());
  const uint64_t next = WaitForLeader();
  ASSERT_NE(next, 0u);
  EXPECT_NE(next, target);
  EXPECT_GT(cluster_->member(next)->Status().term, term);
  MustPropose(next, "b=1");
  ASSERT_TRUE(cluster_->Restart(target).ok());
  ExpectConverged(cluster_->member(next)->Status().applied);
}

TEST_F(EmbeddedClusterTest, AddedMemberCatchesUpBySnapshotAndVotes) {
  StartCluster();
  const uint64_t leader = WaitForLeader();
  for (int i = 0; i < 10; ++i) MustPropose(leader, absl::StrCat("k", i, "=", i));
  ASSERT_TRUE(cluster_->AddMember(4).ok());
  raft::ConfChangeV2 cc;
  auto* change = cc.add_changes();
  change->set_type(raftpb::CONF_CHANGE_ADD_NODE);
  change->set_node_id(4);
  auto cs = cluster_->member(leader)->ProposeConfChange(cc, Deadline());
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->voters_size(), 4);
  MustPropose(leader, "after-add=1");
  ExpectConverged(cluster_->member(leader)->Status().applied);
  EXPECT_EQ(Get(4, "k9"), "9");
  EXPECT_EQ(Get(4, "after-add"), "1");
  // The new member holds the snapshot taken when it was added.
  EXPECT_GT(cluster_->member(4)->Status().snapshot_index, 1u);

  // With four voters a quorum is three: with one original follower down,
  // every commit needs the new member's acknowledgement.
  ASSERT_TRUE(cluster_->Kill(OtherThan(leader, 4)).ok());
  MustPropose(leader, "three-of-four=1");
  // Member 4 made the entry durable, but may learn that it committed only
  // later: a linearizable read waits for that.
  MustReadIndex(4);
  EXPECT_EQ(Get(4, "three-of-four"), "1");
}

TEST_F(EmbeddedClusterTest, WorksOnRealFiles) {
  StartCluster(/*snapshot_count=*/8, EmbeddedClusterOptions::Storage::kTempDir);
  const uint64_t leader = WaitForLeader();
  for (int i = 0; i < 12; ++i) MustPropose(leader, absl::StrCat("k", i, "=", i));
  const uint64_t victim = OtherThan(leader);
  ASSERT_TRUE(cluster_->Kill(victim).ok());
  ASSERT_TRUE(cluster_->Restart(victim).ok());
  ExpectConverged(cluster_->member(leader)->Status().applied);
  EXPECT_EQ(Get(victim, "k11"), "11");
}

}  // namespace
}  // namespace arbiter::server
