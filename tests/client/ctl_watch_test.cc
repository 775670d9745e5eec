// The differential test of the long-running watch command: each case runs
// a watch through etcdctl 3.4 against a reference etcd cluster and through
// arbiterctl against a cluster of the kind under test (and, for a kind
// other than etcd, through etcdctl against a third cluster of that kind),
// makes the same writes on every cluster (so revisions stay in lockstep),
// waits with a deadline until the reference has printed what the case
// waits for, waits until each subject has printed the same (or exited),
// stops every watcher by its PID, and compares standard output and error
// after Normalize (ctl_script.h). Interactive cases feed the same lines
// to every watcher, one step at a time; one case crashes a member while
// the watchers run (each tool must go on without a gap or a repeat). One-shot watch commands
// (argument errors, watches the server cancels at once) are in testdata/watch.txt.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/client/ctl_script.h"
#include "tests/client/process.h"
#include "tests/client/test_cluster.h"

namespace arbiter::testing {
namespace {

constexpr char kEtcdctl[] = "/usr/bin/etcdctl";
constexpr absl::Duration kWait = absl::Seconds(15);

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A command running in the background with a pipe for its standard input
// and its outputs in files, stopped by its PID.
class LiveProcess {
 public:
  LiveProcess() : dir_(MakeTempDir("watch")) {}
  ~LiveProcess() {
    Stop();
    if (input_ >= 0) close(input_);
    RemoveTree(dir_);
  }

  absl::Status Start(const std::vector<std::string>& argv) {
    // A watcher that exits early must fail the comparison, not kill the
    // test when it is sent a line.
    signal(SIGPIPE, SIG_IGN);
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) return absl::InternalError("pipe");
    const std::string out = dir_ + "/out";
    const std::string err = dir_ + "/err";
    std::vector<char*> c_argv;
    for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
    c_argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) return absl::InternalError("fork");
    if (pid_ == 0) {
      dup2(pipe_fds[0], 0);
      const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      execv(c_argv[0], c_argv.data());
      _exit(127);
    }
    close(pipe_fds[0]);
    input_ = pipe_fds[1];
    return absl::OkStatus();
  }

  void Send(const std::string& line) {
    const std::string text = line + "\n";
    EXPECT_EQ(write(input_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }

  std::string out() const { return ReadAll(dir_ + "/out"); }
  std::string err() const { return ReadAll(dir_ + "/err"); }

  // Whether it has exited by itself (its code is then exit_code()).
  bool Exited() {
    if (pid_ <= 0) return exited_;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      exited_ = true;
      pid_ = -1;
    }
    return exited_;
  }
  int exit_code() const { return exit_code_; }

  // SIGTERM, then SIGKILL if it lingers.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (absl::Now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    pid_ = -1;
  }

 private:
  const std::string dir_;
  pid_t pid_ = -1;
  int input_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// One step of an interactive case: a line for standard input, then what
// to wait for in standard output or error.
struct Step {
  std::string input;
  std::string wait_out;
  std::string wait_err;
  // Done first: member 1 of every cluster crashes (SIGKILL; it restarts
  // when the case ends), then these etcdctl writes go to every cluster.
  bool crash_first_member = false;
  std::vector<std::vector<std::string>> writes;
};

struct LiveCase {
  std::string name;
  // etcdctl commands run on every cluster before the watchers start. In
  // every argument {B+k} is the revision of the case's first write plus k.
  std::vector<std::vector<std::string>> before;
  // The watch command line, without the tool and --endpoints.
  std::vector<std::string> watch;
  // etcdctl commands run on every cluster once the watchers run.
  std::vector<std::vector<std::string>> during;
  // The steps; the last one's wait (or the process's exit) ends the case.
  std::vector<Step> steps;
};

std::vector<LiveCase> Cases() {
  const std::vector<std::string> exec_line = {
      "sh", "-c",
      "echo \"$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY "
      "$ETCD_WATCH_VALUE\""};
  std::vector<std::string> exec_watch = {"watch", "e/k", "--rev", "{B+1}", "--"};
  exec_watch.insert(exec_watch.end(), exec_line.begin(), exec_line.end());
  return {
      {"HistoryWithPrevKv",
       {{"put", "h/k", "1"},
        {"put", "h/k", "2"},
        {"del", "h/k"},
        {"put", "h/other", "x"},
        {"put", "h/k", "3"}},
       {"watch", "h/k", "--rev", "{B+1}", "--prev-kv"},
       {{"put", "h/k", "done"}},
       {{"", "done", ""}}},
      {"HistoryJson",
       {{"put", "j/k", "1"}, {"put", "j/k", "2"}, {"del", "j/k"}, {"put", "j/k", "done"}},
       {"-w", "json", "watch", "j/k", "--rev", "{B+1}", "--prev-kv"},
       {},
       {{"", "ZG9uZQ==", ""}}},
      {"PrefixLive",
       {{"put", "p/a", "0"}},
       {"watch", "p/", "--prefix", "--rev", "{B+1}"},
       {{"put", "p/a", "1"},
        {"put", "q", "outside"},
        {"put", "p/b", "2"},
        {"del", "p/a"},
        {"del", "p/", "--prefix"},
        {"put", "p/z", "done"}},
       {{"", "done", ""}}},
      {"RangeHex",
       {{"put", "r/a", "1"}, {"put", "r/b", "2"}, {"put", "r/c", "3"}, {"put", "r/b", "done"}},
       {"--hex", "watch", "r/a", "r/c", "--rev", "{B+1}"},
       {},
       {{"", "\\x64\\x6f\\x6e\\x65", ""}}},
      {"ExecCommand",
       {{"put", "e/k", "1"}, {"del", "e/k"}, {"put", "e/k", "done"}},
       exec_watch,
       {},
       {{"", "\"done\"", ""}}},
      {"CompactedStart",
       {{"put", "c/k", "1"}, {"put", "c/k", "2"}, {"compaction", "{B+1}"}},
       {"watch", "c/k", "--rev", "{B+0}"},
       {},
       {{"", "", "canceled by the server"}}},
      {"CompactedStartJson",
       {{"put", "c/k", "1"}, {"put", "c/k", "2"}, {"compaction", "{B+1}"}},
       {"-w", "json", "watch", "c/k", "--rev", "{B+0}"},
       {},
       {{"", "", "canceled by the server"}}},
      {"Interactive",
       {{"put", "i/a", "v1"}, {"put", "i/x", "x1"}, {"put", "i/a", "v2"}},
       {"watch", "-i"},
       {},
       {{"watch i/ --prefix --rev {B+0}", "v2", ""},
        {"foo bar", "", "(only support watch)"},
        {"watch b a", "", "watcher range is empty"},
        {"watch a b --prefix", "", "mutually exclusive"},
        {"progress", "progress notify:", ""},
        {"watch i/x --rev {B+0} --prev-kv -- echo fired", "fired", ""}}},
      {"SurvivesAMemberCrash",
       {{"put", "x/k", "0"}},
       {"watch", "x/", "--prefix", "--prev-kv", "--rev", "{B+1}"},
       {},
       {{"", "two", "", false, {{"put", "x/a", "one"}, {"put", "x/b", "two"}}},
        {"", "four", "", true, {{"put", "x/c", "three"}, {"del", "x/a"}, {"put", "x/d", "four"}}},
        {"", "done", "", false, {{"put", "x/b", "five"}, {"put", "x/e", "done"}}}}},
      {"InteractiveJson",
       {{"put", "ij/a", "v1"}, {"put", "ij/a", "v2"}},
       {"-w", "json", "watch", "-i"},
       {},
       {{"watch ij/a --rev {B+0}", "djI=", ""}, {"progress", "progress notify:", ""}}},
  };
}

// {B+k} placeholders.
std::string Expand(const std::string& text, int64_t base) {
  std::string out = text;
  for (int k = 0; k < 10; ++k) {
    out = absl::StrReplaceAll(out, {{absl::StrCat("{B+", k, "}"), absl::StrCat(base + k)}});
  }
  return out;
}

std::vector<std::string> Expand(const std::vector<std::string>& args, int64_t base) {
  std::vector<std::string> out;
  for (const std::string& a : args) out.push_back(Expand(a, base));
  return out;
}

// The revision in etcdctl's JSON header.
int64_t HeaderRevision(const std::string& json) {
  const size_t at = json.find("\"revision\":");
  if (at == std::string::npos) return 0;
  int64_t revision = 0;
  const size_t start = at + 11;
  const size_t end = json.find_first_not_of("0123456789", start);
  return absl::SimpleAtoi(json.substr(start, end - start), &revision) ? revision : 0;
}

std::vector<ClusterKind> Kinds() { return {EtcdClusterKind(), ArbiterClusterKind()}; }

bool IsEtcd(const ClusterKind& kind) { return kind.name == EtcdClusterKind().name; }

// The clusters of a kind, in lockstep: etcdctl on `reference` (etcd),
// arbiterctl on `subject`, etcdctl on `etcdctl_subject` (kinds other than
// etcd).
struct ClusterSet {
  std::unique_ptr<TestCluster> reference;
  std::unique_ptr<TestCluster> subject;
  std::unique_ptr<TestCluster> etcdctl_subject;

  std::vector<TestCluster*> All() const {
    std::vector<TestCluster*> out = {reference.get(), subject.get()};
    if (etcdctl_subject != nullptr) out.push_back(etcdctl_subject.get());
    return out;
  }
};

ClusterSet* Clusters(const ClusterKind& kind) {
  static auto* sets = new std::map<std::string, ClusterSet>();
  static const bool cleanup = [] {
    std::atexit([] { sets->clear(); });
    return true;
  }();
  (void)cleanup;
  if (auto it = sets->find(kind.name); it != sets->end()) return &it->second;
  ClusterSet set;
  const auto start = [&](const ClusterKind& k, std::unique_ptr<TestCluster>* out) {
    absl::StatusOr<std::unique_ptr<TestCluster>> c = k.start(3);
    if (!c.ok()) {
      ADD_FAILURE() << c.status();
      return false;
    }
    *out = *std::move(c);
    return true;
  };
  if (!start(EtcdClusterKind(), &set.reference) || !start(kind, &set.subject)) return nullptr;
  if (!IsEtcd(kind) && !start(kind, &set.etcdctl_subject)) return nullptr;
  return &sets->emplace(kind.name, std::move(set)).first->second;
}

struct LiveParam {
  ClusterKind kind;
  LiveCase live;
};

void PrintTo(const LiveParam& p, std::ostream* out) { *out << p.kind.name << "/" << p.live.name; }

std::vector<LiveParam> Params() {
  std::vector<LiveParam> params;
  for (const ClusterKind& kind : Kinds()) {
    for (const LiveCase& c : Cases()) params.push_back({kind, c});
  }
  return params;
}

// A watcher under test: the tool, its cluster and its process.
struct Watching {
  std::string tool;
  TestCluster* cluster;
  std::unique_ptr<LiveProcess> process;
  std::string label;

  std::string Out() const { return Normalize(process->out(), *cluster, {}); }
  std::string Err() const { return Normalize(process->err(), *cluster, {}); }
};

// Polls until `done` holds or the process exits; false at the deadline.
template <typename Done>
bool WaitUntil(Watching& run, Done done, absl::Time deadline) {
  for (;;) {
    if (done() || run.process->Exited()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

class CtlWatchTest : public ::testing::TestWithParam<LiveParam> {
 protected:
  void SetUp() override {
    const ClusterKind& kind = GetParam().kind;
    if (!kind.unavailable_reason.empty()) GTEST_SKIP() << kind.unavailable_reason;
    if (!EtcdClusterKind().unavailable_reason.empty()) {
      GTEST_SKIP() << EtcdClusterKind().unavailable_reason;
    }
    if (access(kEtcdctl, X_OK) != 0) GTEST_SKIP() << "etcdctl 3.4 is not installed";
    clusters_ = Clusters(kind);
    ASSERT_NE(clusters_, nullptr);
  }

  std::vector<std::string> Argv(const std::string& tool, const TestCluster& cluster,
                                const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        tool, "--endpoints=" + absl::StrJoin(cluster.ClientEndpoints(), ",")};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Runs an etcdctl command on every cluster; returns the reference's
  // standard output.
  std::string OnAll(const std::vector<std::string>& args) {
    std::string reference;
    for (TestCluster* cluster : clusters_->All()) {
      std::vector<std::string> argv = Argv(kEtcdctl, *cluster, args);
      if (crashed_) {
        // Only the members that run.
        std::vector<std::string> up = cluster->ClientEndpoints();
        up.erase(up.begin());
        argv[1] = "--endpoints=" + absl::StrJoin(up, ",");
      }
      absl::StatusOr<RunResult> r = RunCommand(argv, "", kWait);
      EXPECT_TRUE(r.ok() && r->exit_code == 0)
          << absl::StrJoin(args, " ") << ": " << (r.ok() ? r->err : r.status().ToString());
      if (cluster == clusters_->reference.get() && r.ok()) reference = r->out;
    }
    return reference;
  }

  void TearDown() override {
    if (!crashed_) return;
    for (TestCluster* cluster : clusters_->All()) {
      EXPECT_TRUE(cluster->RestartMember(0).ok());
      EXPECT_TRUE(cluster->WaitReady().ok());
    }
  }

  ClusterSet* clusters_ = nullptr;
  bool crashed_ = false;
};

TEST_P(CtlWatchTest, SameOutputAsEtcdctl) {
  const LiveCase& c = GetParam().live;
  // The case's first write fixes the revisions its arguments name.
  int64_t base = 0;
  for (size_t i = 0; i < c.before.size(); ++i) {
    std::vector<std::string> args = Expand(c.before[i], base);
    if (i == 0) args.insert(args.begin(), {"-w", "json"});
    const std::string out = OnAll(args);
    if (i == 0) base = HeaderRevision(out);
    ASSERT_GT(base, 0) << out;
  }

  std::vector<Watching> runs;
  runs.push_back({kEtcdctl, clusters_->reference.get(), nullptr, "etcdctl on etcd"});
  runs.push_back({ARBITERCTL_PATH, clusters_->subject.get(), nullptr,
                  "arbiterctl on " + GetParam().kind.name});
  if (clusters_->etcdctl_subject != nullptr) {
    runs.push_back({kEtcdctl, clusters_->etcdctl_subject.get(), nullptr,
                    "etcdctl on " + GetParam().kind.name});
  }
  for (Watching& run : runs) {
    run.process = std::make_unique<LiveProcess>();
    ASSERT_TRUE(run.process->Start(Argv(run.tool, *run.cluster, Expand(c.watch, base))).ok());
  }
  for (const std::vector<std::string>& args : c.during) OnAll(Expand(args, base));

  for (const Step& step : c.steps) {
    if (step.crash_first_member) {
      for (TestCluster* cluster : clusters_->All()) cluster->KillMember(0);
      crashed_ = true;
      // The writes below must not fail for want of a leader (a retried
      // write could apply twice and break the lockstep).
      for (TestCluster* cluster : clusters_->All()) ASSERT_TRUE(cluster->WaitReady().ok());
    }
    for (const std::vector<std::string>& args : step.writes) OnAll(Expand(args, base));
    if (!step.input.empty()) {
      for (Watching& run : runs) run.process->Send(Expand(step.input, base));
    }
    const auto printed = [&](const Watching& run) {
      return [&] {
        return absl::StrContains(run.Out(), step.wait_out) &&
               absl::StrContains(run.Err(), step.wait_err);
      };
    };
    ASSERT_TRUE(WaitUntil(runs[0], printed(runs[0]), absl::Now() + kWait))
        << "the reference did not print " << step.wait_out << step.wait_err << "\n"
        << runs[0].process->out() << runs[0].process->err();
    for (size_t i = 1; i < runs.size(); ++i) {
      WaitUntil(runs[i], printed(runs[i]), absl::Now() + kWait);
    }
  }
  // The subjects must print all the reference printed (not merely what the
  // last step waited for) before they are stopped.
  const std::string want_out = runs[0].Out();
  const std::string want_err = runs[0].Err();
  const bool exited = runs[0].process->Exited();
  for (size_t i = 1; i < runs.size(); ++i) {
    // When the reference exited by itself, so must the subject.
    WaitUntil(
        runs[i], [&] { return !exited && runs[i].Out() == want_out && runs[i].Err() == want_err; },
        absl::Now() + kWait);
  }
  for (Watching& run : runs) {
    if (!exited) run.process->Stop();
  }
  for (size_t i = 1; i < runs.size(); ++i) {
    Watching& run = runs[i];
    EXPECT_EQ(run.Out(), want_out) << run.label << " vs etcdctl on etcd";
    EXPECT_EQ(run.Err(), want_err) << run.label << " vs etcdctl on etcd";
    if (exited) {
      EXPECT_TRUE(run.process->Exited()) << run.label << " did not exit";
      EXPECT_EQ(run.process->exit_code(), runs[0].process->exit_code()) << run.label;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CtlWatchTest, ::testing::ValuesIn(Params()),
                         [](const ::testing::TestParamInfo<LiveParam>& info) {
                           return info.param.kind.name + "_" + info.param.live.name;
                         });

}  // namespace
}  // namespace arbiter::testing
