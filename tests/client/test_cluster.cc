#include "tests/client/test_cluster.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "tests/client/process.h"

namespace arbiter::testing {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

// Members of either kind take the same flags (arbiterd's are etcd's), so
// one class starts both; `kind` names the cluster in errors and temp dirs.
class ProcessCluster : public TestCluster {
 public:
  ProcessCluster(std::string binary, std::string kind, int size)
      : binary_(std::move(binary)),
        kind_(std::move(kind)),
        dir_(MakeTempDir(kind_)),
        processes_(size) {
    for (int i = 0; i < size; ++i) {
      TestMember m;
      m.name = absl::StrCat("m", i + 1);
      m.client_endpoint = absl::StrCat("127.0.0.1:", PickFreePort());
      m.peer_url = absl::StrCat("http://127.0.0.1:", PickFreePort());
      members_.push_back(m);
    }
  }
  ~ProcessCluster() override {
    for (ChildProcess& p : processes_) p.Stop();
    RemoveTree(dir_);
  }

  const std::vector<TestMember>& members() const override { return members_; }
  uint64_t cluster_id() const override { return cluster_id_; }

  absl::Status StartAll() {
    for (size_t i = 0; i < members_.size(); ++i) {
      if (absl::Status s = StartMember(i, /*fresh=*/true); !s.ok()) return s;
    }
    if (absl::Status s = WaitReady(); !s.ok()) return s;
    return LearnIds();
  }

  void KillMember(size_t index) override { processes_[index].Kill(); }
  absl::Status RestartMember(size_t index) override { return StartMember(index, false); }

  absl::Status WaitReady() override {
    std::vector<const TestMember*> running;
    std::vector<std::string> endpoints;
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!processes_[i].running()) continue;
      running.push_back(&members_[i]);
      endpoints.push_back(members_[i].client_endpoint);
    }
    client::ClientOptions options;
    options.endpoints = endpoints;
    options.call_timeout = absl::Seconds(1);
    absl::StatusOr<std::unique_ptr<client::Client>> client = client::Client::Create(options);
    if (!client.ok()) return client.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::Status last;
    while (absl::Now() < deadline) {
      last = CheckReady(**client, running);
      if (last.ok()) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError(
        absl::StrCat(kind_, " cluster not ready (logs in ", dir_, "): ", last.message()));
  }

 private:
  // Ready: every running member answers status and health and knows the
  // leader, and the member list shows each running member's client URLs.
  // etcd serves clients only once its own attributes are published, so the
  // last condition holds as soon as the others do there; an arbiterd member
  // starts serving while its publication is still in flight, and tests that
  // read the member list right after start would race it.
  static absl::Status CheckReady(client::Client& client,
                                 const std::vector<const TestMember*>& running) {
    for (const TestMember* m : running) {
      absl::StatusOr<etcdserverpb::StatusResponse> status =
          client.EndpointStatus(m->client_endpoint);
      if (!status.ok()) return status.status();
      if (status->leader() == 0) {
        return absl::UnavailableError(absl::StrCat(m->client_endpoint, " has no leader"));
      }
      if (absl::Status health = client.EndpointHealth(m->client_endpoint); !health.ok()) {
        return health;
      }
    }
    absl::StatusOr<etcdserverpb::MemberListResponse> list = client.MemberList();
    if (!list.ok()) return list.status();
    for (const TestMember* m : running) {
      bool published = false;
      for (const etcdserverpb::Member& member : list->members()) {
        published = published || (member.name() == m->name && member.clienturls_size() > 0);
      }
      if (!published) {
        return absl::UnavailableError(absl::StrCat(m->name, " has not published its client URLs"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status StartMember(size_t i, bool fresh) {
    std::vector<std::string> cluster;
    for (const TestMember& m : members_) cluster.push_back(absl::StrCat(m.name, "=", m.peer_url));
    const TestMember& m = members_[i];
    const std::string client_url = absl::StrCat("http://", m.client_endpoint);
    std::vector<std::string> argv = {binary_,
                                     "--name",
                                     m.name,
                                     "--data-dir",
                                     absl::StrCat(dir_, "/", m.name),
                                     "--listen-client-urls",
                                     client_url,
                                     "--advertise-client-urls",
                                     client_url,
                                     "--listen-peer-urls",
                                     m.peer_url,
                                     "--initial-advertise-peer-urls",
                                     m.peer_url,
                                     "--initial-cluster",
                                     absl::StrJoin(cluster, ","),
                                     "--initial-cluster-state",
                                     fresh ? "new" : "existing",
                                     "--initial-cluster-token",
                                     "arbiter-client-test",
                                     "--heartbeat-interval",
                                     "50",
                                     "--election-timeout",
                                     "500"};
    return processes_[i].Start(argv, absl::StrCat(dir_, "/", m.name, ".log"));
  }

  absl::Status LearnIds() {
    client::ClientOptions options;
    options.endpoints = ClientEndpoints();
    absl::StatusOr<std::unique_ptr<client::Client>> client = client::Client::Create(options);
    if (!client.ok()) return client.status();
    absl::StatusOr<etcdserverpb::MemberListResponse> list = (*client)->MemberList();
    if (!list.ok()) return list.status();
    cluster_id_ = list->header().cluster_id();
    for (const etcdserverpb::Member& member : list->members()) {
      for (TestMember& m : members_) {
        if (m.name == member.name()) m.id = member.id();
      }
    }
    return absl::OkStatus();
  }

  const std::string binary_;
  const std::string kind_;
  const std::string dir_;
  std::vector<TestMember> members_;
  std::vector<ChildProcess> processes_;
  uint64_t cluster_id_ = 0;
};

}  // namespace

std::vector<std::string> TestCluster::ClientEndpoints() const {
  std::vector<std::string> out;
  for (const TestMember& m : members()) out.push_back(m.client_endpoint);
  return out;
}

namespace {

ClusterKind ProcessClusterKind(const std::string& name, const std::string& binary,
                               const std::string& missing) {
  ClusterKind kind;
  kind.name = name;
  if (access(binary.c_str(), X_OK) != 0) kind.unavailable_reason = missing;
  kind.start = [name, binary](int size) -> absl::StatusOr<std::unique_ptr<TestCluster>> {
    auto cluster = std::make_unique<ProcessCluster>(binary, name, size);
    if (absl::Status s = cluster->StartAll(); !s.ok()) return s;
    return cluster;
  };
  return kind;
}

}  // namespace

ClusterKind EtcdClusterKind() {
  return ProcessClusterKind("etcd", kEtcd, "etcd 3.4 is not installed");
}

ClusterKind ArbiterClusterKind() {
  return ProcessClusterKind("arbiter", ARBITERD_PATH, absl::StrCat(ARBITERD_PATH, " is not built"));
}

std::vector<ClusterKind> AllKinds() { return {EtcdClusterKind(), ArbiterClusterKind()}; }

absl::StatusOr<TestCluster*> SharedCluster(const ClusterKind& kind) {
  static auto* clusters = new std::map<std::string, std::unique_ptr<TestCluster>>();
  static const bool cleanup = [] {
    std::atexit([] { clusters->clear(); });
    return true;
  }();
  (void)cleanup;
  auto it = clusters->find(kind.name);
  if (it == clusters->end()) {
    absl::StatusOr<std::unique_ptr<TestCluster>> started = kind.start(3);
    if (!started.ok()) return started.status();
    it = clusters->emplace(kind.name, *std::move(started)).first;
  }
  return it->second.get();
}

}  // namespace arbiter::testing
