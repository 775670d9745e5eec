#include "raft/tracker.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace arbiter::raft {
namespace {

// Acknowledged indexes are the followers' Match. A learner has a Progress
// too, but it is never asked for: only voters are looked up.
class MatchAckIndexer final : public AckedIndexer {
 public:
  explicit MatchAckIndexer(const ProgressMap& progress) : progress_(progress) {}
  std::optional<uint64_t> AckedIndex(uint64_t id) const override {
    auto it = progress_.find(id);
    if (it == progress_.end()) return std::nullopt;
    return it->second.match;
  }

 private:
  const ProgressMap& progress_;
};

std::string DescribeSet(const std::set<uint64_t>& ids) {
  return absl::StrCat("(", absl::StrJoin(ids, " "), ")");
}

}  // namespace

std::string TrackerConfig::Describe() const {
  std::string s = absl::StrCat("voters=", voters.Describe());
  if (!learners.empty()) absl::StrAppend(&s, " learners=", DescribeSet(learners));
  if (!learners_next.empty()) absl::StrAppend(&s, " learners_next=", DescribeSet(learners_next));
  if (auto_leave) absl::StrAppend(&s, " autoleave");
  return s;
}

ProgressTracker::ProgressTracker(size_t max_inflight, uint64_t max_inflight_bytes)
    : max_inflight(max_inflight), max_inflight_bytes(max_inflight_bytes) {}

raftpb::ConfState ProgressTracker::ConfState() const {
  raftpb::ConfState cs;
  // MajorityConfig and std::set both iterate in increasing order.
  for (uint64_t id : config.voters.incoming.ids()) cs.add_voters(id);
  for (uint64_t id : config.voters.outgoing.ids()) cs.add_voters_outgoing(id);
  for (uint64_t id : config.learners) cs.add_learners(id);
  for (uint64_t id : config.learners_next) cs.add_learners_next(id);
  cs.set_auto_leave(config.auto_leave);
  return cs;
}

bool ProgressTracker::IsSingleton() const {
  return config.voters.incoming.size() == 1 && config.voters.outgoing.empty();
}

uint64_t ProgressTracker::Committed() const {
  return config.voters.CommittedIndex(MatchAckIndexer(progress));
}

void ProgressTracker::Visit(const std::function<void(uint64_t id, Progress& pr)>& f) {
  for (auto& [id, pr] : progress) f(id, pr);
}

bool ProgressTracker::QuorumActive() const {
  // Treat "recently active" as a vote: a quorum of active voters wins.
  std::map<uint64_t, bool> active;
  for (const auto& [id, pr] : progress) {
    if (!pr.is_learner) active[id] = pr.recent_active;
  }
  return config.voters.Vote(active) == VoteResult::kWon;
}

std::vector<uint64_t> ProgressTracker::VoterNodes() const { return config.voters.Ids(); }

std::vector<uint64_t> ProgressTracker::LearnerNodes() const {
  return std::vector<uint64_t>(config.learners.begin(), config.learners.end());
}

void ProgressTracker::RecordVote(uint64_t id, bool granted) { votes.emplace(id, granted); }

ProgressTracker::Tally ProgressTracker::TallyVotes() const {
  Tally t;
  // Votes from nodes that are no longer voters (removed, or learners now)
  // are kept in votes but not counted.
  for (uint64_t id : config.voters.Ids()) {
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    if (it->second) {
      ++t.granted;
    } else {
      ++t.rejected;
    }
  }
  t.result = config.voters.Vote(votes);
  return t;
}

}  // namespace arbiter::raft
