// The differential test of arbiterctl: every step of every script in
// testdata/ runs through etcdctl 3.4 against one cluster and through
// arbiterctl against a second cluster of the same kind, in lockstep (so both
// clusters see the same writes and reach the same revisions), and the two
// runs must print the same standard output and error and exit with the same
// code, after Normalize (ctl_script.h) has replaced what legitimately
// differs between two clusters.

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/client/ctl_script.h"
#include "tests/client/process.h"
#include "tests/client/test_cluster.h"

namespace arbiter::testing {
namespace {

constexpr char kEtcdctl[] = "/usr/bin/etcdctl";
constexpr absl::Duration kCommandTimeout = absl::Seconds(30);

struct DiffParam {
  ClusterKind kind;
  std::string script;
};

void PrintTo(const DiffParam& param, std::ostream* out) {
  *out << param.kind.name << "/" << param.script;
}

std::vector<DiffParam> Params() {
  std::vector<DiffParam> params;
  for (const ClusterKind& kind : {EtcdClusterKind()}) {
    for (const char* script : {"kv", "get_flags", "txn", "errors", "cluster"}) {
      params.push_back({kind, script});
    }
  }
  return params;
}

// The two clusters of a kind: etcdctl talks to `reference`, arbiterctl to
// `subject`. Shared by all scripts, which stay in lockstep.
struct ClusterPair {
  std::unique_ptr<TestCluster> reference;
  std::unique_ptr<TestCluster> subject;
};

ClusterPair* Pair(const ClusterKind& kind) {
  static auto* pairs = new std::map<std::string, ClusterPair>();
  static const bool cleanup = [] {
    std::atexit([] { pairs->clear(); });
    return true;
  }();
  (void)cleanup;
  auto it = pairs->find(kind.name);
  if (it != pairs->end()) return &it->second;
  absl::StatusOr<std::unique_ptr<TestCluster>> reference = kind.start(3);
  absl::StatusOr<std::unique_ptr<TestCluster>> subject = kind.start(3);
  if (!reference.ok() || !subject.ok()) {
    ADD_FAILURE() << reference.status() << " / " << subject.status();
    return nullptr;
  }
  ClusterPair& pair = (*pairs)[kind.name];
  pair.reference = *std::move(reference);
  pair.subject = *std::move(subject);
  return &pair;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CtlDiffTest : public ::testing::TestWithParam<DiffParam> {
 protected:
  void SetUp() override {
    if (!GetParam().kind.unavailable_reason.empty()) {
      GTEST_SKIP() << GetParam().kind.unavailable_reason;
    }
    if (access(kEtcdctl, X_OK) != 0) GTEST_SKIP() << "etcdctl 3.4 is not installed";
    pair_ = Pair(GetParam().kind);
    ASSERT_NE(pair_, nullptr);
    dead_ = absl::StrCat("127.0.0.1:", PickFreePort());
  }

  ClusterPair* pair_ = nullptr;
  std::string dead_;
};

std::string Show(const RunResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\n--- stdout\n", r.out, "--- stderr\n", r.err);
}

TEST_P(CtlDiffTest, SameOutputAsEtcdctl) {
  const std::string path = absl::StrCat(ARBITER_CLIENT_TESTDATA, "/", GetParam().script, ".txt");
  absl::StatusOr<std::vector<ScriptStep>> steps = ParseScript(ReadFile(path));
  ASSERT_TRUE(steps.ok()) << path << ": " << steps.status();
  ASSERT_FALSE(steps->empty()) << path;
  for (const ScriptStep& step : *steps) {
    const std::string where =
        absl::StrCat(path, ":", step.line, ": ", absl::StrJoin(step.args, " "));
    std::vector<std::string> etcdctl = {kEtcdctl};
    for (std::string& a : ExpandArgs(step, *pair_->reference, dead_)) etcdctl.push_back(a);
    std::vector<std::string> arbiterctl = {ARBITERCTL_PATH};
    for (std::string& a : ExpandArgs(step, *pair_->subject, dead_)) arbiterctl.push_back(a);
    absl::StatusOr<RunResult> want = RunCommand(etcdctl, step.input, kCommandTimeout);
    absl::StatusOr<RunResult> got = RunCommand(arbiterctl, step.input, kCommandTimeout);
    ASSERT_TRUE(want.ok()) << where << ": " << want.status();
    ASSERT_TRUE(got.ok()) << where << ": " << got.status();
    RunResult w = *want, g = *got;
    w.out = Normalize(w.out, *pair_->reference, step.options);
    g.out = Normalize(g.out, *pair_->subject, step.options);
    w.err = Normalize(w.err, *pair_->reference, step.options);
    g.err = Normalize(g.err, *pair_->subject, step.options);
    if (step.options.count("ignore-stdout")) w.out = g.out = "";
    EXPECT_TRUE(w.exit_code == g.exit_code && w.out == g.out && w.err == g.err)
        << where << "\n=== etcdctl " << Show(w) << "=== arbiterctl " << Show(g);
  }
}

INSTANTIATE_TEST_SUITE_P(Scripts, CtlDiffTest, ::testing::ValuesIn(Params()),
                         [](const ::testing::TestParamInfo<DiffParam>& info) {
                           return info.param.kind.name + "_" + info.param.script;
                         });

// arbiterctl's additions to etcdctl, checked against what etcdctl reports.
class CtlExtensionTest : public ::testing::TestWithParam<ClusterKind> {
 protected:
  void SetUp() override {
    if (!GetParam().unavailable_reason.empty()) GTEST_SKIP() << GetParam().unavailable_reason;
    if (access(kEtcdctl, X_OK) != 0) GTEST_SKIP() << "etcdctl 3.4 is not installed";
    pair_ = Pair(GetParam());
    ASSERT_NE(pair_, nullptr);
  }

  RunResult Run(const char* tool, const std::vector<std::string>& args,
                const TestCluster* cluster = nullptr) {
    if (cluster == nullptr) cluster = pair_->subject.get();
    std::vector<std::string> argv = {
        tool, "--endpoints=" + absl::StrJoin(cluster->ClientEndpoints(), ",")};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<RunResult> r = RunCommand(argv, "", kCommandTimeout);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(RunResult());
  }

  ClusterPair* pair_ = nullptr;
};

// --count-only is not an etcdctl 3.4 flag, so it is checked against the
// count etcdctl reports for the same range.
TEST_P(CtlExtensionTest, CountOnlyMatchesEtcdctlsCount) {
  // Writes go to both clusters, which keeps them in lockstep for the
  // scripts.
  const auto both = [&](const std::vector<std::string>& args) {
    Run(kEtcdctl, args, pair_->reference.get());
    Run(kEtcdctl, args, pair_->subject.get());
  };
  for (int i = 0; i < 3; ++i) both({"put", absl::StrCat("count/", i), "v"});
  const RunResult json = Run(kEtcdctl, {"get", "count/", "--prefix", "-w", "json"});
  ASSERT_NE(json.out.find("\"count\":3"), std::string::npos) << json.out;
  const RunResult simple = Run(ARBITERCTL_PATH, {"get", "count/", "--prefix", "--count-only"});
  EXPECT_EQ(simple.exit_code, 0);
  EXPECT_EQ(simple.out, "3\n");
  const RunResult counted =
      Run(ARBITERCTL_PATH, {"get", "count/", "--prefix", "--count-only", "-w", "json"});
  EXPECT_NE(counted.out.find("\"count\":3"), std::string::npos) << counted.out;
  EXPECT_EQ(counted.out.find("\"kvs\""), std::string::npos) << counted.out;
  both({"del", "count/", "--prefix"});
}

INSTANTIATE_TEST_SUITE_P(Cluster, CtlExtensionTest, ::testing::Values(EtcdClusterKind()),
                         [](const ::testing::TestParamInfo<ClusterKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace arbiter::testing
