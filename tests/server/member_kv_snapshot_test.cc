// A member over the durable key-value state machine: its raft snapshots hold
// no copy of the state (the state machine keeps it, synced before the log
// behind a snapshot is discarded); a power loss right after snapshots loses
// nothing acknowledged; and a state machine that loses what it reported
// synced is caught at startup rather than serving a state with writes
// missing.
#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "kvstore/fault_env.h"
#include "kvstore/kv_state_machine.h"
#include "kvstore/raft_log_store.h"
#include "leveldb/helpers/memenv.h"
#include "proto/internal.pb.h"
#include "server/kv_adapter.h"
#include "server/local_transport.h"
#include "server/member.h"
#include "server/member_internal.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::Deadline;
using testing::WaitFor;

constexpr char kRaftDir[] = "/member-kv/raft";
constexpr char kStateDir[] = "/member-kv/state";

// Passes every call to the state machine it wraps; the test doubles below
// change one thing each.
class ForwardingStateMachine : public StateMachine {
 public:
  explicit ForwardingStateMachine(std::unique_ptr<StateMachine> sm) : sm_(std::move(sm)) {}
  absl::Status Apply(uint64_t index, absl::string_view command, std::string* result) override {
    return sm_->Apply(index, command, result);
  }
  uint64_t AppliedIndex() const override { return sm_->AppliedIndex(); }
  absl::StatusOr<std::string> Snapshot() const override { return sm_->Snapshot(); }
  absl::Status Restore(uint64_t index, std::string data) override {
    return sm_->Restore(index, std::move(data));
  }
  uint64_t Hash() const override { return sm_->Hash(); }
  std::unique_ptr<FrozenState> Freeze() const override { return sm_->Freeze(); }
  bool Durable() const override { return sm_->Durable(); }
  absl::Status Sync() override { return sm_->Sync(); }

 protected:
  std::unique_ptr<StateMachine> sm_;
};

// Reports success from Sync() without syncing: the fault the startup check
// has to catch.
class SyncSkipper final : public ForwardingStateMachine {
 public:
  using ForwardingStateMachine::ForwardingStateMachine;
  absl::Status Sync() override { return absl::OkStatus(); }
};

std::string PutCommand(int i) {
  internalpb::Request r;
  r.mutable_put()->set_key(absl::StrCat("k", i));
  r.mutable_put()->set_value(std::string(1000, static_cast<char>('a' + i % 26)));
  return r.SerializeAsString();
}

class MemberKvSnapshotTest : public ::testing::Test {
 protected:
  MemberKvSnapshotTest()
      : mem_env_(leveldb::NewMemEnv(leveldb::Env::Default())),
        env_(std::make_unique<kv::FaultEnv>(mem_env_.get())),
        transport_(network_.Endpoint(1)) {}

  ~MemberKvSnapshotTest() override { Crash(); }

  absl::Status StartMember(bool skip_syncs = false) {
    kv::KvStateMachine::Options ko;
    ko.env = env_.get();
    auto kv = kv::KvStateMachine::Open(kStateDir, ko);
    if (!kv.ok()) return kv.status();
    std::unique_ptr<StateMachine> sm = std::make_unique<KvAdapter>(std::move(*kv));
    if (skip_syncs) sm = std::make_unique<SyncSkipper>(std::move(sm));
    MemberOptions o;
    o.id = 1;
    o.initial_members = {1};
    o.data_dir = kRaftDir;
    o.env = env_.get();
    o.tick_interval = absl::Milliseconds(10);
    o.snapshot_count = 5;
    o.seed = 7;
    o.on_fatal = [this](const absl::Status&) { fatal_calls_.fetch_add(1); };
    auto m = Member::Start(o, std::move(sm), transport_.get());
    if (!m.ok()) return m.status();
    member_ = std::move(*m);
    network_.Attach(1, member_.get());
    return absl::OkStatus();
  }

  void WaitUntilLeader() {
    ASSERT_TRUE(WaitFor([&] {
      MemberStatus s = member_->Status();
      return s.state == raft::StateType::kLeader && s.applied == s.commit;
    })) << "no leader";
  }

  void PutKeys(int n) {
    for (int i = 0; i < n; ++i) {
      auto r = member_->Propose(PutCommand(i), Deadline());
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }

  uint64_t StateHash() {
    uint64_t h = 0;
    EXPECT_TRUE(
        member_->QueryStateMachine([&](const StateMachine& sm) { h = sm.Hash(); }, Deadline())
            .ok());
    return h;
  }

  void Stop() {
    if (member_ == nullptr) return;
    member_->Stop();
    network_.Detach(1);
    member_.reset();
  }

  // No clean shutdown, and what was not synced is lost (power loss).
  void Crash() {
    if (member_ == nullptr) return;
    member_->Kill();
    network_.Detach(1);
    member_.reset();
    ASSERT_TRUE(env_->DropUnsyncedData().ok());
  }

  std::unique_ptr<leveldb::Env> mem_env_;
  std::unique_ptr<kv::FaultEnv> env_;
  LocalNetwork network_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Member> member_;
  std::atomic<int> fatal_calls_{0};
};

TEST_F(MemberKvSnapshotTest, SnapshotsRecordThatTheStateMachineHoldsTheState) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  PutKeys(23);
  const MemberStatus st = member_->Status();
  EXPECT_GT(st.snapshot_index, 15u);
  Stop();

  kv::RaftLogStore::Options so;
  so.env = env_.get();
  auto store = kv::RaftLogStore::Open(kRaftDir, so);
  ASSERT_TRUE(store.ok()) << store.status();
  auto snap = (*store)->Snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_GE(snap->metadata().index(), st.snapshot_index);
  // 23 values of 1,000 bytes: a copy of the state would be over 20 KB.
  EXPECT_LT(snap->data().size(), 100u);
  uint64_t held = 0;
  ASSERT_TRUE(ParseHeldStateMarker(snap->data(), &held));
  EXPECT_GT(held, 0u);
  EXPECT_LE(held, snap->metadata().index());
}

TEST_F(MemberKvSnapshotTest, PowerLossAfterSnapshotsLosesNothingAcknowledged) {
  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  PutKeys(23);
  const uint64_t hash = StateHash();
  const MemberStatus before = member_->Status();
  ASSERT_GT(before.snapshot_index, 15u);
  Crash();

  ASSERT_TRUE(StartMember().ok());
  WaitUntilLeader();
  ASSERT_TRUE(member_->ReadIndex(Deadline()).ok());
  EXPECT_GE(member_->Status().applied, before.applied);
  EXPECT_EQ(StateHash(), hash);
  EXPECT_EQ(fatal_calls_.load(), 0);
}

// The same run with syncs that do nothing: the state database loses its
// writes with the power, the log behind the snapshots is gone, and the
// member refuses to start instead of coming up without them.
TEST_F(MemberKvSnapshotTest, AStateMachineThatLostWhatItSyncedIsCaughtAtStartup) {
  ASSERT_TRUE(StartMember(/*skip_syncs=*/true).ok());
  WaitUntilLeader();
  PutKeys(23);
  ASSERT_GT(member_->Status().snapshot_index, 15u);
  Crash();

  absl::Status s = StartMember();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("says the state machine holds the state"), std::string::npos) << s;
}

// Freezes as the key-value store does, but its serializing waits for the
// test: a snapshot for a follower that is still being built.
class HeldFreeze final : public ForwardingStateMachine {
 public:
  HeldFreeze(std::unique_ptr<StateMachine> sm, absl::Notification* release,
             std::atomic<int>* building)
      : ForwardingStateMachine(std::move(sm)), release_(release), building_(building) {}
  std::unique_ptr<FrozenState> Freeze() const override {
    return std::make_unique<Held>(sm_->Freeze(), release_, building_);
  }

 private:
  class Held final : public FrozenState {
   public:
    Held(std::unique_ptr<FrozenState> f, absl::Notification* release, std::atomic<int>* building)
        : f_(std::move(f)), release_(release), building_(building) {}
    absl::StatusOr<std::string> Serialize(const std::atomic<bool>& cancel) const override {
      building_->fetch_add(1);
      release_->WaitForNotification();
      return f_->Serialize(cancel);
    }

   private:
    std::unique_ptr<FrozenState> f_;
    absl::Notification* release_;
    std::atomic<int>* building_;
  };

  absl::Notification* release_;
  std::atomic<int>* building_;
};

class ThreeMemberKvTest : public ::testing::Test {
 protected:
  ThreeMemberKvTest() : env_(leveldb::NewMemEnv(leveldb::Env::Default())) {}
  ~ThreeMemberKvTest() override {
    if (!release_.HasBeenNotified()) release_.Notify();
    for (uint64_t id = 1; id <= 3; ++id) {
      if (members_[id] == nullptr) continue;
      members_[id]->Kill();
      network_.Detach(id);
      members_[id].reset();
    }
  }

  void StartMember(uint64_t id) {
    kv::KvStateMachine::Options ko;
    ko.env = env_.get();
    auto kv = kv::KvStateMachine::Open(absl::StrCat("/kv3/state", id), ko);
    ASSERT_TRUE(kv.ok()) << kv.status();
    auto sm = std::make_unique<HeldFreeze>(std::make_unique<KvAdapter>(std::move(*kv)), &release_,
                                           &building_);
    MemberOptions o;
    o.id = id;
    o.initial_members = {1, 2, 3};
    o.data_dir = absl::StrCat("/kv3/raft", id);
    o.env = env_.get();
    o.tick_interval = absl::Milliseconds(10);
    o.snapshot_count = 5;
    o.seed = 11;
    if (transports_[id] == nullptr) transports_[id] = network_.Endpoint(id);
    auto m = Member::Start(o, std::move(sm), transports_[id].get());
    ASSERT_TRUE(m.ok()) << m.status();
    members_[id] = std::move(*m);
    network_.Attach(id, members_[id].get());
  }

  uint64_t Leader() {
    uint64_t lead = 0;
    EXPECT_TRUE(WaitFor([&] {
      for (uint64_t id = 1; id <= 3; ++id) {
        MemberStatus s = members_[id]->Status();
        if (s.state == raft::StateType::kLeader) lead = id;
      }
      return lead != 0;
    })) << "no leader";
    return lead;
  }

  uint64_t StateHash(uint64_t id) {
    uint64_t h = 0;
    EXPECT_TRUE(members_[id]
                    ->QueryStateMachine([&](const StateMachine& sm) { h = sm.Hash(); }, Deadline())
                    .ok());
    return h;
  }

  std::unique_ptr<leveldb::Env> env_;
  LocalNetwork network_;
  std::map<uint64_t, std::unique_ptr<Transport>> transports_;
  std::map<uint64_t, std::unique_ptr<Member>> members_;
  absl::Notification release_;
  std::atomic<int> building_{0};
};

// A follower cut off while the others compact their logs needs a snapshot.
// The leader serializes it on the builder thread: while that is held, the
// leader's loop goes on committing; once released, the follower catches up.
TEST_F(ThreeMemberKvTest, SnapshotForAFollowerIsBuiltOffTheLoop) {
  for (uint64_t id = 1; id <= 3; ++id) StartMember(id);
  const uint64_t lead = Leader();
  const uint64_t lagging = lead == 3 ? 2 : 3;
  network_.Isolate(lagging);
  for (int i = 0; i < 23; ++i) {
    auto r = members_[lead]->Propose(PutCommand(i), Deadline());
    ASSERT_TRUE(r.ok()) << r.status();
  }
  ASSERT_GT(members_[lead]->Status().snapshot_index, members_[lagging]->Status().applied + 1);
  network_.Heal();
  ASSERT_TRUE(WaitFor([&] { return building_.load() > 0; })) << "no snapshot was built";

  // The build is held: the leader still commits.
  auto r = members_[lead]->Propose(PutCommand(23), Deadline());
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_LT(members_[lagging]->Status().applied, members_[lead]->Status().snapshot_index);

  release_.Notify();
  const uint64_t want = members_[lead]->Status().applied;
  ASSERT_TRUE(WaitFor([&] { return members_[lagging]->Status().applied >= want; }))
      << "the follower did not catch up";
  ASSERT_TRUE(members_[lagging]->ReadIndex(Deadline()).ok());
  EXPECT_EQ(StateHash(lagging), StateHash(lead));

  // The follower installed the state and kept only a marker in its log.
  members_[lagging]->Stop();
  network_.Detach(lagging);
  members_[lagging].reset();
  {
    kv::RaftLogStore::Options so;
    so.env = env_.get();
    auto store = kv::RaftLogStore::Open(absl::StrCat("/kv3/raft", lagging), so);
    ASSERT_TRUE(store.ok()) << store.status();
    auto snap = (*store)->Snapshot();
    ASSERT_TRUE(snap.ok()) << snap.status();
    uint64_t held = 0;
    EXPECT_TRUE(ParseHeldStateMarker(snap->data(), &held)) << snap->data().size() << " bytes";
  }
  StartMember(lagging);
  ASSERT_TRUE(WaitFor([&] {
    MemberStatus st = members_[lagging]->Status();
    return st.leader != 0 && st.applied >= want;
  })) << "the restarted follower did not rejoin";
  ASSERT_TRUE(members_[lagging]->ReadIndex(Deadline()).ok());
  EXPECT_EQ(StateHash(lagging), StateHash(lead));
}

}  // namespace
}  // namespace arbiter::server
