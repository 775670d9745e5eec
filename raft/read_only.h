// Bookkeeping for linearizable reads served by the ReadIndex protocol (Raft
// thesis §6.4): each request records the commit index at the time it arrived
// and waits until a quorum has answered a heartbeat sent after it, proving
// that the leader was still the leader at that moment.
//
// Requests are answered in arrival order. An acknowledgement of a later
// request also settles every earlier one, so many reads share one round.
//
// Thread safety: not thread-safe; part of a node's raft state.
#ifndef ARBITER_RAFT_READ_ONLY_H_
#define ARBITER_RAFT_READ_ONLY_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "raft/types.h"

namespace arbiter::raft {

enum class ReadOnlyOption {
  // Confirm leadership with a heartbeat round per batch of reads. Safe under
  // any clock behaviour.
  kSafe,
  // Trust the leader lease (requires CheckQuorum): answer from the commit
  // index at once. Wrong if clocks drift beyond the election timeout.
  kLeaseBased,
};

// A read that may now be served: once the application has applied up to
// index, reading local state answers the request identified by request_ctx.
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;
};

class ReadOnly {
 public:
  struct Status {
    Message req;
    uint64_t index = 0;
    std::map<uint64_t, bool> acks;
  };

  explicit ReadOnly(ReadOnlyOption option) : option_(option) {}

  ReadOnlyOption option() const { return option_; }

  // Records a read request (req.entries(0).data() is its context) that arrived
  // when the commit index was index. A duplicate context is ignored.
  void AddRequest(uint64_t index, const Message& req);

  // Records that id acknowledged the heartbeat carrying context ctx. Returns
  // the acks for that request, or nullptr if it is unknown (already served).
  const std::map<uint64_t, bool>* RecvAck(uint64_t id, const std::string& ctx);

  // Removes and returns the request with context ctx and every request queued
  // before it.
  std::vector<Status> Advance(const std::string& ctx);

  // Context of the newest pending request ("" if none); heartbeats carry it.
  std::string LastPendingRequestCtx() const;

  size_t pending() const { return queue_.size(); }

 private:
  ReadOnlyOption option_;
  absl::flat_hash_map<std::string, Status> pending_;
  std::deque<std::string> queue_;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_READ_ONLY_H_
