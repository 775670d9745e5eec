// The follower and candidate roles: accepting entries, heartbeats and
// snapshots from a leader, vote counting, and configuration switches.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raft/check.h"
#include "raft/confchange.h"
#include "raft/errors.h"
#include "raft/raft.h"
#include "raft/rlog.h"

namespace arbiter::raft {

absl::Status Raft::StepCandidate(Message& m) {
  // Only the responses to our own kind of request count: a pre-candidate
  // ignores real votes (of an older election) and vice versa.
  const MessageType my_vote_resp =
      state_ == StateType::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      RLOG(kInfo, "no leader at term %d; dropping proposal", term_);
      return ErrProposalDropped();
    case raftpb::MSG_APP:
      // Raft §5.2: "If the AppendEntries RPC is received from another server
      // claiming to be leader and the leader's term is at least as large as
      // the candidate's current term, then the candidate recognizes the
      // leader as legitimate and returns to follower state." (m.term == term_
      // here: higher terms were handled in Step.)
      BecomeFollower(m.term(), m.from());
      HandleAppendEntries(m);
      break;
    case raftpb::MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      HandleHeartbeat(m);
      break;
    case raftpb::MSG_SNAP:
      BecomeFollower(m.term(), m.from());
      HandleSnapshot(m);
      break;
    case raftpb::MSG_TIMEOUT_NOW:
      RLOG(kDebug, "[term %d state %s] ignored MsgTimeoutNow from %x", term_, StateTypeName(state_),
           m.from());
      break;
    default:
      if (m.type() != my_vote_resp) break;
      {
        ProgressTracker::Tally tally = Poll(m.from(), m.type(), !m.reject());
        RLOG(kInfo, "has received %d %s votes and %d vote rejections", tally.granted,
             MessageTypeName(m.type()), tally.rejected);
        if (tally.result == VoteResult::kWon) {
          if (state_ == StateType::kPreCandidate) {
            Campaign(CampaignType::kElection);
          } else {
            BecomeLeader();
            BcastAppend();
          }
        } else if (tally.result == VoteResult::kLost) {
          // A rejected pre-vote carries the rejecting node's term, which
          // may be higher than ours; Step already moved us to it.
          BecomeFollower(term_, kNone);
        }
      }
      break;
  }
  return absl::OkStatus();
}

absl::Status Raft::StepFollower(Message& m) {
  // Raft §5.2 Election Safety: at most one leader per term. A leader's message
  // at our term from a node other than the leader we follow is forged or from
  // a buggy peer: report it and never apply it (its entries could carry the
  // same index and term as the real leader's and be applied as if they were).
  const MessageType t = m.type();
  if ((t == raftpb::MSG_APP || t == raftpb::MSG_HEARTBEAT || t == raftpb::MSG_SNAP) &&
      lead_ != kNone && m.from() != lead_) {
    RLOG(kError, "ignored %s from %x, which claims leadership of term %d led by %x",
         MessageTypeName(t), m.from(), term_, lead_);
    return absl::InvalidArgumentError("raft: a second leader claims this term");
  }
  switch (m.type()) {
    case raftpb::MSG_PROP:
      if (lead_ == kNone) {
        RLOG(kInfo, "no leader at term %d; dropping proposal", term_);
        return ErrProposalDropped();
      }
      if (config_.disable_proposal_forwarding) {
        RLOG(kInfo, "not forwarding to leader %x at term %d; dropping proposal", lead_, term_);
        return ErrProposalDropped();
      }
      if (m.entries_size() == 0) return absl::InvalidArgumentError("raft: empty proposal");
      m.set_to(lead_);
      Send(std::move(m));
      break;
    case raftpb::MSG_APP:
      HeardFromLeader(m.from());
      HandleAppendEntries(m);
      break;
    case raftpb::MSG_HEARTBEAT:
      HeardFromLeader(m.from());
      HandleHeartbeat(m);
      break;
    case raftpb::MSG_SNAP:
      HeardFromLeader(m.from());
      HandleSnapshot(m);
      break;
    case raftpb::MSG_TRANSFER_LEADER:
      if (lead_ == kNone) {
        RLOG(kInfo, "no leader at term %d; dropping leader transfer msg", term_);
        return absl::OkStatus();
      }
      m.set_to(lead_);
      m.set_term(0);
      Send(std::move(m));
      break;
    case raftpb::MSG_TIMEOUT_NOW:
      // The leader chose us as its successor: campaign at once, and let the
      // voters ignore their leader lease (the leader asked for this).
      RLOG(kInfo,
           "[term %d] received MsgTimeoutNow from %x and starts an election to get leadership",
           term_, m.from());
      Hup(CampaignType::kTransfer);
      break;
    case raftpb::MSG_READ_INDEX:
      if (lead_ == kNone) {
        RLOG(kInfo, "no leader at term %d; dropping index reading msg", term_);
        return absl::OkStatus();
      }
      if (m.entries_size() != 1) return absl::InvalidArgumentError("raft: malformed read index");
      m.set_to(lead_);
      Send(std::move(m));
      break;
    case raftpb::MSG_READ_INDEX_RESP:
      if (m.entries_size() != 1) {
        RLOG(kError, "invalid format of MsgReadIndexResp from %x, entries count: %d", m.from(),
             m.entries_size());
        return absl::OkStatus();
      }
      read_states_.push_back(ReadState{m.index(), m.entries(0).data()});
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

void Raft::HeardFromLeader(uint64_t lead) {
  election_elapsed_ = 0;
  lead_ = lead;
  if (leader_lost_) {
    // The connection report was wrong or the leader reconnected: back to
    // the normal lease and timeout.
    RLOG(kInfo, "heard from leader %x again at term %d", lead, term_);
    leader_lost_ = false;
    ResetRandomizedElectionTimeout();
  }
}

std::pair<int, int> Raft::LeaderLossDelayRange(uint64_t lost) const {
  // The survivors take turns by rank (their position by id among the voters
  // other than the lost leader), two ticks apart, with one tick of jitter.
  // Campaigns that start at once split the vote and cost a full randomized
  // timeout; a purely random delay of a few ticks lets two survivors draw
  // the same tick too often, and under load a pre-vote, the candidate's
  // synced term and its vote request can take most of a tick. Two ticks of
  // spacing keep the next survivor out of the first one's way; it campaigns
  // only if the first did not win (its log was behind, or it was not told).
  int rank = 0;
  for (uint64_t v : trk_.config.voters.Ids()) {
    if (v != lost && v < id_) ++rank;
  }
  const int first = 1 + 2 * rank;
  return {first, first + 1};
}

void Raft::ConnectionLost(uint64_t id) {
  // Only a follower's own leader matters, once: a candidate has no lease
  // to drop, and a repeated report must not redraw (and so lengthen or
  // re-randomize) the delay already chosen.
  if (!config_.campaign_on_leader_loss || state_ != StateType::kFollower || id == kNone ||
      id != lead_ || leader_lost_) {
    return;
  }
  // Lease-based reads on the leader rely on this follower refusing votes
  // until the lease runs out, whatever it believes about the leader.
  if (read_only_.option() == ReadOnlyOption::kLeaseBased) return;
  leader_lost_ = true;
  const auto [lo, hi] = LeaderLossDelayRange(id);
  const int delay = lo + static_cast<int>(rand_->Uniform(static_cast<uint64_t>(hi - lo + 1)));
  randomized_election_timeout_ = std::min(randomized_election_timeout_, election_elapsed_ + delay);
  RLOG(kInfo, "lost the connection from leader %x at term %d; campaigning within %d ticks", id,
       term_, randomized_election_timeout_ - election_elapsed_);
}

void Raft::HandleAppendEntries(Message& m) {
  // Reject malformed appends outright: entries must follow (index, log_term)
  // contiguously, with non-decreasing terms no newer than the leader's.
  if (static_cast<uint64_t>(m.entries_size()) > std::numeric_limits<uint64_t>::max() - m.index()) {
    RLOG(kWarning, "ignored MsgApp from %x whose indexes overflow", m.from());
    return;
  }
  uint64_t prev_term = m.log_term();
  for (int i = 0; i < m.entries_size(); ++i) {
    const Entry& e = m.entries(i);
    if (e.index() != m.index() + 1 + static_cast<uint64_t>(i) || e.term() < prev_term ||
        e.term() > m.term()) {
      RLOG(kWarning, "ignored malformed MsgApp from %x: %s", m.from(), DescribeMessage(m));
      return;
    }
    prev_term = e.term();
  }
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (m.index() < log_.committed()) {
    // Everything up to our commit index is known to match the leader's log
    // (Log Matching): tell the leader where we are.
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  std::vector<Entry> ents(std::make_move_iterator(m.mutable_entries()->begin()),
                          std::make_move_iterator(m.mutable_entries()->end()));
  // Raft §5.3: "If a follower's log is inconsistent with the leader's, the
  // AppendEntries consistency check will fail". Never commit past what the
  // leader has shown us to match (MaybeAppend takes the min).
  if (auto last_new = log_.MaybeAppend(m.index(), m.log_term(), m.commit(), std::move(ents))) {
    resp.set_index(*last_new);
    Send(std::move(resp));
    return;
  }
  RLOG(kDebug, "[logterm: %d, index: %d] rejected MsgApp [logterm: %d, index: %d] from %x",
       log_.ZeroTermOnErr(m.index()), m.index(), m.log_term(), m.index(), m.from());
  // Hint the leader at the last index where our log could match: the
  // largest index <= m.index whose term is <= m.log_term. Entries after it
  // cannot match, so the leader skips them all in one round trip.
  const uint64_t hint_index = std::min(m.index(), log_.LastIndex());
  auto [idx, term] = log_.FindConflictByTerm(hint_index, m.log_term());
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(idx);
  resp.set_log_term(term);
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  // The leader sends min(match, commit), never more than we hold. A commit
  // past our last index would be forged or corrupt: ignore it.
  if (m.commit() > log_.LastIndex()) {
    RLOG(kWarning, "ignored commit %d from %x beyond last index %d", m.commit(), m.from(),
         log_.LastIndex());
  } else {
    log_.CommitTo(m.commit());
  }
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
  resp.set_context(m.context());
  Send(std::move(resp));
}

void Raft::HandleSnapshot(Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (!m.has_snapshot() || IsEmptySnapshot(m.snapshot())) {
    RLOG(kWarning, "ignored MsgSnap from %x without a snapshot", m.from());
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  const SnapshotMetadata& md = m.snapshot().metadata();
  if (md.index() == std::numeric_limits<uint64_t>::max()) {
    // No log can continue past this index: forged or corrupt.
    RLOG(kWarning, "ignored MsgSnap from %x with an impossible index", m.from());
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  if (md.term() > m.term()) {
    // A leader's snapshot holds no entry newer than its own term. Restoring
    // one would leave our log ending in a term no leader has reached, so we
    // could never accept the real leader's entries again.
    RLOG(kWarning, "ignored MsgSnap from %x with snapshot term %d above message term %d", m.from(),
         md.term(), m.term());
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  if (Restore(m.mutable_snapshot())) {
    RLOG(kInfo, "[commit: %d] restored snapshot [index: %d, term: %d]", log_.committed(),
         md.index(), md.term());
    resp.set_index(log_.LastIndex());
  } else {
    RLOG(kInfo, "[commit: %d] ignored snapshot [index: %d, term: %d]", log_.committed(), md.index(),
         md.term());
    resp.set_index(log_.committed());
  }
  Send(std::move(resp));
}

bool Raft::Restore(Snapshot* s) {
  const SnapshotMetadata& md = s->metadata();
  // A snapshot older than our commit index adds nothing, and restoring it
  // would roll back committed state.
  if (md.index() <= log_.committed()) return false;
  if (state_ != StateType::kFollower) {
    // Only a leader sends snapshots, and it does so as a follower's leader;
    // receiving one in another role means a second leader in our term.
    RLOG(kWarning, "attempted to restore snapshot as %s; should never happen",
         StateTypeName(state_));
    BecomeFollower(term_ + 1, kNone);
    return false;
  }
  const ConfState& cs = md.conf_state();
  bool found = false;
  for (const auto* set : {&cs.voters(), &cs.learners(), &cs.voters_outgoing()}) {
    for (uint64_t id : *set) found = found || id == id_;
  }
  if (!found) {
    // Restoring would leave us outside the configuration we restore.
    RLOG(kWarning, "attempted to restore snapshot but it is not in the ConfState %s",
         DescribeConfState(cs));
    return false;
  }
  // If our log already has the snapshot's last entry, our log matches up to
  // there: just move the commit index, keeping later entries.
  if (log_.MatchTerm(md.index(), md.term())) {
    RLOG(kInfo,
         "[commit: %d, lastindex: %d, lastterm: %d] fast-forwarded commit to snapshot "
         "[index: %d, term: %d]",
         log_.committed(), log_.LastIndex(), log_.LastTerm(), md.index(), md.term());
    log_.CommitTo(md.index());
    return false;
  }
  // Validate the membership before touching the log: a malformed ConfState
  // from the network must be refused, not crash the node. (The log's last
  // index after the restore is md.index().)
  ProgressTracker empty(trk_.max_inflight, trk_.max_inflight_bytes);
  auto restored = RestoreConfState(empty, md.index(), cs);
  if (!restored.ok()) {
    RLOG(kWarning, "ignored snapshot with an invalid ConfState %s: %s", DescribeConfState(cs),
         std::string(restored.status().message()));
    return false;
  }
  // The state can be as large as the state machine: moved, not copied.
  Snapshot taken;
  *taken.mutable_metadata() = md;
  taken.set_data(std::move(*s->mutable_data()));
  log_.Restore(std::move(taken));
  trk_ = std::move(empty);
  ConfState got = SwitchToConfig(std::move(restored->first), std::move(restored->second));
  RAFT_CHECK(ConfStateEquivalent(got, cs))
      << DescribeConfState(got) << " vs " << DescribeConfState(cs) << "; " << DescribeState();
  RLOG(kInfo, "[commit: %d, lastindex: %d, lastterm: %d] restored snapshot [index: %d, term: %d]",
       log_.committed(), log_.LastIndex(), log_.LastTerm(), md.index(), md.term());
  return true;
}

ConfState Raft::SwitchToConfig(TrackerConfig cfg, ProgressMap prs) {
  trk_.config = std::move(cfg);
  trk_.progress = std::move(prs);
  RLOG(kInfo, "switched to configuration %s", trk_.config.Describe());
  ConfState cs = trk_.ConfState();
  auto it = trk_.progress.find(id_);
  const bool present = it != trk_.progress.end();
  is_learner_ = present && it->second.is_learner;

  if ((!present || is_learner_) && state_ == StateType::kLeader) {
    // This leader was removed or demoted. It keeps no say in commits; with
    // step_down_on_removal it lets the others elect a new leader now.
    if (config_.step_down_on_removal) BecomeFollower(term_, kNone);
    return cs;
  }
  if (state_ != StateType::kLeader || cs.voters_size() == 0) return cs;

  // The quorum changed: the commit index may move (e.g. a removed node no
  // longer holds it back).
  if (MaybeCommit()) {
    BcastAppend();
  } else {
    for (const auto& [id, pr] : trk_.progress) {
      if (id != id_) MaybeSendAppend(id, false);
    }
  }
  if (lead_transferee_ != kNone && !trk_.config.voters.Contains(lead_transferee_)) {
    AbortLeaderTransfer();
  }
  return cs;
}

}  // namespace arbiter::raft
