// How a Member talks to its peers. The member hands each Ready's messages
// to its Transport after they are durable; the transport hands messages
// from peers, and the fate of the member's own messages, to a
// TransportHandler (the member's inbox).
//
// Contract (what Raft needs, and no more):
//   - Send never blocks on the network: it queues and returns.
//   - Messages to one peer arrive in the order they were sent.
//   - Messages may be dropped (full queue, peer down, partition); Raft
//     retries. A dropped message is reported with OnUnreachable(to); a
//     MsgSnap's outcome is always reported with OnSnapshotStatus, because
//     the leader pauses that follower until it hears.
//   - Optionally, when the peer's end closes the connection its messages
//     arrive on (its process exited: the kernel closes its sockets), that
//     is reported with OnConnectionLost(peer), after every message that
//     arrived on it. A send failing, a full queue, or a peer that merely
//     stops talking (paused, partitioned) is not reported there.
//
// Thread safety: Send and ReadReady are called from the member's loop
// thread only (a transport may also call its own ReadReady from a thread
// of its own, never both at once); the
// handler's methods may be called from any transport thread and from
// inside Send itself, so they must be non-blocking and take only leaf
// locks.
#ifndef ARBITER_SERVER_TRANSPORT_H_
#define ARBITER_SERVER_TRANSPORT_H_

#include <cstdint>
#include <vector>

#include "raft/raw_node.h"
#include "raft/types.h"

namespace arbiter::server {

// Implemented by Member: where a transport delivers.
class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // Messages from peers, addressed to this member.
  virtual void OnMessages(std::vector<raft::Message> msgs) = 0;
  // A message this member sent to peer was dropped.
  virtual void OnUnreachable(uint64_t peer) = 0;
  // The outcome of a MsgSnap this member sent to peer.
  virtual void OnSnapshotStatus(uint64_t peer, raft::SnapshotStatus status) = 0;
  // The peer closed the last connection its messages arrived on. Transports
  // that cannot tell never call it.
  virtual void OnConnectionLost(uint64_t peer) { (void)peer; }
};

// One member's endpoint.
class Transport {
 public:
  virtual ~Transport() = default;
  // Queues msgs (all from the local member) for delivery. Non-blocking.
  virtual void Send(std::vector<raft::Message> msgs) = 0;

  // A transport may leave reading its connections to the member's loop,
  // which saves a thread hand-off per message: ReadFd() is then a
  // descriptor that polls readable when something arrived, and the loop
  // calls ReadReady() on its own thread, both while it waits for work and
  // between rounds of it. ReadReady reads what is there without blocking
  // and delivers it through the handler. -1 (the default): the transport
  // reads on threads of its own.
  virtual int ReadFd() const { return -1; }
  virtual void ReadReady() {}
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_TRANSPORT_H_
