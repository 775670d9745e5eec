#include "client/lease.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "proto/rpc.grpc.pb.h"

namespace arbiter::client {
namespace {

// How soon an unanswered renewal is sent again.
constexpr absl::Duration kResend = absl::Milliseconds(500);
// Renewals due this close together go out in one batch, so that thousands
// of leases cost a few wake-ups a second, not one each.
constexpr absl::Duration kBatch = absl::Milliseconds(50);

void Notify(const std::vector<std::pair<LeaseKeeper::Listener, LeaseEvent>>& events) {
  for (const auto& [listener, event] : events) {
    if (listener) listener(event);
  }
}

}  // namespace

LeaseKeeper::LeaseKeeper(Client* client) : client_(client) {
  thread_ = std::thread([this] { Run(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  thread_.join();
}

void LeaseKeeper::Add(int64_t id, int64_t ttl, Listener listener) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = leases_.try_emplace(id);
  Kept& kept = it->second;
  const absl::Time now = absl::Now();
  if (inserted || kept.ended.has_value()) {
    // The caller has just granted or renewed it: it lives at least a TTL.
    kept = Kept();
    kept.ttl = ttl;
    kept.expires = now + absl::Seconds(ttl);
  }
  kept.listener = std::move(listener);
  kept.next_send = now;
  changed_ = true;
}

void LeaseKeeper::Remove(int64_t id) {
  absl::MutexLock lock(&mu_);
  leases_.erase(id);
  changed_ = true;
}

std::optional<absl::Status> LeaseKeeper::Wait(int64_t id, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  const auto ended = [this, id] {
    mu_.AssertReaderHeld();
    auto it = leases_.find(id);
    return it == leases_.end() || it->second.ended.has_value();
  };
  mu_.AwaitWithDeadline(absl::Condition(&ended), deadline);
  auto it = leases_.find(id);
  if (it == leases_.end()) return absl::CancelledError("the lease is not kept alive here");
  return it->second.ended;
}

int64_t LeaseKeeper::renewals_acknowledged() const {
  absl::MutexLock lock(&mu_);
  return acknowledged_;
}

int64_t LeaseKeeper::streams_opened() const {
  absl::MutexLock lock(&mu_);
  return streams_;
}

std::vector<std::pair<LeaseKeeper::Listener, LeaseEvent>> LeaseKeeper::ExpireLocked(
    absl::Time now) {
  std::vector<std::pair<Listener, LeaseEvent>> events;
  for (auto& [id, kept] : leases_) {
    if (kept.ended.has_value() || kept.expires > now) continue;
    kept.ended = absl::DeadlineExceededError(
        "lease keep-alive timed out: no renewal was acknowledged within the TTL");
    events.push_back({kept.listener, LeaseEvent{id, 0, *kept.ended}});
  }
  return events;
}

void LeaseKeeper::Run() {
  int after = -1;
  const absl::Duration initial = client_->options().initial_backoff;
  absl::Duration backoff = initial;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      const auto has_work = [this] {
        mu_.AssertReaderHeld();
        if (stop_) return true;
        return std::any_of(leases_.begin(), leases_.end(),
                           [](const auto& entry) { return !entry.second.ended.has_value(); });
      };
      mu_.Await(absl::Condition(&has_work));
      if (stop_) return;
    }
    const int64_t acknowledged = renewals_acknowledged();
    Serve(&after);
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    // A stream that carried renewals was healthy: reopen at once.
    backoff = acknowledged_ > acknowledged ? initial
                                           : std::min(backoff * 2, client_->options().max_backoff);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), backoff);
    if (stop_) return;
  }
}

void LeaseKeeper::Serve(int* after) {
  absl::StatusOr<Client::Connection> connection =
      client_->Connect(absl::Now() + client_->options().dial_timeout, *after);
  if (!connection.ok()) {
    std::vector<std::pair<Listener, LeaseEvent>> events;
    {
      absl::MutexLock lock(&mu_);
      events = ExpireLocked(absl::Now());
    }
    Notify(events);
    return;
  }
  *after = connection->index;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub =
      etcdserverpb::Lease::NewStub(connection->channel);
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    context_ = &context;
    broken_ = false;
    ++streams_;
    // Renewals sent on an earlier stream may be lost: send them all again.
    const absl::Time now = absl::Now();
    for (auto& [id, kept] : leases_) {
      kept.next_send = now;
      kept.outstanding_since.reset();
    }
  }
  auto stream = stub->LeaseKeepAlive(&context);
  std::thread reader([this, &stream] {
    etcdserverpb::LeaseKeepAliveResponse response;
    while (stream->Read(&response)) OnResponse(response);
    absl::MutexLock lock(&mu_);
    broken_ = true;
  });
  for (;;) {
    std::vector<int64_t> due;
    std::vector<std::pair<Listener, LeaseEvent>> events;
    {
      absl::MutexLock lock(&mu_);
      absl::Time wake = absl::InfiniteFuture();
      for (const auto& [id, kept] : leases_) {
        if (!kept.ended.has_value()) wake = std::min({wake, kept.next_send, kept.expires});
      }
      mu_.AwaitWithDeadline(absl::Condition(this, &LeaseKeeper::Woken), wake);
      changed_ = false;
      if (stop_ || broken_) break;
      const absl::Time now = absl::Now();
      events = ExpireLocked(now);
      for (auto& [id, kept] : leases_) {
        if (kept.ended.has_value() || kept.next_send > now + kBatch) continue;
        due.push_back(id);
        if (!kept.outstanding_since.has_value()) kept.outstanding_since = now;
        kept.next_send = now + kResend;
      }
    }
    Notify(events);
    bool written = true;
    etcdserverpb::LeaseKeepAliveRequest request;
    for (int64_t id : due) {
      request.set_id(id);
      if (!stream->Write(request)) {
        written = false;
        break;
      }
    }
    if (!written) break;
  }
  context.TryCancel();
  reader.join();
  stream->Finish();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
}

void LeaseKeeper::OnResponse(const etcdserverpb::LeaseKeepAliveResponse& response) {
  const int64_t id = response.id();
  const int64_t ttl = response.ttl();
  Listener listener;
  LeaseEvent event{id, ttl, absl::OkStatus(), response.header()};
  {
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(id);
    if (it == leases_.end() || it->second.ended.has_value()) return;
    Kept& kept = it->second;
    const absl::Time now = absl::Now();
    if (ttl <= 0) {
      kept.ended = absl::NotFoundError("etcdserver: requested lease not found");
      event = LeaseEvent{id, 0, *kept.ended, response.header()};
    } else {
      ++acknowledged_;
      kept.ttl = ttl;
      kept.expires = kept.outstanding_since.value_or(now) + absl::Seconds(ttl);
      kept.outstanding_since.reset();
      kept.next_send = now + absl::Seconds(ttl) / 3;
    }
    listener = kept.listener;
  }
  if (listener) listener(event);
}

}  // namespace arbiter::client
