// Member: startup and the thread-safe public API. The event loop is in
// member_loop.cc.
#include "server/member.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "absl/memory/memory.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "raft/logger.h"
#include "server/errors.h"
#include "server/member_internal.h"

namespace arbiter::server {
namespace {

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

absl::Status ValidateOptions(const MemberOptions& o) {
  if (o.id == raft::kNone) return absl::InvalidArgumentError("member id must be non-zero");
  if (o.data_dir.empty()) return absl::InvalidArgumentError("data_dir is required");
  if (o.tick_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("tick_interval must be positive");
  }
  if (o.snapshot_count == 0) return absl::InvalidArgumentError("snapshot_count must be > 0");
  if (o.max_pending_requests == 0 || o.max_inbox_messages == 0) {
    return absl::InvalidArgumentError("inbox bounds must be > 0");
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeRequest(const RequestHeader& h, absl::string_view payload) {
  std::string out;
  out.reserve(kRequestHeaderSize + payload.size());
  out.push_back(kRequestHeaderVersion);
  PutFixed64(&out, h.member);
  PutFixed64(&out, h.request);
  out.append(payload.data(), payload.size());
  return out;
}

bool DecodeRequest(absl::string_view data, RequestHeader* h, absl::string_view* payload) {
  if (data.size() < kRequestHeaderSize || data[0] != kRequestHeaderVersion) return false;
  h->member = GetFixed64(data.data() + 1);
  h->request = GetFixed64(data.data() + 9);
  *payload = data.substr(kRequestHeaderSize);
  return true;
}

namespace {
// Not a prefix of any state machine's snapshot format.
constexpr absl::string_view kHeldStateMagic = "arbiter:state-held-by-the-state-machine:";
}  // namespace

std::string HeldStateMarker(uint64_t sm_applied) {
  std::string out(kHeldStateMagic);
  PutFixed64(&out, sm_applied);
  return out;
}

bool ParseHeldStateMarker(absl::string_view data, uint64_t* sm_applied) {
  if (data.size() != kHeldStateMagic.size() + 8 || !absl::StartsWith(data, kHeldStateMagic)) {
    return false;
  }
  *sm_applied = GetFixed64(data.data() + kHeldStateMagic.size());
  return true;
}

Member::Member(const MemberOptions& options, std::unique_ptr<StateMachine> sm, Transport* transport)
    : options_(options),
      transport_(transport),
      logger_(options.logger != nullptr ? options.logger
                                        : raft::StderrLogger(raft::LogLevel::kWarning)),
      sm_(std::move(sm)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      inbox_(std::make_unique<Inbox>()) {
  absl::BitGen gen;
  absl::MutexLock l(&inbox_mu_);
  next_request_id_ = absl::Uniform<uint64_t>(gen) >> 1;
}

absl::StatusOr<std::unique_ptr<Member>> Member::Start(const MemberOptions& options,
                                                      std::unique_ptr<StateMachine> sm,
                                                      Transport* transport) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  if (sm == nullptr || transport == nullptr) {
    return absl::InvalidArgumentError("a state machine and a transport are required");
  }
  auto m = absl::WrapUnique(new Member(options, std::move(sm), transport));
  if (absl::Status s = m->Init(); !s.ok()) return s;
  m->PublishStatus();
  absl::MutexLock l(&m->join_mu_);
  m->thread_ = std::thread([p = m.get()] { p->Run(); });
  return m;
}

absl::Status Member::Init() {
  kv::RaftLogStore::Options so;
  so.env = options_.env;
  so.catch_up_entries = options_.snapshot_catchup_entries;
  auto store = kv::RaftLogStore::Open(options_.data_dir, so);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  if (store_->IsEmpty() && !options_.join_existing) {
    if (options_.initial_members.empty()) {
      return absl::InvalidArgumentError("a new cluster needs initial_members");
    }
    raft::ConfState cs;
    for (uint64_t v : options_.initial_members) cs.add_voters(v);
    if (absl::Status s = store_->Bootstrap(cs); !s.ok()) return s;
  }
  // The state machine resumes from the store's snapshot unless it is
  // durable and already past it; Raft replays the committed log after the
  // snapshot, and ApplyNormal skips what the state machine already has.
  auto snap = store_->Snapshot();
  if (!snap.ok()) return snap.status();
  snapshot_index_ = snap->metadata().index();
  uint64_t held = 0;
  if (ParseHeldStateMarker(snap->data(), &held)) {
    // The log before the snapshot is gone and the state machine was to hold
    // what it covered: if it does not, nothing can rebuild it.
    if (sm_->AppliedIndex() < held) {
      return absl::DataLossError(absl::StrCat("the raft snapshot at index ", snapshot_index_,
                                              " says the state machine holds the state "
                                              "up to its command at index ",
                                              held, ", but it has applied only up to ",
                                              sm_->AppliedIndex()));
    }
  } else if (snapshot_index_ > sm_->AppliedIndex()) {
    if (absl::Status s = sm_->Restore(snapshot_index_, std::move(*snap->mutable_data())); !s.ok()) {
      return s;
    }
  }
  conf_state_ = snap->metadata().conf_state();
  applied_ = snapshot_index_;

  rand_ = std::make_unique<raft::SeededRand>(
      options_.seed != 0 ? options_.seed
                         : static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ options_.id);
  raft::Config c;
  c.id = options_.id;
  c.election_tick = options_.election_tick;
  c.heartbeat_tick = options_.heartbeat_tick;
  c.storage = store_.get();
  c.applied = applied_;
  c.rand = rand_.get();
  c.logger = logger_;
  auto node = raft::RawNode::Create(c);
  if (!node.ok()) return node.status();
  node_ = std::move(*node);
  lead_ = node_->raft().lead();
  next_tick_ = absl::Now() + options_.tick_interval;
  return absl::OkStatus();
}

Member::~Member() {
  Halt(/*graceful=*/false);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Member::WakeLoop() {
  if (loop_polling_) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    loop_polling_ = false;  // one write per wait is enough
  } else {
    inbox_cv_.Signal();
  }
}

absl::Status Member::Enqueue(Request req) {
  absl::MutexLock l(&inbox_mu_);
  if (closed_) return ErrStopped(close_reason_.ok() ? "stopped" : close_reason_.message());
  if (inbox_->requests() >= options_.max_pending_requests) return ErrInboxFull();
  req.id = next_request_id_++;
  switch (req.kind) {
    case RequestKind::kPropose:
      inbox_->proposals.push_back(std::move(req));
      break;
    case RequestKind::kRead:
      inbox_->reads.push_back(std::move(req));
      break;
    default:
      inbox_->others.push_back(std::move(req));
  }
  WakeLoop();
  return absl::OkStatus();
}

absl::StatusOr<std::string> Member::Call(Request req, absl::Time deadline, const char* what) {
  auto w = std::make_shared<Waiter>();
  req.waiter = w;
  req.deadline = deadline;
  if (absl::Status s = Enqueue(std::move(req)); !s.ok()) return s;
  if (!w->done.WaitForNotificationWithDeadline(deadline)) {
    absl::MutexLock l(&w->mu);
    w->abandoned = true;
    return ErrTimeout(what);
  }
  return w->result;
}

void Member::CallAsync(Request req, absl::Time deadline, Callback done) {
  auto w = std::make_shared<Waiter>();
  w->on_done = std::move(done);
  req.waiter = w;
  req.deadline = deadline;
  // Refused at once: the loop never saw the waiter, so it is finished here.
  if (absl::Status s = Enqueue(std::move(req)); !s.ok()) w->Finish(s);
}

void Member::ProposeAsync(std::string command, absl::Time deadline, Callback done) {
  Request r;
  r.kind = RequestKind::kPropose;
  r.data = std::move(command);
  CallAsync(std::move(r), deadline, std::move(done));
}

void Member::ReadIndexAsync(absl::Time deadline, Callback done) {
  Request r;
  r.kind = RequestKind::kRead;
  CallAsync(std::move(r), deadline, std::move(done));
}

absl::StatusOr<std::string> Member::Propose(std::string command, absl::Time deadline) {
  Request r;
  r.kind = RequestKind::kPropose;
  r.data = std::move(command);
  return Call(std::move(r), deadline, "proposal (its outcome is unknown)");
}

absl::Status Member::ReadIndex(absl::Time deadline) {
  Request r;
  r.kind = RequestKind::kRead;
  return Call(std::move(r), deadline, "read index").status();
}

absl::StatusOr<raft::ConfState> Member::ProposeConfChange(const raft::ConfChangeV2& cc,
                                                          absl::Time deadline) {
  Request r;
  r.kind = RequestKind::kConfChange;
  r.data = cc.SerializeAsString();
  auto res = Call(std::move(r), deadline, "conf change (its outcome is unknown)");
  if (!res.ok()) return res.status();
  raft::ConfState cs;
  if (!cs.ParseFromString(*res)) return absl::InternalError("bad ConfState from the loop");
  return cs;
}

absl::Status Member::TransferLeadership(uint64_t transferee, absl::Time deadline) {
  Request r;
  r.kind = RequestKind::kTransfer;
  r.transferee = transferee;
  return Call(std::move(r), deadline, "leadership transfer").status();
}

absl::Status Member::QueryStateMachine(std::function<void(const StateMachine&)> fn,
                                       absl::Time deadline) {
  Request r;
  r.kind = RequestKind::kQuery;
  r.query = std::move(fn);
  return Call(std::move(r), deadline, "state machine query").status();
}

absl::StatusOr<uint64_t> Member::AppliedHash(absl::Time deadline) {
  // Shared, not on the stack: the loop may still hold the function after a
  // timeout (it will not run it, but it owns the closure until then).
  auto hash = std::make_shared<uint64_t>(0);
  absl::Status s =
      QueryStateMachine([hash](const StateMachine& sm) { *hash = sm.Hash(); }, deadline);
  if (!s.ok()) return s;
  return *hash;
}

PersistStats Member::persist_stats() const {
  absl::MutexLock l(&stats_mu_);
  return persist_stats_;
}

absl::Status Member::AwaitAnnouncedApplied(absl::Time deadline) {
  absl::MutexLock l(&status_mu_);
  const uint64_t target = announced_commit_;
  auto caught_up = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(status_mu_) {
    if (!status_.running) return true;
    const bool leads = status_.state == raft::StateType::kLeader;
    return status_.applied >= target && (!leads || commit_in_term_);
  };
  if (!status_mu_.AwaitWithDeadline(absl::Condition(&caught_up), deadline)) {
    return ErrTimeout("waiting to apply committed entries");
  }
  if (!status_.running) {
    return ErrStopped(status_.failure.ok() ? "stopped" : status_.failure.message());
  }
  return absl::OkStatus();
}

size_t Member::queued_requests() const {
  absl::MutexLock l(&inbox_mu_);
  return inbox_->requests();
}

MemberStatus Member::Status() const {
  absl::MutexLock l(&status_mu_);
  return status_;
}

void Member::Halt(bool graceful) {
  {
    absl::MutexLock l(&inbox_mu_);
    if (graceful) {
      inbox_->stop = true;
    } else {
      inbox_->kill = true;
    }
    WakeLoop();
  }
  absl::MutexLock l(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

void Member::Stop() { Halt(/*graceful=*/true); }
void Member::Kill() { Halt(/*graceful=*/false); }

void Member::OnMessages(std::vector<raft::Message> msgs) {
  absl::MutexLock l(&inbox_mu_);
  if (closed_) return;
  // A full inbox drops the newest messages; Raft retransmits.
  for (raft::Message& m : msgs) {
    if (inbox_->messages.size() >= options_.max_inbox_messages) break;
    inbox_->messages.push_back(std::move(m));
  }
  WakeLoop();
}

void Member::OnUnreachable(uint64_t peer) {
  absl::MutexLock l(&inbox_mu_);
  if (closed_) return;
  inbox_->unreachable.push_back(peer);
  WakeLoop();
}

void Member::OnConnectionLost(uint64_t peer) {
  absl::MutexLock l(&inbox_mu_);
  if (closed_) return;
  // Where it falls among the messages: the loop steps it after what the
  // peer sent before closing and before anything that arrived after.
  inbox_->connection_lost.emplace_back(peer, inbox_->messages.size());
  WakeLoop();
}

void Member::OnSnapshotStatus(uint64_t peer, raft::SnapshotStatus status) {
  absl::MutexLock l(&inbox_mu_);
  if (closed_) return;
  inbox_->snapshot_status.emplace_back(peer, status);
  WakeLoop();
}

}  // namespace arbiter::server
