// RawNode drives one Raft node: the application feeds it time (Tick),
// messages (Step) and requests (Propose, ReadIndex, ...), and collects its
// outputs as a Ready (see ready.h for the persist -> send -> apply ->
// advance contract).
//
// Typical loop, on the one thread that owns the node:
//   while (running) {
//     feed ticks, peer messages and proposals;
//     if (node.HasReady()) {
//       Ready rd = node.GetReady();
//       persist(rd.hard_state, rd.entries, rd.snapshot);
//       send(rd.messages);
//       apply(rd.snapshot, rd.committed_entries);  // ApplyConfChange as needed
//       node.Advance();
//     }
//   }
//
// Reads: ReadIndex(ctx) starts one leadership-confirmation round; every read
// waiting when it is called can share that round (use one ctx per batch).
//
// Thread safety: not thread-safe. One thread owns a RawNode.
#ifndef ARBITER_RAFT_RAW_NODE_H_
#define ARBITER_RAFT_RAW_NODE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/raft.h"
#include "raft/ready.h"
#include "raft/tracker.h"

namespace arbiter::raft {

// A snapshot of a node's state for monitoring and tests.
struct NodeStatus {
  uint64_t id = 0;
  HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  uint64_t lead_transferee = kNone;
  TrackerConfig config;
  // Only on the leader: its view of every node.
  ProgressMap progress;

  std::string Describe() const;
};

enum class SnapshotStatus { kFinish, kFailure };

class RawNode {
 public:
  // Errors: InvalidArgument if config does not validate.
  static absl::StatusOr<std::unique_ptr<RawNode>> Create(const Config& config);

  // One tick of logical time.
  void Tick() { raft_.Tick(); }
  // Starts an election now (pre-vote first when enabled).
  absl::Status Campaign();
  // Proposes data to be appended to the log. OK means accepted for
  // replication, not committed: watch for the entry among committed entries.
  // Errors: ErrProposalDropped (no leader, transfer under way, size limit).
  absl::Status Propose(std::string data);
  // Proposes several entries at once, in order: one message through the
  // core and one replication round for all of them. All are accepted or
  // none is. REQUIRES: !data.empty().
  absl::Status ProposeBatch(std::vector<std::string> data);
  // Proposes a membership change. At most one may be pending at a time; a
  // conflicting one is replaced by an empty entry (and never applied).
  absl::Status ProposeConfChange(const ConfChange& cc);
  absl::Status ProposeConfChange(const ConfChangeV2& cc);
  // Applies a committed conf change entry's change; returns the new
  // membership to store with the state machine.
  ConfState ApplyConfChange(const ConfChangeV2& cc) { return raft_.ApplyConfChange(cc); }
  ConfState ApplyConfChange(const ConfChange& cc);

  // Feeds a message received from a peer.
  // Errors: ErrStepLocalMsg for local-only types; ErrStepPeerNotFound for a
  // response from a node outside the configuration; InvalidArgument for a
  // malformed message. State is unchanged on error.
  absl::Status Step(Message m);

  // Requests a linearizable read. A ReadState with this ctx appears in a
  // later Ready once it is safe to serve; ctx must be unique among pending
  // requests.
  void ReadIndex(std::string ctx);
  // Asks the leader to hand leadership to transferee.
  void TransferLeader(uint64_t transferee);
  // The transport could not deliver to id.
  void ReportUnreachable(uint64_t id);
  // The connection from id was closed by id's end (Raft::ConnectionLost):
  // if id is this follower's leader, it campaigns soon instead of waiting
  // out a full election timeout.
  void ReportConnectionLost(uint64_t id) { raft_.ConnectionLost(id); }
  // The outcome of sending a snapshot to id.
  void ReportSnapshot(uint64_t id, SnapshotStatus status);

  bool HasReady() const;
  // REQUIRES: no Ready is outstanding (Advance was called for the last one).
  Ready GetReady();
  // The last Ready was handled (persisted, sent, applied).
  // REQUIRES: a Ready is outstanding.
  void Advance();

  NodeStatus Status() const;
  const Raft& raft() const { return raft_; }
  Raft& mutable_raft() { return raft_; }

 private:
  explicit RawNode(const Config& config);

  Raft raft_;
  SoftState prev_soft_state_;
  HardState prev_hard_state_;
  // What the outstanding Ready handed out, for Advance.
  bool ready_outstanding_ = false;
  uint64_t pending_stable_index_ = 0;
  uint64_t pending_stable_term_ = 0;
  uint64_t pending_snapshot_index_ = 0;
  uint64_t pending_applied_index_ = 0;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_RAW_NODE_H_
