// Lease liveness: which leases are alive, and expiring the rest. Leases
// themselves (IDs, granted TTLs, attached keys) live in the replicated
// key-value state machine; this tracks their deadlines on the leader only,
// where keep-alives arrive (followers forward them). Keep-alives touch only
// this in-memory table, never the log, so thousands of leases kept alive
// cost no proposals; expiry goes through the log (a LeaseRevoke, which
// deletes every attached key in one revision).
//
// Leader changes (the documented bound, docs/leases.md): a new leader
// starts every lease's deadline afresh from what the log recorded: the
// remaining TTL of the last checkpoint if there is one, else the granted
// TTL. Every checkpoint_interval the leader records the remaining TTL of
// the leases whose TTL is longer than that interval (short ones gain at
// most one TTL from a leader change anyway); the first keep-alive after a
// checkpoint clears it through the log before it is answered, so a renewed
// lease is never cut short by a new leader. Hence a lease whose keep-alives
// stop expires no earlier than TTL after the last acknowledged keep-alive,
// and no later than that plus min(TTL, checkpoint_interval) plus the time to
// elect a leader (per leader change) plus one tick and a commit.
//
// Thread safety: all methods are thread-safe; one thread (Start) ticks.
#ifndef ARBITER_SERVER_LESSOR_H_
#define ARBITER_SERVER_LESSOR_H_

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kvstore/kv_state_machine.h"
#include "server/member.h"

namespace arbiter::server {

class Lessor {
 public:
  struct Options {
    absl::Duration tick = absl::Milliseconds(100);
    absl::Duration checkpoint_interval = absl::Minutes(5);
    // How long an expiry or checkpoint proposal may take.
    absl::Duration request_timeout = absl::Seconds(7);
  };

  // Neither is owned; both must outlive the lessor.
  Lessor(Member* member, const kv::KvStateMachine* kv, const Options& options);
  // Stops the ticking thread.
  ~Lessor();

  void Start();
  void Stop();

  // Both first wait until the leader applied every entry it has told a
  // follower was committed (Member::AwaitAnnouncedApplied): a grant or
  // revoke that a follower applied and acknowledged is then seen here too.
  //
  // Renews lease id and returns its granted TTL in seconds, or 0 if it does
  // not exist or already expired (etcd answers a keep-alive so).
  // Errors: FailedPrecondition if this member does not lead (forward to the
  // leader); member errors if clearing a checkpoint failed or the wait for
  // the apply timed out.
  absl::StatusOr<int64_t> Renew(int64_t id, absl::Time deadline);
  // Seconds left on the leader's clock (truncated), -1 if the lease does
  // not exist. Errors: as Renew.
  absl::StatusOr<int64_t> Remaining(int64_t id, absl::Time deadline);

  static bool IsNotLeader(const absl::Status& s);

 private:
  struct Entry {
    absl::Time expiry;
    int64_t ttl = 0;
    // A remaining TTL is recorded in the log for this lease.
    bool checkpointed = false;
  };

  void Run();
  // Follows leadership; rebuilds the table when this member becomes leader
  // and adds or drops leases granted or revoked since.
  void Reconcile(absl::Time now);
  void ExpireDue(absl::Time now);
  void Checkpoint(absl::Time now);
  // Looks a lease up, adding it from the store if it was just granted.
  Entry* FindLocked(int64_t id, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Member* const member_;
  const kv::KvStateMachine* const kv_;
  const Options options_;

  absl::Mutex mu_;
  // The term in which this member leads; 0 while it does not.
  uint64_t leader_term_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int64_t, Entry> leases_ ABSL_GUARDED_BY(mu_);
  absl::Time next_checkpoint_ ABSL_GUARDED_BY(mu_);

  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_LESSOR_H_
