// LocalNetwork: per-destination FIFO delivery, partitions, and the
// unreachable / snapshot-status reports Raft relies on.
#include "server/local_transport.h"

#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/server/wait.h"

namespace arbiter::server {
namespace {

using testing::WaitFor;

class RecordingHandler : public TransportHandler {
 public:
  void OnMessages(std::vector<raft::Message> msgs) override {
    absl::MutexLock l(&mu_);
    for (auto& m : msgs) received_.push_back(std::move(m));
  }
  void OnUnreachable(uint64_t peer) override {
    absl::MutexLock l(&mu_);
    unreachable_.push_back(peer);
  }
  void OnSnapshotStatus(uint64_t peer, raft::SnapshotStatus status) override {
    absl::MutexLock l(&mu_);
    snapshot_status_.emplace_back(peer, status);
  }

  std::vector<raft::Message> received() const {
    absl::MutexLock l(&mu_);
    return received_;
  }
  std::vector<uint64_t> unreachable() const {
    absl::MutexLock l(&mu_);
    return unreachable_;
  }
  std::vector<std::pair<uint64_t, raft::SnapshotStatus>> snapshot_status() const {
    absl::MutexLock l(&mu_);
    return snapshot_status_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<raft::Message> received_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> unreachable_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, raft::SnapshotStatus>> snapshot_status_ ABSL_GUARDED_BY(mu_);
};

raft::Message Msg(uint64_t from, uint64_t to, uint64_t index,
                  raftpb::MessageType type = raftpb::MSG_APP) {
  raft::Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_index(index);
  return m;
}

TEST(LocalNetworkTest, DeliversInOrderPerDestination) {
  LocalNetwork net;
  RecordingHandler h1, h2;
  net.Attach(1, &h1);
  net.Attach(2, &h2);
  auto t1 = net.Endpoint(1);
  for (uint64_t i = 1; i <= 500; ++i) t1->Send({Msg(1, 2, i)});
  ASSERT_TRUE(WaitFor([&] { return h2.received().size() == 500; }));
  auto got = h2.received();
  for (uint64_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].index(), i + 1);
  EXPECT_TRUE(h1.unreachable().empty());
  net.Detach(1);
  net.Detach(2);
}

TEST(LocalNetworkTest, PartitionDropsAndReportsUnreachable) {
  LocalNetwork net;
  RecordingHandler h1, h2, h3;
  net.Attach(1, &h1);
  net.Attach(2, &h2);
  net.Attach(3, &h3);
  auto t1 = net.Endpoint(1);
  net.Partition({{1}, {2, 3}});
  t1->Send({Msg(1, 2, 1), Msg(1, 2, 2, raftpb::MSG_SNAP)});
  EXPECT_EQ(h1.unreachable(), (std::vector<uint64_t>{2, 2}));
  ASSERT_EQ(h1.snapshot_status().size(), 1u);
  EXPECT_EQ(h1.snapshot_status()[0].second, raft::SnapshotStatus::kFailure);
  // 2 and 3 still talk.
  auto t2 = net.Endpoint(2);
  t2->Send({Msg(2, 3, 7)});
  ASSERT_TRUE(WaitFor([&] { return h3.received().size() == 1; }));

  net.Heal();
  t1->Send({Msg(1, 2, 3, raftpb::MSG_SNAP)});
  ASSERT_TRUE(WaitFor([&] { return h1.snapshot_status().size() == 2; }));
  EXPECT_EQ(h1.snapshot_status()[1].second, raft::SnapshotStatus::kFinish);
  ASSERT_EQ(h2.received().size(), 1u);
  EXPECT_EQ(h2.received()[0].index(), 3u);
  EXPECT_TRUE(h3.unreachable().empty());
  net.Detach(1);
  net.Detach(2);
  net.Detach(3);
}

TEST(LocalNetworkTest, DownPeerAndFullQueueDrop) {
  LocalNetwork::Options o;
  o.max_queue = 2;
  LocalNetwork net(o);
  RecordingHandler h1;
  net.Attach(1, &h1);
  auto t1 = net.Endpoint(1);
  t1->Send({Msg(1, 9, 1)});  // 9 never attached
  EXPECT_EQ(h1.unreachable(), (std::vector<uint64_t>{9}));
  net.Isolate(1);
  t1->Send({Msg(1, 9, 2)});
  EXPECT_EQ(h1.unreachable().size(), 2u);
  EXPECT_EQ(net.dropped(), 2u);
  net.Detach(1);
}

}  // namespace
}  // namespace arbiter::server
