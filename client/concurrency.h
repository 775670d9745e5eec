// Elections and locks on the v3election and v3lock gRPC services, the
// server-side form of etcd's concurrency recipes (the same keys and waits
// as etcdctl's elect and lock, so both kinds of contender agree on
// holders).
//
// A Session is a lease kept alive in the background by a LeaseKeeper
// (lease.h); campaigns and locks are made with its lease, so a holder whose
// process dies loses its election or lock when the lease expires. Campaign
// and Lock block until won (or cancelled); they return the holder key and
// the fencing token, the key's create revision, which a resource compares
// to refuse a stale holder. Campaign and Lock are retried on another
// endpoint when the connection breaks: with the same lease the server
// finds the contender's key again, so a retry never queues twice. A
// cancelled Campaign or Lock withdraws its contender key.
//
// Thread safety: Session, Canceller and Coordinator are safe to use from
// many threads; a Canceller may be triggered from any thread (a signal
// handling thread) to end a blocking call.
#ifndef ARBITER_CLIENT_CONCURRENCY_H_
#define ARBITER_CLIENT_CONCURRENCY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/lease.h"
#include "proto/kv.pb.h"
#include "proto/v3election.pb.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace arbiter::client {

// Ends the blocking calls given it: those in progress and any made after
// Cancel. A cancelled call returns CANCELLED "context canceled".
class Canceller {
 public:
  void Cancel();
  bool cancelled() const;
  // True when cancelled within the timeout.
  bool WaitCancelled(absl::Duration timeout) const;
  // For the calls: false (and nothing registered) when already cancelled.
  bool Register(grpc::ClientContext* context);
  void Unregister(grpc::ClientContext* context);

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);
};

// A lease granted with a TTL and kept alive until Close or destruction.
class Session {
 public:
  // Grants a lease of `ttl` seconds. `on_lost` (may be empty) is called
  // once, from a background thread, if the lease ends while the session is
  // open.
  static absl::StatusOr<std::unique_ptr<Session>> Create(Client* client, int64_t ttl,
                                                         std::function<void()> on_lost = nullptr);
  // Stops the keep-alives without revoking: the lease expires on its own.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int64_t lease() const { return lease_; }
  int64_t ttl() const { return ttl_; }
  // OK while the lease is kept alive; why it ended otherwise.
  absl::Status Alive();
  // Stops the keep-alives and revokes the lease (its keys are deleted).
  absl::Status Close();

 private:
  Session(Client* client, int64_t lease, int64_t ttl) : client_(client), lease_(lease), ttl_(ttl) {}

  Client* const client_;
  const int64_t lease_;
  const int64_t ttl_;
  LeaseKeeper keeper_{client_};
};

// A held lock: the key that holds it and the fencing token.
struct LockHold {
  std::string key;
  // The key's create revision.
  int64_t fencing_token = 0;
  // The revision in the Lock answer's header (what etcdctl passes on as
  // ETCD_LOCK_REV).
  int64_t header_revision = 0;
};

// The election and lock calls. Calls without a Canceller end at the
// client's call timeout; Campaign, Lock and Observe with one wait until
// they are won or it is cancelled.
class Coordinator {
 public:
  explicit Coordinator(Client* client) : client_(client) {}

  // Waits to become the leader of `name` with `value`. The LeaderKey's rev
  // is the fencing token.
  absl::StatusOr<v3electionpb::LeaderKey> Campaign(const std::string& name, int64_t lease,
                                                   const std::string& value,
                                                   Canceller* cancel = nullptr);
  // A new value as the current leader ("election: not leader" if not).
  absl::Status Proclaim(const v3electionpb::LeaderKey& leader, const std::string& value);
  // The current leader's key-value ("election: no leader" when none).
  absl::StatusOr<v3electionpb::LeaderResponse> Leader(const std::string& name);
  // Calls `on_leader` with the current leader's key-value and every new
  // leader or value, until cancelled (then OK) or the server ends the
  // stream with an error; without a Canceller it never ends OK. A broken
  // connection is reopened on another
  // endpoint; a key-value already reported is not reported again.
  absl::Status Observe(const std::string& name,
                       const std::function<void(const v3electionpb::LeaderResponse&)>& on_leader,
                       Canceller* cancel);
  absl::Status Resign(const v3electionpb::LeaderKey& leader);

  // Waits to hold the lock `name` with `lease`.
  absl::StatusOr<LockHold> Lock(const std::string& name, int64_t lease,
                                Canceller* cancel = nullptr);
  absl::Status Unlock(const std::string& key);

 private:
  // After a cancelled Campaign or Lock: deletes the contender key, in case
  // the server did not hear of the cancellation (the server deletes it
  // too when it does).
  void Withdraw(const std::string& name, int64_t lease);

  Client* const client_;
};

}  // namespace arbiter::client

#endif  // ARBITER_CLIENT_CONCURRENCY_H_
