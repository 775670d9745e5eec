// The membership configuration (voters, possibly joint; learners) and the
// leader's per-node Progress, plus vote tallying for elections.
//
// Thread safety: not thread-safe; part of a node's raft state.
#ifndef ARBITER_RAFT_TRACKER_H_
#define ARBITER_RAFT_TRACKER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/types.h"

namespace arbiter::raft {

struct TrackerConfig {
  JointConfig voters;
  // In a joint config: leave it automatically once it is committed.
  bool auto_leave = false;
  // Non-voting members. Invariant: disjoint from voters (both halves).
  std::set<uint64_t> learners;
  // Voters of the outgoing config that become learners when the joint config
  // is left (a voter demoted to learner cannot be a learner while it still
  // votes in the outgoing half). Invariant: each is in voters.outgoing.
  std::set<uint64_t> learners_next;

  bool operator==(const TrackerConfig& o) const = default;
  std::string Describe() const;
};

using ProgressMap = std::map<uint64_t, Progress>;

class ProgressTracker {
 public:
  ProgressTracker(size_t max_inflight, uint64_t max_inflight_bytes);

  TrackerConfig config;
  ProgressMap progress;
  // Votes of the current election: id -> granted.
  std::map<uint64_t, bool> votes;
  size_t max_inflight;
  uint64_t max_inflight_bytes;

  // The ConfState that describes config.
  raftpb::ConfState ConfState() const;
  // A single voter and no joint config.
  bool IsSingleton() const;
  // The largest index acknowledged by a quorum (by Progress.match).
  uint64_t Committed() const;
  // Calls f for each tracked node, in increasing id order.
  void Visit(const std::function<void(uint64_t id, Progress& pr)>& f);
  // Whether a quorum of voters was recently active (the leader counts
  // itself through its own recent_active).
  bool QuorumActive() const;
  // Voter ids (both halves), sorted.
  std::vector<uint64_t> VoterNodes() const;
  // Learner ids, sorted.
  std::vector<uint64_t> LearnerNodes() const;

  void ResetVotes() { votes.clear(); }
  // Records a vote; a second vote from the same node is ignored.
  void RecordVote(uint64_t id, bool granted);
  struct Tally {
    int granted = 0;
    int rejected = 0;
    VoteResult result = VoteResult::kPending;
  };
  Tally TallyVotes() const;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_TRACKER_H_
