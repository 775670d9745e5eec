// Membership changes: computes the configuration that results from applying
// conf changes to the current one, enforcing the safety rules of the Raft
// thesis (§4.1 one server at a time outside joint consensus, §4.3 joint
// consensus for anything larger) and refusing invalid transitions.
//
// Thread safety: pure functions over values.
#ifndef ARBITER_RAFT_CONFCHANGE_H_
#define ARBITER_RAFT_CONFCHANGE_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "raft/tracker.h"
#include "raft/types.h"

namespace arbiter::raft {

using ConfigAndProgress = std::pair<TrackerConfig, ProgressMap>;

// Applies changes to a copy of the tracker's config and progress. New nodes
// get a Progress with next = last_index (they are probed from there).
class Changer {
 public:
  Changer(const ProgressTracker& tracker, uint64_t last_index)
      : tracker_(tracker), last_index_(last_index) {}

  // Enters a joint config: outgoing = current voters, incoming = current
  // voters with ccs applied.
  // Errors (InvalidArgument): already joint; current config has no voters;
  // the result would have no voters.
  absl::StatusOr<ConfigAndProgress> EnterJoint(bool auto_leave,
                                               const std::vector<ConfChangeSingle>& ccs) const;

  // Leaves a joint config: drops the outgoing half, turns learners_next into
  // learners, removes nodes no longer in any role.
  // Errors: not in a joint config.
  absl::StatusOr<ConfigAndProgress> LeaveJoint() const;

  // Applies ccs directly, allowed only when at most one voter is added or
  // removed (Raft §4.1); otherwise joint consensus must be used.
  // Errors: in a joint config; more than one voter changed; no voters left.
  absl::StatusOr<ConfigAndProgress> Simple(const std::vector<ConfChangeSingle>& ccs) const;

 private:
  const ProgressTracker& tracker_;
  uint64_t last_index_;
};

// Builds the config and progress that a ConfState describes, starting from an
// empty tracker (used at start-up and when restoring a snapshot).
absl::StatusOr<ConfigAndProgress> RestoreConfState(const ProgressTracker& empty_tracker,
                                                   uint64_t last_index, const ConfState& cs);

// Whether two ConfStates describe the same membership (order-insensitive).
bool ConfStateEquivalent(const ConfState& a, const ConfState& b);

// A ConfChange as the equivalent single-change ConfChangeV2.
ConfChangeV2 AsV2(const ConfChange& cc);
// Whether cc enters a joint config (and if so, whether it leaves it
// automatically). Auto transition with more than one change uses joint.
bool EntersJoint(const ConfChangeV2& cc, bool* auto_leave);
// Whether cc is the empty change that leaves a joint config.
bool LeavesJoint(const ConfChangeV2& cc);

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_CONFCHANGE_H_
