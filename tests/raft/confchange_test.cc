#include "raft/confchange.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <string>

namespace arbiter::raft {
namespace {

constexpr raftpb::ConfChangeType kAdd = raftpb::CONF_CHANGE_ADD_NODE;
constexpr raftpb::ConfChangeType kAddLearner = raftpb::CONF_CHANGE_ADD_LEARNER_NODE;
constexpr raftpb::ConfChangeType kRemove = raftpb::CONF_CHANGE_REMOVE_NODE;
constexpr raftpb::ConfChangeType kUpdate = raftpb::CONF_CHANGE_UPDATE_NODE;

ConfChangeSingle Single(raftpb::ConfChangeType type, uint64_t id) {
  ConfChangeSingle cc;
  cc.set_type(type);
  cc.set_node_id(id);
  return cc;
}

// Parses "v1 l2 r3 u4": make 1 a voter, 2 a learner, remove 3, update 4.
std::vector<ConfChangeSingle> Parse(const std::string& s) {
  std::vector<ConfChangeSingle> ccs;
  std::istringstream in(s);
  std::string tok;
  while (in >> tok) {
    raftpb::ConfChangeType type = kUpdate;
    switch (tok[0]) {
      case 'v':
        type = kAdd;
        break;
      case 'l':
        type = kAddLearner;
        break;
      case 'r':
        type = kRemove;
        break;
      case 'u':
        type = kUpdate;
        break;
      default:
        ADD_FAILURE() << "bad token " << tok;
    }
    ccs.push_back(Single(type, std::stoull(tok.substr(1))));
  }
  return ccs;
}

// The config line followed by one line per progress.
std::string Describe(const TrackerConfig& cfg, const ProgressMap& prs) {
  std::string s = cfg.Describe() + "\n";
  for (const auto& [id, pr] : prs) s += std::to_string(id) + ": " + pr.Describe() + "\n";
  return s;
}

std::string Describe(const absl::StatusOr<ConfigAndProgress>& r) {
  if (!r.ok()) return std::string(r.status().message());
  return Describe(r->first, r->second);
}

// Checks the invariants every reachable configuration must satisfy; returns
// "" or the first violation.
std::string Violation(const TrackerConfig& cfg, const ProgressMap& prs) {
  std::set<uint64_t> roles;
  for (uint64_t id : cfg.voters.Ids()) roles.insert(id);
  for (uint64_t id : cfg.learners) {
    if (cfg.voters.Contains(id)) return "learner " + std::to_string(id) + " is a voter";
    roles.insert(id);
  }
  for (uint64_t id : cfg.learners_next) {
    if (!cfg.voters.outgoing.Contains(id)) return "learner_next not outgoing";
    if (cfg.voters.incoming.Contains(id)) return "learner_next is incoming";
  }
  std::set<uint64_t> tracked;
  for (const auto& [id, pr] : prs) {
    tracked.insert(id);
    if (pr.is_learner != (cfg.learners.count(id) > 0)) {
      return "is_learner wrong for " + std::to_string(id);
    }
    if (pr.match >= pr.next) return "match >= next for " + std::to_string(id);
  }
  if (roles != tracked) return "progress does not match roles";
  if (cfg.voters.outgoing.empty() && (!cfg.learners_next.empty() || cfg.auto_leave)) {
    return "joint-only state outside a joint config";
  }
  return "";
}

// Runs a script of operations against one tracker, the way raft applies conf
// changes: each successful result replaces the tracker's config and progress.
enum class Op { kSimple, kEnterJoint, kEnterJointAuto, kLeaveJoint };
struct Step {
  Op op;
  std::string changes;
  std::string want;  // Describe() of the result, or the error message
};

void RunScript(const std::vector<Step>& steps) {
  ProgressTracker trk(10, 0);
  uint64_t last_index = 0;  // moves with every step, to tell when a node was added
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    SCOPED_TRACE(testing::Message() << "step " << i << ": " << s.changes);
    Changer c(trk, last_index++);
    absl::StatusOr<ConfigAndProgress> r;
    switch (s.op) {
      case Op::kSimple:
        r = c.Simple(Parse(s.changes));
        break;
      case Op::kEnterJoint:
        r = c.EnterJoint(false, Parse(s.changes));
        break;
      case Op::kEnterJointAuto:
        r = c.EnterJoint(true, Parse(s.changes));
        break;
      case Op::kLeaveJoint:
        r = c.LeaveJoint();
        break;
    }
    EXPECT_EQ(Describe(r), s.want);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    EXPECT_EQ(Violation(r->first, r->second), "");
    trk.config = r->first;
    trk.progress = r->second;
  }
}

TEST(ConfChangeTest, SimpleSafety) {
  RunScript({
      {Op::kSimple, "l1", "removed all voters"},
      {Op::kSimple, "v1", "voters=(1)\n1: StateProbe match=0 next=1\n"},
      {Op::kSimple, "v2 l3",
       "voters=(1 2) learners=(3)\n"
       "1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=2\n"
       "3: StateProbe match=0 next=2 learner\n"},
      {Op::kSimple, "r1 v5", "more than one voter changed without entering joint config"},
      {Op::kSimple, "r1 r2", "removed all voters"},
      {Op::kSimple, "v3 v4", "more than one voter changed without entering joint config"},
      {Op::kSimple, "l1 v5", "more than one voter changed without entering joint config"},
      {Op::kSimple, "l1 l2", "removed all voters"},
      {Op::kSimple, "l2 l3 l4 l5",
       "voters=(1) learners=(2 3 4 5)\n"
       "1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=2 learner\n"
       "3: StateProbe match=0 next=2 learner\n"
       "4: StateProbe match=0 next=8 learner\n"
       "5: StateProbe match=0 next=8 learner\n"},
      {Op::kSimple, "r1", "removed all voters"},
      {Op::kSimple, "r2 r3 r4 r5", "voters=(1)\n1: StateProbe match=0 next=1\n"},
      // Removing an unknown node is a no-op.
      {Op::kSimple, "r7", "voters=(1)\n1: StateProbe match=0 next=1\n"},
  });
}

TEST(ConfChangeTest, JointSafety) {
  RunScript({
      {Op::kLeaveJoint, "", "can't leave a non-joint config"},
      {Op::kEnterJoint, "", "can't make a zero-voter config joint"},
      {Op::kEnterJoint, "v1", "can't make a zero-voter config joint"},
      {Op::kSimple, "v1", "voters=(1)\n1: StateProbe match=0 next=3\n"},
      {Op::kLeaveJoint, "", "can't leave a non-joint config"},
      {Op::kEnterJoint, "", "voters=(1)&&(1)\n1: StateProbe match=0 next=3\n"},
      {Op::kEnterJoint, "", "config is already joint"},
      {Op::kLeaveJoint, "", "voters=(1)\n1: StateProbe match=0 next=3\n"},
      {Op::kLeaveJoint, "", "can't leave a non-joint config"},
      {Op::kEnterJoint, "r1 v2 v3 l4",
       "voters=(2 3)&&(1) learners=(4)\n"
       "1: StateProbe match=0 next=3\n"
       "2: StateProbe match=0 next=9\n"
       "3: StateProbe match=0 next=9\n"
       "4: StateProbe match=0 next=9 learner\n"},
      {Op::kEnterJoint, "", "config is already joint"},
      {Op::kEnterJoint, "v12", "config is already joint"},
      {Op::kSimple, "l15", "can't apply simple config change in joint config"},
      {Op::kLeaveJoint, "",
       "voters=(2 3) learners=(4)\n"
       "2: StateProbe match=0 next=9\n"
       "3: StateProbe match=0 next=9\n"
       "4: StateProbe match=0 next=9 learner\n"},
      {Op::kSimple, "l9",
       "voters=(2 3) learners=(4 9)\n"
       "2: StateProbe match=0 next=9\n"
       "3: StateProbe match=0 next=9\n"
       "4: StateProbe match=0 next=9 learner\n"
       "9: StateProbe match=0 next=14 learner\n"},
      // Entering joint with changes that remove every incoming voter.
      {Op::kEnterJoint, "r2 r3", "removed all voters"},
  });
}

TEST(ConfChangeTest, AutoLeaveIsCarriedAndCleared) {
  RunScript({
      {Op::kSimple, "v1", "voters=(1)\n1: StateProbe match=0 next=1\n"},
      {Op::kEnterJointAuto, "v2 v3",
       "voters=(1 2 3)&&(1) autoleave\n"
       "1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=1\n"
       "3: StateProbe match=0 next=1\n"},
      {Op::kEnterJoint, "", "config is already joint"},
      {Op::kLeaveJoint, "",
       "voters=(1 2 3)\n"
       "1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=1\n"
       "3: StateProbe match=0 next=1\n"},
  });
}

TEST(ConfChangeTest, PromoteAndDemote) {
  RunScript({
      {Op::kSimple, "v1", "voters=(1)\n1: StateProbe match=0 next=1\n"},
      {Op::kSimple, "v2",
       "voters=(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
      {Op::kSimple, "v3",
       "voters=(1 2 3)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"
       "3: StateProbe match=0 next=2\n"},
      // Demote and promote again in one change: no net effect.
      {Op::kSimple, "l1 v1",
       "voters=(1 2 3)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"
       "3: StateProbe match=0 next=2\n"},
      // Demote; the progress is kept (next=1 shows it is the original one).
      {Op::kSimple, "l2",
       "voters=(1 3) learners=(2)\n1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=1 learner\n3: StateProbe match=0 next=2\n"},
      {Op::kSimple, "v2 l2",
       "voters=(1 3) learners=(2)\n1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=1 learner\n3: StateProbe match=0 next=2\n"},
      // Promote.
      {Op::kSimple, "v2",
       "voters=(1 2 3)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"
       "3: StateProbe match=0 next=2\n"},
      // Remove a voter; its progress goes.
      {Op::kSimple, "r3",
       "voters=(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
      // A learner can be removed along with a voter change.
      {Op::kSimple, "l4",
       "voters=(1 2) learners=(4)\n1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=1\n4: StateProbe match=0 next=8 learner\n"},
      {Op::kSimple, "r4 v5",
       "voters=(1 2 5)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"
       "5: StateProbe match=0 next=9\n"},
  });
}

TEST(ConfChangeTest, LearnersNext) {
  RunScript({
      {Op::kSimple, "v1", "voters=(1)\n1: StateProbe match=0 next=1\n"},
      // 1 still votes in the outgoing half, so it is staged as a learner.
      {Op::kEnterJoint, "v2 l1",
       "voters=(2)&&(1) learners_next=(1)\n"
       "1: StateProbe match=0 next=1\n"
       "2: StateProbe match=0 next=1\n"},
      // Leaving turns it into a learner without resetting its progress.
      {Op::kLeaveJoint, "",
       "voters=(2) learners=(1)\n"
       "1: StateProbe match=0 next=1 learner\n"
       "2: StateProbe match=0 next=1\n"},
  });
}

TEST(ConfChangeTest, LearnersNextRemovedOrPromotedAgain) {
  RunScript({
      {Op::kSimple, "v1", "voters=(1)\n1: StateProbe match=0 next=1\n"},
      {Op::kSimple, "v2",
       "voters=(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
      {Op::kSimple, "v3",
       "voters=(1 2 3)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"
       "3: StateProbe match=0 next=2\n"},
      // Demoted, then removed in the same change: no longer staged, but its
      // progress stays while it votes in the outgoing half.
      {Op::kEnterJoint, "l3 r3",
       "voters=(1 2)&&(1 2 3)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"
       "3: StateProbe match=0 next=2\n"},
      {Op::kLeaveJoint, "",
       "voters=(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
      // Demoted, then made a voter again: not staged any more.
      {Op::kEnterJoint, "l2 v2",
       "voters=(1 2)&&(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
      {Op::kLeaveJoint, "",
       "voters=(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
      // Demote one voter, replace the other: both changes at once.
      {Op::kEnterJoint, "l2 r1 v4 l5",
       "voters=(4)&&(1 2) learners=(5) learners_next=(2)\n"
       "1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"
       "4: StateProbe match=0 next=7\n5: StateProbe match=0 next=7 learner\n"},
      {Op::kLeaveJoint, "",
       "voters=(4) learners=(2 5)\n2: StateProbe match=0 next=1 learner\n"
       "4: StateProbe match=0 next=7\n5: StateProbe match=0 next=7 learner\n"},
  });
}

TEST(ConfChangeTest, ZeroIdAndUpdateAreIgnored) {
  RunScript({
      {Op::kSimple, "v1 r0 v0 l0", "voters=(1)\n1: StateProbe match=0 next=1\n"},
      {Op::kSimple, "v2 u1",
       "voters=(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
      {Op::kSimple, "u1 u2 u3 u1 u2 u3",
       "voters=(1 2)\n1: StateProbe match=0 next=1\n2: StateProbe match=0 next=1\n"},
  });
}

TEST(ConfChangeTest, UnknownChangeType) {
  ProgressTracker trk(10, 0);
  ConfChangeSingle cc = Single(kAdd, 1);
  cc.set_type(static_cast<raftpb::ConfChangeType>(42));
  absl::StatusOr<ConfigAndProgress> r = Changer(trk, 1).Simple({cc});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "unexpected conf change type 42");
}

TEST(ConfChangeTest, NewProgressFields) {
  ProgressTracker trk(7, 99);
  absl::StatusOr<ConfigAndProgress> r = Changer(trk, 0).Simple(Parse("v1 l2"));
  ASSERT_TRUE(r.ok()) << r.status();
  const Progress& voter = r->second.at(1);
  const Progress& learner = r->second.at(2);
  // next is at least 1 even when the log is empty, keeping match < next.
  EXPECT_EQ(voter.next, 1u);
  EXPECT_EQ(voter.match, 0u);
  EXPECT_TRUE(voter.recent_active);
  EXPECT_FALSE(voter.is_learner);
  EXPECT_EQ(voter.state, ProgressState::kProbe);
  EXPECT_EQ(voter.inflights.max_count(), 7u);
  EXPECT_TRUE(learner.is_learner);
  EXPECT_TRUE(learner.recent_active);

  trk.config = r->first;
  trk.progress = r->second;
  trk.progress.at(1).match = 40;
  trk.progress.at(1).next = 41;
  r = Changer(trk, 50).Simple(Parse("v3"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->second.at(3).next, 50u);
  // Existing progress is untouched.
  EXPECT_EQ(r->second.at(1).match, 40u);
  EXPECT_EQ(r->second.at(1).next, 41u);
  // The input tracker is not modified.
  EXPECT_EQ(trk.progress.count(3), 0u);
}

TEST(ConfChangeTest, RefusesInconsistentInput) {
  struct Case {
    const char* name;
    std::function<void(ProgressTracker*)> corrupt;
    std::string want;
  };
  const Case cases[] = {
      {"voter without progress", [](ProgressTracker* t) { t->config.voters.incoming.Insert(9); },
       "no progress for 9"},
      {"learner without progress", [](ProgressTracker* t) { t->config.learners.insert(9); },
       "no progress for 9"},
      {"learner is voter",
       [](ProgressTracker* t) {
         t->config.learners.insert(1);
         t->progress.at(1).is_learner = true;
       },
       "1 is both a learner and an incoming voter"},
      {"learner not marked",
       [](ProgressTracker* t) {
         t->config.learners.insert(9);
         t->progress.insert_or_assign(9, Progress(1, 10, 0, false));
       },
       "9 is a learner but its progress is not marked as learner"},
      {"learners_next not outgoing", [](ProgressTracker* t) { t->config.learners_next.insert(2); },
       "2 is in learners_next but not in the outgoing voters"},
      {"auto_leave outside joint", [](ProgressTracker* t) { t->config.auto_leave = true; },
       "auto_leave must be false outside a joint config"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ProgressTracker trk(10, 0);
    absl::StatusOr<ConfigAndProgress> r = Changer(trk, 1).Simple(Parse("v1 v2 v3"));
    ASSERT_FALSE(r.ok());  // three voters at once is not simple
    r = Changer(trk, 1).EnterJoint(false, {});
    ASSERT_FALSE(r.ok());
    for (const char* add : {"v1", "v2", "v3"}) {
      r = Changer(trk, 1).Simple(Parse(add));
      ASSERT_TRUE(r.ok()) << r.status();
      trk.config = r->first;
      trk.progress = r->second;
    }
    c.corrupt(&trk);
    for (int op = 0; op < 3; ++op) {
      Changer ch(trk, 5);
      r = op == 0 ? ch.Simple(Parse("u1")) : op == 1 ? ch.EnterJoint(false, {}) : ch.LeaveJoint();
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(r.status().message(), c.want) << "op " << op;
    }
  }
}

ConfState MakeConfState(std::vector<uint64_t> voters, std::vector<uint64_t> learners,
                        std::vector<uint64_t> outgoing, std::vector<uint64_t> learners_next,
                        bool auto_leave) {
  ConfState cs;
  for (uint64_t id : voters) cs.add_voters(id);
  for (uint64_t id : learners) cs.add_learners(id);
  for (uint64_t id : outgoing) cs.add_voters_outgoing(id);
  for (uint64_t id : learners_next) cs.add_learners_next(id);
  cs.set_auto_leave(auto_leave);
  return cs;
}

// Restores cs and checks that the result describes cs again.
void CheckRestore(const ConfState& cs) {
  ProgressTracker empty(20, 0);
  absl::StatusOr<ConfigAndProgress> r = RestoreConfState(empty, 10, cs);
  ASSERT_TRUE(r.ok()) << r.status() << " for " << DescribeConfState(cs);
  ProgressTracker trk(20, 0);
  trk.config = r->first;
  trk.progress = r->second;
  ConfState got = trk.ConfState();
  EXPECT_TRUE(ConfStateEquivalent(cs, got))
      << DescribeConfState(cs) << " vs " << DescribeConfState(got);
  EXPECT_TRUE(ConfStateEquivalent(got, cs));
  EXPECT_EQ(Violation(trk.config, trk.progress), "");
  for (const auto& [id, pr] : trk.progress) {
    EXPECT_EQ(pr.next, 10u) << id;
    EXPECT_EQ(pr.match, 0u) << id;
    EXPECT_TRUE(pr.recent_active) << id;
  }
}

TEST(RestoreConfStateTest, Examples) {
  const ConfState cases[] = {
      MakeConfState({}, {}, {}, {}, false),
      MakeConfState({1}, {}, {}, {}, false),
      MakeConfState({1, 2, 3}, {}, {}, {}, false),
      MakeConfState({3, 1, 2}, {6, 4, 5}, {}, {}, false),
      MakeConfState({1, 2, 3}, {5}, {1, 2, 4, 6}, {4}, false),
      MakeConfState({1, 2, 3}, {5}, {1, 2, 4, 6}, {4}, true),
      MakeConfState({1, 2, 3}, {}, {1, 2, 3}, {}, false),
      MakeConfState({4, 5}, {}, {1, 2, 3}, {1, 2, 3}, true),
      MakeConfState({1}, {}, {2}, {2}, false),
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    CheckRestore(cases[i]);
  }
}

TEST(RestoreConfStateTest, JointDetails) {
  ProgressTracker empty(20, 0);
  absl::StatusOr<ConfigAndProgress> r =
      RestoreConfState(empty, 10, MakeConfState({1, 2, 3}, {5}, {1, 2, 4, 6}, {4}, true));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first.Describe(),
            "voters=(1 2 3)&&(1 2 4 6) learners=(5) learners_next=(4) autoleave");
  EXPECT_FALSE(r->second.at(4).is_learner);  // still an outgoing voter
  EXPECT_TRUE(r->second.at(5).is_learner);
}

TEST(RestoreConfStateTest, Errors) {
  struct Case {
    ConfState cs;
    std::string want_prefix;
  };
  const Case cases[] = {
      // A learner that is also a voter.
      {MakeConfState({1, 2}, {2}, {}, {}, false), "inconsistent ConfState"},
      // The only voter is also a learner: the replay itself fails.
      {MakeConfState({1}, {1}, {}, {}, false), "removed all voters"},
      // auto_leave without a joint config.
      {MakeConfState({1}, {}, {}, {}, true), "inconsistent ConfState"},
      // A staged learner that is not an outgoing voter.
      {MakeConfState({1}, {}, {2}, {3}, false), "inconsistent ConfState"},
      // Joint with an empty incoming half.
      {MakeConfState({}, {}, {1}, {}, false), "removed all voters"},
      // Duplicates.
      {MakeConfState({1, 1}, {}, {}, {}, false), "inconsistent ConfState"},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    absl::StatusOr<ConfigAndProgress> r = RestoreConfState(ProgressTracker(20, 0), 10, cases[i].cs);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().substr(0, cases[i].want_prefix.size()), cases[i].want_prefix)
        << r.status();
  }
}

TEST(RestoreConfStateTest, NeedsEmptyTracker) {
  ProgressTracker trk(20, 0);
  absl::StatusOr<ConfigAndProgress> r =
      RestoreConfState(trk, 10, MakeConfState({1}, {}, {}, {}, false));
  ASSERT_TRUE(r.ok());
  trk.config = r->first;
  trk.progress = r->second;
  r = RestoreConfState(trk, 10, MakeConfState({2}, {}, {}, {}, false));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

// Random valid ConfStates (disjoint voters, learners and removed voters;
// staged learners only among the removed ones) restore to themselves.
TEST(RestoreConfStateTest, Randomized) {
  std::mt19937_64 rng(1234);
  auto uniform = [&](int n) { return static_cast<int>(rng() % n); };
  for (int iter = 0; iter < 1000; ++iter) {
    SCOPED_TRACE(iter);
    const int n_voters = 1 + uniform(5);
    const int n_learners = uniform(5);
    const int n_removed = uniform(3);
    std::vector<uint64_t> ids;
    for (uint64_t id = 1; id <= static_cast<uint64_t>(2 * (n_voters + n_learners + n_removed));
         ++id) {
      ids.push_back(id);
    }
    std::shuffle(ids.begin(), ids.end(), rng);
    auto take = [&](int n) {
      std::vector<uint64_t> out(ids.begin(), ids.begin() + n);
      ids.erase(ids.begin(), ids.begin() + n);
      return out;
    };
    std::vector<uint64_t> voters = take(n_voters);
    std::vector<uint64_t> learners = take(n_learners);
    std::vector<uint64_t> removed = take(n_removed);
    std::vector<uint64_t> outgoing;
    const int retained = uniform(n_voters + 1);
    if (retained > 0 || n_removed > 0) {
      outgoing.assign(voters.begin(), voters.begin() + retained);
      outgoing.insert(outgoing.end(), removed.begin(), removed.end());
    }
    std::vector<uint64_t> learners_next;
    if (n_removed > 0)
      learners_next.assign(removed.begin(), removed.begin() + uniform(n_removed + 1));
    const bool auto_leave = !outgoing.empty() && uniform(2) == 1;
    CheckRestore(MakeConfState(voters, learners, outgoing, learners_next, auto_leave));
  }
}

std::vector<ConfChangeSingle> RandomChanges(std::mt19937_64& rng, int max_changes,
                                            uint64_t max_id) {
  std::vector<ConfChangeSingle> ccs;
  const int n = 1 + static_cast<int>(rng() % max_changes);
  const raftpb::ConfChangeType types[] = {kAdd, kAddLearner, kRemove, kUpdate};
  for (int i = 0; i < n; ++i) {
    ccs.push_back(Single(types[rng() % 4], 1 + rng() % max_id));
  }
  return ccs;
}

// Random sequences of simple and joint changes: whatever is accepted keeps
// the invariants, keeps the progress of surviving nodes, restores from its
// own ConfState, and (for simple changes) moves at most one voter.
TEST(ConfChangeTest, RandomizedKeepsInvariants) {
  std::mt19937_64 rng(99);
  ProgressTracker trk(10, 0);
  uint64_t last_index = 1;
  int accepted = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    SCOPED_TRACE(iter);
    // Give every node a distinct match so progress identity can be checked.
    for (auto& [id, pr] : trk.progress) {
      pr.match = id * 100 + static_cast<uint64_t>(iter);
      pr.next = pr.match + 1;
    }
    last_index += 1 + rng() % 3;
    Changer c(trk, last_index);
    absl::StatusOr<ConfigAndProgress> r;
    const int op = static_cast<int>(rng() % 3);
    std::vector<ConfChangeSingle> ccs;
    if (op == 0) {
      ccs = RandomChanges(rng, 2, 6);
      r = c.Simple(ccs);
    } else if (op == 1) {
      ccs = RandomChanges(rng, 6, 6);
      r = c.EnterJoint(rng() % 2 == 0, ccs);
    } else {
      r = c.LeaveJoint();
    }
    const bool was_joint = trk.config.voters.IsJoint();
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      const std::string msg(r.status().message());
      if (op == 0) {
        if (was_joint) {
          EXPECT_EQ(msg, "can't apply simple config change in joint config");
        } else {
          EXPECT_TRUE(msg == "removed all voters" ||
                      msg == "more than one voter changed without entering joint config")
              << msg;
        }
      } else if (op == 1) {
        if (was_joint) {
          EXPECT_EQ(msg, "config is already joint");
        } else if (trk.config.voters.incoming.empty()) {
          EXPECT_EQ(msg, "can't make a zero-voter config joint");
        } else {
          EXPECT_EQ(msg, "removed all voters");
        }
      } else {
        EXPECT_FALSE(was_joint);
        EXPECT_EQ(msg, "can't leave a non-joint config");
      }
      continue;
    }
    ++accepted;
    const auto& [cfg, prs] = *r;
    ASSERT_EQ(Violation(cfg, prs), "") << Describe(cfg, prs);
    // Entering always yields a joint config (the outgoing half is the old,
    // non-empty incoming one); the other two never do.
    EXPECT_EQ(cfg.voters.IsJoint(), op == 1);
    if (op == 0) {
      std::vector<uint64_t> diff;
      const auto& a = trk.config.voters.incoming.ids();
      const auto& b = cfg.voters.incoming.ids();
      std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(),
                                    std::back_inserter(diff));
      EXPECT_LE(diff.size(), 1u);
    }
    if (op == 2) {
      EXPECT_EQ(cfg.voters.incoming, trk.config.voters.incoming);
      EXPECT_FALSE(cfg.auto_leave);
    }
    if (op == 1) {
      EXPECT_EQ(cfg.voters.outgoing, trk.config.voters.incoming);
    }
    // A node removed by the batch may come back in it, with a new Progress.
    std::set<uint64_t> removed;
    for (const ConfChangeSingle& cc : ccs) {
      if (cc.type() == kRemove) removed.insert(cc.node_id());
    }
    for (const auto& [id, pr] : prs) {
      auto old = trk.progress.find(id);
      const bool fresh = pr.match == 0 && pr.next == last_index && pr.recent_active;
      if (old == trk.progress.end()) {
        EXPECT_TRUE(fresh) << id << ": " << pr.Describe();
      } else if (removed.count(id) == 0) {
        EXPECT_EQ(pr.match, old->second.match) << id;
      } else {
        EXPECT_TRUE(fresh || pr.match == old->second.match) << id << ": " << pr.Describe();
      }
    }
    ProgressTracker next(10, 0);
    next.config = cfg;
    next.progress = prs;
    absl::StatusOr<ConfigAndProgress> restored =
        RestoreConfState(ProgressTracker(10, 0), 1, next.ConfState());
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(restored->first, cfg);
    trk = std::move(next);
  }
  EXPECT_GT(accepted, 1000);
}

// Applying changes one at a time with Simple ends in the same configuration
// as applying them all through a joint config and leaving it.
TEST(ConfChangeTest, SimpleAndJointAgree) {
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 1000; ++iter) {
    SCOPED_TRACE(iter);
    ProgressTracker base(10, 0);
    // Node 1 is always a voter, and the changes never touch it, so neither
    // path can remove every voter.
    std::vector<ConfChangeSingle> setup = {Single(kAdd, 1)};
    for (int i = 0, n = static_cast<int>(rng() % 5); i < n; ++i)
      setup.push_back(Single(kAdd, 1 + rng() % 5));
    for (const ConfChangeSingle& cc : setup) {
      absl::StatusOr<ConfigAndProgress> r = Changer(base, 10).Simple({cc});
      ASSERT_TRUE(r.ok()) << r.status();
      base.config = r->first;
      base.progress = r->second;
    }
    std::vector<ConfChangeSingle> ccs = RandomChanges(rng, 9, 8);
    for (ConfChangeSingle& cc : ccs) cc.set_node_id(cc.node_id() + 1);  // 2..9

    ProgressTracker simple = base;
    for (const ConfChangeSingle& cc : ccs) {
      absl::StatusOr<ConfigAndProgress> r = Changer(simple, 10).Simple({cc});
      ASSERT_TRUE(r.ok()) << r.status();
      simple.config = r->first;
      simple.progress = r->second;
    }

    ProgressTracker joint = base;
    absl::StatusOr<ConfigAndProgress> r = Changer(joint, 10).EnterJoint(true, ccs);
    ASSERT_TRUE(r.ok()) << r.status();
    joint.config = r->first;
    joint.progress = r->second;
    r = Changer(joint, 10).LeaveJoint();
    ASSERT_TRUE(r.ok()) << r.status();

    EXPECT_EQ(Describe(r->first, r->second), Describe(simple.config, simple.progress));
  }
}

TEST(ConfStateEquivalentTest, Table) {
  struct Case {
    ConfState a;
    ConfState b;
    bool want;
  };
  const Case cases[] = {
      {MakeConfState({}, {}, {}, {}, false), MakeConfState({}, {}, {}, {}, false), true},
      {MakeConfState({1, 2, 3}, {}, {}, {}, false), MakeConfState({3, 1, 2}, {}, {}, {}, false),
       true},
      {MakeConfState({1, 2}, {}, {}, {}, false), MakeConfState({1, 2, 3}, {}, {}, {}, false),
       false},
      {MakeConfState({1, 2}, {4, 3}, {2, 5}, {5}, true),
       MakeConfState({2, 1}, {3, 4}, {5, 2}, {5}, true), true},
      {MakeConfState({1}, {2}, {}, {}, false), MakeConfState({2}, {1}, {}, {}, false), false},
      {MakeConfState({1}, {}, {1}, {}, false), MakeConfState({1}, {}, {}, {}, false), false},
      {MakeConfState({1}, {}, {2}, {2}, false), MakeConfState({1}, {}, {2}, {}, false), false},
      {MakeConfState({1}, {}, {2}, {}, true), MakeConfState({1}, {}, {2}, {}, false), false},
      {MakeConfState({1, 1}, {}, {}, {}, false), MakeConfState({1}, {}, {}, {}, false), false},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(ConfStateEquivalent(cases[i].a, cases[i].b), cases[i].want);
    EXPECT_EQ(ConfStateEquivalent(cases[i].b, cases[i].a), cases[i].want);
  }
}

TEST(ConfChangeV2Test, AsV2) {
  ConfChange cc;
  cc.set_type(kAddLearner);
  cc.set_node_id(7);
  cc.set_context("ctx");
  cc.set_id(99);
  ConfChangeV2 v2 = AsV2(cc);
  EXPECT_EQ(v2.transition(), raftpb::CONF_CHANGE_TRANSITION_AUTO);
  ASSERT_EQ(v2.changes_size(), 1);
  EXPECT_EQ(v2.changes(0).type(), kAddLearner);
  EXPECT_EQ(v2.changes(0).node_id(), 7u);
  EXPECT_EQ(v2.context(), "ctx");
  bool auto_leave = true;
  EXPECT_FALSE(EntersJoint(v2, &auto_leave));
  EXPECT_FALSE(auto_leave);
  EXPECT_FALSE(LeavesJoint(v2));
}

TEST(ConfChangeV2Test, EntersAndLeavesJoint) {
  struct Case {
    raftpb::ConfChangeTransition transition;
    int changes;
    bool want_enters;
    bool want_auto_leave;
    bool want_leaves;
  };
  const Case cases[] = {
      {raftpb::CONF_CHANGE_TRANSITION_AUTO, 0, false, false, true},
      {raftpb::CONF_CHANGE_TRANSITION_AUTO, 1, false, false, false},
      {raftpb::CONF_CHANGE_TRANSITION_AUTO, 2, true, true, false},
      {raftpb::CONF_CHANGE_TRANSITION_JOINT_IMPLICIT, 0, true, true, false},
      {raftpb::CONF_CHANGE_TRANSITION_JOINT_IMPLICIT, 1, true, true, false},
      {raftpb::CONF_CHANGE_TRANSITION_JOINT_IMPLICIT, 3, true, true, false},
      {raftpb::CONF_CHANGE_TRANSITION_JOINT_EXPLICIT, 0, true, false, false},
      {raftpb::CONF_CHANGE_TRANSITION_JOINT_EXPLICIT, 1, true, false, false},
      {raftpb::CONF_CHANGE_TRANSITION_JOINT_EXPLICIT, 2, true, false, false},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    ConfChangeV2 cc;
    cc.set_transition(c.transition);
    cc.set_context("ignored");
    for (int j = 0; j < c.changes; ++j) *cc.add_changes() = Single(kAdd, j + 1);
    bool auto_leave = !c.want_auto_leave;
    EXPECT_EQ(EntersJoint(cc, &auto_leave), c.want_enters);
    EXPECT_EQ(auto_leave, c.want_auto_leave);
    EXPECT_EQ(EntersJoint(cc, nullptr), c.want_enters);
    EXPECT_EQ(LeavesJoint(cc), c.want_leaves);
  }
}

}  // namespace
}  // namespace arbiter::raft
