// Ready: everything a node wants the application to do, handed out by
// RawNode::GetReady(). The application MUST handle it in this order:
//
//   1. PERSIST  hard_state (if not empty), entries, and snapshot (if not
//               empty), durably (fsync when must_sync), in one atomic write
//               if possible. Nothing below may happen before this is durable:
//               a message could promise what a crash would then forget
//               (a vote, or an acknowledged entry).
//   2. SEND     messages, in order per destination. Send failures are
//               reported with RawNode::ReportUnreachable / ReportSnapshot;
//               messages may be dropped (Raft retries).
//               Exception: when send_before_persist is set (a leader whose
//               term and vote are already durable) the messages may be sent
//               BEFORE step 1, so that the leader's disk write overlaps the
//               followers' (Raft thesis §10.2.1). What such a leader sends
//               is its own log, which promises nothing a crash could break:
//               an entry counts as committed only once a quorum has
//               persisted it, and the leader's own count of the new entries
//               is only acted on by messages stepped in after Advance, when
//               they are durable. So nothing may be stepped into the node
//               between GetReady and Advance (Tick, Step, Propose, ...).
//   3. APPLY    the snapshot (if not empty) to the state machine, then
//               committed_entries in order. For conf change entries call
//               RawNode::ApplyConfChange and store the returned ConfState
//               with the state machine. After applying a change that adds
//               a node, take a snapshot: a new node catches up from one, and
//               the leader sends only snapshots that include the recipient.
//               read_states may be answered once the applied index reaches
//               each one's index.
//   4. ADVANCE  call RawNode::Advance(). Only then may GetReady be called
//               again.
//
// Thread safety: a value; no internal synchronisation.
#ifndef ARBITER_RAFT_READY_H_
#define ARBITER_RAFT_READY_H_

#include <optional>
#include <vector>

#include "raft/raft.h"
#include "raft/read_only.h"
#include "raft/types.h"

namespace arbiter::raft {

struct Ready {
  // Set only when it changed since the previous Ready. Never persisted.
  std::optional<SoftState> soft_state;

  // (1) Persist. hard_state is empty (IsEmptyHardState) when unchanged.
  HardState hard_state;
  // Entries to append to stable storage; they may overwrite entries already
  // stored at the same indexes (a follower truncating a conflicting suffix).
  std::vector<Entry> entries;
  // A snapshot to store (empty when none: IsEmptySnapshot). Its data is
  // handed over, not copied: Raft keeps only the metadata until Advance.
  Snapshot snapshot;
  // False when only the commit index changed: then the write need not be
  // synced (a lost commit index is relearned from the leader).
  bool must_sync = false;

  // (2) Send, after (1) is durable, or before (1) when send_before_persist.
  std::vector<Message> messages;
  // The node is the leader, and hard_state changes at most its commit
  // index and snapshot is empty: messages may go out before (1).
  bool send_before_persist = false;

  // (3) Apply, after (1) is durable; entries that are also in `entries` are
  // covered by that same persist.
  std::vector<Entry> committed_entries;
  // Linearizable reads now servable at read_states[i].index.
  std::vector<ReadState> read_states;

  bool Empty() const {
    return !soft_state.has_value() && IsEmptyHardState(hard_state) && entries.empty() &&
           IsEmptySnapshot(snapshot) && messages.empty() && committed_entries.empty() &&
           read_states.empty();
  }
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_READY_H_
