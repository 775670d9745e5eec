// The leader role: proposals, replication with per-follower flow control,
// commitment, heartbeats, ReadIndex, and leadership transfer.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raft/check.h"
#include "raft/confchange.h"
#include "raft/errors.h"
#include "raft/mutants.h"
#include "raft/raft.h"
#include "raft/rlog.h"

namespace arbiter::raft {

absl::Status Raft::StepLeader(Message& m) {
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      BcastHeartbeat();
      return absl::OkStatus();
    case raftpb::MSG_CHECK_QUORUM:
      // Thesis §6.2: a leader that has not heard from a quorum within an
      // election timeout steps down, so clients stop waiting on it and a
      // lease-based read can never be served by a deposed leader.
      if (!trk_.QuorumActive()) {
        RLOG(kWarning, "stepped down to follower since quorum is not active");
        BecomeFollower(term_, kNone);
      }
      for (auto& [id, pr] : trk_.progress) {
        if (id != id_) pr.recent_active = false;
      }
      return absl::OkStatus();
    case raftpb::MSG_PROP:
      return HandlePropose(m);
    case raftpb::MSG_READ_INDEX:
      HandleReadIndex(m);
      return absl::OkStatus();
    case raftpb::MSG_APP:
    case raftpb::MSG_HEARTBEAT:
    case raftpb::MSG_SNAP:
      // Raft §5.2 Election Safety: we are the one leader of this term.
      // Another node claiming it is forged or buggy: report, never apply.
      RLOG(kError, "ignored %s from %x, which claims leadership of our term %d",
           MessageTypeName(m.type()), m.from(), term_);
      return absl::InvalidArgumentError("raft: a second leader claims this term");
    default:
      break;
  }

  auto it = trk_.progress.find(m.from());
  if (it == trk_.progress.end()) {
    RLOG(kDebug, "no progress available for %x", m.from());
    return absl::OkStatus();
  }
  Progress& pr = it->second;
  switch (m.type()) {
    case raftpb::MSG_APP_RESP:
      HandleAppendResponse(m, pr);
      break;
    case raftpb::MSG_HEARTBEAT_RESP:
      HandleHeartbeatResponse(m, pr);
      break;
    case raftpb::MSG_SNAP_STATUS:
      if (pr.state != ProgressState::kSnapshot) return absl::OkStatus();
      if (m.reject()) {
        // The snapshot did not arrive: forget it and probe again (which
        // will send a new one if still needed).
        pr.pending_snapshot = 0;
      }
      pr.BecomeProbe();
      // Wait for the follower's MsgAppResp or a heartbeat before probing, so
      // the probe does not overtake the snapshot.
      pr.msg_app_flow_paused = true;
      RLOG(kDebug, "snapshot %s, resumed sending replication messages to %x [%s]",
           m.reject() ? "failed" : "succeeded", m.from(), pr.Describe());
      break;
    case raftpb::MSG_UNREACHABLE:
      // Optimistic pipelining makes no sense to a peer we cannot reach.
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      RLOG(kDebug, "failed to send message to %x because it is unreachable [%s]", m.from(),
           pr.Describe());
      break;
    case raftpb::MSG_TRANSFER_LEADER:
      HandleTransferLeader(m, pr);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status Raft::HandlePropose(Message& m) {
  if (m.entries_size() == 0) {
    RLOG(kWarning, "ignored empty MsgProp from %x", m.from());
    return absl::InvalidArgumentError("raft: empty proposal");
  }
  if (!trk_.progress.contains(id_)) {
    // Removed from the configuration while still leader (only possible
    // with step_down_on_removal off): proposals cannot commit safely.
    return ErrProposalDropped();
  }
  if (lead_transferee_ != kNone) {
    RLOG(kDebug, "[term %d] transfer leadership to %x is in progress; dropping proposal", term_,
         lead_transferee_);
    return ErrProposalDropped();
  }
  uint64_t new_pending_conf_index = 0;
  for (int i = 0; i < m.entries_size(); ++i) {
    Entry* e = m.mutable_entries(i);
    if (e->type() == raftpb::ENTRY_NORMAL) continue;
    ConfChangeV2 cc;
    bool parsed = false;
    if (e->type() == raftpb::ENTRY_CONF_CHANGE) {
      ConfChange v1;
      parsed = v1.ParseFromString(e->data());
      if (parsed) cc = AsV2(v1);
    } else if (e->type() == raftpb::ENTRY_CONF_CHANGE_V2) {
      parsed = cc.ParseFromString(e->data());
    }
    const bool already_pending =
        pending_conf_index_ > log_.applied() || new_pending_conf_index != 0;
    const bool already_joint = trk_.config.voters.IsJoint();
    const bool wants_leave_joint = cc.changes_size() == 0;
    std::string failed;
    if (!parsed) {
      failed = "unknown entry type or undecodable conf change";
    } else if (already_pending) {
      failed = absl::StrCat("possible unapplied conf change at index ", pending_conf_index_,
                            " (applied to ", log_.applied(), ")");
    } else if (already_joint && !wants_leave_joint) {
      failed = "must transition out of joint config first";
    } else if (!already_joint && wants_leave_joint) {
      failed = "not in joint state; refusing empty conf change";
    } else if (absl::Status trial = ComputeConfChange(cc).status(); !trial.ok()) {
      // Every earlier change is applied (nothing is pending), so applying
      // this one now gives exactly what every member will compute when it
      // commits. One that cannot be applied (no voters left, an unknown
      // change type) must never commit: every member would fail on it.
      failed = std::string(trial.message());
    }
    if (!failed.empty()) {
      // Replace it by an empty normal entry rather than dropping the whole
      // batch: the other proposals in it are still valid.
      RLOG(kInfo, "ignoring conf change at config %s: %s", trk_.config.Describe(), failed);
      *e = Entry();
    } else {
      new_pending_conf_index = log_.LastIndex() + static_cast<uint64_t>(i) + 1;
    }
  }
  std::vector<Entry> ents(std::make_move_iterator(m.mutable_entries()->begin()),
                          std::make_move_iterator(m.mutable_entries()->end()));
  if (!AppendEntries(std::move(ents))) return ErrProposalDropped();
  // Only once the entries are in the log: a dropped batch leaves no change
  // pending.
  if (new_pending_conf_index != 0) pending_conf_index_ = new_pending_conf_index;
  BcastAppend();
  return absl::OkStatus();
}

bool Raft::IncreaseUncommittedSize(const std::vector<Entry>& ents) {
  uint64_t s = 0;
  for (const Entry& e : ents) s += PayloadSize(e);
  // An empty payload (the leader's first entry) is always allowed, and so is
  // any proposal while nothing is uncommitted, so a single large entry
  // cannot wedge the leader.
  if (uncommitted_size_ > 0 && s > 0 &&
      uncommitted_size_ + s > config_.max_uncommitted_entries_size) {
    return false;
  }
  uncommitted_size_ += s;
  return true;
}

bool Raft::AppendEntries(std::vector<Entry> ents) {
  uint64_t li = log_.LastIndex();
  for (size_t i = 0; i < ents.size(); ++i) {
    ents[i].set_term(term_);
    ents[i].set_index(li + 1 + i);
  }
  if (!IncreaseUncommittedSize(ents)) {
    RLOG(kWarning,
         "appending new entries to log would exceed uncommitted entry size limit; "
         "dropping proposal");
    return false;
  }
  li = log_.Append(std::move(ents));
  // The leader's own copy counts toward the quorum. RawNode's Ready contract
  // persists these entries before any message that could depend on them
  // leaves, and before committed entries are applied.
  trk_.progress.at(id_).MaybeUpdate(li);
  MaybeCommit();
  return true;
}

bool Raft::MaybeCommit() {
  const uint64_t mci = trk_.Committed();
#if ARBITER_MUTANT_COMMIT_PRIOR_TERM
  if (mci > log_.committed() && mci <= log_.LastIndex()) {
    log_.CommitTo(mci);
    return true;
  }
  return false;
#else
  // Raft §5.4.2: "Raft never commits log entries from previous terms by
  // counting replicas. Only log entries from the leader's current term are
  // committed by counting replicas".
  return log_.MaybeCommit(mci, term_);
#endif
}

void Raft::SendAppend(uint64_t to) { MaybeSendAppend(to, true); }

bool Raft::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress& pr = trk_.progress.at(to);
  if (pr.IsPaused()) return false;

  const uint64_t prev_index = pr.next - 1;
  auto prev_term = log_.Term(prev_index);
  if (!prev_term.ok()) {
    // The entries the follower needs were compacted away: send a snapshot.
    return MaybeSendSnapshot(to, pr);
  }
  std::vector<Entry> ents;
  if (pr.state != ProgressState::kReplicate || !pr.inflights.Full()) {
    auto got = log_.Entries(pr.next, config_.max_size_per_msg);
    if (!got.ok()) return MaybeSendSnapshot(to, pr);
    ents = std::move(*got);
  }
  if (ents.empty() && !send_if_empty) return false;

  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_APP);
  m.set_index(prev_index);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  uint64_t bytes = 0;
  m.mutable_entries()->Reserve(static_cast<int>(ents.size()));
  for (Entry& e : ents) {
    bytes += PayloadSize(e);
    *m.add_entries() = std::move(e);
  }
  pr.SentEntries(ents.size(), bytes);
  pr.SentCommit(log_.committed());
  Send(std::move(m));
  return true;
}

bool Raft::MaybeSendSnapshot(uint64_t to, Progress& pr) {
  // A snapshot is expensive: send it only to a follower we recently heard
  // from, which is likely to receive it.
  if (!pr.recent_active) {
    RLOG(kDebug, "ignore sending snapshot to %x since it is not recently active", to);
    return false;
  }
  auto snap = log_.GetSnapshot();
  if (!snap.ok()) {
    if (IsSnapshotTemporarilyUnavailable(snap.status())) {
      RLOG(kDebug, "failed to send snapshot to %x because snapshot is temporarily unavailable", to);
      return false;
    }
    RAFT_FATAL() << "reading snapshot: " << snap.status() << "; " << DescribeState();
  }
  RAFT_CHECK(!IsEmptySnapshot(*snap)) << "need non-empty snapshot; " << DescribeState();
  const uint64_t sindex = snap->metadata().index();
  // A snapshot taken before `to` joined does not list it, and the follower
  // would (rightly) refuse it: wait for the application's next snapshot
  // (ready.h asks for one after applying a change that adds a node) instead
  // of sending this one over and over.
  const ConfState& cs = snap->metadata().conf_state();
  bool includes = false;
  for (const auto* set : {&cs.voters(), &cs.learners(), &cs.voters_outgoing()}) {
    for (uint64_t id : *set) includes = includes || id == to;
  }
  if (!includes) {
    RLOG(kDebug, "snapshot at index %d does not include %x; waiting for a newer one", sindex, to);
    return false;
  }
  RLOG(kDebug, "[firstindex: %d, commit: %d] sent snapshot[index: %d, term: %d] to %x [%s]",
       log_.FirstIndex(), log_.committed(), sindex, snap->metadata().term(), to, pr.Describe());
  pr.BecomeSnapshot(sindex);
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_SNAP);
  *m.mutable_snapshot() = std::move(*snap);
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(uint64_t to, const std::string& ctx) {
  Progress& pr = trk_.progress.at(to);
  // Never tell a follower to commit past what it is known to have: its log
  // may still hold a conflicting suffix there.
  const uint64_t commit = std::min(pr.match, log_.committed());
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_commit(commit);
  if (!ctx.empty()) m.set_context(ctx);
  pr.SentCommit(commit);
  Send(std::move(m));
}

void Raft::BcastAppend() {
  for (const auto& [id, pr] : trk_.progress) {
    if (id != id_) SendAppend(id);
  }
}

void Raft::BcastHeartbeat() {
  // Every round is numbered: acknowledgements confirm pending reads and
  // renew the lease.
  const uint64_t seq = read_only_.StartRound(leader_ticks_);
  read_only_.RecvAck(id_, seq);
  BcastHeartbeatWithCtx(ReadOnly::EncodeRound(seq));
}

void Raft::BcastHeartbeatWithCtx(const std::string& ctx) {
  for (const auto& [id, pr] : trk_.progress) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

void Raft::HandleAppendResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  if (m.index() > log_.LastIndex()) {
    // An acknowledgement of entries we never had: forged or corrupt. Taking
    // it would let the commit index pass the end of our log.
    RLOG(kWarning, "ignored MsgAppResp from %x for index %d beyond last index %d", m.from(),
         m.index(), log_.LastIndex());
    return;
  }
  if (m.reject()) {
    RLOG(kDebug, "received MsgAppResp(rejected, hint: (index %d, term %d)) from %x for index %d",
         m.reject_hint(), m.log_term(), m.from(), m.index());
    // Fast backtracking (thesis §5.3 footnote): the follower told us the last
    // index where its log might match, and that entry's term. Skip to the
    // last entry of ours whose term is at most that term; everything after
    // it would be rejected too.
    uint64_t next_probe = std::min(m.reject_hint(), log_.LastIndex());
    if (m.log_term() > 0) next_probe = log_.FindConflictByTerm(next_probe, m.log_term()).first;
    if (pr.MaybeDecrTo(m.index(), next_probe)) {
      RLOG(kDebug, "decreased progress of %x to [%s]", m.from(), pr.Describe());
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from());
    }
    return;
  }
  if (!pr.MaybeUpdate(m.index()) && !(pr.match == m.index() && pr.state == ProgressState::kProbe)) {
    return;  // stale
  }
  switch (pr.state) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      // The follower caught up past our first index (through the snapshot
      // or otherwise): plain replication works again.
      if (pr.match + 1 >= log_.FirstIndex()) {
        RLOG(kDebug,
             "recovered from needing snapshot, resumed sending replication messages to %x [%s]",
             m.from(), pr.Describe());
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr.inflights.FreeLE(m.index());
      break;
  }
  if (MaybeCommit()) {
    ReleasePendingReadIndexMessages();
    BcastAppend();
  } else if (m.from() != id_ && pr.CanBumpCommit(log_.committed())) {
    // Tell this follower the commit index it has not heard yet.
    SendAppend(m.from());
  }
  // The window may have room again: keep the pipeline full.
  if (m.from() != id_) {
    while (MaybeSendAppend(m.from(), false)) {
    }
  }
  if (m.from() == lead_transferee_ && pr.match == log_.LastIndex()) {
    RLOG(kInfo, "sent MsgTimeoutNow to %x after received MsgAppResp", m.from());
    SendTimeoutNow(m.from());
  }
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  pr.msg_app_flow_paused = false;
  if (pr.match < log_.LastIndex() || pr.state == ProgressState::kProbe) SendAppend(m.from());

  std::optional<uint64_t> seq = ReadOnly::DecodeRound(m.context());
  if (!seq) return;
  read_only_.RecvAck(m.from(), *seq);
  // A quorum answered a round started after these reads arrived: we were
  // still the leader when they arrived, so their read indexes are safe.
  for (ReadOnly::Request& r : read_only_.Advance(trk_.config.voters)) {
    RespondToReadIndex(r.req, r.index);
  }
}

void Raft::HandleTransferLeader(const Message& m, Progress& pr) {
  if (pr.is_learner) {
    RLOG(kDebug, "is learner. Ignored transferring leadership");
    return;
  }
  const uint64_t transferee = m.from();
  if (lead_transferee_ != kNone) {
    if (lead_transferee_ == transferee) {
      RLOG(kInfo,
           "[term %d] transfer leadership to %x is in progress, ignores request to same node",
           term_, transferee);
      return;
    }
    RLOG(kInfo, "[term %d] abort previous transferring leadership to %x", term_, lead_transferee_);
    AbortLeaderTransfer();
  }
  if (transferee == id_) {
    RLOG(kDebug, "is already leader. Ignored transferring leadership to self");
    return;
  }
  RLOG(kInfo, "[term %d] starts to transfer leadership to %x", term_, transferee);
  // The transfer must finish within an election timeout (TickHeartbeat
  // aborts it otherwise).
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  if (pr.match == log_.LastIndex()) {
    SendTimeoutNow(transferee);
    RLOG(kInfo, "sends MsgTimeoutNow to %x immediately as %x already has up-to-date log",
         transferee, transferee);
  } else {
    SendAppend(transferee);
  }
}

void Raft::SendTimeoutNow(uint64_t to) {
  timeout_now_sent_ = true;
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  Send(std::move(m));
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.ZeroTermOnErr(log_.committed()) == term_;
}

void Raft::HandleReadIndex(Message& m) {
  if (m.entries_size() != 1) {
    RLOG(kWarning, "ignored MsgReadIndex from %x with %d entries", m.from(), m.entries_size());
    return;
  }
  if (trk_.IsSingleton() && trk_.config.voters.incoming.Contains(id_)) {
    // We are the only voter, so no one else can have been elected: the
    // commit index is current. (A removed leader still running is not.)
    RespondToReadIndex(m, log_.committed());
    return;
  }
  // Thesis §6.4: until the leader has committed an entry of its own term it
  // does not know the latest commit index; postpone the read.
  if (!CommittedEntryInCurrentTerm()) {
    pending_read_index_messages_.push_back(std::move(m));
    return;
  }
  SendReadIndexResponse(m);
}

bool Raft::LeaseValid() const {
  if (timeout_now_sent_ || lead_transferee_ != kNone) return false;
  // Two ticks of margin: a follower's ticks need not line up with ours, so
  // its lease may end up to a tick earlier in real time than the count
  // suggests.
  if (election_timeout_ <= 2) return false;
  auto end = read_only_.LeaseEnd(trk_.config.voters, static_cast<uint64_t>(election_timeout_ - 2));
  return end.has_value() && leader_ticks_ < *end;
}

void Raft::SendReadIndexResponse(const Message& req) {
#if ARBITER_MUTANT_READ_WITHOUT_QUORUM
  RespondToReadIndex(req, log_.committed());
  return;
#endif
  if (read_only_.option() == ReadOnlyOption::kLeaseBased && LeaseValid()) {
    // A quorum promised, within the lease, not to elect anyone else.
    RespondToReadIndex(req, log_.committed());
    return;
  }
  // Confirm with a heartbeat round. Our own ack comes with the round, which
  // is started when the next Ready is built, so every read that arrives
  // before then shares it (thesis §6.4: batching reads).
  read_only_.AddRequest(log_.committed(), req);
}

void Raft::FlushReadIndexRound() {
  if (state_ == StateType::kLeader && read_only_.NeedsRound()) BcastHeartbeat();
}

void Raft::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty() || !CommittedEntryInCurrentTerm()) return;
  std::vector<Message> msgs;
  msgs.swap(pending_read_index_messages_);
  for (const Message& m : msgs) SendReadIndexResponse(m);
}

void Raft::RespondToReadIndex(const Message& req, uint64_t read_index) {
  if (req.from() == kNone || req.from() == id_) {
    read_states_.push_back(ReadState{read_index, req.entries(0).data()});
    return;
  }
  Message resp;
  resp.set_type(raftpb::MSG_READ_INDEX_RESP);
  resp.set_to(req.from());
  resp.set_index(read_index);
  *resp.mutable_entries() = req.entries();
  Send(std::move(resp));
}

}  // namespace arbiter::raft
