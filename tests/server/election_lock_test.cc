// The Lock and Election services of a real 3-member cluster in one process
// (EtcdServers over the gRPC peer transport), called through gRPC stubs on a
// follower: mutual exclusion, fencing tokens that a guarded Txn checks,
// hand-over on unlock and on lease expiry, and the election calls with
// etcd's errors.
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/rpc.grpc.pb.h"
#include "proto/v3election.grpc.pb.h"
#include "proto/v3lock.grpc.pb.h"
#include "server/etcd_server.h"
#include "tests/server/cluster_flags.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::ClusterFlags;
using testing::LocalClusterFlags;
using testing::WaitFor;

class ElectionLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/arbiter-election-lock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const ClusterFlags c = LocalClusterFlags(dir_, 3, /*heartbeat_ms=*/20, /*election_ms=*/200);
    for (int i = 0; i < 3; ++i) {
      auto config = ConfigFromFlags(c.flags[i]);
      ASSERT_TRUE(config.ok()) << config.status();
      EtcdServerOptions o;
      o.config = *config;
      o.logger = raft::DiscardLogger();
      auto s = EtcdServer::Start(o);
      ASSERT_TRUE(s.ok()) << s.status();
      servers_.push_back(std::move(*s));
    }
    int leader = -1;
    ASSERT_TRUE(WaitFor([&] {
      for (int i = 0; i < 3; ++i) {
        if (servers_[i]->server()->member()->Status().state == raft::StateType::kLeader) {
          leader = i;
        }
      }
      return leader >= 0;
    }));
    // Talk to a follower: everything must work from any member.
    const int follower = (leader + 1) % 3;
    auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", c.client_ports[follower]),
                                  grpc::InsecureChannelCredentials());
    kv_ = etcdserverpb::KV::NewStub(ch);
    lease_ = etcdserverpb::Lease::NewStub(ch);
    lock_ = v3lockpb::Lock::NewStub(ch);
    election_ = v3electionpb::Election::NewStub(ch);
  }

  void TearDown() override {
    for (auto& s : servers_) s.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration d = absl::Seconds(10)) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(absl::ToChronoTime(absl::Now() + d));
    return c;
  }

  int64_t Grant(int64_t ttl) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status s = lease_->LeaseGrant(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.id();
  }

  // A write guarded by a fencing token: succeeds only while key still has
  // create revision token.
  bool GuardedWrite(const std::string& key, int64_t token) {
    etcdserverpb::TxnRequest txn;
    etcdserverpb::Compare* c = txn.add_compare();
    c->set_key(key);
    c->set_target(etcdserverpb::Compare::CREATE);
    c->set_result(etcdserverpb::Compare::EQUAL);
    c->set_create_revision(token);
    etcdserverpb::PutRequest* p = txn.add_success()->mutable_request_put();
    p->set_key("resource");
    p->set_value(key);
    etcdserverpb::TxnResponse resp;
    grpc::Status s = kv_->Txn(Ctx().get(), txn, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.succeeded();
  }

  std::string dir_;
  std::vector<std::unique_ptr<EtcdServer>> servers_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<v3lockpb::Lock::Stub> lock_;
  std::unique_ptr<v3electionpb::Election::Stub> election_;
};

TEST_F(ElectionLockTest, LockIsExclusiveAndFencingTokensStopAStaleHolder) {
  const int64_t l1 = Grant(60), l2 = Grant(60);
  v3lockpb::LockRequest r1;
  r1.set_name("mylock");
  r1.set_lease(l1);
  v3lockpb::LockResponse first;
  ASSERT_TRUE(lock_->Lock(Ctx().get(), r1, &first).ok());
  EXPECT_EQ(first.key(), absl::StrCat("mylock/", absl::Hex(l1)));
  const int64_t token1 = first.header().revision();
  EXPECT_TRUE(GuardedWrite(first.key(), token1));

  v3lockpb::LockRequest r2 = r1;
  r2.set_lease(l2);
  auto second = std::async(std::launch::async, [&] {
    v3lockpb::LockResponse resp;
    grpc::Status s = lock_->Lock(Ctx(absl::Seconds(20)).get(), r2, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  });
  // While the first holds it, the second must still be waiting. (A bounded
  // wait for something that must NOT happen.)
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout);

  v3lockpb::UnlockRequest u;
  u.set_key(first.key());
  v3lockpb::UnlockResponse ur;
  ASSERT_TRUE(lock_->Unlock(Ctx().get(), u, &ur).ok());
  v3lockpb::LockResponse got = second.get();
  EXPECT_EQ(got.key(), absl::StrCat("mylock/", absl::Hex(l2)));
  const int64_t token2 = got.header().revision();
  EXPECT_GT(token2, token1);
  // The stale holder's guarded write fails; the new holder's succeeds.
  EXPECT_FALSE(GuardedWrite(first.key(), token1));
  EXPECT_TRUE(GuardedWrite(got.key(), token2));
}

TEST_F(ElectionLockTest, ExpiredHolderLeaseHandsTheLockOver) {
  const int64_t short_lease = Grant(1), long_lease = Grant(60);
  v3lockpb::LockRequest r;
  r.set_name("l");
  r.set_lease(short_lease);
  v3lockpb::LockResponse first;
  ASSERT_TRUE(lock_->Lock(Ctx().get(), r, &first).ok());
  r.set_lease(long_lease);
  v3lockpb::LockResponse second;
  // Nobody keeps the short lease alive: it expires and the waiter gets in.
  ASSERT_TRUE(lock_->Lock(Ctx(absl::Seconds(20)).get(), r, &second).ok());
  EXPECT_EQ(second.key(), absl::StrCat("l/", absl::Hex(long_lease)));
  // A lock on a lease that does not exist fails with etcd's error.
  r.set_lease(12345);
  grpc::Status s = lock_->Lock(Ctx().get(), r, &second);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");
}

TEST_F(ElectionLockTest, CampaignProclaimLeaderResign) {
  v3electionpb::LeaderRequest lr;
  lr.set_name("e");
  v3electionpb::LeaderResponse leader;
  grpc::Status s = election_->Leader(Ctx().get(), lr, &leader);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(s.error_message(), "election: no leader");

  const int64_t la = Grant(60), lb = Grant(60);
  v3electionpb::CampaignRequest ca;
  ca.set_name("e");
  ca.set_lease(la);
  ca.set_value("alice");
  v3electionpb::CampaignResponse alice;
  ASSERT_TRUE(election_->Campaign(Ctx().get(), ca, &alice).ok());
  EXPECT_EQ(alice.leader().rev(), alice.header().revision());
  ASSERT_TRUE(election_->Leader(Ctx().get(), lr, &leader).ok());
  EXPECT_EQ(leader.kv().value(), "alice");

  v3electionpb::ProclaimRequest pr;
  *pr.mutable_leader() = alice.leader();
  pr.set_value("alice-2");
  v3electionpb::ProclaimResponse presp;
  ASSERT_TRUE(election_->Proclaim(Ctx().get(), pr, &presp).ok());
  ASSERT_TRUE(election_->Leader(Ctx().get(), lr, &leader).ok());
  EXPECT_EQ(leader.kv().value(), "alice-2");

  v3electionpb::CampaignRequest cb = ca;
  cb.set_lease(lb);
  cb.set_value("bob");
  auto bob = std::async(std::launch::async, [&] {
    v3electionpb::CampaignResponse resp;
    EXPECT_TRUE(election_->Campaign(Ctx(absl::Seconds(20)).get(), cb, &resp).ok());
    return resp;
  });
  EXPECT_EQ(bob.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout);

  v3electionpb::ResignRequest rr;
  *rr.mutable_leader() = alice.leader();
  v3electionpb::ResignResponse rresp;
  ASSERT_TRUE(election_->Resign(Ctx().get(), rr, &rresp).ok());
  v3electionpb::CampaignResponse b = bob.get();
  EXPECT_GT(b.leader().rev(), alice.leader().rev());
  ASSERT_TRUE(election_->Leader(Ctx().get(), lr, &leader).ok());
  EXPECT_EQ(leader.kv().value(), "bob");
  // Alice's old key no longer leads.
  s = election_->Proclaim(Ctx().get(), pr, &presp);
  EXPECT_EQ(s.error_message(), "election: not leader");
  v3electionpb::ProclaimRequest empty;
  s = election_->Proclaim(Ctx().get(), empty, &presp);
  EXPECT_EQ(s.error_message(), "\"leader\" field must be provided");
}

}  // namespace
}  // namespace arbiter::server
