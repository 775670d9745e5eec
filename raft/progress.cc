#include "raft/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "raft/check.h"

namespace arbiter::raft {

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "StateProbe";
    case ProgressState::kReplicate:
      return "StateReplicate";
    case ProgressState::kSnapshot:
      return "StateSnapshot";
  }
  return "StateUnknown";
}

Progress::Progress(uint64_t next, size_t max_inflight, uint64_t max_inflight_bytes, bool is_learner)
    : next(next), is_learner(is_learner), inflights(max_inflight, max_inflight_bytes) {}

void Progress::ResetState(ProgressState new_state) {
  msg_app_flow_paused = false;
  pending_snapshot = 0;
  state = new_state;
  inflights.Reset();
}

void Progress::BecomeProbe() {
  if (state == ProgressState::kSnapshot) {
    // The snapshot was delivered (or at least sent): the follower most likely
    // has everything up to it, so probe just past it rather than re-sending
    // entries the snapshot covers. If it does not, the probe is rejected and
    // next moves back.
    const uint64_t snapshot = pending_snapshot;
    ResetState(ProgressState::kProbe);
    next = std::max(match + 1, snapshot + 1);
  } else {
    ResetState(ProgressState::kProbe);
    next = match + 1;
  }
  // Anything above next - 1 may not have arrived; let it be sent again.
  sent_commit = std::min(sent_commit, next - 1);
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  ResetState(ProgressState::kSnapshot);
  pending_snapshot = snapshot_index;
  next = snapshot_index + 1;
  // The snapshot carries its index as the follower's commit.
  sent_commit = snapshot_index;
}

void Progress::SentEntries(size_t entries, uint64_t bytes) {
  switch (state) {
    case ProgressState::kReplicate:
      if (entries > 0) {
        next += entries;
        inflights.Add(next - 1, bytes);
      }
      // A message that fills the window (or one sent into a full window) acts
      // as a probe: the flow pauses until acknowledgements free space.
      msg_app_flow_paused = inflights.Full();
      return;
    case ProgressState::kProbe:
      // Any MsgApp in probe state is a probe, with or without entries: wait
      // for the answer (or the next heartbeat) before sending another.
      msg_app_flow_paused = true;
      return;
    case ProgressState::kSnapshot:
      break;
  }
  RAFT_FATAL() << "SentEntries in state " << ProgressStateName(state) << ": " << Describe();
}

void Progress::SentCommit(uint64_t commit) { sent_commit = commit; }

bool Progress::CanBumpCommit(uint64_t commit) const {
  // A follower's commit can only advance up to next - 1 from what is in
  // flight. Once a commit index that far has been sent there is nothing more
  // a bare commit update could do for it.
  return commit > sent_commit && sent_commit < next - 1;
}

bool Progress::MaybeUpdate(uint64_t n) {
  if (n <= match) return false;  // stale or duplicate acknowledgement
  match = n;
  next = std::max(next, n + 1);  // keeps match < next
  msg_app_flow_paused = false;
  return true;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // Everything up to match is known to be in the follower's log, so a
    // rejection at or below it was overtaken by a later acknowledgement.
    if (rejected <= match) return false;
    // Pipelined appends after match are all suspect now; resume right after
    // what is known to match.
    next = match + 1;
    sent_commit = std::min(sent_commit, next - 1);
    return true;
  }

  // Probing sends one append at a time, at next - 1; a rejection of anything
  // else answers an older probe. (Best effort: it assumes reordering is rare.)
  if (next - 1 != rejected) return false;

  // The follower's hint says where its log may match; never go at or below
  // match, which is known to be good.
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  sent_commit = std::min(sent_commit, next - 1);
  msg_app_flow_paused = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
    case ProgressState::kReplicate:
      return msg_app_flow_paused;
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::Describe() const {
  std::string s = absl::StrCat(ProgressStateName(state), " match=", match, " next=", next);
  if (is_learner) absl::StrAppend(&s, " learner");
  if (IsPaused()) absl::StrAppend(&s, " paused");
  if (pending_snapshot > 0) absl::StrAppend(&s, " pendingSnap=", pending_snapshot);
  if (!recent_active) absl::StrAppend(&s, " inactive");
  if (inflights.Count() > 0) {
    absl::StrAppend(&s, " inflight=", inflights.Count());
    if (inflights.Full()) absl::StrAppend(&s, "[full]");
  }
  return s;
}

}  // namespace arbiter::raft
