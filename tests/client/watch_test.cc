// The client library's watchers against a real cluster (a 3-member etcd
// 3.4 cluster and a 3-member Arbiter cluster pass the same tests): events
// in order with their filters and history, compacted and empty ranges,
// cancel and progress; and against a scripted fake server: fragments
// joined, events sent twice dropped, the exact revision a resume asks for,
// and errors that end every watcher. Resume against real clusters is in
// watch_resume_test.cc.

#include "client/watch.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "proto/rpc.grpc.pb.h"
#include "tests/client/process.h"
#include "tests/client/test_cluster.h"

namespace arbiter::client {
namespace {

using ::arbiter::testing::ClusterKind;
using ::arbiter::testing::TestCluster;
using etcdserverpb::WatchResponse;

TEST(WatchOptionsTest, PrefixRangeEnd) {
  EXPECT_EQ(PrefixRangeEnd("abc"), "abd");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
  EXPECT_FALSE(WatchStream::Create(ClientOptions{}).ok());
}

// A Watch server that plays a script per stream: stream n (from 0) is
// served by scripts[n], which reads and writes as it likes and returns the
// stream's status. The create requests it received are kept.
class FakeWatch final : public etcdserverpb::Watch::Service {
 public:
  using Stream = grpc::ServerReaderWriter<WatchResponse, etcdserverpb::WatchRequest>;
  using Script = std::function<grpc::Status(Stream*, FakeWatch*)>;

  explicit FakeWatch(std::vector<Script> scripts) : scripts_(std::move(scripts)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeWatch() override { server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1))); }

  grpc::Status Watch(grpc::ServerContext*, Stream* stream) override {
    const size_t n = streams_++;
    if (n >= scripts_.size()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no more");
    return scripts_[n](stream, this);
  }

  // Reads the next create request and answers it as created.
  bool ExpectCreate(Stream* stream, int64_t watch_id) {
    etcdserverpb::WatchRequest request;
    if (!stream->Read(&request) || !request.has_create_request()) return false;
    {
      absl::MutexLock lock(&mu_);
      creates_.push_back(request.create_request());
    }
    WatchResponse created;
    created.set_watch_id(watch_id);
    created.set_created(true);
    created.mutable_header()->set_revision(1);
    return stream->Write(created);
  }
  std::vector<etcdserverpb::WatchCreateRequest> creates() {
    absl::MutexLock lock(&mu_);
    return creates_;
  }
  std::string endpoint() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  const std::vector<Script> scripts_;
  std::atomic<size_t> streams_{0};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mu_;
  std::vector<etcdserverpb::WatchCreateRequest> creates_ ABSL_GUARDED_BY(mu_);
};

WatchResponse EventsAt(int64_t watch_id, std::vector<int64_t> revisions, bool fragment = false) {
  WatchResponse r;
  r.set_watch_id(watch_id);
  r.set_fragment(fragment);
  r.mutable_header()->set_revision(revisions.back());
  for (int64_t rev : revisions) {
    mvccpb::Event* e = r.add_events();
    e->mutable_kv()->set_key("k");
    e->mutable_kv()->set_mod_revision(rev);
  }
  return r;
}

std::vector<int64_t> Revisions(const WatchResponse& r) {
  std::vector<int64_t> out;
  for (const mvccpb::Event& e : r.events()) out.push_back(e.kv().mod_revision());
  return out;
}

// Blocks the script until the client closes the stream.
grpc::Status HoldOpen(FakeWatch::Stream* stream) {
  etcdserverpb::WatchRequest ignored;
  while (stream->Read(&ignored)) {
  }
  return grpc::Status::OK;
}

std::unique_ptr<WatchStream> StreamTo(const FakeWatch& fake) {
  ClientOptions options;
  options.endpoints = {fake.endpoint()};
  options.initial_backoff = absl::Milliseconds(1);
  absl::StatusOr<std::unique_ptr<WatchStream>> stream = WatchStream::Create(options);
  EXPECT_TRUE(stream.ok());
  return stream.ok() ? *std::move(stream) : nullptr;
}

TEST(WatchFakeServerTest, FragmentsAreJoinedAndResumeAsksForTheNextRevision) {
  FakeWatch fake({
      [](FakeWatch::Stream* s, FakeWatch* f) {
        if (!f->ExpectCreate(s, 7)) return grpc::Status::CANCELLED;
        s->Write(EventsAt(7, {5}, /*fragment=*/true));
        s->Write(EventsAt(7, {6}, /*fragment=*/false));
        // The member fails after revision 6.
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "member gone");
      },
      [](FakeWatch::Stream* s, FakeWatch* f) {
        if (!f->ExpectCreate(s, 3)) return grpc::Status::CANCELLED;
        // A member that sends revision 6 again, then 7.
        s->Write(EventsAt(3, {6, 7}));
        return HoldOpen(s);
      },
  });
  std::unique_ptr<WatchStream> stream = StreamTo(fake);
  ASSERT_NE(stream, nullptr);
  absl::StatusOr<std::unique_ptr<Watcher>> watcher =
      stream->Watch({.key = "k", .start_revision = 5, .fragment = true});
  ASSERT_TRUE(watcher.ok());
  absl::StatusOr<WatchResponse> joined = (*watcher)->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(Revisions(*joined), (std::vector<int64_t>{5, 6}));
  EXPECT_FALSE(joined->fragment());
  EXPECT_EQ(joined->watch_id(), (*watcher)->id());
  absl::StatusOr<WatchResponse> resumed = (*watcher)->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(Revisions(*resumed), std::vector<int64_t>{7});
  const std::vector<etcdserverpb::WatchCreateRequest> creates = fake.creates();
  ASSERT_EQ(creates.size(), 2u);
  EXPECT_EQ(creates[0].start_revision(), 5);
  EXPECT_TRUE(creates[0].fragment());
  EXPECT_EQ(creates[1].start_revision(), 7);
  EXPECT_EQ(stream->streams_opened(), 2);
}

TEST(WatchFakeServerTest, ACurrentRevisionWatchResumesAfterItsCreation) {
  FakeWatch fake({
      [](FakeWatch::Stream* s, FakeWatch* f) {
        if (!f->ExpectCreate(s, 0)) return grpc::Status::CANCELLED;
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "member gone");
      },
      [](FakeWatch::Stream* s, FakeWatch* f) {
        if (!f->ExpectCreate(s, 0)) return grpc::Status::CANCELLED;
        s->Write(EventsAt(0, {2}));
        return HoldOpen(s);
      },
  });
  std::unique_ptr<WatchStream> stream = StreamTo(fake);
  ASSERT_NE(stream, nullptr);
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = stream->Watch({.key = "k"});
  ASSERT_TRUE(watcher.ok());
  ASSERT_TRUE((*watcher)->Next(absl::Now() + absl::Seconds(10)).ok());
  const std::vector<etcdserverpb::WatchCreateRequest> creates = fake.creates();
  ASSERT_EQ(creates.size(), 2u);
  EXPECT_EQ(creates[0].start_revision(), 0);
  // Created at revision 1: nothing after it may be missed.
  EXPECT_EQ(creates[1].start_revision(), 2);
}

TEST(WatchFakeServerTest, AnErrorARetryCannotFixEndsEveryWatcher) {
  FakeWatch fake({[](FakeWatch::Stream*, FakeWatch*) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "etcdserver: permission denied");
  }});
  std::unique_ptr<WatchStream> stream = StreamTo(fake);
  ASSERT_NE(stream, nullptr);
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = stream->Watch({.key = "k"});
  ASSERT_TRUE(watcher.ok());
  absl::StatusOr<WatchResponse> r = (*watcher)->Next(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "etcdserver: permission denied");
  EXPECT_FALSE(stream->Watch({.key = "k"}).ok());
}

class WatchTest : public ::testing::TestWithParam<ClusterKind> {
 protected:
  void SetUp() override {
    if (!GetParam().unavailable_reason.empty()) GTEST_SKIP() << GetParam().unavailable_reason;
    absl::StatusOr<TestCluster*> cluster = ::arbiter::testing::SharedCluster(GetParam());
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *cluster;
    ClientOptions options;
    options.endpoints = cluster_->ClientEndpoints();
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    absl::StatusOr<std::unique_ptr<WatchStream>> stream = WatchStream::Create(options);
    ASSERT_TRUE(stream.ok()) << stream.status();
    stream_ = *std::move(stream);
    prefix_ = absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }

  int64_t Put(const std::string& key, const std::string& value) {
    etcdserverpb::PutRequest put;
    put.set_key(prefix_ + key);
    put.set_value(value);
    absl::StatusOr<etcdserverpb::PutResponse> response = client_->Put(put);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->header().revision() : 0;
  }

  int64_t Delete(const std::string& key) {
    etcdserverpb::DeleteRangeRequest del;
    del.set_key(prefix_ + key);
    absl::StatusOr<etcdserverpb::DeleteRangeResponse> response = client_->DeleteRange(del);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->header().revision() : 0;
  }

  std::unique_ptr<Watcher> MustWatch(WatchOptions options) {
    absl::StatusOr<std::unique_ptr<Watcher>> watcher = stream_->Watch(options);
    EXPECT_TRUE(watcher.ok()) << watcher.status();
    return watcher.ok() ? *std::move(watcher) : nullptr;
  }

  // Events until `count` have come, within 10 s.
  std::vector<mvccpb::Event> Events(Watcher& watcher, size_t count) {
    std::vector<mvccpb::Event> events;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (events.size() < count) {
      absl::StatusOr<WatchResponse> r = watcher.Next(deadline);
      if (!r.ok()) {
        ADD_FAILURE() << "after " << events.size() << " events: " << r.status();
        break;
      }
      EXPECT_EQ(r->watch_id(), watcher.id());
      EXPECT_FALSE(r->canceled()) << r->ShortDebugString();
      for (const mvccpb::Event& e : r->events()) events.push_back(e);
    }
    return events;
  }

  // A watcher created now: its creation is seen before anything is
  // written.
  std::unique_ptr<Watcher> WatchCreated(WatchOptions options) {
    options.created_notify = true;
    std::unique_ptr<Watcher> watcher = MustWatch(options);
    if (watcher == nullptr) return nullptr;
    absl::StatusOr<WatchResponse> created = watcher->Next(absl::Now() + absl::Seconds(10));
    EXPECT_TRUE(created.ok() && created->created()) << created.status();
    return watcher;
  }

  TestCluster* cluster_ = nullptr;
  std::unique_ptr<Client> client_;
  std::unique_ptr<WatchStream> stream_;
  std::string prefix_;
};

TEST_P(WatchTest, KeyEventsArriveInOrderWithTheirRevisions) {
  std::unique_ptr<Watcher> watcher = WatchCreated({.key = prefix_ + "k"});
  ASSERT_NE(watcher, nullptr);
  const int64_t r1 = Put("k", "v1");
  Put("other", "x");
  const int64_t r2 = Put("k", "v2");
  const int64_t r3 = Delete("k");
  const std::vector<mvccpb::Event> events = Events(*watcher, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(events[0].kv().value(), "v1");
  EXPECT_EQ(events[0].kv().mod_revision(), r1);
  EXPECT_EQ(events[0].kv().create_revision(), r1);
  EXPECT_EQ(events[1].kv().value(), "v2");
  EXPECT_EQ(events[1].kv().mod_revision(), r2);
  EXPECT_EQ(events[1].kv().version(), 2);
  EXPECT_EQ(events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[2].kv().key(), prefix_ + "k");
  EXPECT_EQ(events[2].kv().mod_revision(), r3);
  EXPECT_FALSE(events[0].has_prev_kv());
}

TEST_P(WatchTest, PrefixPrevKvAndFilters) {
  const std::string end = PrefixRangeEnd(prefix_ + "p/");
  std::unique_ptr<Watcher> all =
      WatchCreated({.key = prefix_ + "p/", .range_end = end, .prev_kv = true});
  std::unique_ptr<Watcher> deletes =
      WatchCreated({.key = prefix_ + "p/", .range_end = end, .no_put = true});
  std::unique_ptr<Watcher> puts =
      WatchCreated({.key = prefix_ + "p/", .range_end = end, .no_delete = true});
  ASSERT_TRUE(all && deletes && puts);
  Put("p/a", "1");
  Put("p0", "outside");
  Put("p/b", "2");
  Put("p/a", "3");
  const int64_t deleted = Delete("p/a");

  const std::vector<mvccpb::Event> events = Events(*all, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].kv().key(), prefix_ + "p/b");
  EXPECT_EQ(events[2].prev_kv().value(), "1");
  EXPECT_EQ(events[3].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[3].prev_kv().value(), "3");
  const std::vector<mvccpb::Event> only_deletes = Events(*deletes, 1);
  ASSERT_EQ(only_deletes.size(), 1u);
  EXPECT_EQ(only_deletes[0].kv().mod_revision(), deleted);
  const std::vector<mvccpb::Event> only_puts = Events(*puts, 3);
  ASSERT_EQ(only_puts.size(), 3u);
  for (const mvccpb::Event& e : only_puts) EXPECT_EQ(e.type(), mvccpb::Event::PUT);
  // The delete was not delivered to the put-only watcher: the next thing
  // it hears is the put after it.
  const int64_t after = Put("p/c", "4");
  const std::vector<mvccpb::Event> next = Events(*puts, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].kv().mod_revision(), after);
}

TEST_P(WatchTest, HistoryReplaysFromTheStartRevision) {
  const int64_t first = Put("h", "1");
  Put("h", "2");
  Delete("h");
  const int64_t last = Put("h", "3");
  std::unique_ptr<Watcher> watcher = MustWatch({.key = prefix_ + "h", .start_revision = first});
  ASSERT_NE(watcher, nullptr);
  const std::vector<mvccpb::Event> events = Events(*watcher, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kv().mod_revision(), first);
  EXPECT_EQ(events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[3].kv().mod_revision(), last);
}

TEST_P(WatchTest, CompactedStartRevisionCancelsWithTheCompactRevision) {
  const int64_t first = Put("c", "1");
  const int64_t second = Put("c", "2");
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(second);
  compact.set_physical(true);
  ASSERT_TRUE(client_->Compact(compact).ok());
  // Every member has applied the compaction (the stream may be on any).
  for (const std::string& endpoint : cluster_->ClientEndpoints()) {
    absl::StatusOr<std::unique_ptr<Client>> member = Client::Create({.endpoints = {endpoint}});
    ASSERT_TRUE(member.ok());
    etcdserverpb::RangeRequest old;
    old.set_key(prefix_ + "c");
    old.set_revision(first);
    old.set_serializable(true);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while ((*member)->Range(old).ok()) ASSERT_LT(absl::Now(), deadline) << endpoint;
  }
  std::unique_ptr<Watcher> watcher = MustWatch({.key = prefix_ + "c", .start_revision = first});
  ASSERT_NE(watcher, nullptr);
  absl::StatusOr<WatchResponse> r = watcher->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->canceled());
  EXPECT_EQ(r->compact_revision(), second);
  EXPECT_EQ(r->events_size(), 0);
  EXPECT_EQ(watcher->Next(absl::Now() + absl::Seconds(1)).status().code(),
            absl::StatusCode::kCancelled);
}

TEST_P(WatchTest, AnEmptyRangeIsRefusedWithEtcdsReason) {
  std::unique_ptr<Watcher> watcher = MustWatch({.key = prefix_ + "b", .range_end = prefix_ + "a"});
  ASSERT_NE(watcher, nullptr);
  absl::StatusOr<WatchResponse> r = watcher->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->created());
  EXPECT_TRUE(r->canceled());
  EXPECT_EQ(r->cancel_reason(), "mvcc: watcher range is empty");
}

TEST_P(WatchTest, CancelStopsEventsAndProgressReportsTheRevision) {
  std::unique_ptr<Watcher> gone = WatchCreated({.key = prefix_ + "x"});
  std::unique_ptr<Watcher> kept = WatchCreated({.key = prefix_ + "y"});
  ASSERT_TRUE(gone && kept);
  gone->Cancel();
  Put("x", "1");
  const int64_t revision = Put("y", "1");
  EXPECT_EQ(gone->Next(absl::Now() + absl::Seconds(1)).status().code(),
            absl::StatusCode::kCancelled);
  ASSERT_EQ(Events(*kept, 1).size(), 1u);
  ASSERT_TRUE(stream_->RequestProgress().ok());
  absl::StatusOr<WatchResponse> progress = kept->Next(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->events_size(), 0);
  EXPECT_FALSE(progress->canceled());
  EXPECT_GE(progress->header().revision(), revision);
  EXPECT_EQ(progress->watch_id(), kept->id());
}

INSTANTIATE_TEST_SUITE_P(Cluster, WatchTest, ::testing::ValuesIn(::arbiter::testing::AllKinds()),
                         [](const ::testing::TestParamInfo<ClusterKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace arbiter::client
