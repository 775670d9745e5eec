// Three ArbiterServers in one process, talking over the real gRPC peer
// transport on loopback, each with its own data dir: election, replication,
// a killed leader replaced (with long timeouts: well before its election
// timeout, because the survivors see its connections close), and the killed
// member restarted from its data dir catching up by snapshot, with every
// member ending in the same state.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/arbiter_server.h"
#include "server/test_state_machine.h"
#include "tests/server/cluster_flags.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::ClusterFlags;
using testing::Deadline;
using testing::LocalClusterFlags;
using testing::WaitFor;

class GrpcClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/arbiter-grpc-cluster-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ClusterFlags c = LocalClusterFlags(dir_, 3, heartbeat_ms_, election_ms_);
    for (auto& f : c.flags) {
      f["snapshot-count"] = "20";
      // Catch-up by log is the embedded cluster tests' subject; here a
      // member that missed a snapshot interval needs the snapshot.
      f["experimental-snapshot-catchup-entries"] = "0";
    }
    flags_ = std::move(c.flags);
    client_ports_ = std::move(c.client_ports);
    peer_ports_ = std::move(c.peer_ports);
    servers_.resize(3);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(StartServer(i).ok());
  }

  void TearDown() override {
    for (auto& s : servers_) s.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A server started from flags, with the test state machine.
  static absl::StatusOr<std::unique_ptr<ArbiterServer>> StartFromFlags(
      const std::map<std::string, std::string>& flags) {
    auto config = ConfigFromFlags(flags);
    if (!config.ok()) return config.status();
    ServerOptions o;
    o.config = *config;
    o.logger = raft::DiscardLogger();
    o.make_state_machine = [](const std::string&) -> absl::StatusOr<std::unique_ptr<StateMachine>> {
      return std::make_unique<TestStateMachine>();
    };
    return ArbiterServer::Start(std::move(o));
  }

  absl::Status StartServer(int i) {
    auto s = StartFromFlags(flags_[i]);
    if (!s.ok()) return s.status();
    servers_[i] = std::move(*s);
    return absl::OkStatus();
  }

  // The index of the server that leads with a majority following it; -1 if none.
  int Leader() {
    for (int i = 0; i < 3; ++i) {
      if (servers_[i] == nullptr) continue;
      MemberStatus st = servers_[i]->member()->Status();
      if (st.state != raft::StateType::kLeader) continue;
      int followers = 0;
      for (auto& other : servers_) {
        if (other == nullptr) continue;
        MemberStatus o = other->member()->Status();
        if (o.leader == st.id && o.term == st.term) ++followers;
      }
      if (followers >= 2) return i;
    }
    return -1;
  }

  int WaitForLeader(absl::Duration timeout = testing::kLongTimeout) {
    int leader = -1;
    EXPECT_TRUE(WaitFor([&] { return (leader = Leader()) >= 0; }, timeout));
    return leader;
  }

  void ProposeMany(int leader, int from, int count) {
    for (int i = from; i < from + count; ++i) {
      auto r = servers_[leader]->member()->Propose(absl::StrCat("k", i % 37, "=v", i), Deadline());
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }

  // Every running member applied the same commands and has the same state.
  bool Converged() {
    std::optional<uint64_t> hash, applied;
    for (auto& s : servers_) {
      if (s == nullptr) continue;
      auto h = s->member()->AppliedHash(Deadline());
      if (!h.ok()) return false;
      const uint64_t a = s->member()->Status().applied;
      if (hash.has_value() && (*hash != *h || *applied != a)) return false;
      hash = *h;
      applied = a;
    }
    return true;
  }

  // Set by a derived fixture's constructor to run with other timeouts.
  int heartbeat_ms_ = 10;
  int election_ms_ = 100;
  std::string dir_;
  std::vector<int> client_ports_, peer_ports_;
  std::vector<std::map<std::string, std::string>> flags_;
  std::vector<std::unique_ptr<ArbiterServer>> servers_;
};

TEST_F(GrpcClusterTest, ElectsReplicatesAndConverges) {
  const int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ProposeMany(leader, 0, 100);
  EXPECT_TRUE(WaitFor([&] { return Converged(); }));
  // Every member derived the same cluster ID from the same flags.
  EXPECT_EQ(servers_[0]->identity().cluster_id, servers_[1]->identity().cluster_id);
  EXPECT_NE(servers_[0]->identity().member_id, servers_[1]->identity().member_id);
}

TEST_F(GrpcClusterTest, KilledLeaderIsReplacedAndCatchesUpBySnapshotOnRestart) {
  const int old_leader = WaitForLeader();
  ASSERT_GE(old_leader, 0);
  ProposeMany(old_leader, 0, 30);
  const uint64_t killed_last = servers_[old_leader]->member()->Status().last_index;
  servers_[old_leader]->Kill();
  servers_[old_leader].reset();

  const int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ASSERT_NE(leader, old_leader);
  ProposeMany(leader, 30, 100);
  // The survivors compacted their logs past what the killed member has, so
  // only a snapshot can catch it up.
  ASSERT_TRUE(WaitFor(
      [&] { return servers_[leader]->member()->Status().snapshot_index > killed_last + 1; }));

  ASSERT_TRUE(StartServer(old_leader).ok());
  EXPECT_TRUE(WaitFor([&] { return Converged(); }));
  EXPECT_GT(servers_[old_leader]->member()->Status().snapshot_index, killed_last);
}

TEST_F(GrpcClusterTest, RestartIgnoresInitialClusterFlags) {
  ASSERT_GE(WaitForLeader(), 0);
  const MemberIdentity before = servers_[2]->identity();
  servers_[2]->Stop();
  servers_[2].reset();
  // A different token and member list would give other IDs if they were
  // used; the stored identity wins, as in etcd.
  flags_[2]["initial-cluster-token"] = "another-token";
  flags_[2]["initial-cluster"] = absl::StrCat("m2=http://127.0.0.1:", peer_ports_[2]);
  ASSERT_TRUE(StartServer(2).ok());
  EXPECT_EQ(servers_[2]->identity(), before);
  const int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  ProposeMany(leader, 0, 10);
  EXPECT_TRUE(WaitFor([&] { return Converged(); }));
}

TEST_F(GrpcClusterTest, ExistingClusterStateNeedsStoredState) {
  std::map<std::string, std::string> f = flags_[0];
  f["data-dir"] = absl::StrCat(dir_, "/empty");
  f["initial-cluster-state"] = "existing";
  auto s = StartFromFlags(f);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
}

// A member whose client or peer port is taken fails to start with an
// error naming the port, and the member that has the port keeps it alone.
TEST_F(GrpcClusterTest, PortsInUseAreRefused) {
  const int leader = WaitForLeader();
  ASSERT_GE(leader, 0);
  for (const std::string flag : {"listen-client-urls", "listen-peer-urls"}) {
    std::map<std::string, std::string> f = LocalClusterFlags(dir_ + "/other", 1, 10, 100).flags[0];
    f["data-dir"] = absl::StrCat(dir_, "/other-", flag);
    f[flag] = flags_[0][flag];
    auto s = StartFromFlags(f);
    ASSERT_FALSE(s.ok()) << flag << " " << f[flag] << " was taken but the member started";
    EXPECT_TRUE(absl::IsUnavailable(s.status())) << s.status();
    EXPECT_NE(s.status().message().find(f[flag]), std::string::npos) << s.status();
  }
  ProposeMany(WaitForLeader(), 0, 10);
  EXPECT_TRUE(WaitFor([&] { return Converged(); }));
}

}  // namespace
}  // namespace arbiter::server

namespace arbiter::server {
namespace {

// Timeouts long enough that waiting one out is plainly visible.
class GrpcClusterLongTimeoutTest : public GrpcClusterTest {
 protected:
  GrpcClusterLongTimeoutTest() {
    heartbeat_ms_ = 100;
    election_ms_ = 3000;
  }
};

// The killed leader's connections close, and the survivors see it: they
// campaign within a few heartbeat intervals instead of waiting out the 3-6 s
// randomized election timeout after its last heartbeat. (Kill itself takes
// up to half a second to close the servers.) Without the connection-loss
// report this takes at least 3 s and fails.
TEST_F(GrpcClusterLongTimeoutTest, KilledLeaderIsReplacedWellBeforeTheElectionTimeout) {
  const int old_leader = WaitForLeader(absl::Seconds(30));
  ASSERT_GE(old_leader, 0);
  ProposeMany(old_leader, 0, 10);
  const uint64_t old_term = servers_[old_leader]->member()->Status().term;

  const absl::Time killed = absl::Now();
  servers_[old_leader]->Kill();
  servers_[old_leader].reset();
  int leader = -1;
  const bool replaced = WaitFor([&] { return (leader = Leader()) >= 0; }, absl::Seconds(2));
  const absl::Duration gap = absl::Now() - killed;
  ASSERT_TRUE(replaced) << "no new leader " << gap << " after the kill";
  EXPECT_NE(leader, old_leader);
  EXPECT_EQ(servers_[leader]->member()->Status().term, old_term + 1);
  ProposeMany(leader, 10, 10);
  EXPECT_TRUE(WaitFor([&] { return Converged(); }));
}

}  // namespace
}  // namespace arbiter::server
