// An in-process network for the embedded cluster and tests: every member's
// LocalTransport endpoint queues into a per-destination bounded FIFO, and
// one delivery thread hands the queued messages to the destination's
// TransportHandler (its member's inbox).
//
// Faults: Partition/Isolate cut links (both directions) and Heal restores
// them; a member that is not attached (down) receives nothing. A message
// that cannot be delivered (cut link, destination down, queue full) is
// dropped and reported to its sender with OnUnreachable, and for a MsgSnap
// with OnSnapshotStatus(kFailure); a delivered MsgSnap is reported as
// kFinish. Queued messages are checked again at delivery time, so a cut
// takes effect at once, as if the packets were lost in flight.
//
// Thread safety: all methods are thread-safe. One mutex guards everything;
// handlers are called with it held, which is why TransportHandler methods
// must be non-blocking and take only leaf locks. Lock order: network mutex,
// then a member's inbox mutex.
#ifndef ARBITER_SERVER_LOCAL_TRANSPORT_H_
#define ARBITER_SERVER_LOCAL_TRANSPORT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/transport.h"

namespace arbiter::server {

class LocalNetwork {
 public:
  struct Options {
    // Messages queued per destination before new ones are dropped.
    size_t max_queue = 4096;
  };

  explicit LocalNetwork(const Options& options);
  LocalNetwork() : LocalNetwork(Options()) {}
  // Stops the delivery thread; queued messages are dropped.
  // REQUIRES: every endpoint is destroyed and every handler detached.
  ~LocalNetwork();

  LocalNetwork(const LocalNetwork&) = delete;
  LocalNetwork& operator=(const LocalNetwork&) = delete;

  // The endpoint member id sends through. Must not outlive the network.
  std::unique_ptr<Transport> Endpoint(uint64_t id);

  // Delivers messages addressed to id into handler from now on.
  // REQUIRES: id is not attached.
  void Attach(uint64_t id, TransportHandler* handler);
  // Stops delivering to id and drops what is queued for it. When it returns
  // no call into the handler is in progress or will be made.
  void Detach(uint64_t id);

  // Cuts every link between members of different groups. Members not named
  // keep their links. Adds to the cuts already in place.
  void Partition(const std::vector<std::vector<uint64_t>>& groups);
  // Cuts every link between id and any other member.
  void Isolate(uint64_t id);
  // Restores every link.
  void Heal();

  // Counters, for tests and debugging.
  uint64_t delivered() const;
  uint64_t snapshots_delivered() const;  // MsgSnap only
  uint64_t dropped() const;

 private:
  class Endpoint_;
  friend class Endpoint_;

  struct Peer {
    // nullptr while the member is down.
    TransportHandler* handler = nullptr;
    std::deque<raft::Message> queue;
  };

  void SendFrom(uint64_t from, std::vector<raft::Message> msgs);
  void DeliveryLoop();
  bool Cut(uint64_t from, uint64_t to) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Peer& PeerLocked(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reports m as dropped to its sender (if attached).
  void DropLocked(const raft::Message& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  // Signalled when a queue becomes non-empty or on shutdown.
  absl::CondVar work_cv_;
  std::map<uint64_t, Peer> peers_ ABSL_GUARDED_BY(mu_);
  // Directed links that drop everything.
  std::set<std::pair<uint64_t, uint64_t>> cut_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t snapshots_delivered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread delivery_thread_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_LOCAL_TRANSPORT_H_
