#include "server/lessor.h"

#include <cmath>
#include <vector>

#include "absl/strings/cord.h"
#include "proto/internal.pb.h"
#include "server/thread_name.h"

namespace arbiter::server {
namespace {

constexpr absl::string_view kNotLeaderUrl = "arbiter.server/lessor";

absl::Status NotLeader() {
  absl::Status s =
      absl::FailedPreconditionError("this member does not lead: forward to the leader");
  s.SetPayload(kNotLeaderUrl, absl::Cord("not_leader"));
  return s;
}

absl::StatusOr<std::string> ProposeRequest(Member* member, const internalpb::Request& req,
                                           absl::Time deadline) {
  return member->Propose(req.SerializeAsString(), deadline);
}

}  // namespace

bool Lessor::IsNotLeader(const absl::Status& s) { return s.GetPayload(kNotLeaderUrl).has_value(); }

Lessor::Lessor(Member* member, const kv::KvStateMachine* kv, const Options& options)
    : member_(member), kv_(kv), options_(options) {}

Lessor::~Lessor() { Stop(); }

void Lessor::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Lessor::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void Lessor::Run() {
  SetThreadName("lessor");
  absl::Time next_reconcile = absl::InfinitePast();
  while (!stop_.WaitForNotificationWithTimeout(options_.tick)) {
    const absl::Time now = absl::Now();
    // The full comparison with the store costs a copy of the lease table:
    // often enough to follow leadership and revocations, not every tick.
    if (now >= next_reconcile) {
      Reconcile(now);
      next_reconcile = now + 5 * options_.tick;
    }
    ExpireDue(now);
    Checkpoint(now);
  }
}

void Lessor::Reconcile(absl::Time now) {
  const MemberStatus st = member_->Status();
  const bool leads = st.state == raft::StateType::kLeader && st.leader == st.id;
  std::vector<kv::LeaseInfo> stored;
  if (leads) stored = kv_->Leases();
  absl::MutexLock l(&mu_);
  if (!leads) {
    leader_term_ = 0;
    leases_.clear();
    return;
  }
  const bool fresh = leader_term_ != st.term;
  if (fresh) {
    // A new leadership: every deadline starts from what the log recorded.
    leases_.clear();
    leader_term_ = st.term;
    next_checkpoint_ = now + options_.checkpoint_interval;
  }
  absl::flat_hash_map<int64_t, Entry> next;
  next.reserve(stored.size());
  for (const kv::LeaseInfo& li : stored) {
    auto it = leases_.find(li.id);
    if (it != leases_.end()) {
      next.emplace(li.id, it->second);
      continue;
    }
    Entry e;
    e.ttl = li.ttl;
    e.checkpointed = li.remaining_ttl > 0;
    e.expiry = now + absl::Seconds(li.remaining_ttl > 0 ? li.remaining_ttl : li.ttl);
    next.emplace(li.id, e);
  }
  leases_.swap(next);
}

Lessor::Entry* Lessor::FindLocked(int64_t id, absl::Time now) {
  // The store decides whether the lease exists: a revoke applied since the
  // last reconcile must not leave a renewable ghost here.
  std::optional<kv::LeaseInfo> li = kv_->GetLease(id, false);
  auto it = leases_.find(id);
  if (!li.has_value()) {
    if (it != leases_.end()) leases_.erase(it);
    return nullptr;
  }
  if (it != leases_.end()) return &it->second;
  // Granted since the last reconcile.
  Entry e;
  e.ttl = li->ttl;
  e.checkpointed = li->remaining_ttl > 0;
  e.expiry = now + absl::Seconds(li->remaining_ttl > 0 ? li->remaining_ttl : li->ttl);
  return &leases_.emplace(id, e).first->second;
}

absl::StatusOr<int64_t> Lessor::Renew(int64_t id, absl::Time deadline) {
  if (member_->Status().state != raft::StateType::kLeader) return NotLeader();
  if (absl::Status s = member_->AwaitAnnouncedApplied(deadline); !s.ok()) return s;
  const absl::Time now = absl::Now();
  bool clear_checkpoint = false;
  int64_t ttl = 0;
  const MemberStatus st = member_->Status();
  if (st.state != raft::StateType::kLeader) return NotLeader();
  bool known;
  {
    absl::MutexLock l(&mu_);
    known = leader_term_ == st.term;
  }
  if (!known) Reconcile(now);  // just elected: take over the table now
  {
    absl::MutexLock l(&mu_);
    if (leader_term_ != st.term) return NotLeader();
    Entry* e = FindLocked(id, now);
    // Expired (its revoke is on the way) or unknown: etcd answers TTL 0.
    if (e == nullptr || e->expiry <= now) return 0;
    ttl = e->ttl;
    clear_checkpoint = e->checkpointed;
    if (!clear_checkpoint) {
      e->expiry = now + absl::Seconds(ttl);
      return ttl;
    }
  }
  // A recorded remaining TTL would cut this renewal short under a new
  // leader: clear it through the log before acknowledging.
  internalpb::Request req;
  etcdserverpb::LeaseCheckpoint* cp = req.mutable_lease_checkpoint()->add_checkpoints();
  cp->set_id(id);
  cp->set_remaining_ttl(0);
  auto r = ProposeRequest(member_, req, deadline);
  if (!r.ok()) return r.status();
  absl::MutexLock l(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return 0;
  it->second.checkpointed = false;
  it->second.expiry = absl::Now() + absl::Seconds(ttl);
  return ttl;
}

absl::StatusOr<int64_t> Lessor::Remaining(int64_t id, absl::Time deadline) {
  if (member_->Status().state != raft::StateType::kLeader) return NotLeader();
  if (absl::Status s = member_->AwaitAnnouncedApplied(deadline); !s.ok()) return s;
  const absl::Time now = absl::Now();
  const MemberStatus st = member_->Status();
  if (st.state != raft::StateType::kLeader) return NotLeader();
  bool known;
  {
    absl::MutexLock l(&mu_);
    known = leader_term_ == st.term;
  }
  if (!known) Reconcile(now);
  absl::MutexLock l(&mu_);
  if (leader_term_ != st.term) return NotLeader();
  Entry* e = FindLocked(id, now);
  if (e == nullptr) return -1;
  const int64_t left = absl::ToInt64Seconds(e->expiry - now);
  return left < 0 ? 0 : left;
}

void Lessor::ExpireDue(absl::Time now) {
  std::vector<int64_t> due;
  {
    absl::MutexLock l(&mu_);
    if (leader_term_ == 0) return;
    for (const auto& [id, e] : leases_) {
      if (e.expiry <= now) due.push_back(id);
    }
  }
  for (int64_t id : due) {
    if (stop_.HasBeenNotified()) return;
    internalpb::Request req;
    req.mutable_lease_revoke()->set_id(id);
    auto r = ProposeRequest(member_, req, absl::Now() + options_.request_timeout);
    if (!r.ok()) return;  // lost leadership or stopping: the next leader expires it
    absl::MutexLock l(&mu_);
    leases_.erase(id);
  }
}

void Lessor::Checkpoint(absl::Time now) {
  // The lock is held across the proposal, so no renewal runs between
  // marking a lease checkpointed and the checkpoint entering the log: a
  // renewal's clearing entry always lands after the checkpoint it clears.
  // (Renewals wait for one commit every checkpoint_interval.)
  absl::MutexLock l(&mu_);
  if (leader_term_ == 0 || now < next_checkpoint_) return;
  next_checkpoint_ = now + options_.checkpoint_interval;
  const int64_t interval_s = absl::ToInt64Seconds(options_.checkpoint_interval);
  internalpb::Request req;
  std::vector<Entry*> marked;
  for (auto& [id, e] : leases_) {
    if (e.ttl <= interval_s || e.expiry <= now) continue;
    etcdserverpb::LeaseCheckpoint* cp = req.mutable_lease_checkpoint()->add_checkpoints();
    cp->set_id(id);
    cp->set_remaining_ttl(static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(e.expiry - now))));
    marked.push_back(&e);
  }
  if (marked.empty()) return;
  for (Entry* e : marked) e->checkpointed = true;
  // On failure the entry may still commit later; the leases stay marked,
  // so their next renewal clears it either way.
  (void)ProposeRequest(member_, req, absl::Now() + options_.request_timeout);
}

}  // namespace arbiter::server
