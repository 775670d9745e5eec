// Lease calls on the leader against writes that another member applied and
// acknowledged first. A leader tells its followers that an entry is
// committed before it applies the entry itself (it sends, then persists and
// applies), so for a moment a follower can hold a lease that the leader's
// store does not have yet. A keep-alive or TimeToLive answered by the leader
// in that moment must not deny the lease (etcd's clients would drop a lease
// they were just granted). The leader's disk is stalled (FaultEnv) while it
// applies a write committed together with the grant, which holds the
// moment open for as long as the test needs.
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kvstore/fault_env.h"
#include "proto/rpc.grpc.pb.h"
#include "server/etcd_server.h"
#include "tests/server/cluster_flags.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::ClusterFlags;
using testing::Deadline;
using testing::kLongTimeout;
using testing::LocalClusterFlags;
using testing::WaitFor;

constexpr int64_t kLease = 0x5eed;

class LeaseBarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/arbiter-lease-barrier-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // An election timeout long enough that the followers do not replace
    // the leader while its disk is stalled below.
    const ClusterFlags c = LocalClusterFlags(dir_, 3, /*heartbeat_ms=*/50, /*election_ms=*/2000);
    for (int i = 0; i < 3; ++i) {
      auto config = ConfigFromFlags(c.flags[i]);
      ASSERT_TRUE(config.ok()) << config.status();
      envs_.push_back(std::make_unique<kv::FaultEnv>(leveldb::Env::Default()));
      EtcdServerOptions o;
      o.config = *config;
      o.logger = raft::DiscardLogger();
      o.state_env = envs_.back().get();
      auto s = EtcdServer::Start(o);
      ASSERT_TRUE(s.ok()) << s.status();
      servers_.push_back(std::move(*s));
      auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", c.client_ports[i]),
                                    grpc::InsecureChannelCredentials());
      kv_.push_back(etcdserverpb::KV::NewStub(ch));
      lease_.push_back(etcdserverpb::Lease::NewStub(ch));
    }
    // A leader, and every member's attributes applied everywhere: nothing
    // else writes to the stores during the test.
    ASSERT_TRUE(WaitFor(
        [&] {
          leader_ = -1;
          for (int i = 0; i < 3; ++i) {
            if (servers_[i]->kv()->Members().size() != 3) return false;
            if (servers_[i]->server()->member()->Status().state == raft::StateType::kLeader) {
              leader_ = i;
            }
          }
          return leader_ >= 0;
        },
        absl::Seconds(30)));
  }

  void TearDown() override {
    for (auto& e : envs_) e->set_hold_writes(false);
    for (auto& s : servers_) s.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration d = kLongTimeout) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(absl::ToChronoTime(absl::Now() + d));
    return c;
  }

  grpc::Status TimeToLive(int member, absl::Duration d,
                          etcdserverpb::LeaseTimeToLiveResponse* resp) {
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(kLease);
    return lease_[member]->LeaseTimeToLive(Ctx(d).get(), req, resp);
  }

  std::string dir_;
  std::vector<std::unique_ptr<kv::FaultEnv>> envs_;
  std::vector<std::unique_ptr<EtcdServer>> servers_;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv_;
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> lease_;
  int leader_ = -1;
};

TEST_F(LeaseBarrierTest, LeaderDoesNotDenyALeaseAFollowerAppliedFirst) {
  const int l = leader_;
  const int f = (leader_ + 1) % 3;
  Member* const lm = servers_[l]->server()->member();

  // Pause the leader's loop so that a put and then the grant queue behind
  // it: they are appended, committed and applied as one batch, the put
  // first.
  absl::Notification paused, resume;
  std::thread pauser([&] {
    (void)lm->QueryStateMachine(
        [&](const StateMachine&) {
          paused.Notify();
          resume.WaitForNotification();
        },
        Deadline());
  });
  ASSERT_TRUE(paused.WaitForNotificationWithTimeout(kLongTimeout));
  auto put = std::async(std::launch::async, [&] {
    etcdserverpb::PutRequest req;
    req.set_key("before-the-grant");
    req.set_value("v");
    etcdserverpb::PutResponse resp;
    return kv_[l]->Put(Ctx().get(), req, &resp);
  });
  EXPECT_TRUE(WaitFor([&] { return lm->queued_requests() == 1; }));
  auto grant = std::async(std::launch::async, [&] {
    etcdserverpb::LeaseGrantRequest req;
    req.set_id(kLease);
    req.set_ttl(60);
    etcdserverpb::LeaseGrantResponse resp;
    return lease_[l]->LeaseGrant(Ctx().get(), req, &resp);
  });
  EXPECT_TRUE(WaitFor([&] { return lm->queued_requests() == 2; }));

  // The leader's disk stalls, so its apply of the put waits there, after it
  // has told the followers that both entries are committed.
  envs_[l]->set_hold_writes(true);
  resume.Notify();
  pauser.join();
  ASSERT_TRUE(WaitFor([&] {
    return envs_[l]->held_writes() > 0 && servers_[f]->kv()->GetLease(kLease, false).has_value();
  })) << "the follower never applied the grant while the leader was stalled";
  ASSERT_FALSE(servers_[l]->kv()->GetLease(kLease, false).has_value());

  // The follower already has the lease; the leader must not say it has
  // none. Waiting (here until the call's deadline) is the right answer.
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  grpc::Status s = TimeToLive(l, absl::Milliseconds(300), &ttl);
  EXPECT_FALSE(s.ok() && ttl.ttl() == -1)
      << "TimeToLive on the leader denied a lease that a follower had applied";
  {
    auto ctx = Ctx(absl::Milliseconds(300));
    auto stream = lease_[l]->LeaseKeepAlive(ctx.get());
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(kLease);
    etcdserverpb::LeaseKeepAliveResponse resp;
    const bool answered = stream->Write(req) && stream->Read(&resp);
    EXPECT_FALSE(answered && resp.ttl() == 0)
        << "a keep-alive on the leader denied a lease that a follower had applied";
    ctx->TryCancel();
    (void)stream->Finish();
  }

  envs_[l]->set_hold_writes(false);
  EXPECT_TRUE(put.get().ok());
  grpc::Status granted = grant.get();
  ASSERT_TRUE(granted.ok()) << granted.error_message();
  s = TimeToLive(l, kLongTimeout, &ttl);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(ttl.ttl(), 0);
  EXPECT_EQ(ttl.grantedttl(), 60);
}

}  // namespace
}  // namespace arbiter::server
