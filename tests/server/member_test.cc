// A single durable member over a FaultEnv: proposals apply and survive
// restarts and crashes; a failed sync stops the member without
// acknowledging anything.
#include "server/member.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kvstore/fault_env.h"
#include "leveldb/helpers/memenv.h"
#include "raft/errors.h"
#include "server/errors.h"
#include "server/local_transport.h"
#include "server/test_state_machine.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::Deadline;
using testing::WaitFor;

class MemberTest : public ::testing::Test {
 protected:
  MemberTest()
      : mem_env_(leveldb::NewMemEnv(leveldb::Env::Default())),
        env_(std::make_unique<kv::FaultEnv>(mem_env_.get())),
        transport_(network_.Endpoint(1)) {}

  ~MemberTest() override { Crash(); }

  MemberOptions Options() {
    MemberOptions o;
    o.id = 1;
    o.initial_members = {1};
    o.data_dir = "/member-test/1";
    o.env = env_.get();
    o.tick_interval = absl::Milliseconds(10);
    o.snapshot_count = snapshot_count_;
    o.seed = 7;
    o.on_fatal = [this](const absl::Status&) { fatal_calls_.fetch_add(1); };
    return o;
  }

  absl::Status StartMember() {
    auto m = Member::Start(Options(), std::make_unique<TestStateMachine>(), transport_.get());
    if (!m.ok()) return m.status();
    member_ = std::move(*m);
    network_.Attach(1, member_.get());
    return absl::OkStatus();
  }

  // Waits until the single member leads and has applied its own log.
  void WaitUntilLeader() {
    ASSERT_TRUE(WaitFor([&] {
      MemberStatus s = member_->Status();
      return s.state == raft::StateType::kLeader && s.applied == s.commit;
    })) << "no leader";
  }

  void Stop() {
    if (member_ == nullptr) return;
    member_->Stop();
    network_.Detach(1);
    member_.reset();
  }

  // Crash: no clean shutdown, and unsynced data is lost.
  void Crash() {
    if (member_ == nullptr) return;
    member_->Kill();
    network_.Detach(1);
    member_.reset();
    ASSERT_TRUE(env_->DropUnsyncedData().ok());
  }

  std::optional<std::string> Get(const std::string& key) {
    std::optional<std::string> v;
    absl::Status s = member_->QueryStateMachine(
        [&](const StateMachine& sm) { v = static_cast<const TestStateMachine&>(sm).Get(key); },
        Deadline());
    EXPECT_TRUE(s.ok()) << s;
    return v;
  }

  uint64_t snapshot_count_ = 10000;
  std::unique_ptr<leveldb::Env> mem_env_;
  std::unique_ptr<kv::FaultEnv> env_;
  LocalNetwork network_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Member> member_;
  std::atomic<int> fatal_calls_{0};
};

// A request wakes the loop when it arrives; it does not wait for the next
// tick. With a one-second tick and half a second to answer, a member that
// only looks at its inbox on ticks fails most of ten proposals.
TEST_F(MemberTest, ARequestWakesTheLoopWithoutWaitingForATick) {
  MemberOptions o = Options();
  o.tick_interval = absl::Seconds(1);
  o.election_tick = 2;
  auto m = Member::Start(o, std::make_unique<TestStateMachine>(), transport_.get());
  ASSERT_TRUE(m.ok()) << m.status();
  member_ = std::move(*m);
  network_.Attach(1, member_.get());
  WaitUntilLeader();
  for (int i = 0; i < 10; ++i) {
    auto r = member_->Propose(absl::StrCat("k=", i), absl::Now() + absl::Milliseconds(500));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
  }
}

TEST_F(MemberTest, ProposeReturnsTheStateMachineResult) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  auto r1 = member_->Propose("a=1", Deadline());
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(*r1, "");
  auto r2 = member_->Propose("a=2", Deadline());
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(*r2, "1");  // the previous value
  auto bad = member_->Propose("no-equals-sign", Deadline());
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->rfind("error:", 0), 0u) << *bad;
  ASSERT_TRUE(member_->ReadIndex(Deadline()).ok());
  EXPECT_EQ(Get("a"), "2");
  MemberStatus s = member_->Status();
  EXPECT_TRUE(s.running);
  EXPECT_EQ(s.leader, 1u);
  EXPECT_GE(s.applied, 4u);  // bootstrap snapshot, empty entry, three commands
}

TEST_F(MemberTest, ConcurrentProposalsAllComplete) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  constexpr int kThreads = 4, kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (member_->Propose(absl::StrCat("k", t, "-", i, "=v"), Deadline()).ok()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(Get("k3-24"), "v");
}

TEST_F(MemberTest, CleanRestartKeepsAppliedData) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(member_->Propose(absl::StrCat("k", i, "=", i), Deadline()).ok());
  }
  Stop();
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  ASSERT_TRUE(member_->ReadIndex(Deadline()).ok());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Get(absl::StrCat("k", i)), absl::StrCat(i));
}

TEST_F(MemberTest, AcknowledgedWritesSurviveACrash) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(member_->Propose(absl::StrCat("k", i, "=", i), Deadline()).ok());
  }
  Crash();  // drops everything not synced
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  ASSERT_TRUE(member_->ReadIndex(Deadline()).ok());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Get(absl::StrCat("k", i)), absl::StrCat(i));
}

TEST_F(MemberTest, SnapshotsCompactTheLogAndRestartRestoresFromThem) {
  snapshot_count_ = 5;
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  for (int i = 0; i < 23; ++i) {
    ASSERT_TRUE(member_->Propose(absl::StrCat("k", i, "=", i), Deadline()).ok());
  }
  const MemberStatus before = member_->Status();
  EXPECT_GE(before.snapshot_index, before.applied - 5);
  EXPECT_GT(before.snapshot_index, 5u);
  Crash();
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  ASSERT_TRUE(member_->ReadIndex(Deadline()).ok());
  EXPECT_GE(member_->Status().applied, before.applied);
  for (int i = 0; i < 23; ++i) EXPECT_EQ(Get(absl::StrCat("k", i)), absl::StrCat(i));
}

TEST_F(MemberTest, FailedSyncStopsTheMemberAndFailsTheWaiter) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  ASSERT_TRUE(member_->Propose("before=1", Deadline()).ok());
  env_->set_sync_error(true);
  auto r = member_->Propose("lost=1", Deadline());
  ASSERT_FALSE(r.ok()) << "acknowledged a write whose sync failed: " << *r;
  EXPECT_TRUE(IsStopped(r.status())) << r.status();
  ASSERT_TRUE(WaitFor([&] { return !member_->Status().running; }));
  EXPECT_FALSE(member_->Status().failure.ok());
  EXPECT_EQ(fatal_calls_.load(), 1);
  // A stopped member takes no more requests.
  EXPECT_TRUE(IsStopped(member_->Propose("after=1", Deadline()).status()));
  EXPECT_TRUE(IsStopped(member_->ReadIndex(Deadline())));

  // Power loss, then a restart on a healthy disk: the unacknowledged write
  // is gone, the acknowledged one is there.
  env_->set_sync_error(false);
  Crash();
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  ASSERT_TRUE(member_->ReadIndex(Deadline()).ok());
  EXPECT_EQ(Get("before"), "1");
  EXPECT_EQ(Get("lost"), std::nullopt);
}

TEST_F(MemberTest, WithoutALeaderRequestsFailFast) {
  // Two voters, and the second never starts: no election can be won.
  auto o = Options();
  o.initial_members = {1, 2};
  auto m = Member::Start(o, std::make_unique<TestStateMachine>(), transport_.get());
  ASSERT_TRUE(m.ok()) << m.status();
  member_ = std::move(*m);
  network_.Attach(1, member_.get());
  EXPECT_TRUE(IsNoLeader(member_->Propose("a=1", Deadline()).status()));
  EXPECT_TRUE(IsNoLeader(member_->ReadIndex(Deadline())));
}

TEST_F(MemberTest, DeadlineExpiresWhileWaiting) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  // A deadline already in the past: the caller times out, and the loop
  // does not start the request.
  auto r = member_->Propose("a=1", absl::Now() - absl::Seconds(1));
  EXPECT_TRUE(IsTimeout(r.status())) << r.status();
  // The member is still healthy, and the expired command never ran.
  EXPECT_TRUE(member_->Propose("b=1", Deadline()).ok());
  EXPECT_EQ(Get("a"), std::nullopt);
}

TEST_F(MemberTest, RejectsBadOptions) {
  auto o = Options();
  o.id = 0;
  EXPECT_FALSE(Member::Start(o, std::make_unique<TestStateMachine>(), transport_.get()).ok());
  o = Options();
  o.initial_members.clear();
  EXPECT_FALSE(Member::Start(o, std::make_unique<TestStateMachine>(), transport_.get()).ok());
  o = Options();
  o.snapshot_count = 0;
  EXPECT_FALSE(Member::Start(o, std::make_unique<TestStateMachine>(), transport_.get()).ok());
}

TEST(TestStateMachineTest, SnapshotRoundTripsAndHashesContent) {
  TestStateMachine a;
  std::string result;
  ASSERT_TRUE(a.Apply(3, "x=1", &result).ok());
  ASSERT_TRUE(a.Apply(4, std::string("bin\0key=v\0al", 12), &result).ok());
  auto snap = a.Snapshot();
  ASSERT_TRUE(snap.ok());
  TestStateMachine b;
  ASSERT_TRUE(b.Restore(4, *snap).ok());
  EXPECT_EQ(b.AppliedIndex(), 4u);
  EXPECT_EQ(a.Hash(), b.Hash());
  EXPECT_EQ(b.Get("x"), "1");
  ASSERT_TRUE(b.Apply(5, "x=2", &result).ok());
  EXPECT_NE(a.Hash(), b.Hash());
  EXPECT_FALSE(b.Restore(9, snap->substr(0, snap->size() - 1)).ok());
}

}  // namespace
}  // namespace arbiter::server
