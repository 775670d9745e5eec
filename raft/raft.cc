// Construction, the term rules every role shares, ticks, role transitions and
// elections. The roles' own step functions live in raft_leader.cc and
// raft_follower.cc.
#include "raft/raft.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raft/check.h"
#include "raft/confchange.h"
#include "raft/errors.h"
#include "raft/mutants.h"
#include "raft/rlog.h"

namespace arbiter::raft {
namespace {

// The context of a vote request sent for a leadership transfer: voters grant
// it even while they still hear from the current leader.
constexpr char kCampaignTransfer[] = "CampaignTransfer";

}  // namespace

const char* StateTypeName(StateType s) {
  switch (s) {
    case StateType::kFollower:
      return "StateFollower";
    case StateType::kCandidate:
      return "StateCandidate";
    case StateType::kLeader:
      return "StateLeader";
    case StateType::kPreCandidate:
      return "StatePreCandidate";
  }
  return "StateUnknown";
}

absl::Status Config::Validate() const {
  if (id == kNone) return absl::InvalidArgumentError("cannot use none as id");
  if (heartbeat_tick <= 0)
    return absl::InvalidArgumentError("heartbeat tick must be greater than 0");
  if (election_tick <= heartbeat_tick) {
    return absl::InvalidArgumentError("election tick must be greater than heartbeat tick");
  }
  if (storage == nullptr) return absl::InvalidArgumentError("storage cannot be nil");
  if (rand == nullptr) return absl::InvalidArgumentError("rand cannot be nil");
  if (max_inflight_msgs == 0)
    return absl::InvalidArgumentError("max inflight messages must be greater than 0");
  if (max_inflight_bytes != 0 && max_inflight_bytes < max_size_per_msg) {
    return absl::InvalidArgumentError("max inflight bytes must be >= max message size");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return absl::InvalidArgumentError(
        "CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased");
  }
  return absl::OkStatus();
}

Raft::Raft(const Config& config)
    : config_(config),
      id_(config.id),
      logger_(config.logger != nullptr ? config.logger : DiscardLogger()),
      rand_(config.rand),
      log_(config.storage, config.logger != nullptr ? config.logger : DiscardLogger(),
           config.max_committed_size_per_ready),
      trk_(config.max_inflight_msgs, config.max_inflight_bytes),
      read_only_(config.read_only_option),
      heartbeat_timeout_(config.heartbeat_tick),
      election_timeout_(config.election_tick) {
  absl::Status valid = config.Validate();
  RAFT_CHECK(valid.ok()) << valid;
  auto state = config.storage->InitialState();
  RAFT_CHECK(state.ok()) << "reading initial state: " << state.status();

  auto restored = RestoreConfState(trk_, log_.LastIndex(), state->conf_state);
  RAFT_CHECK(restored.ok()) << "restoring conf state " << DescribeConfState(state->conf_state)
                            << ": " << restored.status();
  ConfState cs = SwitchToConfig(std::move(restored->first), std::move(restored->second));
  RAFT_CHECK(ConfStateEquivalent(cs, state->conf_state))
      << DescribeConfState(cs) << " vs " << DescribeConfState(state->conf_state);

  if (!IsEmptyHardState(state->hard_state)) LoadState(state->hard_state);
  if (config.applied > log_.committed()) {
    // A commit-only change need not be synced (ready.h), so the state
    // machine may have applied entries beyond the stored commit index.
    // Applied entries were committed: take the commit index from there, as
    // long as the log still has them.
    RAFT_CHECK(config.applied <= log_.LastIndex())
        << "applied index " << config.applied << " is beyond the last log index "
        << log_.LastIndex() << ": the log lost entries the state machine applied; "
        << DescribeState();
    log_.CommitTo(config.applied);
  }
  if (config.applied > 0) log_.AppliedTo(config.applied);
  BecomeFollower(term_, kNone);

  RLOG(kInfo, "newRaft [peers: %s, term: %d, commit: %d, applied: %d, lastindex: %d, lastterm: %d]",
       trk_.config.Describe(), term_, log_.committed(), log_.applied(), log_.LastIndex(),
       log_.LastTerm());
}

HardState Raft::hard_state() const {
  HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

std::string Raft::DescribeState() const {
  return absl::StrCat("node ", absl::Hex(id_), " ", StateTypeName(state_), " term=", term_,
                      " vote=", vote_, " lead=", lead_, " ", log_.Describe(),
                      " config=", trk_.config.Describe());
}

void Raft::LoadState(const HardState& hs) {
  // A commit index past the last entry means the log lost entries that were
  // acknowledged: refuse to run rather than vote or ack with a short log.
  RAFT_CHECK(hs.commit() >= log_.committed() && hs.commit() <= log_.LastIndex())
      << "state.commit " << hs.commit() << " is out of range [" << log_.committed() << ", "
      << log_.LastIndex() << "]; " << DescribeState();
  log_.CommitTo(hs.commit());
  term_ = hs.term();
  vote_ = hs.vote();
}

void Raft::Send(Message m) {
  if (m.from() == kNone) m.set_from(id_);
  const MessageType t = m.type();
  if (t == raftpb::MSG_VOTE || t == raftpb::MSG_VOTE_RESP || t == raftpb::MSG_PRE_VOTE ||
      t == raftpb::MSG_PRE_VOTE_RESP) {
    // Vote messages carry the campaign's term (for pre-votes: a future term).
    RAFT_CHECK(m.term() != 0) << "term must be set when sending " << MessageTypeName(t);
  } else {
    RAFT_CHECK(m.term() == 0) << "term must not be set when sending " << MessageTypeName(t);
    // Proposals and read requests forwarded to the leader travel as local
    // messages (term 0) so the leader never rejects them as stale.
    if (t != raftpb::MSG_PROP && t != raftpb::MSG_READ_INDEX) m.set_term(term_);
  }
  RAFT_CHECK(m.to() != id_) << "self-addressed " << DescribeMessage(m);
  msgs_.push_back(std::move(m));
}

// ---------------------------------------------------------------------------
// Ticks

void Raft::Tick() {
  if (state_ == StateType::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && PastElectionTimeout()) {
    election_elapsed_ = 0;
    Message m;
    m.set_from(id_);
    m.set_type(raftpb::MSG_HUP);
    (void)Step(std::move(m));
  }
}

void Raft::TickHeartbeat() {
  ++leader_ticks_;
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      Message m;
      m.set_from(id_);
      m.set_type(raftpb::MSG_CHECK_QUORUM);
      (void)Step(std::move(m));
    }
    // A transfer that did not finish within an election timeout is given up
    // so that proposals flow again.
    if (state_ == StateType::kLeader && lead_transferee_ != kNone) AbortLeaderTransfer();
  }
  if (state_ != StateType::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    MaybeProposeLeaveJoint();
    Message m;
    m.set_from(id_);
    m.set_type(raftpb::MSG_BEAT);
    (void)Step(std::move(m));
  }
}

bool Raft::PastElectionTimeout() const { return election_elapsed_ >= randomized_election_timeout_; }

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      election_timeout_ +
      static_cast<int>(rand_->Uniform(static_cast<uint64_t>(election_timeout_)));
}

bool Raft::Promotable() const {
  auto it = trk_.progress.find(id_);
  return it != trk_.progress.end() && !it->second.is_learner && !log_.HasPendingSnapshot();
}

// ---------------------------------------------------------------------------
// Role transitions

void Raft::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  trk_.ResetVotes();
  const uint64_t last = log_.LastIndex();
  for (auto& [id, pr] : trk_.progress) {
    bool learner = pr.is_learner;
    pr = Progress(last + 1, trk_.max_inflight, trk_.max_inflight_bytes, learner);
    if (id == id_) pr.match = last;
  }
  pending_conf_index_ = 0;
  uncommitted_size_ = 0;
  read_only_.Reset();
  pending_read_index_messages_.clear();
  leader_ticks_ = 0;
  timeout_now_sent_ = false;
  leader_lost_ = false;
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  Reset(term);
  lead_ = lead;
  state_ = StateType::kFollower;
  RLOG(kInfo, "became follower at term %d", term_);
}

void Raft::BecomePreCandidate() {
  RAFT_CHECK(state_ != StateType::kLeader)
      << "invalid transition [leader -> pre-candidate]; " << DescribeState();
  // A pre-candidate changes neither its term nor its vote: nothing it does
  // needs persisting, and losing the pre-vote leaves no trace.
  trk_.ResetVotes();
  lead_ = kNone;
  state_ = StateType::kPreCandidate;
  RLOG(kInfo, "became pre-candidate at term %d", term_);
}

void Raft::BecomeCandidate() {
  RAFT_CHECK(state_ != StateType::kLeader)
      << "invalid transition [leader -> candidate]; " << DescribeState();
  Reset(term_ + 1);
  vote_ = id_;
  state_ = StateType::kCandidate;
  RLOG(kInfo, "became candidate at term %d", term_);
}

void Raft::BecomeLeader() {
  RAFT_CHECK(state_ != StateType::kFollower)
      << "invalid transition [follower -> leader]; " << DescribeState();
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  Progress& self = trk_.progress.at(id_);
  self.BecomeReplicate();
  self.recent_active = true;
  // Conservatively treat every entry in the log as a possibly uncommitted
  // conf change: no new one may be proposed until they are applied.
  pending_conf_index_ = log_.LastIndex();
  // Raft §5.4.2 / thesis §6.4: an empty entry of the new term lets the
  // leader commit everything before it and learn the commit index.
  Entry empty;
  std::vector<Entry> ents;
  ents.push_back(std::move(empty));
  RAFT_CHECK(AppendEntries(std::move(ents))) << "empty entry was dropped; " << DescribeState();
  RLOG(kInfo, "became leader at term %d", term_);
}

// ---------------------------------------------------------------------------
// Elections

void Raft::Hup(CampaignType t) {
  if (state_ == StateType::kLeader) return;
  if (!Promotable()) {
    RLOG(kWarning, "is unpromotable and can not campaign");
    return;
  }
  // A conf change committed but not applied may change who votes: wait for
  // it, or the election could use a stale configuration.
  if (HasUnappliedConfChanges()) {
    RLOG(kWarning,
         "cannot campaign at term %d since there are still pending configuration "
         "changes to apply",
         term_);
    return;
  }
  RLOG(kInfo, "is starting a new election at term %d", term_);
  if (leader_lost_) {
    // The short delay has served its purpose; should this campaign fail,
    // the next one waits a full randomized timeout as usual.
    leader_lost_ = false;
    ResetRandomizedElectionTimeout();
  }
  Campaign(t);
}

bool Raft::HasUnappliedConfChanges() const {
  if (log_.applied() >= log_.committed()) return false;
  auto ents = log_.Slice(log_.applied() + 1, log_.committed() + 1, kNoLimit);
  RAFT_CHECK(ents.ok()) << "scanning unapplied entries: " << ents.status() << "; "
                        << DescribeState();
  for (const Entry& e : *ents) {
    if (e.type() != raftpb::ENTRY_NORMAL) return true;
  }
  return false;
}

void Raft::Campaign(CampaignType t) {
  uint64_t term;
  MessageType vote_msg;
  if (t == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_msg = raftpb::MSG_PRE_VOTE;
    // Pre-votes are asked for the term we would campaign at.
    term = term_ + 1;
  } else {
    BecomeCandidate();
    vote_msg = raftpb::MSG_VOTE;
    term = term_;
  }
  // Our own vote first: a single-voter cluster wins at once.
  ProgressTracker::Tally tally = Poll(id_, VoteRespMsgType(vote_msg), true);
  if (tally.result == VoteResult::kWon) {
    if (t == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  const uint64_t last_index = log_.LastIndex();
  const uint64_t last_term = log_.LastTerm();
  for (uint64_t id : trk_.config.voters.Ids()) {
    if (id == id_) continue;
    RLOG(kInfo, "[logterm: %d, index: %d] sent %s request to %x at term %d", last_term, last_index,
         MessageTypeName(vote_msg), id, term_);
    Message m;
    m.set_to(id);
    m.set_term(term);
    m.set_type(vote_msg);
    m.set_index(last_index);
    m.set_log_term(last_term);
    if (t == CampaignType::kTransfer) m.set_context(kCampaignTransfer);
    Send(std::move(m));
  }
}

ProgressTracker::Tally Raft::Poll(uint64_t id, MessageType t, bool granted) {
  RLOG(kInfo, "received %s %sfrom %x at term %d", MessageTypeName(t), granted ? "" : "rejection ",
       id, term_);
  trk_.RecordVote(id, granted);
  return trk_.TallyVotes();
}

void Raft::HandleVoteRequest(const Message& m) {
  // We can vote if this repeats a vote we already cast, if we have not voted
  // and know no leader in this term, or if this is a pre-vote for a future
  // term (pre-votes bind nothing).
  const bool can_vote = vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
                        (m.type() == raftpb::MSG_PRE_VOTE && m.term() > term_);
  // Raft §5.4.1 election restriction: "the voter denies its vote if its own
  // log is more up-to-date than that of the candidate".
  const bool up_to_date =
      ARBITER_MUTANT_VOTE_WITHOUT_LOG_CHECK || log_.IsUpToDate(m.index(), m.log_term());
  Message resp;
  resp.set_to(m.from());
  resp.set_type(VoteRespMsgType(m.type()));
  if (can_vote && up_to_date) {
    // Learners vote too: a learner may have been promoted by a conf change it
    // has not seen yet, and the candidate may need its vote.
    RLOG(kInfo,
         "[logterm: %d, index: %d, vote: %x] cast %s for %x [logterm: %d, index: %d] at term %d",
         log_.LastTerm(), log_.LastIndex(), vote_, MessageTypeName(m.type()), m.from(),
         m.log_term(), m.index(), term_);
    // Answer with the request's term, not ours: a pre-vote's term is in our
    // future, and the candidate ignores answers from older terms.
    resp.set_term(m.term());
    Send(std::move(resp));
    if (m.type() == raftpb::MSG_VOTE) {
      election_elapsed_ = 0;
      vote_ = m.from();
    }
  } else {
    RLOG(kInfo,
         "[logterm: %d, index: %d, vote: %x] rejected %s from %x [logterm: %d, index: %d] at term "
         "%d",
         log_.LastTerm(), log_.LastIndex(), vote_, MessageTypeName(m.type()), m.from(),
         m.log_term(), m.index(), term_);
    resp.set_term(term_);
    resp.set_reject(true);
    Send(std::move(resp));
  }
}

// ---------------------------------------------------------------------------
// Step: the term rules shared by every role.

absl::Status Raft::Step(Message m) {
  const MessageType type = m.type();
  if (!raftpb::MessageType_IsValid(type)) {
    RLOG(kWarning, "ignored message of unknown type %d from %x", static_cast<int>(type), m.from());
    return absl::InvalidArgumentError("raft: unknown message type");
  }
  // A term this large could never be followed by a campaign (term + 1 would
  // wrap): such a message is forged or corrupt.
  if (m.term() == std::numeric_limits<uint64_t>::max()) {
    RLOG(kWarning, "ignored %s from %x with an impossible term", MessageTypeName(type), m.from());
    return absl::InvalidArgumentError("raft: impossible message term");
  }

  if ((type == raftpb::MSG_PROP || type == raftpb::MSG_READ_INDEX) && m.term() != 0) {
    // Proposals and read requests travel without a term (Send never sets
    // one); a term here is forged, and forwarding it would break Send.
    RLOG(kWarning, "ignored %s from %x carrying a term", MessageTypeName(type), m.from());
    return absl::InvalidArgumentError("raft: proposal or read request with a term");
  }
  if (m.term() == 0) {
    // Local messages, and proposals / read requests / transfer requests that
    // are forwarded without a term. Anything else must carry its term.
    if (!IsLocalMsg(type) && type != raftpb::MSG_PROP && type != raftpb::MSG_READ_INDEX &&
        type != raftpb::MSG_TRANSFER_LEADER) {
      RLOG(kWarning, "ignored %s from %x without a term", MessageTypeName(type), m.from());
      return absl::InvalidArgumentError("raft: message without a term");
    }
  } else if (m.term() > term_) {
    if (type == raftpb::MSG_VOTE || type == raftpb::MSG_PRE_VOTE) {
      const bool force = m.context() == kCampaignTransfer;
      const bool in_lease = config_.check_quorum && lead_ != kNone && !leader_lost_ &&
                            election_elapsed_ < election_timeout_;
      if (!force && in_lease) {
        // Thesis §4.2.3: a server that hears from a current leader within the
        // minimum election timeout neither updates its term nor votes, so a
        // removed or partitioned server cannot disrupt the cluster.
        RLOG(kInfo,
             "[logterm: %d, index: %d, vote: %x] ignored %s from %x [logterm: %d, index: %d] "
             "at term %d: lease is not expired (remaining ticks: %d)",
             log_.LastTerm(), log_.LastIndex(), vote_, MessageTypeName(type), m.from(),
             m.log_term(), m.index(), term_, election_timeout_ - election_elapsed_);
        return absl::OkStatus();
      }
    }
    if (type == raftpb::MSG_PRE_VOTE) {
      // Never change our term in response to a pre-vote.
    } else if (type == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // A granted pre-vote carries the future term we asked about; we raise
      // our term only if we win.
    } else {
      RLOG(kInfo, "[term: %d] received a %s message with higher term from %x [term: %d]", term_,
           MessageTypeName(type), m.from(), m.term());
      if (type == raftpb::MSG_APP || type == raftpb::MSG_HEARTBEAT || type == raftpb::MSG_SNAP) {
        BecomeFollower(m.term(), m.from());
      } else {
        BecomeFollower(m.term(), kNone);
      }
    }
  } else if (m.term() < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (type == raftpb::MSG_HEARTBEAT || type == raftpb::MSG_APP)) {
      // A leader of an older term still talks to us: maybe we raised our term
      // while partitioned. With CheckQuorum or PreVote our vote requests would
      // not depose it, so tell it our term: it steps down and a new election
      // can include us.
      Message resp;
      resp.set_to(m.from());
      resp.set_type(raftpb::MSG_APP_RESP);
      Send(std::move(resp));
    } else if (type == raftpb::MSG_PRE_VOTE) {
      // Reject, so a pre-candidate with an older term learns ours; dropping
      // it could deadlock a cluster being upgraded to PreVote.
      RLOG(kInfo,
           "[logterm: %d, index: %d, vote: %x] rejected %s from %x [logterm: %d, index: %d] at "
           "term %d",
           log_.LastTerm(), log_.LastIndex(), vote_, MessageTypeName(type), m.from(), m.log_term(),
           m.index(), term_);
      Message resp;
      resp.set_to(m.from());
      resp.set_term(term_);
      resp.set_type(raftpb::MSG_PRE_VOTE_RESP);
      resp.set_reject(true);
      Send(std::move(resp));
    } else {
      RLOG(kInfo, "[term: %d] ignored a %s message with lower term from %x [term: %d]", term_,
           MessageTypeName(type), m.from(), m.term());
    }
    return absl::OkStatus();
  }

  switch (type) {
    case raftpb::MSG_HUP:
      Hup(config_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
      return absl::OkStatus();
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE:
      HandleVoteRequest(m);
      return absl::OkStatus();
    default:
      break;
  }
  switch (state_) {
    case StateType::kLeader:
      return StepLeader(m);
    case StateType::kCandidate:
    case StateType::kPreCandidate:
      return StepCandidate(m);
    case StateType::kFollower:
      return StepFollower(m);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Application feedback

void Raft::AppliedTo(uint64_t index) {
  const uint64_t old_applied = log_.applied();
  const uint64_t new_applied = std::max(index, old_applied);
  log_.AppliedTo(new_applied);
  MaybeProposeLeaveJoint();
}

void Raft::MaybeProposeLeaveJoint() {
  if (!trk_.config.auto_leave || log_.applied() < pending_conf_index_ ||
      state_ != StateType::kLeader || lead_transferee_ != kNone) {
    return;
  }
  // The joint config is committed and applied: propose leaving it. If the
  // proposal is dropped, the next apply or heartbeat tick tries again.
  ConfChangeV2 leave;
  Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(id_);
  Entry* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE_V2);
  e->set_data(leave.SerializeAsString());
  if (Step(std::move(m)).ok()) {
    RLOG(kInfo, "initiating automatic transition out of joint configuration %s",
         trk_.config.Describe());
  }
}

void Raft::AppliedSnapshot(uint64_t index) {
  log_.StableSnapTo(index);
  AppliedTo(index);
}

void Raft::ReduceUncommittedSize(uint64_t payload_bytes) {
  uncommitted_size_ = payload_bytes > uncommitted_size_ ? 0 : uncommitted_size_ - payload_bytes;
}

absl::StatusOr<ConfigAndProgress> Raft::ComputeConfChange(const ConfChangeV2& cc) const {
  for (const ConfChangeSingle& c : cc.changes()) {
    if (c.node_id() == kNone) return absl::InvalidArgumentError("conf change for node id 0");
  }
  Changer changer(trk_, log_.LastIndex());
  bool auto_leave = false;
  if (LeavesJoint(cc)) return changer.LeaveJoint();
  if (EntersJoint(cc, &auto_leave)) {
    return changer.EnterJoint(auto_leave, {cc.changes().begin(), cc.changes().end()});
  }
  return changer.Simple({cc.changes().begin(), cc.changes().end()});
}

ConfState Raft::ApplyConfChange(const ConfChangeV2& cc) {
  absl::StatusOr<ConfigAndProgress> result = ComputeConfChange(cc);
  // The change was validated when proposed and committed by a quorum; every
  // node must apply it identically, so an error here is a bug.
  RAFT_CHECK(result.ok()) << "applying conf change: " << result.status() << "; " << DescribeState();
  return SwitchToConfig(std::move(result->first), std::move(result->second));
}

}  // namespace arbiter::raft
