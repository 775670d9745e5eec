// Member: the event loop. Everything here runs on the member's loop thread,
// which owns the RawNode, the store's write side and the state machine.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/check.h"
#include "raft/errors.h"
#include "server/errors.h"
#include "server/member.h"
#include "server/member_internal.h"
#include "server/thread_name.h"

namespace arbiter::server {
namespace {

bool AddsNode(raftpb::ConfChangeType t) {
  return t == raftpb::CONF_CHANGE_ADD_NODE || t == raftpb::CONF_CHANGE_ADD_LEARNER_NODE;
}

std::string ReadContext(uint64_t member, uint64_t first_request) {
  // Unique among the leader's pending reads: forwarded reads from several
  // members meet there, so the member id is part of it.
  return EncodeRequest({member, first_request}, "");
}

}  // namespace

void Member::Run() {
  SetThreadName("member-loop");
  absl::Status exit_status;
  Inbox killed;  // what was drained along with a kill: failed by Shutdown
  while (true) {
    Inbox in = WaitForWork();
    if (in.kill) {
      killed = std::move(in);
      break;
    }
    const absl::Time now = absl::Now();
    if (in.stop && !stopping_) BeginStop(now);
    HandleInbox(in, now);
    MaybeTick(now);
    if (absl::Status s = ProcessReadies(); !s.ok()) {
      exit_status = s;
      break;
    }
    PublishStatus();
    if (stopping_ && StopDone(absl::Now())) break;
  }
  if (!exit_status.ok()) {
    logger_->Log(raft::LogLevel::kError,
                 absl::StrCat("member ", options_.id, " fail-stop: ", exit_status.ToString(),
                              "; state: ", DescribeState()));
  }
  Shutdown(exit_status, killed);
  if (!exit_status.ok() && options_.on_fatal) options_.on_fatal(exit_status);
}

Member::Inbox Member::WaitForWork() {
  const int read_fd = transport_->ReadFd();
  // What peers sent while the loop was busy joins this round. (While the
  // loop is busy nobody reads them: a round that stalls for longer than
  // the peers' peer_timeout with their data filling its receive buffer
  // makes them redial, as they would for a member that stopped.)
  if (read_fd >= 0) transport_->ReadReady();
  absl::MutexLock l(&inbox_mu_);
  while (inbox_->Empty()) {
    const absl::Time now = absl::Now();
    if (now >= next_tick_) break;
    if (read_fd < 0 || wake_fd_ < 0) {
      inbox_cv_.WaitWithDeadline(&inbox_mu_, next_tick_);
      continue;
    }
    // Sleep until a request (WakeLoop writes wake_fd_ while loop_polling_
    // is set), a peer's bytes, or the next tick.
    loop_polling_ = true;
    inbox_mu_.Unlock();
    pollfd p[2] = {{wake_fd_, POLLIN, 0}, {read_fd, POLLIN, 0}};
    const int64_t ms =
        absl::ToInt64Milliseconds(absl::Ceil(next_tick_ - now, absl::Milliseconds(1)));
    const int n = poll(p, 2, static_cast<int>(std::max<int64_t>(1, ms)));
    if (n > 0 && (p[0].revents & POLLIN) != 0) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof(v));
    }
    inbox_mu_.Lock();
    loop_polling_ = false;
    if (n > 0 && (p[1].revents & POLLIN) != 0) {
      // Delivers into the inbox, which takes inbox_mu_.
      inbox_mu_.Unlock();
      transport_->ReadReady();
      inbox_mu_.Lock();
    }
  }
  Inbox out = std::move(*inbox_);
  *inbox_ = Inbox();
  return out;
}

void Member::HandleInbox(Inbox& in, absl::Time now) {
  // A request whose caller already gave up is not started: its outcome
  // would be unknown to everyone.
  const absl::Status timeout = ErrTimeout("request expired in the inbox");
  for (auto* v : {&in.proposals, &in.reads, &in.others}) {
    std::erase_if(*v, [&](Request& r) {
      if (r.deadline > now) return false;
      r.waiter->Finish(timeout);
      return true;
    });
  }
  for (uint64_t peer : in.unreachable) node_->ReportUnreachable(peer);
  if (!in.built_snapshots.empty()) transport_->Send(std::move(in.built_snapshots));
  for (const auto& [peer, status] : in.snapshot_status) node_->ReportSnapshot(peer, status);
  // A closed connection is stepped in its place among the messages: a
  // leader's last heartbeat before it died must not undo the report.
  auto lost = in.connection_lost.begin();
  for (size_t i = 0; i <= in.messages.size(); ++i) {
    for (; lost != in.connection_lost.end() && lost->second <= i; ++lost) {
      node_->ReportConnectionLost(lost->first);
    }
    if (i == in.messages.size()) break;
    // Errors here are normal (a response from a removed peer, a stale
    // message) and leave the node unchanged.
    (void)node_->Step(std::move(in.messages[i]));
  }
  HandleProposals(in.proposals);
  HandleReads(in.reads);
  for (Request& r : in.others) {
    switch (r.kind) {
      case RequestKind::kConfChange:
        HandleConfChange(r);
        break;
      case RequestKind::kTransfer:
        node_->TransferLeader(r.transferee);
        transfers_.push_back({r.waiter, r.deadline, r.transferee, raft::kNone});
        break;
      case RequestKind::kQuery: {
        absl::MutexLock l(&r.waiter->mu);
        if (!r.waiter->abandoned) r.query(*sm_);
        r.waiter->Finish(std::string());
        break;
      }
      default:
        RAFT_FATAL() << "unexpected request kind " << static_cast<int>(r.kind);
    }
  }
}

void Member::HandleProposals(std::vector<Request>& props) {
  if (props.empty()) return;
  if (node_->raft().lead() == raft::kNone) {
    for (Request& r : props) r.waiter->Finish(ErrNoLeader());
    return;
  }
  std::vector<std::string> data;
  data.reserve(props.size());
  for (const Request& r : props) data.push_back(EncodeRequest({options_.id, r.id}, r.data));
  // One MsgProp for the whole batch: one append and one replication round.
  absl::Status s = node_->ProposeBatch(std::move(data));
  for (Request& r : props) {
    if (s.ok()) {
      pending_[r.id] = {r.waiter, r.deadline, 0, node_->raft().lead()};
    } else {
      r.waiter->Finish(s);
    }
  }
}

void Member::HandleConfChange(Request& r) {
  if (node_->raft().lead() == raft::kNone) {
    r.waiter->Finish(ErrNoLeader());
    return;
  }
  // A second change while one is pending would be replaced by an empty
  // entry and never complete; refuse it now instead.
  if (node_->raft().state() == raft::StateType::kLeader &&
      node_->raft().pending_conf_index() > applied_) {
    r.waiter->Finish(absl::FailedPreconditionError("a membership change is pending"));
    return;
  }
  raft::ConfChangeV2 cc;
  if (!cc.ParseFromString(r.data)) {
    r.waiter->Finish(absl::InvalidArgumentError("malformed ConfChangeV2"));
    return;
  }
  cc.set_context(EncodeRequest({options_.id, r.id}, ""));
  absl::Status s = node_->ProposeConfChange(cc);
  if (!s.ok()) {
    r.waiter->Finish(s);
    return;
  }
  pending_[r.id] = {r.waiter, r.deadline, 0, node_->raft().lead()};
}

void Member::HandleReads(std::vector<Request>& reads) {
  if (reads.empty()) return;
  if (node_->raft().lead() == raft::kNone) {
    for (Request& r : reads) r.waiter->Finish(ErrNoLeader());
    return;
  }
  // All reads drained in this iteration share one confirmation round.
  std::string ctx = ReadContext(options_.id, reads.front().id);
  std::vector<PendingRequest>& round = read_rounds_[ctx];
  const uint64_t lead = node_->raft().lead();
  for (Request& r : reads) round.push_back({r.waiter, r.deadline, 0, lead});
  node_->ReadIndex(std::move(ctx));
}

void Member::MaybeTick(absl::Time now) {
  if (now < next_tick_) return;
  node_->Tick();
  next_tick_ = now + options_.tick_interval;
  ExpireRequests(now);
}

absl::Status Member::ProcessReadies() {
  while (node_->HasReady()) {
    raft::Ready rd = node_->GetReady();
    // A leader's messages leave before its own write, which then overlaps
    // the followers' (raft/ready.h); nothing is stepped in before Advance.
    if (rd.send_before_persist && !rd.messages.empty()) {
      AnnounceCommit();
      if (absl::Status s = FillSnapshots(rd.messages); !s.ok()) return s;
      transport_->Send(std::exchange(rd.messages, {}));
    }
    // A snapshot whose state stayed with its sender (a held-state marker,
    // member_internal.h) must not replace this member's log.
    if (uint64_t held = 0; ParseHeldStateMarker(rd.snapshot.data(), &held)) {
      return absl::DataLossError(absl::StrCat("received a snapshot at index ",
                                              rd.snapshot.metadata().index(),
                                              " without the state in it"));
    }
    // A durable state machine installs a received snapshot first and syncs
    // it; the raft log then records only that it holds the state (a
    // marker) rather than a second copy of it. Nothing is acknowledged
    // before the Save below. A crash between the two leaves the state
    // machine ahead of the raft log: replay skips what it already has, and
    // the leader catches the log up again.
    bool installed = false;
    if (!raft::IsEmptySnapshot(rd.snapshot) && sm_->Durable()) {
      if (absl::Status s = ApplySnapshot(&rd.snapshot); !s.ok()) return s;
      if (absl::Status s = sm_->Sync(); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("state machine sync: ", s.message()));
      }
      rd.snapshot.set_data(HeldStateMarker(sm_->AppliedIndex()));
      installed = true;
    }
    // 1. Persist, in one write, before anything else leaves this member.
    if (!raft::IsEmptyHardState(rd.hard_state) || !rd.entries.empty() ||
        !raft::IsEmptySnapshot(rd.snapshot)) {
      const absl::Time start = absl::Now();
      absl::Status s = store_->Save(rd.hard_state, rd.entries, rd.snapshot, rd.must_sync);
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat("raft log save: ", s.message()));
      const int64_t micros = absl::ToInt64Microseconds(absl::Now() - start);
      absl::MutexLock l(&stats_mu_);
      ++persist_stats_.saves;
      if (rd.must_sync) ++persist_stats_.synced_saves;
      persist_stats_.entries += rd.entries.size();
      persist_stats_.save_micros.Record(static_cast<uint64_t>(std::max<int64_t>(0, micros)));
    }
    // 2. Send (what was not sent already).
    if (!rd.messages.empty()) {
      AnnounceCommit();
      if (absl::Status s = FillSnapshots(rd.messages); !s.ok()) return s;
      transport_->Send(std::move(rd.messages));
    }
    // 3. Apply.
    if (!installed) {
      if (absl::Status s = ApplySnapshot(&rd.snapshot); !s.ok()) return s;
    }
    if (absl::Status s = ApplyEntries(rd.committed_entries); !s.ok()) return s;
    HandleReadStates(rd.read_states);
    if (rd.soft_state.has_value()) HandleSoftState(*rd.soft_state);
    ServeReads();
    if (applied_ - snapshot_index_ >= options_.snapshot_count) {
      if (absl::Status s = TakeSnapshot(applied_); !s.ok()) return s;
    }
    // 4. Advance.
    node_->Advance();
  }
  return absl::OkStatus();
}

absl::Status Member::ApplySnapshot(raft::Snapshot* snap) {
  if (raft::IsEmptySnapshot(*snap)) return absl::OkStatus();
  const uint64_t index = snap->metadata().index();
  RAFT_CHECK(index > applied_) << "snapshot at " << index << " not past applied; "
                               << DescribeState();
  if (absl::Status s = sm_->Restore(index, std::move(*snap->mutable_data())); !s.ok()) return s;
  conf_state_ = snap->metadata().conf_state();
  applied_ = index;
  snapshot_index_ = index;
  // Entries covered by the snapshot are never seen here, so their waiters
  // cannot learn their results.
  for (auto& [id, p] : pending_) p.waiter->Finish(ErrLeadershipChanged());
  pending_.clear();
  return absl::OkStatus();
}

absl::Status Member::ApplyEntries(const std::vector<raft::Entry>& ents) {
  for (const raft::Entry& e : ents) {
    RAFT_CHECK(e.index() == applied_ + 1)
        << "committed entry " << raft::DescribeEntry(e) << " does not follow applied " << applied_
        << "; " << DescribeState();
    absl::Status s = e.type() == raftpb::ENTRY_NORMAL ? ApplyNormal(e) : ApplyConfChangeEntry(e);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Member::ApplyNormal(const raft::Entry& e) {
  applied_ = e.index();
  if (e.data().empty()) return absl::OkStatus();  // a new leader's empty entry
  RequestHeader h;
  absl::string_view command;
  RAFT_CHECK(DecodeRequest(e.data(), &h, &command))
      << "committed entry without a request header: " << raft::DescribeEntry(e) << "; "
      << DescribeState();
  std::string result;
  // A durable state machine may already hold this command (replay after a
  // crash): skip it, which makes replay idempotent.
  if (e.index() > sm_->AppliedIndex()) {
    absl::Status s = sm_->Apply(e.index(), command, &result);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("state machine: ", s.message()));
  }
  if (h.member == options_.id) Complete(h.request, std::move(result));
  return absl::OkStatus();
}

absl::Status Member::ApplyConfChangeEntry(const raft::Entry& e) {
  bool adds = false;
  std::string context;
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    raft::ConfChange cc;
    RAFT_CHECK(cc.ParseFromString(e.data())) << "bad conf change " << raft::DescribeEntry(e);
    conf_state_ = node_->ApplyConfChange(cc);
    adds = AddsNode(cc.type());
    context = cc.context();
  } else {
    raft::ConfChangeV2 cc;
    RAFT_CHECK(cc.ParseFromString(e.data())) << "bad conf change " << raft::DescribeEntry(e);
    conf_state_ = node_->ApplyConfChange(cc);
    for (const auto& c : cc.changes()) adds = adds || AddsNode(c.type());
    context = cc.context();
  }
  applied_ = e.index();
  RequestHeader h;
  absl::string_view unused;
  if (DecodeRequest(context, &h, &unused) && h.member == options_.id) {
    Complete(h.request, conf_state_.SerializeAsString());
  }
  // raft/ready.h: a node being added catches up from a snapshot, and the
  // leader sends only snapshots that include it in their membership.
  if (adds) return TakeSnapshot(applied_);
  return absl::OkStatus();
}

void Member::Complete(uint64_t request_id, absl::StatusOr<std::string> result) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;  // timed out, failed, or from an earlier incarnation
  std::shared_ptr<Waiter> w = std::move(it->second.waiter);
  pending_.erase(it);
  w->Finish(std::move(result));
}

void Member::HandleReadStates(std::vector<raft::ReadState>& states) {
  for (raft::ReadState& rs : states) {
    auto it = read_rounds_.find(rs.request_ctx);
    if (it == read_rounds_.end()) continue;
    for (PendingRequest& p : it->second) ready_reads_.emplace(rs.index, std::move(p));
    read_rounds_.erase(it);
  }
}

void Member::ServeReads() {
  while (!ready_reads_.empty() && ready_reads_.begin()->first <= applied_) {
    ready_reads_.begin()->second.waiter->Finish(std::string());
    ready_reads_.erase(ready_reads_.begin());
  }
}

void Member::HandleSoftState(const raft::SoftState& ss) {
  if (ss.lead != lead_) {
    lead_ = ss.lead;
    // A proposal in flight under another leader may now be lost (or may
    // still commit); a read round it was to confirm may never be answered.
    // Either way the caller must retry. Requests made under this leader
    // (in this very iteration, before the Ready reported it) stay.
    FailProposalsAndReads(ErrLeadershipChanged(), /*except_lead=*/ss.lead);
  }
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (it->transferee == ss.lead) {
      it->waiter->Finish(std::string());
      it = transfers_.erase(it);
    } else {
      ++it;
    }
  }
}

void Member::FailProposalsAndReads(const absl::Status& s, uint64_t except_lead) {
  auto fail = [&](PendingRequest& p) {
    if (except_lead != raft::kNone && p.lead == except_lead) return false;
    p.waiter->Finish(s);
    return true;
  };
  absl::erase_if(pending_, [&](auto& kv) { return fail(kv.second); });
  for (auto it = read_rounds_.begin(); it != read_rounds_.end();) {
    std::erase_if(it->second, fail);
    it = it->second.empty() ? read_rounds_.erase(it) : std::next(it);
  }
}

void Member::FailAll(const absl::Status& s) {
  FailProposalsAndReads(s, raft::kNone);
  for (auto& [index, p] : ready_reads_) p.waiter->Finish(s);
  ready_reads_.clear();
  for (PendingRequest& p : transfers_) p.waiter->Finish(s);
  transfers_.clear();
}

void Member::ExpireRequests(absl::Time now) {
  const absl::Status timeout = ErrTimeout("request");
  absl::erase_if(pending_, [&](auto& kv) {
    if (kv.second.deadline > now) return false;
    kv.second.waiter->Finish(timeout);
    return true;
  });
  for (auto it = read_rounds_.begin(); it != read_rounds_.end();) {
    std::erase_if(it->second, [&](PendingRequest& p) {
      if (p.deadline > now) return false;
      p.waiter->Finish(timeout);
      return true;
    });
    it = it->second.empty() ? read_rounds_.erase(it) : std::next(it);
  }
  std::erase_if(ready_reads_, [&](auto& kv) {
    if (kv.second.deadline > now) return false;
    kv.second.waiter->Finish(timeout);
    return true;
  });
  std::erase_if(transfers_, [&](PendingRequest& p) {
    if (p.deadline > now) return false;
    p.waiter->Finish(timeout);
    return true;
  });
}

void Member::BeginStop(absl::Time now) {
  stopping_ = true;
  stop_deadline_ = now;
  const raft::Raft& r = node_->raft();
  if (r.state() != raft::StateType::kLeader) return;
  // Hand leadership to the most up-to-date voter, so the cluster does not
  // wait an election timeout for a new leader.
  uint64_t best = raft::kNone;
  uint64_t best_match = 0;
  const std::vector<uint64_t> voters = r.tracker().VoterNodes();
  for (const auto& [id, pr] : r.tracker().progress) {
    if (id == options_.id || pr.is_learner) continue;
    if (std::find(voters.begin(), voters.end(), id) == voters.end()) continue;
    if (best == raft::kNone || pr.match > best_match) {
      best = id;
      best_match = pr.match;
    }
  }
  if (best == raft::kNone) return;
  node_->TransferLeader(best);
  stop_deadline_ = now + options_.tick_interval * options_.election_tick;
}

bool Member::StopDone(absl::Time now) const {
  return now >= stop_deadline_ || node_->raft().state() != raft::StateType::kLeader;
}

void Member::Shutdown(const absl::Status& why, Inbox& drained) {
  const absl::Status stopped = ErrStopped(why.ok() ? "stopped" : why.ToString());
  StopSnapshotBuilder();
  Inbox rest;
  {
    absl::MutexLock l(&inbox_mu_);
    closed_ = true;
    close_reason_ = why;
    rest = std::move(*inbox_);
    *inbox_ = Inbox();
  }
  for (Inbox* in : {&drained, &rest}) {
    for (auto* v : {&in->proposals, &in->reads, &in->others}) {
      for (Request& r : *v) r.waiter->Finish(stopped);
    }
  }
  FailAll(stopped);
  {
    absl::MutexLock l(&status_mu_);
    status_.running = false;
    status_.failure = why;
  }
  if (options_.on_status_change) options_.on_status_change();
}

void Member::PublishStatus() {
  const raft::Raft& r = node_->raft();
  MemberStatus s;
  s.id = options_.id;
  s.running = true;
  s.leader = r.lead();
  s.term = r.term();
  s.state = r.state();
  s.commit = r.log().committed();
  s.applied = applied_;
  s.last_index = r.log().LastIndex();
  s.snapshot_index = snapshot_index_;
  s.conf_state = conf_state_;
  const bool in_term = r.log().ZeroTermOnErr(s.commit) == s.term;
  {
    absl::MutexLock l(&status_mu_);
    commit_in_term_ = in_term;
    const MemberStatus& o = status_;
    if (o.running == s.running && o.leader == s.leader && o.term == s.term && o.state == s.state &&
        o.commit == s.commit && o.applied == s.applied && o.last_index == s.last_index &&
        o.snapshot_index == s.snapshot_index &&
        o.conf_state.SerializeAsString() == s.conf_state.SerializeAsString()) {
      return;
    }
    status_ = std::move(s);
  }
  if (options_.on_status_change) options_.on_status_change();
}

void Member::AnnounceCommit() {
  const uint64_t commit = node_->raft().log().committed();
  if (commit <= announced_commit_loop_) return;
  announced_commit_loop_ = commit;
  absl::MutexLock l(&status_mu_);
  announced_commit_ = commit;
}

std::string Member::DescribeState() const {
  return absl::StrCat(node_->raft().DescribeState(), " applied=", applied_,
                      " snapshot=", snapshot_index_, " pending=", pending_.size(),
                      " conf=", raft::DescribeConfState(conf_state_));
}

}  // namespace arbiter::server
