// The client library against a real cluster (the server under test is a
// parameter: a 3-member etcd 3.4 cluster and a 3-member Arbiter cluster must
// pass the same tests) and against a scripted fake server that shows which
// calls are retried.

#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/rpc.grpc.pb.h"
#include "tests/client/process.h"
#include "tests/client/test_cluster.h"

namespace arbiter::client {
namespace {

using ::arbiter::testing::ClusterKind;
using ::arbiter::testing::TestCluster;

class ClientTest : public ::testing::TestWithParam<ClusterKind> {
 protected:
  void SetUp() override {
    if (!GetParam().unavailable_reason.empty()) GTEST_SKIP() << GetParam().unavailable_reason;
    absl::StatusOr<TestCluster*> cluster = ::arbiter::testing::SharedCluster(GetParam());
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *cluster;
    ClientOptions options;
    // The http:// form for one endpoint, the bare form for the others.
    for (const std::string& e : cluster_->ClientEndpoints()) options.endpoints.push_back(e);
    options.endpoints[0] = "http://" + options.endpoints[0];
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    prefix_ = absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }

  etcdserverpb::PutResponse MustPut(const std::string& key, const std::string& value) {
    etcdserverpb::PutRequest put;
    put.set_key(prefix_ + key);
    put.set_value(value);
    absl::StatusOr<etcdserverpb::PutResponse> response = client_->Put(put);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(etcdserverpb::PutResponse());
  }

  TestCluster* cluster_ = nullptr;
  std::unique_ptr<Client> client_;
  std::string prefix_;
};

TEST_P(ClientTest, PutThenRangeReadsTheValueAtThePutsRevision) {
  const etcdserverpb::PutResponse put = MustPut("k", "v1");
  ASSERT_GT(put.header().revision(), 0);
  etcdserverpb::RangeRequest range;
  range.set_key(prefix_ + "k");
  absl::StatusOr<etcdserverpb::RangeResponse> got = client_->Range(range);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "v1");
  EXPECT_EQ(got->kvs(0).mod_revision(), put.header().revision());
  EXPECT_EQ(got->header().cluster_id(), cluster_->cluster_id());
}

TEST_P(ClientTest, ServerErrorsKeepTheirCodeAndMessage) {
  etcdserverpb::PutRequest empty;
  absl::StatusOr<etcdserverpb::PutResponse> put = client_->Put(empty);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(put.status().message(), "etcdserver: key is not provided");

  etcdserverpb::RangeRequest future;
  future.set_key(prefix_ + "k");
  future.set_revision(1000000);
  absl::StatusOr<etcdserverpb::RangeResponse> range = client_->Range(future);
  EXPECT_EQ(range.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(range.status().message(), "etcdserver: mvcc: required revision is a future revision");
}

TEST_P(ClientTest, TxnDeleteAndCompact) {
  const int64_t first = MustPut("a", "1").header().revision();
  MustPut("a", "2");
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* cmp = txn.add_compare();
  cmp->set_key(prefix_ + "a");
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_value("2");
  txn.add_success()->mutable_request_put()->set_key(prefix_ + "b");
  absl::StatusOr<etcdserverpb::TxnResponse> done = client_->Txn(txn);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->succeeded());
  ASSERT_EQ(done->responses_size(), 1);

  etcdserverpb::DeleteRangeRequest del;
  del.set_key(prefix_);
  del.set_range_end(prefix_.substr(0, prefix_.size() - 1) + "0");  // '/' + 1
  del.set_prev_kv(true);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> deleted = client_->DeleteRange(del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->deleted(), 2);
  EXPECT_EQ(deleted->prev_kvs_size(), 2);

  etcdserverpb::CompactionRequest compact;
  compact.set_revision(first + 1);
  compact.set_physical(true);
  ASSERT_TRUE(client_->Compact(compact).ok());
  etcdserverpb::RangeRequest old;
  old.set_key(prefix_ + "a");
  old.set_revision(first);
  absl::StatusOr<etcdserverpb::RangeResponse> range = client_->Range(old);
  EXPECT_EQ(range.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(range.status().message(), "etcdserver: mvcc: required revision has been compacted");
}

TEST_P(ClientTest, FindsTheLeaderByItsStatus) {
  absl::StatusOr<std::string> leader = client_->LeaderEndpoint();
  ASSERT_TRUE(leader.ok()) << leader.status();
  absl::StatusOr<etcdserverpb::StatusResponse> status = client_->EndpointStatus(*leader);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->leader(), status->header().member_id());
}

TEST_P(ClientTest, EveryMemberAnswersStatusHealthAndTheSameHash) {
  const int64_t revision = MustPut("h", "x").header().revision();
  std::vector<uint32_t> hashes;
  for (const ::arbiter::testing::TestMember& m : cluster_->members()) {
    SCOPED_TRACE(m.name);
    absl::StatusOr<etcdserverpb::StatusResponse> status =
        client_->EndpointStatus(m.client_endpoint);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->header().member_id(), m.id);
    EXPECT_TRUE(client_->EndpointHealth(m.client_endpoint).ok());
    absl::StatusOr<etcdserverpb::HashKVResponse> hash =
        client_->EndpointHashKV(m.client_endpoint, revision);
    ASSERT_TRUE(hash.ok()) << hash.status();
    hashes.push_back(hash->hash());
  }
  EXPECT_EQ(hashes[0], hashes[1]);
  EXPECT_EQ(hashes[1], hashes[2]);
}

TEST_P(ClientTest, MemberListNamesEveryMember) {
  absl::StatusOr<etcdserverpb::MemberListResponse> list = client_->MemberList();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->members_size(), 3);
  for (const etcdserverpb::Member& member : list->members()) {
    bool known = false;
    for (const ::arbiter::testing::TestMember& m : cluster_->members()) {
      known = known ||
              (m.id == member.id() && m.name == member.name() && member.clienturls_size() == 1 &&
               member.clienturls(0) == "http://" + m.client_endpoint);
    }
    EXPECT_TRUE(known) << member.ShortDebugString();
  }
}

TEST_P(ClientTest, AnEndpointThatIsDownIsUnhealthyAndSkippedByReads) {
  const std::string dead = absl::StrCat("127.0.0.1:", ::arbiter::testing::PickFreePort());
  ClientOptions options;
  options.endpoints = {dead};
  for (const std::string& e : cluster_->ClientEndpoints()) options.endpoints.push_back(e);
  {
    // Asked by name, a dead endpoint is waited for until the deadline.
    ClientOptions quick = options;
    quick.call_timeout = absl::Milliseconds(300);
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(quick);
    ASSERT_TRUE(client.ok());
    EXPECT_EQ((*client)->EndpointHealth(dead).code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ((*client)->EndpointStatus(dead).status().code(), absl::StatusCode::kDeadlineExceeded);
  }

  // Otherwise a client whose first endpoint is down still reads and writes.
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  etcdserverpb::RangeRequest range;
  range.set_key(prefix_ + "x");
  EXPECT_TRUE((*client)->Range(range).ok());
  etcdserverpb::PutRequest put;
  put.set_key(prefix_ + "x");
  EXPECT_TRUE((*client)->Put(put).ok());
}

// Kills the leader of a cluster of its own: writes find the new leader and
// reads carry on.
TEST_P(ClientTest, WritesFollowTheLeaderWhenItCrashes) {
  absl::StatusOr<std::unique_ptr<TestCluster>> own = GetParam().start(3);
  ASSERT_TRUE(own.ok()) << own.status();
  ClientOptions options;
  options.endpoints = (*own)->ClientEndpoints();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<std::string> leader = (*client)->LeaderEndpoint();
  ASSERT_TRUE(leader.ok()) << leader.status();
  size_t leader_index = 0;
  while ((*own)->members()[leader_index].client_endpoint != *leader) ++leader_index;
  (*own)->KillMember(leader_index);

  // A write sent to the dead leader is refused before it leaves (its
  // channel cannot connect), so the client moves on; the election may
  // still fail a write or two, and those are not retried by the client.
  etcdserverpb::PutRequest put;
  put.set_key("after-crash");
  put.set_value("v");
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<etcdserverpb::PutResponse> written = (*client)->Put(put);
  while (!written.ok() && absl::Now() < deadline) written = (*client)->Put(put);
  ASSERT_TRUE(written.ok()) << written.status();
  absl::StatusOr<std::string> new_leader = (*client)->LeaderEndpoint();
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  EXPECT_NE(*new_leader, *leader);

  etcdserverpb::RangeRequest range;
  range.set_key("after-crash");
  absl::StatusOr<etcdserverpb::RangeResponse> read = (*client)->Range(range);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->kvs_size(), 1);
  EXPECT_EQ(read->kvs(0).value(), "v");
}

// A KV stub on one endpoint: the calls below must reach that member, not
// whichever the client would route them to.
std::unique_ptr<etcdserverpb::KV::Stub> KvStub(const std::string& endpoint) {
  return etcdserverpb::KV::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
}

grpc::Status PutWithin(etcdserverpb::KV::Stub& kv, const std::string& key, absl::Duration timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  etcdserverpb::PutRequest put;
  put.set_key(key);
  put.set_value("v");
  etcdserverpb::PutResponse response;
  return kv.Put(&ctx, put, &response);
}

// With two of three members down no leader can be elected. A write or a
// linearizable read made then waits for a leader until its deadline
// (it is neither refused at once nor answered), and a write still waiting
// when a leader comes back succeeds: what a client sees of an election.
TEST_P(ClientTest, WithoutALeaderRequestsWaitForOne) {
  absl::StatusOr<std::unique_ptr<TestCluster>> own = GetParam().start(3);
  ASSERT_TRUE(own.ok()) << own.status();
  ClientOptions options;
  options.endpoints = (*own)->ClientEndpoints();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<std::string> leader = (*client)->LeaderEndpoint();
  ASSERT_TRUE(leader.ok()) << leader.status();
  // The survivor is a follower, so it loses its leader when the others go.
  size_t survivor = 0;
  while ((*own)->members()[survivor].client_endpoint == *leader) ++survivor;
  std::vector<size_t> down;
  for (size_t i = 0; i < 3; ++i) {
    if (i != survivor) down.push_back(i);
  }
  ASSERT_EQ(down.size(), 2u);
  for (size_t i : down) (*own)->KillMember(i);
  const std::string endpoint = (*own)->members()[survivor].client_endpoint;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<etcdserverpb::StatusResponse> status = (*client)->EndpointStatus(endpoint);
  while (absl::Now() < deadline && (!status.ok() || status->leader() != 0)) {
    status = (*client)->EndpointStatus(endpoint);
  }
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(status->leader(), 0u) << "the survivor still names a leader";
  EXPECT_EQ(std::vector<std::string>(status->errors().begin(), status->errors().end()),
            std::vector<std::string>{"etcdserver: no leader"});

  std::unique_ptr<etcdserverpb::KV::Stub> kv = KvStub(endpoint);
  {
    // etcd 3.4 has been seen to answer UNKNOWN here too on a loaded machine
    // (see the read below); Arbiter must answer DEADLINE_EXCEEDED.
    const grpc::Status s = PutWithin(*kv, "no-leader", absl::Milliseconds(800));
    const bool etcd_race = GetParam().name == "etcd" && s.error_code() == grpc::StatusCode::UNKNOWN;
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || etcd_race)
        << s.error_code() << " " << s.error_message();
  }
  etcdserverpb::RangeRequest range;
  range.set_key("no-leader");
  etcdserverpb::RangeResponse response;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(800)));
    const grpc::Status s = kv->Range(&ctx, range, &response);
    // On a loaded machine etcd 3.4 has been seen to answer UNKNOWN here (an
    // error outside its gRPC error map, from its read loop giving up as the
    // deadline passes); Arbiter must answer DEADLINE_EXCEEDED.
    const bool etcd_race = GetParam().name == "etcd" && s.error_code() == grpc::StatusCode::UNKNOWN;
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || etcd_race)
        << s.error_code() << " " << s.error_message();
  }
  {
    // Unless the call asks for a leader: then it fails at once.
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    ctx.AddMetadata("hasleader", "true");
    const grpc::Status s = kv->Range(&ctx, range, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(s.error_message(), "etcdserver: no leader");
  }
  // A serializable read needs no leader.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    range.set_serializable(true);
    const grpc::Status s = kv->Range(&ctx, range, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  // The write is sent before the restarted member can help elect a leader
  // (starting a process and an election timeout take far longer).
  grpc::Status late;
  std::thread writer([&] { late = PutWithin(*kv, "after-election", absl::Seconds(20)); });
  const absl::Status restarted = (*own)->RestartMember(down[0]);
  writer.join();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_TRUE(late.ok()) << late.error_code() << ": " << late.error_message();
}

INSTANTIATE_TEST_SUITE_P(Cluster, ClientTest, ::testing::ValuesIn(::arbiter::testing::AllKinds()),
                         [](const ::testing::TestParamInfo<ClusterKind>& info) {
                           return info.param.name;
                         });

TEST(EndpointTargetTest, AcceptsHostPortAndHttpOnly) {
  EXPECT_EQ(EndpointTarget("127.0.0.1:2379").value_or(""), "127.0.0.1:2379");
  EXPECT_EQ(EndpointTarget("http://127.0.0.1:2379").value_or(""), "127.0.0.1:2379");
  EXPECT_EQ(EndpointTarget("http://127.0.0.1:2379/").value_or(""), "127.0.0.1:2379");
  EXPECT_FALSE(EndpointTarget("https://127.0.0.1:2379").ok());
  EXPECT_FALSE(EndpointTarget("127.0.0.1").ok());
  EXPECT_FALSE(EndpointTarget("").ok());
  EXPECT_FALSE(Client::Create(ClientOptions{}).ok());
}

// A member that says it leads, fails every Put with UNAVAILABLE, and fails
// the first `range_failures` Ranges with UNAVAILABLE.
class FakeMember final : public etcdserverpb::KV::Service,
                         public etcdserverpb::Maintenance::Service {
 public:
  explicit FakeMember(int range_failures) : range_failures_(range_failures) {}

  grpc::Status Put(grpc::ServerContext*, const etcdserverpb::PutRequest*,
                   etcdserverpb::PutResponse*) override {
    ++puts;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed");
  }
  grpc::Status Range(grpc::ServerContext*, const etcdserverpb::RangeRequest*,
                     etcdserverpb::RangeResponse* response) override {
    if (ranges++ < range_failures_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed");
    }
    response->set_count(7);
    return grpc::Status::OK;
  }
  grpc::Status Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                      etcdserverpb::StatusResponse* response) override {
    response->mutable_header()->set_member_id(1);
    response->set_leader(1);
    return grpc::Status::OK;
  }

  std::atomic<int> puts{0};
  std::atomic<int> ranges{0};

 private:
  const int range_failures_;
};

struct FakeServer {
  explicit FakeServer(int range_failures) : member(range_failures) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(static_cast<etcdserverpb::KV::Service*>(&member));
    builder.RegisterService(static_cast<etcdserverpb::Maintenance::Service*>(&member));
    server = builder.BuildAndStart();
  }
  ~FakeServer() { server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1))); }
  std::string endpoint() const { return absl::StrCat("127.0.0.1:", port); }

  FakeMember member;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

TEST(ClientRetryTest, ReadsAreRetriedOnUnavailableWritesAreNot) {
  FakeServer fake(/*range_failures=*/3);
  ASSERT_NE(fake.server, nullptr);
  ClientOptions options;
  options.endpoints = {fake.endpoint()};
  options.initial_backoff = absl::Milliseconds(1);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  ASSERT_TRUE(client.ok());

  absl::StatusOr<etcdserverpb::PutResponse> put = (*client)->Put(etcdserverpb::PutRequest());
  EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(put.status().message(), "etcdserver: leader changed");
  EXPECT_EQ(fake.member.puts.load(), 1);

  absl::StatusOr<etcdserverpb::RangeResponse> range =
      (*client)->Range(etcdserverpb::RangeRequest());
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->count(), 7);
  EXPECT_EQ(fake.member.ranges.load(), 4);
}

TEST(ClientRetryTest, ReadsGiveUpAtTheDeadline) {
  FakeServer fake(/*range_failures=*/1 << 30);
  ClientOptions options;
  options.endpoints = {fake.endpoint()};
  options.call_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<etcdserverpb::RangeResponse> range =
      (*client)->Range(etcdserverpb::RangeRequest());
  EXPECT_EQ(range.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_GT(fake.member.ranges.load(), 1);
}

TEST(ClientRetryTest, NoEndpointUpEndsAtTheDeadline) {
  ClientOptions options;
  options.endpoints = {absl::StrCat("127.0.0.1:", ::arbiter::testing::PickFreePort())};
  options.call_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  const absl::Time start = absl::Now();
  EXPECT_EQ((*client)->Put(etcdserverpb::PutRequest()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ((*client)->Range(etcdserverpb::RangeRequest()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

}  // namespace
}  // namespace arbiter::client
