// Internal types of Member shared by member.cc (startup and the public,
// any-thread API) and member_loop.cc (the event loop). Not part of the
// server library's interface.
//
// Thread safety: Waiter is the only type shared across threads (see its
// comment); the rest are handed through the inbox under its mutex, then
// owned by the loop thread.
#ifndef ARBITER_SERVER_MEMBER_INTERNAL_H_
#define ARBITER_SERVER_MEMBER_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/member.h"

namespace arbiter::server {

// One caller's rendezvous with the loop. The loop completes it at most once
// (it removes the waiter from its tables first); the Notification orders
// the write of result before the caller's read.
struct Member::Waiter {
  absl::Notification done;
  absl::StatusOr<std::string> result;
  // A query's function runs only while not abandoned, under mu: a caller
  // that timed out sets abandoned, so the function (which may point into
  // the caller's stack) never runs after the caller returned.
  absl::Mutex mu;
  bool abandoned ABSL_GUARDED_BY(mu) = false;

  // Set for an asynchronous caller: Finish hands the result to it (on the
  // finishing thread) instead of notifying.
  Callback on_done;

  void Finish(absl::StatusOr<std::string> r) {
    if (on_done) {
      Callback f = std::move(on_done);
      f(std::move(r));
      return;
    }
    result = std::move(r);
    done.Notify();
  }
};

enum class RequestKind { kPropose, kRead, kConfChange, kTransfer, kQuery };

struct Member::Request {
  RequestKind kind = RequestKind::kPropose;
  // kPropose: the command. kConfChange: a serialized ConfChangeV2.
  std::string data;
  uint64_t transferee = 0;
  std::function<void(const StateMachine&)> query;
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<Waiter> waiter;
  // Assigned by Enqueue; unique per member incarnation.
  uint64_t id = 0;
};

struct Member::PendingRequest {
  std::shared_ptr<Waiter> waiter;
  absl::Time deadline;
  uint64_t transferee = 0;
  // The leader known when the request was handed to Raft.
  uint64_t lead = 0;
};

struct Member::Inbox {
  std::vector<raft::Message> messages;
  std::vector<Request> proposals;
  std::vector<Request> reads;
  std::vector<Request> others;  // conf changes, transfers, queries
  std::vector<uint64_t> unreachable;
  std::vector<std::pair<uint64_t, raft::SnapshotStatus>> snapshot_status;
  // Snapshot messages the builder thread finished, to send.
  std::vector<raft::Message> built_snapshots;
  // (peer, how many of messages arrived before the report), in order.
  std::vector<std::pair<uint64_t, size_t>> connection_lost;
  bool stop = false;  // graceful
  bool kill = false;  // abrupt

  size_t requests() const { return proposals.size() + reads.size() + others.size(); }
  bool Empty() const {
    return messages.empty() && requests() == 0 && unreachable.empty() && snapshot_status.empty() &&
           built_snapshots.empty() && connection_lost.empty() && !stop && !kill;
  }
};

// The header the member prepends to every command (and puts in every conf
// change's context) so that the proposing member recognises the entry when
// it applies it: a version byte, the proposer's id and its request id,
// fixed64 little-endian.
inline constexpr char kRequestHeaderVersion = 1;
inline constexpr size_t kRequestHeaderSize = 17;

struct Member::SnapshotBuild {
  raft::Message msg;  // a MsgSnap, its data to be filled in
  std::unique_ptr<FrozenState> frozen;
};

struct RequestHeader {
  uint64_t member = 0;
  uint64_t request = 0;
};

std::string EncodeRequest(const RequestHeader& h, absl::string_view payload);
// Splits data into header and payload. False if data has no valid header.
bool DecodeRequest(absl::string_view data, RequestHeader* h, absl::string_view* payload);

// The data of a raft snapshot whose state a durable state machine holds
// (StateMachine::Durable): a marker and the state machine's applied index
// when it was synced. Such a snapshot never leaves the member: the leader
// puts the serialized state in its place when it sends one.
std::string HeldStateMarker(uint64_t sm_applied);
// True if data is such a marker; sets *sm_applied.
bool ParseHeldStateMarker(absl::string_view data, uint64_t* sm_applied);

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_MEMBER_INTERNAL_H_
