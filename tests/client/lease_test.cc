// The client library's leases (client.h, lease.h) and its elections and
// locks (concurrency.h) against real clusters: a 3-member etcd 3.4 cluster
// and a 3-member Arbiter cluster must pass the same tests.
//
// Waits are bounded: a test that needs time to pass (a lease outliving its
// TTL) waits on the keeper with a deadline, and a test that waits for an
// event polls with a deadline.

#include "client/lease.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/concurrency.h"
#include "gtest/gtest.h"
#include "tests/client/test_cluster.h"

namespace arbiter::client {
namespace {

using ::arbiter::testing::ClusterKind;
using ::arbiter::testing::TestCluster;

class LeaseTest : public ::testing::TestWithParam<ClusterKind> {
 protected:
  void SetUp() override {
    if (!GetParam().unavailable_reason.empty()) GTEST_SKIP() << GetParam().unavailable_reason;
    absl::StatusOr<TestCluster*> cluster = ::arbiter::testing::SharedCluster(GetParam());
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *cluster;
    client_ = MakeClient();
    ASSERT_NE(client_, nullptr);
    prefix_ = absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }

  std::unique_ptr<Client> MakeClient() {
    ClientOptions options;
    options.endpoints = cluster_->ClientEndpoints();
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  int64_t MustGrant(int64_t ttl) {
    absl::StatusOr<etcdserverpb::LeaseGrantResponse> granted = client_->Grant(ttl);
    EXPECT_TRUE(granted.ok()) << granted.status();
    return granted.ok() ? granted->id() : 0;
  }

  void MustPut(const std::string& key, int64_t lease) {
    etcdserverpb::PutRequest put;
    put.set_key(key);
    put.set_value("v");
    put.set_lease(lease);
    absl::StatusOr<etcdserverpb::PutResponse> response = client_->Put(put);
    EXPECT_TRUE(response.ok()) << response.status();
  }

  int64_t KeyCount(const std::string& key) {
    etcdserverpb::RangeRequest range;
    range.set_key(key);
    absl::StatusOr<etcdserverpb::RangeResponse> response = client_->Range(range);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->kvs_size() : -1;
  }

  TestCluster* cluster_ = nullptr;
  std::unique_ptr<Client> client_;
  std::string prefix_;
};

TEST_P(LeaseTest, GrantTimeToLiveListKeepAliveOnceRevoke) {
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> granted = client_->Grant(100);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->ttl(), 100);
  const int64_t id = granted->id();
  ASSERT_GT(id, 0);
  MustPut(prefix_ + "a", id);
  MustPut(prefix_ + "b", id);

  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> ttl = client_->TimeToLive(id, true);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(ttl->id(), id);
  EXPECT_EQ(ttl->grantedttl(), 100);
  EXPECT_GT(ttl->ttl(), 90);
  EXPECT_LE(ttl->ttl(), 100);
  std::vector<std::string> keys(ttl->keys().begin(), ttl->keys().end());
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{prefix_ + "a", prefix_ + "b"}));
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> no_keys = client_->TimeToLive(id, false);
  ASSERT_TRUE(no_keys.ok());
  EXPECT_TRUE(no_keys->keys().empty());

  absl::StatusOr<etcdserverpb::LeaseLeasesResponse> leases = client_->Leases();
  ASSERT_TRUE(leases.ok()) << leases.status();
  bool listed = false;
  for (const etcdserverpb::LeaseStatus& l : leases->leases()) listed = listed || l.id() == id;
  EXPECT_TRUE(listed);

  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> renewed = client_->KeepAliveOnce(id);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->id(), id);
  EXPECT_EQ(renewed->ttl(), 100);

  ASSERT_TRUE(client_->Revoke(id).ok());
  // The lease's keys went with it.
  EXPECT_EQ(KeyCount(prefix_ + "a"), 0);
  EXPECT_EQ(KeyCount(prefix_ + "b"), 0);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> gone = client_->TimeToLive(id, false);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->ttl(), -1);
  EXPECT_EQ(gone->grantedttl(), 0);
  // Renewing it now finds nothing either (the leader's deadline table must
  // not outlive the revoke).
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> ghost = client_->KeepAliveOnce(id);
  EXPECT_EQ(ghost.status().code(), absl::StatusCode::kNotFound) << ghost.status();
}

TEST_P(LeaseTest, ErrorsAreEtcds) {
  const absl::Status revoked = client_->Revoke(0x7fff0001).status();
  EXPECT_EQ(revoked.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(revoked.message(), "etcdserver: requested lease not found");
  const absl::Status renewed = client_->KeepAliveOnce(0x7fff0001).status();
  EXPECT_EQ(renewed.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(renewed.message(), "etcdserver: requested lease not found");
  const absl::Status too_long = client_->Grant(9000000001).status();
  EXPECT_EQ(too_long.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(too_long.message(), "etcdserver: too large lease TTL");

  // A chosen ID, once; the minimum TTL is applied to a shorter one.
  constexpr int64_t chosen = 0x1e5e0001;
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> granted = client_->Grant(1, chosen);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->id(), chosen);
  EXPECT_GE(granted->ttl(), 1);
  const absl::Status again = client_->Grant(10, chosen).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.message(), "etcdserver: lease already exists");
  EXPECT_TRUE(client_->Revoke(chosen).ok());
}

// A short lease kept by the keeper outlives several TTLs; once revoked the
// keeper reports it gone.
TEST_P(LeaseTest, KeeperKeepsALeaseAliveAndReportsItsRevocation) {
  const int64_t id = MustGrant(2);
  MustPut(prefix_ + "k", id);
  std::atomic<int> renewals{0};
  LeaseKeeper keeper(client_.get());
  keeper.Add(id, 2, [&](const LeaseEvent& event) {
    if (event.status.ok()) renewals.fetch_add(1);
  });
  // Three TTLs: without renewals the lease would be gone.
  EXPECT_EQ(keeper.Wait(id, absl::Now() + absl::Seconds(6)), std::nullopt);
  EXPECT_EQ(KeyCount(prefix_ + "k"), 1);
  EXPECT_GE(renewals.load(), 6);
  EXPECT_EQ(keeper.streams_opened(), 1);

  ASSERT_TRUE(client_->Revoke(id).ok());
  std::optional<absl::Status> ended = keeper.Wait(id, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(ended.has_value()) << "the keeper did not notice the revocation";
  EXPECT_EQ(ended->code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ended->message(), "etcdserver: requested lease not found");
}

// Many leases share the keeper's one stream.
TEST_P(LeaseTest, OneStreamKeepsManyLeasesAlive) {
  constexpr int kLeases = 300;
  LeaseKeeper keeper(client_.get());
  std::vector<int64_t> ids;
  for (int i = 0; i < kLeases; ++i) {
    const int64_t id = MustGrant(3);
    ASSERT_NE(id, 0);
    keeper.Add(id, 3);
    ids.push_back(id);
  }
  // Two TTLs after the last grant every lease is still alive.
  EXPECT_EQ(keeper.Wait(ids.back(), absl::Now() + absl::Seconds(6)), std::nullopt);
  for (int64_t id : ids) {
    EXPECT_EQ(keeper.Wait(id, absl::InfinitePast()), std::nullopt) << id;
  }
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> first = client_->TimeToLive(ids[0], false);
  ASSERT_TRUE(first.ok());
  EXPECT_GT(first->ttl(), 0);
  EXPECT_EQ(keeper.streams_opened(), 1);
  EXPECT_GE(keeper.renewals_acknowledged(), 2 * kLeases);
  for (int64_t id : ids) EXPECT_TRUE(client_->Revoke(id).ok());
}

// The member carrying the stream dies: the stream is opened again on
// another member and the lease lives on.
TEST_P(LeaseTest, KeeperMovesToAnotherMemberWhenItsMemberDies) {
  const int64_t id = MustGrant(5);
  // A client whose preferred endpoint is member 0, where the stream opens.
  LeaseKeeper keeper(client_.get());
  keeper.Add(id, 5);
  EXPECT_EQ(keeper.Wait(id, absl::Now() + absl::Seconds(1)), std::nullopt);
  ASSERT_EQ(keeper.streams_opened(), 1);
  cluster_->KillMember(0);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (keeper.streams_opened() < 2 && absl::Now() < deadline) {
    (void)keeper.Wait(id, absl::Now() + absl::Milliseconds(50));
  }
  EXPECT_GE(keeper.streams_opened(), 2);
  // Two TTLs later (an election may have come in between) it is alive.
  EXPECT_EQ(keeper.Wait(id, absl::Now() + absl::Seconds(10)), std::nullopt);
  ASSERT_TRUE(cluster_->RestartMember(0).ok());
  ASSERT_TRUE(cluster_->WaitReady().ok());
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> ttl = client_->TimeToLive(id, false);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(ttl->ttl(), 0);
  EXPECT_TRUE(client_->Revoke(id).ok());
}

TEST_P(LeaseTest, SessionReportsItsLostLease) {
  absl::Notification lost;
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(client_.get(), 5, [&lost] { lost.Notify(); });
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_TRUE((*session)->Alive().ok());
  ASSERT_TRUE(client_->Revoke((*session)->lease()).ok());
  EXPECT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ((*session)->Alive().code(), absl::StatusCode::kNotFound);
}

// Two sessions contend for a lock: the second waits until the first
// unlocks and gets a larger fencing token.
TEST_P(LeaseTest, LockIsExclusiveAndHandsOverWithALargerToken) {
  absl::StatusOr<std::unique_ptr<Session>> a = Session::Create(client_.get(), 10);
  absl::StatusOr<std::unique_ptr<Session>> b = Session::Create(client_.get(), 10);
  ASSERT_TRUE(a.ok() && b.ok());
  Coordinator coordinator(client_.get());
  const std::string name = prefix_ + "lock";
  absl::StatusOr<LockHold> first = coordinator.Lock(name, (*a)->lease());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->key, absl::StrCat(name, "/", absl::Hex((*a)->lease())));
  EXPECT_GT(first->fencing_token, 0);

  absl::StatusOr<LockHold> second = absl::UnknownError("not yet");
  absl::Notification got;
  Canceller cancel;
  std::thread waiter([&] {
    second = coordinator.Lock(name, (*b)->lease(), &cancel);
    got.Notify();
  });
  // The waiter has queued once its key exists; it must not hold the lock.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  const std::string second_key = absl::StrCat(name, "/", absl::Hex((*b)->lease()));
  while (KeyCount(second_key) == 0 && absl::Now() < deadline) {
    got.WaitForNotificationWithTimeout(absl::Milliseconds(20));
  }
  EXPECT_EQ(KeyCount(second_key), 1);
  EXPECT_FALSE(got.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  ASSERT_TRUE(coordinator.Unlock(first->key).ok());
  EXPECT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(5)));
  if (!got.HasBeenNotified()) cancel.Cancel();
  waiter.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->key, second_key);
  EXPECT_GT(second->fencing_token, first->fencing_token);
  EXPECT_TRUE(coordinator.Unlock(second->key).ok());
}

TEST_P(LeaseTest, CancelledLockWithdrawsItsKey) {
  absl::StatusOr<std::unique_ptr<Session>> a = Session::Create(client_.get(), 10);
  absl::StatusOr<std::unique_ptr<Session>> b = Session::Create(client_.get(), 10);
  ASSERT_TRUE(a.ok() && b.ok());
  Coordinator coordinator(client_.get());
  const std::string name = prefix_ + "lock";
  absl::StatusOr<LockHold> first = coordinator.Lock(name, (*a)->lease());
  ASSERT_TRUE(first.ok()) << first.status();
  Canceller cancel;
  absl::StatusOr<LockHold> second = absl::UnknownError("not yet");
  std::thread waiter([&] { second = coordinator.Lock(name, (*b)->lease(), &cancel); });
  const std::string second_key = absl::StrCat(name, "/", absl::Hex((*b)->lease()));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (KeyCount(second_key) == 0 && absl::Now() < deadline) {
    cancel.WaitCancelled(absl::Milliseconds(20));
  }
  cancel.Cancel();
  waiter.join();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(second.status().message(), "context canceled");
  EXPECT_EQ(KeyCount(second_key), 0);
  EXPECT_TRUE(coordinator.Unlock(first->key).ok());
}

TEST_P(LeaseTest, ElectionCampaignProclaimObserveResign) {
  absl::StatusOr<std::unique_ptr<Session>> a = Session::Create(client_.get(), 10);
  absl::StatusOr<std::unique_ptr<Session>> b = Session::Create(client_.get(), 10);
  ASSERT_TRUE(a.ok() && b.ok());
  Coordinator coordinator(client_.get());
  const std::string name = prefix_ + "election";
  const absl::Status none = coordinator.Leader(name).status();
  EXPECT_EQ(none.message(), "election: no leader");

  absl::Mutex mu;
  std::vector<std::string> seen;
  Canceller stop_observing;
  std::thread observer([&] {
    const absl::Status s = coordinator.Observe(
        name,
        [&](const v3electionpb::LeaderResponse& r) {
          absl::MutexLock lock(&mu);
          seen.push_back(r.kv().value());
        },
        &stop_observing);
    EXPECT_TRUE(s.ok()) << s;
  });

  absl::StatusOr<v3electionpb::LeaderKey> leader = coordinator.Campaign(name, (*a)->lease(), "a1");
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->key(), absl::StrCat(name, "/", absl::Hex((*a)->lease())));
  EXPECT_GT(leader->rev(), 0);
  absl::StatusOr<v3electionpb::LeaderResponse> current = coordinator.Leader(name);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->kv().value(), "a1");
  EXPECT_EQ(current->kv().create_revision(), leader->rev());
  ASSERT_TRUE(coordinator.Proclaim(*leader, "a2").ok());

  absl::StatusOr<v3electionpb::LeaderKey> next = absl::UnknownError("not yet");
  std::thread candidate([&] { next = coordinator.Campaign(name, (*b)->lease(), "b1"); });
  const auto saw = [&](const std::string& value) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    for (;;) {
      {
        absl::MutexLock lock(&mu);
        if (std::find(seen.begin(), seen.end(), value) != seen.end()) return true;
        if (absl::Now() >= deadline) return false;
      }
      stop_observing.WaitCancelled(absl::Milliseconds(20));
    }
  };
  EXPECT_TRUE(saw("a2"));
  ASSERT_TRUE(coordinator.Resign(*leader).ok());
  candidate.join();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_GT(next->rev(), leader->rev());
  EXPECT_TRUE(saw("b1"));
  // A proclamation by the old leader is refused.
  const absl::Status stale = coordinator.Proclaim(*leader, "a3");
  EXPECT_EQ(stale.message(), "election: not leader");
  stop_observing.Cancel();
  observer.join();
  absl::MutexLock lock(&mu);
  // Each value once, in order; "a1" only if the observer started in time.
  if (!seen.empty() && seen.front() == "a1") seen.erase(seen.begin());
  EXPECT_EQ(seen, (std::vector<std::string>{"a2", "b1"}));
  EXPECT_TRUE(coordinator.Resign(*next).ok());
}

INSTANTIATE_TEST_SUITE_P(Cluster, LeaseTest, ::testing::ValuesIn(::arbiter::testing::AllKinds()),
                         [](const ::testing::TestParamInfo<ClusterKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace arbiter::client
