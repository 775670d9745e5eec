// The differential test of arbiterctl and the conformance test of Arbiter:
// every step of every script in testdata/ runs through etcdctl 3.4 against
// a reference etcd cluster and, in lockstep (so every cluster sees the same
// writes and reaches the same revisions), through arbiterctl against a
// cluster of the kind under test; for a kind other than etcd, also through
// etcdctl against a third cluster of that kind. Each run must print the
// same standard output and error as the reference and exit with the same
// code, after Normalize (ctl_script.h) has replaced what legitimately
// differs between two clusters. So the etcd kind checks arbiterctl against
// etcdctl, and the Arbiter kind checks arbiterctl and Arbiter together and
// the real etcdctl driving Arbiter. Scripts of commands arbiterctl does not
// have run through etcdctl only: against the Arbiter kind's two clusters
// (which keeps them in lockstep), and not at all for the etcd kind.

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

std::vector<ClusterKind> Kinds() { return {EtcdClusterKind(), ArbiterClusterKind()}; }

bool IsEtcd(const ClusterKind& kind) { return kind.name == EtcdClusterKind().name; }

struct DiffParam {
  ClusterKind kind;
  std::string script;
  // Whether arbiterctl has the script's commands.
  bool arbiterctl = true;
};

void PrintTo(const DiffParam& param, std::ostream* out) {
  *out << param.kind.name << "/" << param.script;
}

std::vector<DiffParam> Params() {
  std::vector<DiffParam> params;
  for (const ClusterKind& kind : Kinds()) {
    for (const char* script :
         {"kv", "get_flags", "txn", "errors", "cluster", "edge", "watch", "coord", "lease"}) {
      params.push_back({kind, script, true});
    }
    if (!IsEtcd(kind)) params.push_back({kind, "maintenance", false});
  }
  return params;
}

// One tool run against one cluster, compared with the reference run.
struct Subject {
  std::string tool;
  TestCluster* cluster;
};

// The clusters of a kind, shared by all scripts, which stay in lockstep:
// etcdctl talks to `reference` (always etcd), arbiterctl to `subject`, and
// etcdctl to `etcdctl_subject` (only when the kind is not etcd itself).
struct ClusterSet {
  std::unique_ptr<TestCluster> reference;
  std::unique_ptr<TestCluster> subject;
  std::unique_ptr<TestCluster> etcdctl_subject;

  std::vector<Subject> Subjects(bool arbiterctl) const {
    std::vector<Subject> out = {{arbiterctl ? ARBITERCTL_PATH : kEtcdctl, subject.get()}};
    if (etcdctl_subject != nullptr) out.push_back({kEtcdctl, etcdctl_subject.get()});
    return out;
  }
  std::vector<TestCluster*> All() const {
    std::vector<TestCluster*> out = {reference.get(), subject.get()};
    if (etcdctl_subject != nullptr) out.push_back(etcdctl_subject.get());
    return out;
  }
};

absl::Status StartSet(const ClusterKind& kind, ClusterSet* set) {
  absl::StatusOr<std::unique_ptr<TestCluster>> reference = EtcdClusterKind().start(3);
  if (!reference.ok()) return reference.status();
  set->reference = *std::move(reference);
  absl::StatusOr<std::unique_ptr<TestCluster>> subject = kind.start(3);
  if (!subject.ok()) return subject.status();
  set->subject = *std::move(subject);
  if (IsEtcd(kind)) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<TestCluster>> etcdctl_subject = kind.start(3);
  if (!etcdctl_subject.ok()) return etcdctl_subject.status();
  set->etcdctl_subject = *std::move(etcdctl_subject);
  return absl::OkStatus();
}

ClusterSet* Clusters(const ClusterKind& kind) {
  static auto* sets = new std::map<std::string, ClusterSet>();
  static const bool cleanup = [] {
    std::atexit([] { sets->clear(); });
    return true;
  }();
  (void)cleanup;
  auto it = sets->find(kind.name);
  if (it != sets->end()) return &it->second;
  ClusterSet set;
  if (absl::Status s = StartSet(kind, &set); !s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  return &sets->emplace(kind.name, std::move(set)).first->second;
}

// Skips unless every binary of `kind`'s cluster set can run here.
std::string UnavailableReason(const ClusterKind& kind) {
  if (!kind.unavailable_reason.empty()) return kind.unavailable_reason;
  if (const ClusterKind etcd = EtcdClusterKind(); !etcd.unavailable_reason.empty()) {
    return etcd.unavailable_reason;
  }
  if (access(kEtcdctl, X_OK) != 0) return "etcdctl 3.4 is not installed";
  return "";
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
    if (std::string why = UnavailableReason(GetParam().kind); !why.empty()) GTEST_SKIP() << why;
    clusters_ = Clusters(GetParam().kind);
    ASSERT_NE(clusters_, nullptr);
    dead_ = absl::StrCat("127.0.0.1:", PickFreePort());
  }

  // Runs `tool` with the step's arguments for `cluster`, normalised;
  // `vars` are the cluster's, updated by what the step printed.
  absl::StatusOr<RunResult> RunStep(const std::string& tool, const ScriptStep& step,
                                    const TestCluster& cluster, ScriptVars* vars) {
    std::vector<std::string> argv = {tool};
    for (std::string& a : ExpandArgs(step, cluster, dead_, *vars)) argv.push_back(a);
    absl::StatusOr<RunResult> r = RunCommand(argv, step.input, kCommandTimeout);
    if (!r.ok()) return r;
    CaptureVars(r->out, vars);
    r->out = Normalize(r->out, cluster, step.options, *vars);
    r->err = Normalize(r->err, cluster, step.options, *vars);
    if (step.options.count("ignore-stdout")) r->out = "";
    return r;
  }

  ClusterSet* clusters_ = nullptr;
  std::string dead_;
};

std::string Show(const RunResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\n--- stdout\n", r.out, "--- stderr\n", r.err);
}

std::string Basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

TEST_P(CtlDiffTest, SameOutputAsEtcdctl) {
  const std::string path = absl::StrCat(ARBITER_CLIENT_TESTDATA, "/", GetParam().script, ".txt");
  absl::StatusOr<std::vector<ScriptStep>> steps = ParseScript(ReadFile(path));
  ASSERT_TRUE(steps.ok()) << path << ": " << steps.status();
  ASSERT_FALSE(steps->empty()) << path;
  std::map<const TestCluster*, ScriptVars> vars;
  for (const ScriptStep& step : *steps) {
    const std::string where =
        absl::StrCat(path, ":", step.line, ": ", absl::StrJoin(step.args, " "));
    absl::StatusOr<RunResult> want =
        RunStep(kEtcdctl, step, *clusters_->reference, &vars[clusters_->reference.get()]);
    ASSERT_TRUE(want.ok()) << where << ": " << want.status();
    for (const Subject& subject : clusters_->Subjects(GetParam().arbiterctl)) {
      absl::StatusOr<RunResult> got =
          RunStep(subject.tool, step, *subject.cluster, &vars[subject.cluster]);
      ASSERT_TRUE(got.ok()) << where << ": " << got.status();
      const std::string label = absl::StrCat(Basename(subject.tool), " on ", GetParam().kind.name);
      EXPECT_TRUE(want->exit_code == got->exit_code && want->out == got->out &&
                  want->err == got->err)
          << where << "\n=== etcdctl on etcd " << Show(*want) << "=== " << label << " "
          << Show(*got);
    }
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
    if (std::string why = UnavailableReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    clusters_ = Clusters(GetParam());
    ASSERT_NE(clusters_, nullptr);
  }

  RunResult Run(const std::string& tool, const std::vector<std::string>& args,
                const TestCluster* cluster = nullptr) {
    if (cluster == nullptr) cluster = clusters_->subject.get();
    std::vector<std::string> argv = {
        tool, "--endpoints=" + absl::StrJoin(cluster->ClientEndpoints(), ",")};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<RunResult> r = RunCommand(argv, "", kCommandTimeout);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(RunResult());
  }

  ClusterSet* clusters_ = nullptr;
};

// --count-only is not an etcdctl 3.4 flag, so it is checked against the
// count etcdctl reports for the same range.
TEST_P(CtlExtensionTest, CountOnlyMatchesEtcdctlsCount) {
  // Writes go to every cluster, which keeps them in lockstep for the
  // scripts.
  const auto all = [&](const std::vector<std::string>& args) {
    for (const TestCluster* cluster : clusters_->All()) {
      EXPECT_EQ(Run(kEtcdctl, args, cluster).exit_code, 0) << absl::StrJoin(args, " ");
    }
  };
  for (int i = 0; i < 3; ++i) all({"put", absl::StrCat("count/", i), "v"});
  const RunResult json = Run(kEtcdctl, {"get", "count/", "--prefix", "-w", "json"});
  ASSERT_NE(json.out.find("\"count\":3"), std::string::npos) << json.out;
  const RunResult simple = Run(ARBITERCTL_PATH, {"get", "count/", "--prefix", "--count-only"});
  EXPECT_EQ(simple.exit_code, 0);
  EXPECT_EQ(simple.out, "3\n");
  const RunResult counted =
      Run(ARBITERCTL_PATH, {"get", "count/", "--prefix", "--count-only", "-w", "json"});
  EXPECT_NE(counted.out.find("\"count\":3"), std::string::npos) << counted.out;
  EXPECT_EQ(counted.out.find("\"kvs\""), std::string::npos) << counted.out;
  all({"del", "count/", "--prefix"});
}

INSTANTIATE_TEST_SUITE_P(Cluster, CtlExtensionTest, ::testing::ValuesIn(Kinds()),
                         [](const ::testing::TestParamInfo<ClusterKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace arbiter::testing
