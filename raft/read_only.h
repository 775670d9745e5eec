// Bookkeeping for linearizable reads (Raft thesis §6.4) and for the leader
// lease.
//
// The leader numbers its heartbeat rounds with a sequence number that never
// repeats while the node runs; heartbeats carry it and followers echo it. A
// read request waits for a round started AFTER it arrived: once a quorum has
// acknowledged such a round, the leader was still the leader when the read
// arrived, so the commit index recorded then is a safe read index. Many
// reads share a round, and an acknowledgement of a later round settles
// every earlier request. The client's request context is opaque: it may
// repeat, and nothing is keyed by it.
//
// The same rounds give the lease: a quorum that acknowledged a round sent
// at tick t will not vote for another leader before t + election timeout
// (their leader lease, with CheckQuorum), assuming clocks that run at the
// same rate.
//
// Thread safety: not thread-safe; part of a node's raft state.
#ifndef ARBITER_RAFT_READ_ONLY_H_
#define ARBITER_RAFT_READ_ONLY_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "raft/quorum.h"
#include "raft/types.h"

namespace arbiter::raft {

enum class ReadOnlyOption {
  // Confirm leadership with a heartbeat round per batch of reads. Safe under
  // any clock behaviour.
  kSafe,
  // Answer at once while the leader lease holds (requires CheckQuorum), and
  // fall back to a heartbeat round otherwise. Wrong only if clock rates
  // drift apart by more than the lease's margin.
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
  struct Request {
    Message req;  // entries(0).data() is the client's context
    uint64_t index = 0;
    // The newest round started before this request arrived; a round with a
    // higher sequence number must be acknowledged by a quorum.
    uint64_t after_round = 0;
  };

  explicit ReadOnly(ReadOnlyOption option) : option_(option) {}
  ReadOnlyOption option() const { return option_; }

  // Forgets requests, rounds and acknowledgements (new term or role). The
  // sequence keeps counting, so an old acknowledgement never matches a new
  // round.
  void Reset();

  // Queues a read that arrived when the commit index was index.
  void AddRequest(uint64_t index, Message req);
  // Whether a queued request still waits for a round to be started.
  bool NeedsRound() const;
  size_t pending() const { return queue_.size(); }

  // Starts a heartbeat round at leader tick now; returns its sequence
  // number (to put in the heartbeats' context). The caller acknowledges it
  // for itself with RecvAck.
  uint64_t StartRound(uint64_t now);
  // id acknowledged round seq (and so every earlier one).
  void RecvAck(uint64_t id, uint64_t seq);

  // Removes and returns the requests confirmed by a quorum of voters.
  std::vector<Request> Advance(const JointConfig& voters);
  // The leader tick until which the lease holds (exclusive), if a quorum
  // of voters acknowledged any round: send tick of the newest such round
  // plus election_timeout.
  std::optional<uint64_t> LeaseEnd(const JointConfig& voters, uint64_t election_timeout) const;

  // The 8-byte heartbeat context for a round, and back.
  static std::string EncodeRound(uint64_t seq);
  static std::optional<uint64_t> DecodeRound(const std::string& ctx);

 private:
  uint64_t QuorumAckedRound(const JointConfig& voters) const;

  ReadOnlyOption option_;
  uint64_t last_round_ = 0;
  std::deque<Request> queue_;
  // Round -> leader tick at which it was sent (rounds not yet known to be
  // acknowledged by a quorum, plus the newest that is).
  std::map<uint64_t, uint64_t> round_sent_;
  // Voter -> highest round it acknowledged.
  std::map<uint64_t, uint64_t> acked_;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_READ_ONLY_H_
