// Watch resume against a real cluster (etcd 3.4 and Arbiter alike): a
// watcher keeps its events ordered, without gap or duplicate, and equal to
// the store's history while writes go on and the member its stream is
// connected to crashes, and then the leader crashes; and a watcher whose
// resume revision was compacted while its stream was down ends canceled
// with the compact revision; and a member that stops answering is left
// for another.

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/watch.h"
#include "gtest/gtest.h"
#include "tests/client/tcp_proxy.h"
#include "tests/client/test_cluster.h"

namespace arbiter::client {
namespace {

using ::arbiter::testing::ClusterKind;
using ::arbiter::testing::TestCluster;
using etcdserverpb::WatchResponse;

std::vector<ClusterKind> Kinds() {
  return {::arbiter::testing::EtcdClusterKind(), ::arbiter::testing::ArbiterClusterKind()};
}

// The first problem with a watcher's events against the history they must
// match: every revision in [first, last] exactly once and in order. Empty
// when there is none.
std::string CheckOrderedNoGapNoDuplicate(const std::vector<mvccpb::Event>& events, int64_t first,
                                         int64_t last) {
  int64_t want = first;
  for (const mvccpb::Event& e : events) {
    if (e.kv().mod_revision() != want) {
      return absl::StrCat("event at revision ", e.kv().mod_revision(), " where ", want,
                          " was due (",
                          e.kv().mod_revision() < want ? "duplicate or reordered" : "gap", ")");
    }
    ++want;
  }
  if (want != last + 1) return absl::StrCat("events end at ", want - 1, ", before ", last);
  return "";
}

mvccpb::Event PutEvent(int64_t revision) {
  mvccpb::Event e;
  e.mutable_kv()->set_key("k");
  e.mutable_kv()->set_mod_revision(revision);
  return e;
}

// The checker catches each fault the resume test looks for.
TEST(WatchHistoryCheckTest, CatchesGapsDuplicatesReorderingAndLoss) {
  EXPECT_EQ(CheckOrderedNoGapNoDuplicate({PutEvent(5), PutEvent(6), PutEvent(7)}, 5, 7), "");
  EXPECT_NE(CheckOrderedNoGapNoDuplicate({PutEvent(5), PutEvent(7)}, 5, 7), "");
  EXPECT_NE(
      CheckOrderedNoGapNoDuplicate({PutEvent(5), PutEvent(6), PutEvent(6), PutEvent(7)}, 5, 7), "");
  EXPECT_NE(CheckOrderedNoGapNoDuplicate({PutEvent(5), PutEvent(7), PutEvent(6)}, 5, 7), "");
  EXPECT_NE(CheckOrderedNoGapNoDuplicate({PutEvent(5), PutEvent(6)}, 5, 7), "");
}

// Takes a watcher's responses on a thread of its own.
class Collector {
 public:
  explicit Collector(Watcher* watcher) : watcher_(watcher), thread_([this] { Loop(); }) {}
  ~Collector() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return events_.size();
  }
  // Waits until `n` events have come (or the deadline passes).
  bool WaitFor(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return events_.size() >= n || !error_.empty();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout) && error_.empty();
  }
  // Waits for the event at `revision`.
  bool WaitForRevision(int64_t revision, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const auto seen = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return (!events_.empty() && events_.back().kv().mod_revision() >= revision) ||
             !error_.empty();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout) && error_.empty();
  }
  std::vector<mvccpb::Event> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::string error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  void Loop() {
    while (!stop_) {
      absl::StatusOr<WatchResponse> r = watcher_->Next(absl::Now() + absl::Milliseconds(100));
      absl::MutexLock lock(&mu_);
      if (!r.ok()) {
        if (r.status().code() != absl::StatusCode::kDeadlineExceeded) {
          error_ = r.status().ToString();
          return;
        }
        continue;
      }
      if (r->canceled()) {
        error_ = absl::StrCat("canceled: ", r->ShortDebugString());
        return;
      }
      for (const mvccpb::Event& e : r->events()) events_.push_back(e);
    }
  }

  Watcher* const watcher_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<mvccpb::Event> events_ ABSL_GUARDED_BY(mu_);
  std::string error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Puts under a prefix as fast as the cluster takes them, until stopped
// (at most `kMaxPuts`); failed puts (an election, a crashed member) are
// simply followed by the next.
class Writer {
 public:
  static constexpr int kMaxPuts = 5000;
  Writer(Client* client, std::string prefix)
      : client_(client), prefix_(std::move(prefix)), thread_([this] { Loop(); }) {}
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    for (int i = 0; i < kMaxPuts && !stop_; ++i) {
      etcdserverpb::PutRequest put;
      put.set_key(absl::StrCat(prefix_, i % 7));
      put.set_value(absl::StrCat("v", i));
      (void)client_->Put(put);
    }
  }

  Client* const client_;
  const std::string prefix_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

size_t IndexOf(const TestCluster& cluster, const std::string& endpoint) {
  for (size_t i = 0; i < cluster.members().size(); ++i) {
    if (cluster.members()[i].client_endpoint == endpoint) return i;
  }
  return cluster.members().size();
}

class WatchResumeTest : public ::testing::TestWithParam<ClusterKind> {
 protected:
  void SetUp() override {
    if (!GetParam().unavailable_reason.empty()) GTEST_SKIP() << GetParam().unavailable_reason;
    absl::StatusOr<std::unique_ptr<TestCluster>> cluster = GetParam().start(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    options_.endpoints = cluster_->ClientEndpoints();
    options_.dial_timeout = absl::Milliseconds(500);
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // A put that is retried until it succeeds (or 20 s pass).
  int64_t MustPut(const std::string& key, const std::string& value) {
    etcdserverpb::PutRequest put;
    put.set_key(key);
    put.set_value(value);
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    absl::StatusOr<etcdserverpb::PutResponse> r = client_->Put(put);
    while (!r.ok() && absl::Now() < deadline) r = client_->Put(put);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->header().revision() : 0;
  }

  std::unique_ptr<TestCluster> cluster_;
  ClientOptions options_;
  std::unique_ptr<Client> client_;
};

TEST_P(WatchResumeTest, EventsStayOrderedWithoutGapOrDuplicateAcrossCrashes) {
  const int64_t start = MustPut("w/start", "x");
  absl::StatusOr<std::unique_ptr<WatchStream>> stream = WatchStream::Create(options_);
  ASSERT_TRUE(stream.ok());
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = (*stream)->Watch(
      {.key = "w/", .range_end = PrefixRangeEnd("w/"), .start_revision = start + 1});
  ASSERT_TRUE(watcher.ok());
  Collector collector(watcher->get());
  Writer writer(client_.get(), "w/k");
  ASSERT_TRUE(collector.WaitFor(20, absl::Seconds(20))) << collector.error();

  // 1. The member the stream is on crashes; writes go on.
  std::string on = (*stream)->current_endpoint();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (on.empty() && absl::Now() < deadline) on = (*stream)->current_endpoint();
  const size_t victim = IndexOf(*cluster_, on);
  ASSERT_LT(victim, 3u) << on;
  cluster_->KillMember(victim);
  size_t seen = collector.count();
  ASSERT_TRUE(collector.WaitFor(seen + 30, absl::Seconds(30))) << collector.error();
  EXPECT_GE((*stream)->streams_opened(), 2);
  EXPECT_NE((*stream)->current_endpoint(), on);
  ASSERT_TRUE(cluster_->RestartMember(victim).ok());
  ASSERT_TRUE(cluster_->WaitReady().ok());

  // 2. The leader crashes; writes go on through the election.
  absl::StatusOr<std::string> leader = client_->LeaderEndpoint();
  ASSERT_TRUE(leader.ok()) << leader.status();
  cluster_->KillMember(IndexOf(*cluster_, *leader));
  seen = collector.count();
  ASSERT_TRUE(collector.WaitFor(seen + 30, absl::Seconds(30))) << collector.error();

  writer.Stop();
  const int64_t last = MustPut("w/end", "x");
  ASSERT_TRUE(collector.WaitForRevision(last, absl::Seconds(20))) << collector.error();
  collector.Stop();
  const std::vector<mvccpb::Event> events = collector.events();
  // Only this test writes to the cluster, all of it under w/.
  EXPECT_EQ(CheckOrderedNoGapNoDuplicate(events, start + 1, last), "");

  // Each event is the store's history at its revision.
  for (const mvccpb::Event& e : events) {
    etcdserverpb::RangeRequest range;
    range.set_key(e.kv().key());
    range.set_revision(e.kv().mod_revision());
    absl::StatusOr<etcdserverpb::RangeResponse> at = client_->Range(range);
    ASSERT_TRUE(at.ok()) << at.status();
    ASSERT_EQ(at->kvs_size(), 1) << e.ShortDebugString();
    EXPECT_EQ(at->kvs(0).mod_revision(), e.kv().mod_revision());
    EXPECT_EQ(at->kvs(0).value(), e.kv().value());
    EXPECT_EQ(at->kvs(0).version(), e.kv().version());
  }
}

TEST_P(WatchResumeTest, ACompactedResumeRevisionCancelsTheWatcher) {
  // The stream reaches member 1 only through a proxy that can cut it while
  // the member goes on applying the cluster's writes.
  absl::StatusOr<std::unique_ptr<::arbiter::testing::TcpProxy>> proxy =
      ::arbiter::testing::TcpProxy::Start(cluster_->members()[0].client_endpoint);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  ClientOptions through = options_;
  through.endpoints = {(*proxy)->endpoint()};
  absl::StatusOr<std::unique_ptr<WatchStream>> stream = WatchStream::Create(through);
  ASSERT_TRUE(stream.ok());
  absl::StatusOr<std::unique_ptr<Watcher>> watcher =
      (*stream)->Watch({.key = "c", .created_notify = true});
  ASSERT_TRUE(watcher.ok());
  absl::StatusOr<WatchResponse> r = (*watcher)->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(r.ok() && r->created()) << r.status();
  const int64_t first = MustPut("c", "1");
  r = (*watcher)->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->events_size(), 1);
  EXPECT_EQ(r->events(0).kv().mod_revision(), first);

  (*proxy)->Cut();
  MustPut("c", "2");
  const int64_t compacted = MustPut("c", "3");
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(compacted);
  compact.set_physical(true);
  ASSERT_TRUE(client_->Compact(compact).ok());
  // Member 1 has applied the compaction once it has applied a later put.
  const int64_t after = MustPut("other", "x");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    absl::StatusOr<etcdserverpb::StatusResponse> status =
        client_->EndpointStatus(cluster_->members()[0].client_endpoint);
    if (status.ok() && status->header().revision() >= after) break;
    ASSERT_LT(absl::Now(), deadline) << "member 1 did not catch up";
  }
  (*proxy)->Resume();

  r = (*watcher)->Next(absl::Now() + absl::Seconds(20));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->canceled()) << r->ShortDebugString();
  EXPECT_EQ(r->compact_revision(), compacted);
  EXPECT_EQ(r->events_size(), 0);
  EXPECT_EQ((*watcher)->Next(absl::Now() + absl::Seconds(1)).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_GE((*stream)->streams_opened(), 2);
}

// A member that stops answering without closing anything (frozen, or cut
// off by a partition that drops packets) is found out by the stream's
// keepalive pings; the watch resumes on another member.
TEST_P(WatchResumeTest, AMemberThatStopsAnsweringIsLeftForAnother) {
  absl::StatusOr<std::unique_ptr<::arbiter::testing::TcpProxy>> proxy =
      ::arbiter::testing::TcpProxy::Start(cluster_->members()[0].client_endpoint);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  ClientOptions options = options_;
  options.endpoints = {(*proxy)->endpoint(), cluster_->members()[1].client_endpoint,
                       cluster_->members()[2].client_endpoint};
  // As often as the servers allow.
  options.keepalive_time = absl::Seconds(5);
  options.keepalive_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<WatchStream>> stream = WatchStream::Create(options);
  ASSERT_TRUE(stream.ok());
  absl::StatusOr<std::unique_ptr<Watcher>> watcher =
      (*stream)->Watch({.key = "f", .created_notify = true});
  ASSERT_TRUE(watcher.ok());
  absl::StatusOr<WatchResponse> r = (*watcher)->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(r.ok() && r->created()) << r.status();
  EXPECT_EQ((*stream)->current_endpoint(), (*proxy)->endpoint());
  const int64_t first = MustPut("f", "1");

  (*proxy)->Freeze();
  MustPut("f", "2");
  const int64_t last = MustPut("f", "3");
  std::vector<int64_t> revisions;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (revisions.empty() || revisions.back() < last) {
    r = (*watcher)->Next(deadline);
    ASSERT_TRUE(r.ok()) << r.status() << " after " << revisions.size() << " events";
    for (const mvccpb::Event& e : r->events()) revisions.push_back(e.kv().mod_revision());
  }
  EXPECT_EQ(revisions, (std::vector<int64_t>{first, first + 1, last}));
  EXPECT_GE((*stream)->streams_opened(), 2);
  EXPECT_NE((*stream)->current_endpoint(), (*proxy)->endpoint());
  (*proxy)->Resume();
}

INSTANTIATE_TEST_SUITE_P(Cluster, WatchResumeTest, ::testing::ValuesIn(Kinds()),
                         [](const ::testing::TestParamInfo<ClusterKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace arbiter::client
