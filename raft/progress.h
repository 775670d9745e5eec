// The leader's view of one follower: how far its log is known to match, what
// to send next, and which flow-control state it is in.
//
//          +--------------------------------------------------------+
//          |                  send snapshot                         |
//          |                                                        v
//   +-----------+   probe answered (match found)   +-----------+   +------------+
//   |   Probe   | -------------------------------> | Replicate |   |  Snapshot  |
//   +-----------+ <------------------------------- +-----------+   +------------+
//          ^          rejected / unreachable                          |
//          +----------------------------------------------------------+
//                snapshot applied, failed, or overtaken
//
// Probe: at most one MsgApp per heartbeat interval, until the follower's
// answer shows where its log matches ours. Replicate: MsgApps are pipelined
// optimistically (Next moves ahead of Match) within the Inflights window.
// Snapshot: nothing is sent until the snapshot in flight is reported.
//
// Thread safety: not thread-safe; part of a node's raft state.
#ifndef ARBITER_RAFT_PROGRESS_H_
#define ARBITER_RAFT_PROGRESS_H_

#include <cstdint>
#include <string>

#include "raft/inflights.h"

namespace arbiter::raft {

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* ProgressStateName(ProgressState s);

class Progress {
 public:
  Progress(uint64_t next, size_t max_inflight, uint64_t max_inflight_bytes, bool is_learner);

  // Invariant: match < next.
  uint64_t match = 0;
  uint64_t next = 1;
  ProgressState state = ProgressState::kProbe;
  // In kSnapshot: index of the snapshot being sent. Once match reaches it
  // the follower can go back to probing.
  uint64_t pending_snapshot = 0;
  // Heard from in the current CheckQuorum interval. Reset by the leader each
  // interval; a new leader sets it for every peer.
  bool recent_active = false;
  // In kProbe: a MsgApp was sent and sending pauses until the follower
  // answers or a heartbeat interval passes. In kReplicate: the Inflights
  // window is full.
  bool msg_app_flow_paused = false;
  // The highest commit index sent to this follower.
  uint64_t sent_commit = 0;
  bool is_learner = false;
  Inflights inflights;

  // Leaves the current state: clears the pause, the pending snapshot and the
  // inflight window.
  void ResetState(ProgressState state);
  // Back to probing from next = match + 1 (or just past the pending snapshot).
  void BecomeProbe();
  // Pipelined replication from next = match + 1.
  void BecomeReplicate();
  // Waits for the snapshot at snapshot_index.
  void BecomeSnapshot(uint64_t snapshot_index);

  // Called after a MsgApp carrying `entries` entries (bytes in total) was
  // sent, whose entries started at next. Moves next (replicate) or pauses
  // (probe). An empty probe also pauses.
  void SentEntries(size_t entries, uint64_t bytes);
  // Records that commit index commit was sent.
  void SentCommit(uint64_t commit);
  // Whether this follower's commit index may lag what the leader could send.
  bool CanBumpCommit(uint64_t commit) const;

  // An append up to n was acknowledged. Returns true if match moved (the
  // response was not stale). Also unpauses probing.
  bool MaybeUpdate(uint64_t n);

  // The follower rejected an append at index rejected with hint match_hint
  // (the last index where its log may match). Returns false if the rejection
  // is stale (out of order) and was ignored; otherwise moves next back.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);

  // Whether sending is paused (probe waiting, window full, or snapshot).
  bool IsPaused() const;

  std::string Describe() const;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_PROGRESS_H_
