// Keeping leases alive in the background. A LeaseKeeper carries the
// renewals of every lease added to it over one bidirectional LeaseKeepAlive
// stream, so one client can keep thousands of leases alive with one stream
// and two threads. Each lease is renewed a third of its TTL after its last
// acknowledged renewal (as clientv3 does), and again every half second
// while a renewal goes unanswered.
//
// When the stream breaks (the member went away, the connection reset), it
// is opened again on the next endpoint that connects and every lease is
// renewed at once on it. A lease ends, and its listener hears so once,
// when the server answers a renewal with TTL 0 (revoked or expired:
// NOT_FOUND "etcdserver: requested lease not found"), or when no renewal
// was acknowledged within its TTL (DEADLINE_EXCEEDED: by the client's
// reckoning the lease has expired). An ended lease is no longer renewed;
// Wait reports how it ended until it is Removed.
//
// Thread safety: all methods may be called from any thread. Listeners run
// on the keeper's own threads without its lock held; they may call Add,
// Remove and Wait, but must not destroy the keeper.
#ifndef ARBITER_CLIENT_LEASE_H_
#define ARBITER_CLIENT_LEASE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace arbiter::client {

struct LeaseEvent {
  int64_t id = 0;
  // The TTL the server renewed the lease to; 0 once the lease has ended.
  int64_t ttl = 0;
  // OK for a renewal; why the lease ended otherwise.
  absl::Status status;
  // The renewal's answer header (empty when the lease ended locally).
  etcdserverpb::ResponseHeader header;
};

class LeaseKeeper {
 public:
  using Listener = std::function<void(const LeaseEvent&)>;

  // `client` must outlive the keeper. The stream is opened when there is
  // a lease to renew.
  explicit LeaseKeeper(Client* client);
  // Stops renewing (the leases are not revoked; they expire on their own)
  // and joins the threads.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Starts renewing `id`, a lease granted with `ttl` seconds; the first
  // renewal is sent at once. `listener` (may be empty) hears every renewal
  // and the end. Adding a lease already kept replaces its listener.
  void Add(int64_t id, int64_t ttl, Listener listener = nullptr);
  // Stops renewing `id`.
  void Remove(int64_t id);
  // Blocks until `id` has ended or the deadline passes. nullopt while it is
  // alive; how it ended otherwise (CANCELLED for a lease not kept here).
  std::optional<absl::Status> Wait(int64_t id, absl::Time deadline);

  // Counters, for tests and monitoring.
  int64_t renewals_acknowledged() const;
  int64_t streams_opened() const;

 private:
  struct Kept {
    int64_t ttl = 0;
    absl::Time next_send;
    // The lease's end by the client's reckoning: the send time of the last
    // acknowledged renewal (or of the Add) plus the TTL.
    absl::Time expires;
    // When the oldest unanswered renewal was sent.
    std::optional<absl::Time> outstanding_since;
    Listener listener;
    std::optional<absl::Status> ended;
  };

  void Run();
  // One stream's life: returns when it breaks or the keeper stops.
  void Serve(int* after);
  void OnResponse(const etcdserverpb::LeaseKeepAliveResponse& response);
  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || broken_ || changed_; }
  // Leases past their reckoned end become ended; returns their events.
  std::vector<std::pair<Listener, LeaseEvent>> ExpireLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Client* const client_;
  mutable absl::Mutex mu_;
  std::map<int64_t, Kept> leases_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t acknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // Opens streams and sends renewals.
};

}  // namespace arbiter::client

#endif  // ARBITER_CLIENT_LEASE_H_
