// The replicated state machine a Member applies committed log entries into.
// It knows nothing of Raft: it sees commands (the payloads of committed
// normal entries, without the member's request header), in log order, each
// with its log index.
//
// Crash semantics: an implementation that is durable MUST persist the
// applied index atomically with the state changes of the command at that
// index (the KV store writes both in one LevelDB WriteBatch). After a crash
// the member replays the log from its last raft snapshot; commands at or
// below AppliedIndex() are skipped by the member, so replay is idempotent.
// A durable implementation syncs when asked (Sync), before the member
// discards the log entries behind a snapshot.
// If the index were written separately, a crash between the two writes would
// apply a command twice or lose it (etcd #13766). A non-durable
// implementation (TestStateMachine) starts empty and is restored from the
// raft snapshot, then replays the log.
//
// Determinism: Apply must be a pure function of the prior state and the
// command. It must not read clocks, randomness or local configuration: every
// member has to reach the same state.
//
// Thread safety: a Member calls every method from its one event-loop thread;
// implementations need no locking unless they share state with other
// threads themselves (e.g. MVCC readers).
#ifndef ARBITER_SERVER_STATE_MACHINE_H_
#define ARBITER_SERVER_STATE_MACHINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace arbiter::server {

// The state of a StateMachine frozen at one point of its history, for
// another thread to serialize while the state machine goes on applying.
class FrozenState {
 public:
  virtual ~FrozenState() = default;
  // The state when it was frozen, in StateMachine::Snapshot()'s format.
  // Called from a thread other than the member's loop. Should give up
  // (with any error) soon after cancel turns true: the member is stopping.
  virtual absl::StatusOr<std::string> Serialize(const std::atomic<bool>& cancel) const = 0;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies the committed command at index and sets *result to what the
  // proposer gets back. A command the state machine rejects (malformed,
  // failed precondition) is still applied: the rejection is a deterministic
  // result, reported in *result. A non-OK status means the state machine
  // could not record the change (an I/O error); the member then fail-stops.
  // REQUIRES: index > AppliedIndex().
  virtual absl::Status Apply(uint64_t index, absl::string_view command, std::string* result) = 0;

  // The index of the last command applied (or of the snapshot restored).
  // Log entries that carry no command (a new leader's empty entry,
  // membership changes) are not passed to Apply, so this may trail the
  // member's applied index; the state is the same at both.
  virtual uint64_t AppliedIndex() const = 0;

  // Serializes the whole state as of AppliedIndex(). A member ships it to a
  // follower that needs a snapshot; unless the state machine is durable, it
  // also stores it in the raft log store's snapshot.
  virtual absl::StatusOr<std::string> Snapshot() const = 0;

  // Freezes the state as of now for a snapshot another thread serializes,
  // so the member's loop does not stop for it. nullptr if the state
  // machine cannot (the member then calls Snapshot() on its loop). The
  // result is destroyed before the state machine.
  virtual std::unique_ptr<FrozenState> Freeze() const { return nullptr; }

  // True if Sync() makes the state survive a crash. The member then keeps
  // no copy of the state in its raft snapshots: when the log is to be
  // compacted it calls Sync() and records only that the state machine
  // holds the state up to the snapshot's index.
  virtual bool Durable() const { return false; }

  // Makes everything applied so far survive a crash, power loss included.
  // REQUIRES: Durable().
  virtual absl::Status Sync() { return absl::UnimplementedError("state machine is not durable"); }

  // Replaces the whole state with a snapshot's, taken at index. data is
  // handed over, so the state machine can free it as soon as it has what
  // it needs (a snapshot can be as large as the state).
  // Errors: DataLoss if data does not parse (the member fail-stops).
  virtual absl::Status Restore(uint64_t index, std::string data) = 0;

  // A digest of the state (not of the applied index): equal states give
  // equal hashes, so members can be compared once they applied the same log.
  virtual uint64_t Hash() const = 0;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_STATE_MACHINE_H_
