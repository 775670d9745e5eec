// The Raft consensus state machine of one node. It is a pure, deterministic
// function of its inputs: messages (Step), time (Tick, counted in ticks) and
// an injected random source. It performs no I/O: its outputs (messages to
// send, entries to persist, entries to apply) are collected by RawNode into a
// Ready. Applications use RawNode (raw_node.h), not this class directly.
//
// Structure: Step() settles the message term once for every role, then
// dispatches to the role's step function (StepLeader, StepCandidate,
// StepFollower). Role changes happen only in the Become* functions.
//
// Thread safety: not thread-safe. One thread owns a node's Raft.
#ifndef ARBITER_RAFT_RAFT_H_
#define ARBITER_RAFT_RAFT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/logger.h"
#include "raft/raft_log.h"
#include "raft/rand.h"
#include "raft/read_only.h"
#include "raft/storage.h"
#include "raft/tracker.h"
#include "raft/types.h"

namespace arbiter::raft {

enum class StateType { kFollower, kCandidate, kLeader, kPreCandidate };
const char* StateTypeName(StateType s);

struct Config {
  // This node's id. REQUIRES: != kNone.
  uint64_t id = kNone;
  // Ticks without hearing from a leader before a follower campaigns. The
  // actual timeout is drawn uniformly from [election_tick, 2*election_tick).
  // REQUIRES: > heartbeat_tick. Ten times heartbeat_tick is a good default.
  int election_tick = 10;
  // Ticks between the leader's heartbeats.
  int heartbeat_tick = 1;
  // The node's durable state. Not owned; must outlive the node.
  const Storage* storage = nullptr;
  // The last applied index at restart; committed entries up to it are not
  // handed to the application again. 0 on first start. At least the
  // storage's snapshot index when the storage keeps entries behind its
  // snapshot (those would be handed out again otherwise).
  uint64_t applied = 0;
  // Byte limit of the entries in one MsgApp (at least one entry is sent).
  uint64_t max_size_per_msg = 1 << 20;
  // Byte limit of the committed entries in one Ready.
  uint64_t max_committed_size_per_ready = 64 << 20;
  // Bytes of uncommitted payload a leader accepts before dropping proposals.
  uint64_t max_uncommitted_entries_size = kNoLimit;
  // MsgApp messages in flight per follower in replicate state.
  size_t max_inflight_msgs = 256;
  // Bytes in flight per follower; 0 means no byte limit.
  uint64_t max_inflight_bytes = 0;
  // The leader steps down when it has not heard from a quorum within an
  // election timeout, and followers ignore vote requests while they hear
  // from a leader (leader lease).
  bool check_quorum = true;
  // A candidate first asks whether it could win (Raft thesis §9.6) before
  // raising its term, so a partitioned node does not disrupt the cluster
  // when it rejoins.
  bool pre_vote = true;
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  // Followers drop proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
  // A leader removed from the configuration (or demoted) steps down.
  bool step_down_on_removal = true;
  // What a follower does when told its leader's connection was closed
  // (Raft::ConnectionLost): it stops honouring the leader's lease and
  // campaigns (pre-vote first) after a short randomized delay instead of a
  // full election timeout. Ignored with ReadOnlyOption::kLeaseBased, whose
  // reads rely on followers honouring the lease until it runs out.
  bool campaign_on_leader_loss = true;
  // Source of the election timeout jitter. Not owned. REQUIRES: non-null.
  Rand* rand = nullptr;
  // Not owned; nullptr logs nothing.
  Logger* logger = nullptr;

  absl::Status Validate() const;
};

// Volatile state that the application may want to observe.
struct SoftState {
  uint64_t lead = kNone;
  StateType raft_state = StateType::kFollower;
  bool operator==(const SoftState& o) const = default;
};

// How a campaign starts.
enum class CampaignType {
  kPreElection,  // pre-vote phase first
  kElection,     // regular election
  kTransfer,     // leadership transfer: voters ignore their leader lease
};

class Raft {
 public:
  // Loads the state from storage. Aborts if storage is inconsistent (a
  // commit index past the last entry): the node must not run on it.
  // REQUIRES: config.Validate() is OK.
  explicit Raft(const Config& config);

  // Feeds one message (from a peer, or local: MsgHup, MsgBeat, MsgProp, ...).
  absl::Status Step(Message m);
  // Advances time by one tick.
  void Tick();
  // The transport saw the connection from node id closed by id's end (its
  // process exited, or it closed the connection): evidence, not proof, that
  // id is gone. A follower whose leader is id stops honouring its lease
  // (grants pre-votes and votes to others) and campaigns within
  // LeaderLossDelayRange(id) ticks; hearing from the leader again undoes
  // both. Safety does not depend on the evidence: a wrong report on one
  // follower of a healthy cluster costs a pre-vote round the others refuse.
  void ConnectionLost(uint64_t id);

  // ---- State read by RawNode and tests ----
  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  StateType state() const { return state_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  bool is_learner() const { return is_learner_; }
  SoftState soft_state() const { return {lead_, state_}; }
  HardState hard_state() const;
  const RaftLog& log() const { return log_; }
  RaftLog& mutable_log() { return log_; }
  const ProgressTracker& tracker() const { return trk_; }
  int election_elapsed() const { return election_elapsed_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  // Whether this follower was told its leader's connection closed and has
  // not heard from it since.
  bool leader_lost() const { return leader_lost_; }
  // A follower told its leader `lost` is gone campaigns after a delay drawn
  // uniformly from this range of ticks: [1 + 2r, 2 + 2r] for the follower
  // of rank r by id among the voters other than `lost` (never later than
  // its normal timeout).
  std::pair<int, int> LeaderLossDelayRange(uint64_t lost) const;
  uint64_t pending_conf_index() const { return pending_conf_index_; }
  uint64_t uncommitted_size() const { return uncommitted_size_; }
  const Config& config() const { return config_; }

  // Outputs collected since the last Ready.
  std::vector<Message>& msgs() { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }

  // ---- Called by RawNode ----
  // The application persisted the snapshot at index / applied up to index.
  void AppliedTo(uint64_t index);
  void AppliedSnapshot(uint64_t index);
  // Applies a committed conf change; returns the new ConfState.
  ConfState ApplyConfChange(const ConfChangeV2& cc);
  // The configuration cc would produce from the current one (validation).
  absl::StatusOr<std::pair<TrackerConfig, ProgressMap>> ComputeConfChange(
      const ConfChangeV2& cc) const;
  // Linearizable reads that arrived since the last Ready wait for one shared
  // heartbeat round; RawNode starts it when it builds the next Ready.
  bool read_round_pending() const {
    return state_ == StateType::kLeader && read_only_.NeedsRound();
  }
  void FlushReadIndexRound();
  // Frees uncommitted-size budget for entries that were committed.
  void ReduceUncommittedSize(uint64_t payload_bytes);

  // A one-line dump of the node's state, for failed invariants and logs.
  std::string DescribeState() const;

  // For tests: pin the randomized election timeout.
  void set_randomized_election_timeout(int t) { randomized_election_timeout_ = t; }

 private:
  // ---- Role transitions (raft.cc) ----
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Reset(uint64_t term);

  // ---- Ticks (raft.cc) ----
  void TickElection();
  void TickHeartbeat();
  bool PastElectionTimeout() const;
  void ResetRandomizedElectionTimeout();
  bool Promotable() const;

  // ---- Elections (raft.cc) ----
  void Hup(CampaignType t);
  void Campaign(CampaignType t);
  ProgressTracker::Tally Poll(uint64_t id, MessageType t, bool granted);
  bool HasUnappliedConfChanges() const;
  void HandleVoteRequest(const Message& m);

  // ---- Role step functions ----
  absl::Status StepLeader(Message& m);     // raft_leader.cc
  absl::Status StepCandidate(Message& m);  // raft_follower.cc
  absl::Status StepFollower(Message& m);   // raft_follower.cc

  // ---- Leader (raft_leader.cc) ----
  absl::Status HandlePropose(Message& m);
  void HandleReadIndex(Message& m);
  void HandleAppendResponse(const Message& m, Progress& pr);
  void HandleHeartbeatResponse(const Message& m, Progress& pr);
  void HandleTransferLeader(const Message& m, Progress& pr);
  bool AppendEntries(std::vector<Entry> ents);
  bool MaybeCommit();
  void SendAppend(uint64_t to);
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  bool MaybeSendSnapshot(uint64_t to, Progress& pr);
  void SendHeartbeat(uint64_t to, const std::string& ctx);
  void BcastAppend();
  void BcastHeartbeat();
  void BcastHeartbeatWithCtx(const std::string& ctx);
  void SendTimeoutNow(uint64_t to);
  void AbortLeaderTransfer() { lead_transferee_ = kNone; }
  // Leader with an automatically-left joint config that is applied:
  // propose leaving it.
  void MaybeProposeLeaveJoint();
  bool CommittedEntryInCurrentTerm() const;
  // Whether a lease-based read may be answered now without a round.
  bool LeaseValid() const;
  void SendReadIndexResponse(const Message& req);
  void ReleasePendingReadIndexMessages();
  // Answers a read request at read_index: locally (a read state) if it is
  // ours, else with MsgReadIndexResp to the follower that forwarded it.
  void RespondToReadIndex(const Message& req, uint64_t read_index);
  bool IncreaseUncommittedSize(const std::vector<Entry>& ents);

  // ---- Follower (raft_follower.cc) ----
  // A message from the leader of our term arrived: restart the election
  // clock and (if it was thought lost) trust the leader's lease again.
  void HeardFromLeader(uint64_t lead);
  // Takes the entries out of m.
  void HandleAppendEntries(Message& m);
  void HandleHeartbeat(const Message& m);
  // Takes the snapshot's data out of m when it restores it.
  void HandleSnapshot(Message& m);
  // Moves s's data into the log when it restores s (true).
  bool Restore(Snapshot* s);
  ConfState SwitchToConfig(TrackerConfig cfg, ProgressMap prs);

  // Queues m for sending; fills in from and (for most types) term.
  void Send(Message m);
  void LoadState(const HardState& hs);

  const Config config_;
  const uint64_t id_;
  Logger* const logger_;
  Rand* const rand_;

  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  RaftLog log_;
  ProgressTracker trk_;
  StateType state_ = StateType::kFollower;
  // Whether this node is a learner in the current config.
  bool is_learner_ = false;
  uint64_t lead_ = kNone;
  // The node leadership is being transferred to, or kNone.
  uint64_t lead_transferee_ = kNone;
  // The index of the latest conf change proposed by this leader (or the last
  // index when it became leader). A new conf change may be proposed only
  // once applied >= pending_conf_index_ (one change at a time, thesis §4.1).
  uint64_t pending_conf_index_ = 0;
  // Payload bytes appended by this leader and not yet committed.
  uint64_t uncommitted_size_ = 0;
  ReadOnly read_only_;
  // ReadIndex requests that arrived before this leader committed an entry
  // of its own term; answered once it has.
  std::vector<Message> pending_read_index_messages_;
  // Leader only: ticks since it became leader (the lease's clock).
  uint64_t leader_ticks_ = 0;
  // Leader only: a MsgTimeoutNow was sent in this term. Its recipient may
  // campaign at any time and voters ignore their lease for it, so the
  // lease can no longer be trusted in this term.
  bool timeout_now_sent_ = false;

  // Ticks since the last election timeout reset (follower/candidate: since
  // hearing from a leader or granting a vote; leader: since the last
  // CheckQuorum).
  int election_elapsed_ = 0;
  // Leader only: ticks since the last heartbeat.
  int heartbeat_elapsed_ = 0;
  int heartbeat_timeout_;
  int election_timeout_;
  // In [election_timeout_, 2 * election_timeout_); redrawn at each Reset.
  // Shortened while leader_lost_.
  int randomized_election_timeout_ = 0;
  // Follower only: the transport reported the connection from lead_ closed
  // and nothing has been heard from lead_ since. The lease is not honoured.
  bool leader_lost_ = false;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_RAFT_H_
