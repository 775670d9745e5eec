// elect and lock as long-running processes: etcdctl 3.4 and arbiterctl
// contend for the same election or lock on one cluster (Arbiter, and etcd
// as the reference), each must print what the other would, wait while the
// other holds, take over when the holder is interrupted or killed, and end
// with etcdctl's exit code and error when interrupted while waiting.
// (lock with a command, and the argument errors, are in the differential
// script testdata/coord.txt.)

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/client/process.h"
#include "tests/client/test_cluster.h"

extern char** environ;

namespace arbiter::testing {
namespace {

constexpr char kEtcdctl[] = "/usr/bin/etcdctl";
constexpr absl::Duration kWait = absl::Seconds(10);

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A command running in the background with its output in files.
class Contender {
 public:
  Contender(const std::string& tool, const TestCluster& cluster,
            const std::vector<std::string>& args)
      : dir_(MakeTempDir("contender")) {
    argv_ = {tool, "--endpoints=" + absl::StrJoin(cluster.ClientEndpoints(), ",")};
    argv_.insert(argv_.end(), args.begin(), args.end());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, (dir_ + "/out").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ + "/err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> c_argv;
    for (std::string& a : argv_) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    if (posix_spawn(&pid_, c_argv[0], &actions, nullptr, c_argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Contender() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    RemoveTree(dir_);
  }

  std::string out() const { return ReadAll(dir_ + "/out"); }
  // Standard error without clientv3's JSON log lines (etcdctl logs a
  // retried call that was cancelled).
  std::string err() const {
    std::string kept;
    for (absl::string_view line : absl::StrSplit(ReadAll(dir_ + "/err"), '\n')) {
      if (line.empty() || absl::StartsWith(line, "{\"level\":")) continue;
      absl::StrAppend(&kept, line, "\n");
    }
    return kept;
  }
  // Standard error as written, clientv3's log lines included.
  std::string raw_err() const { return ReadAll(dir_ + "/err"); }
  std::string name() const { return absl::StrJoin(argv_, " "); }

  // Polls the standard output until it matches or the time is up.
  bool WaitOut(const std::function<bool(const std::string&)>& done,
               absl::Duration timeout = kWait) const {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      if (done(out())) return true;
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }

  void Signal(int signal) {
    if (pid_ > 0) kill(pid_, signal);
  }
  // The exit code (128 + signal when killed by one), polled until the
  // deadline.
  std::optional<int> WaitExit(absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (absl::Now() >= deadline) return std::nullopt;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return std::nullopt;
  }

 private:
  std::vector<std::string> argv_;
  const std::string dir_;
  pid_t pid_ = -1;
};

// "<name>/<lease hex>\n<value>\n": what elect and lock print once held.
bool IsHolderOutput(const std::string& out, const std::string& name, const std::string& value) {
  return std::regex_match(out, std::regex(absl::StrCat(name, "/[0-9a-f]+\n", value, "\n")));
}

std::string KeyOf(const std::string& out) { return out.substr(0, out.find('\n')); }

int64_t LeaseOf(const std::string& key) {
  int64_t lease = 0;
  EXPECT_TRUE(absl::SimpleHexAtoi(key.substr(key.rfind('/') + 1), &lease)) << key;
  return lease;
}

class CtlCoordTest : public ::testing::TestWithParam<ClusterKind> {
 protected:
  void SetUp() override {
    if (!GetParam().unavailable_reason.empty()) GTEST_SKIP() << GetParam().unavailable_reason;
    if (access(kEtcdctl, X_OK) != 0) GTEST_SKIP() << "etcdctl 3.4 is not installed";
    absl::StatusOr<std::unique_ptr<TestCluster>> cluster = GetParam().start(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    client::ClientOptions options;
    options.endpoints = cluster_->ClientEndpoints();
    absl::StatusOr<std::unique_ptr<client::Client>> client = client::Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // The contender keys under "<name>/"; nullopt when the range fails.
  std::optional<std::vector<std::string>> ContenderKeys(const std::string& name) {
    etcdserverpb::RangeRequest range;
    range.set_key(name + "/");
    range.set_range_end(name + "0");
    range.set_keys_only(true);
    absl::StatusOr<etcdserverpb::RangeResponse> response = client_->Range(range);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return std::nullopt;
    std::vector<std::string> keys;
    for (const mvccpb::KeyValue& kv : response->kvs()) keys.push_back(kv.key());
    return keys;
  }
  // How many there are; -1 when the range fails.
  int Contenders(const std::string& name) {
    std::optional<std::vector<std::string>> keys = ContenderKeys(name);
    return keys.has_value() ? static_cast<int>(keys->size()) : -1;
  }
  bool WaitContenders(const std::string& name, int count) {
    const absl::Time deadline = absl::Now() + kWait;
    while (Contenders(name) != count) {
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

  std::unique_ptr<TestCluster> cluster_;
  std::unique_ptr<client::Client> client_;
};

// The tools in both roles.
std::vector<std::pair<std::string, std::string>> Pairings() {
  return {{kEtcdctl, ARBITERCTL_PATH}, {ARBITERCTL_PATH, kEtcdctl}};
}

TEST_P(CtlCoordTest, LockWaitsAndHandsOverOnInterruptAndOnKill) {
  int round = 0;
  for (const auto& [first, second] : Pairings()) {
    SCOPED_TRACE(absl::StrCat(first, " holds, ", second, " waits"));
    const std::string name = absl::StrCat("lk", round++);
    Contender holder(first, *cluster_, {"lock", "--ttl", "2", name});
    ASSERT_TRUE(holder.WaitOut([&](const std::string& o) { return IsHolderOutput(o, name, ""); }))
        << holder.out() << holder.err();
    Contender waiter(second, *cluster_, {"lock", "--ttl", "2", name});
    ASSERT_TRUE(WaitContenders(name, 2));
    // Interrupted while waiting: etcdctl's error, and the waiter's key goes.
    // arbiterctl deletes its key whenever the interrupt comes, so its
    // session's TTL is 60 s: only a delete can make the key go within the
    // wait (the default 10 s TTL would expire it inside the wait too).
    // etcdctl deletes it only once it is waiting: interrupted between its
    // key's creation and the answer that created it (possible on a loaded
    // host: the key is already visible here), it leaves the key to its
    // lease, so its session's TTL is short.
    std::vector<std::string> quit_args = {"lock", "--ttl", "60", name};
    if (second == kEtcdctl) quit_args = {"lock", "--ttl", "2", name};
    Contender quitter(second, *cluster_, quit_args);
    ASSERT_TRUE(WaitContenders(name, 3));
    quitter.Signal(SIGINT);
    EXPECT_EQ(quitter.WaitExit(), 1);
    EXPECT_EQ(quitter.err(), "Error: context canceled\n");
    EXPECT_EQ(quitter.out(), "");
    EXPECT_TRUE(WaitContenders(name, 2))
        << Contenders(name) << " contenders; " << quitter.raw_err();
    EXPECT_EQ(waiter.out(), "");

    // The holder crashes: the lock moves when its 2 s lease expires.
    holder.Signal(SIGKILL);
    EXPECT_EQ(holder.WaitExit(), 128 + SIGKILL);
    ASSERT_TRUE(waiter.WaitOut([&](const std::string& o) { return IsHolderOutput(o, name, ""); }))
        << waiter.out() << waiter.err();
    EXPECT_NE(KeyOf(waiter.out()), KeyOf(holder.out()));

    // Interrupted while holding: unlocks and exits 0; a new contender
    // gets the lock at once.
    Contender next(first, *cluster_, {"lock", name});
    ASSERT_TRUE(WaitContenders(name, 2));
    waiter.Signal(SIGINT);
    EXPECT_EQ(waiter.WaitExit(), 0);
    EXPECT_EQ(waiter.err(), "");
    ASSERT_TRUE(next.WaitOut([&](const std::string& o) { return IsHolderOutput(o, name, ""); }))
        << next.err();
    next.Signal(SIGTERM);
    EXPECT_EQ(next.WaitExit(), 0);
    EXPECT_TRUE(WaitContenders(name, 0));
  }
}

TEST_P(CtlCoordTest, ElectionObserversSeeEveryLeaderAndCandidatesTakeOver) {
  int round = 0;
  for (const auto& [first, second] : Pairings()) {
    SCOPED_TRACE(absl::StrCat(first, " leads, ", second, " campaigns"));
    const std::string name = absl::StrCat("el", round++);
    Contender observe_etcdctl(kEtcdctl, *cluster_, {"elect", "-l", name});
    Contender observe_arbiterctl(ARBITERCTL_PATH, *cluster_, {"elect", "--listen", name});
    Contender leader(first, *cluster_, {"elect", name, "p1"});
    ASSERT_TRUE(leader.WaitOut([&](const std::string& o) { return IsHolderOutput(o, name, "p1"); }))
        << leader.out() << leader.err();
    Contender candidate(second, *cluster_, {"elect", name, "p2"});
    ASSERT_TRUE(WaitContenders(name, 2));
    for (Contender* observer : {&observe_etcdctl, &observe_arbiterctl}) {
      EXPECT_TRUE(observer->WaitOut([&](const std::string& o) { return o == leader.out(); }))
          << observer->name() << ": " << observer->out() << observer->err();
    }
    EXPECT_EQ(candidate.out(), "");

    // The leader crashes; its 60 s session lease is revoked (what its
    // expiry would do, sooner): the candidate is elected.
    leader.Signal(SIGKILL);
    EXPECT_EQ(leader.WaitExit(), 128 + SIGKILL);
    ASSERT_TRUE(client_->Revoke(LeaseOf(KeyOf(leader.out()))).ok());
    ASSERT_TRUE(candidate.WaitOut([&](const std::string& o) {
      return IsHolderOutput(o, name, "p2");
    })) << candidate.out()
        << candidate.err();
    for (Contender* observer : {&observe_etcdctl, &observe_arbiterctl}) {
      EXPECT_TRUE(observer->WaitOut([&](const std::string& o) {
        return o == leader.out() + candidate.out();
      })) << observer->name()
          << ": " << observer->out() << observer->err();
    }

    // Interrupted while leading: resigns and exits 0; the next candidate
    // (the first tool again) is elected.
    Contender next(first, *cluster_, {"elect", name, "p3"});
    ASSERT_TRUE(WaitContenders(name, 2));
    candidate.Signal(SIGINT);
    EXPECT_EQ(candidate.WaitExit(), 0);
    EXPECT_EQ(candidate.err(), "");
    ASSERT_TRUE(next.WaitOut([&](const std::string& o) { return IsHolderOutput(o, name, "p3"); }))
        << next.err();
    for (Contender* observer : {&observe_etcdctl, &observe_arbiterctl}) {
      EXPECT_TRUE(observer->WaitOut([&](const std::string& o) {
        return o == leader.out() + candidate.out() + next.out();
      })) << observer->name()
          << ": " << observer->out() << observer->err();
      observer->Signal(SIGINT);
      EXPECT_EQ(observer->WaitExit(), 0) << observer->name();
      EXPECT_EQ(observer->err(), "") << observer->name();
    }
    // A campaign interrupted before it is elected fails as etcdctl's does.
    Contender quitter(second, *cluster_, {"elect", name, "p4"});
    ASSERT_TRUE(WaitContenders(name, 2));
    quitter.Signal(SIGINT);
    EXPECT_EQ(quitter.WaitExit(), 1);
    EXPECT_EQ(quitter.err(), "Error: context canceled\n");
    // arbiterctl deletes its key whenever the interrupt comes. etcdctl does
    // only once it is waiting: interrupted between its key's creation and
    // the answer that created it (possible on a loaded host), it leaves the
    // key to its 60 s session lease, which is revoked here instead.
    if (second == kEtcdctl) {
      for (const std::string& key : ContenderKeys(name).value_or(std::vector<std::string>())) {
        if (key != KeyOf(next.out())) (void)client_->Revoke(LeaseOf(key));
      }
    }
    EXPECT_TRUE(WaitContenders(name, 1)) << quitter.raw_err();
    next.Signal(SIGTERM);
    EXPECT_EQ(next.WaitExit(), 0);
    EXPECT_TRUE(WaitContenders(name, 0));
  }
}

INSTANTIATE_TEST_SUITE_P(Cluster, CtlCoordTest,
                         ::testing::Values(EtcdClusterKind(), ArbiterClusterKind()),
                         [](const ::testing::TestParamInfo<ClusterKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace arbiter::testing
