// The member-to-member transport over plain TCP (proto/peer.proto has the
// wire format): how the members of a real cluster exchange Raft messages on
// their peer ports. etcd keeps its peer traffic off gRPC for the same reason:
// a Raft round is a few small messages, and HTTP/2 framing plus gRPC's
// thread hand-offs cost more than the consensus work itself.
//
// Sending: one sender per remote member with its own connection and its
// own bounded queue, so a slow or dead peer never stalls the others. Send
// (the member's loop thread) turns each call's messages for a peer into
// MessageBatch frames of about batch_bytes at most and writes them to the
// peer's socket at once, without a thread hand-off, when the socket has
// room; what does not fit is queued and written by the peer's sender thread
// as the socket drains. A frame that would take the queue past max_queue
// messages or max_queue_bytes is dropped and reported with OnUnreachable
// (Raft retries), unless the queue is empty: one Ready's worth always goes.
// The sender thread also dials: it connects, introduces this member
// (PeerHello), and when the connection breaks it reports the loss with
// OnUnreachable, drops what is queued (it may have been half written), and
// reconnects with exponential backoff (min_backoff doubling up to
// max_backoff, jittered). Frames queued between connections go out on the
// next one, or are dropped and reported if dialing fails.
// A MsgSnap goes on a connection of its own, cut into chunks of
// snapshot_chunk_bytes, on its own thread (one snapshot at a time per peer),
// so a large snapshot never delays heartbeats; its outcome is always
// reported with OnSnapshotStatus.
//
// Receiving: Listen opens the peer ports; a thread accepts connections and
// each connection gets a thread for its hello. A message connection is
// then read, without blocking, with every other one: by the member's loop
// (loop_reads) or by one reader thread. A connection is accepted only if
// its hello names this cluster, this member, and a sender that is a known
// peer; anything else is refused (FAILED_PRECONDITION for another cluster,
// PERMISSION_DENIED for an unknown member, told to the dialer) and never
// reaches Raft. Snapshot chunks are reassembled up to max_snapshot_bytes
// before the whole MsgSnap is handed over.
//
// Connection loss: when the last message connection from a peer ends from
// the peer's side (its process exited and the kernel closed or reset its
// sockets, or it stopped its sender), the handler hears
// OnConnectionLost(peer), after every message that arrived on it; a
// follower whose leader that is can then campaign without waiting out an
// election timeout. A peer that only stops talking (paused, partitioned)
// closes nothing and is not reported; neither is a connection this member
// refuses or closes, nor one replaced by a newer connection already open (a
// reconnect), nor one that times out.
//
// Dead links: keepalive probes and TCP_USER_TIMEOUT (peer_timeout) break a
// connection whose other end stops acknowledging, whether data is waiting
// or not, so a partition or a host that went down is noticed in seconds
// and the connection redialed, rather than after the kernel's many minutes
// of retransmissions (whose growing intervals would also delay the first
// message after the link heals). A paused peer's kernel still acknowledges
// until its receive buffer is full; one that keeps its window shut for
// peer_timeout is treated as gone too, and redialed.
//
// Thread safety: every public method is thread-safe. Send is non-blocking.
// The handler (the member) is called from the loop thread (inside Send and
// ReadReady) and transport threads under a reader lock, sometimes with
// transport locks held (hence the TransportHandler rule: non-blocking, leaf
// locks only; it must not call back into the transport);
// Detach waits for calls in progress, so after it returns the handler may
// be destroyed.
#ifndef ARBITER_SERVER_PEER_TRANSPORT_H_
#define ARBITER_SERVER_PEER_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "raft/logger.h"
#include "server/transport.h"

namespace arbiter::server {

struct PeerTransportOptions {
  uint64_t cluster_id = 0;
  uint64_t local_id = 0;
  // Messages (and bytes of them) queued per peer before new ones are
  // dropped.
  size_t max_queue = 4096;
  size_t max_queue_bytes = 64 << 20;
  // Messages to one peer are cut into frames of about this many bytes (a
  // single larger message makes a frame of its own).
  size_t batch_bytes = 4 << 20;
  // Largest frame accepted from a peer.
  size_t max_frame_bytes = 256 << 20;
  size_t snapshot_chunk_bytes = 1 << 20;
  // Largest snapshot accepted from a peer.
  uint64_t max_snapshot_bytes = uint64_t{8} << 30;
  absl::Duration min_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(1);
  // Dialing and the hello exchange give up after this long.
  absl::Duration connect_timeout = absl::Seconds(3);
  // TCP keepalive probes on idle peer connections, so a dead link or host
  // is noticed without waiting for the next write.
  absl::Duration keepalive_time = absl::Seconds(1);
  // A connection whose other end acknowledges nothing (no data, no probe)
  // for this long is broken and redialed.
  absl::Duration peer_timeout = absl::Seconds(5);
  // Whether the member's loop reads the inbound message connections
  // (ReadFd and ReadReady), saving a thread hand-off per message; else one
  // reader thread of the transport's own does.
  bool loop_reads = false;
  // Not owned; nullptr logs warnings and errors to stderr.
  raft::Logger* logger = nullptr;
};

class PeerTransport final : public Transport {
 public:
  explicit PeerTransport(const PeerTransportOptions& options);
  // Stops listening, closes every connection, stops every sender and fails
  // whatever is queued.
  ~PeerTransport() override;

  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Sets the address ("host:port") of a peer, adding it if new. Messages
  // from a peer are accepted only once it is added.
  void AddPeer(uint64_t id, const std::string& address);
  void RemovePeer(uint64_t id);
  std::vector<uint64_t> Peers() const;

  // Starts (or stops) delivering received messages into handler.
  void Attach(TransportHandler* handler);
  void Detach();

  // Transport: queues each message on its destination's sender.
  void Send(std::vector<raft::Message> msgs) override;

  // Listens for peers on each "host:port" (port 0: any free port) and
  // starts accepting. Returns the ports bound, in order.
  // REQUIRES: called at most once.
  absl::StatusOr<std::vector<int>> Listen(const std::vector<std::string>& host_ports);
  // Stops accepting and closes every inbound connection (without reporting
  // them lost); waits for their threads. Idempotent.
  void StopListening();

  // With loop_reads, the member's loop reads the inbound message
  // connections (Transport::ReadFd); otherwise a "peer-recv" thread does.
  int ReadFd() const override;
  void ReadReady() override;

  // Counters, for tests and status output.
  uint64_t refused_batches() const;
  // Inbound message connections that ended (counted once whatever they
  // caused has been reported).
  uint64_t inbound_streams_closed() const;

 private:
  class Sender;
  class Receiver;  // peer_receiver.cc
  struct ReceiverDeleter {
    void operator()(Receiver* r) const;
  };
  using ReceiverPtr = std::unique_ptr<Receiver, ReceiverDeleter>;
  static ReceiverPtr NewReceiver(PeerTransport* t);

  void Deliver(std::vector<raft::Message> msgs);
  void ReportUnreachable(uint64_t peer);
  void ReportSnapshot(uint64_t peer, raft::SnapshotStatus status);
  // Bookkeeping of the inbound message streams per peer; the last one
  // ending by the peer's doing is reported with OnConnectionLost.
  void InboundStreamOpened(uint64_t peer);
  void InboundStreamClosed(uint64_t peer, bool by_peer);
  bool IsPeer(uint64_t id) const;
  // Whether a connection's hello may be accepted.
  absl::Status CheckPeer(uint64_t cluster_id, uint64_t from, uint64_t to) const;
  void CountRefused();

  const PeerTransportOptions options_;
  raft::Logger* const logger_;
  ReceiverPtr receiver_;

  mutable absl::Mutex mu_;
  std::map<uint64_t, std::unique_ptr<Sender>> senders_ ABSL_GUARDED_BY(mu_);
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t inbound_closed_ ABSL_GUARDED_BY(mu_) = 0;
  // Inbound message connections open per peer (counted from their
  // accepted hello).
  std::map<uint64_t, int> inbound_streams_ ABSL_GUARDED_BY(mu_);

  // Reader-locked around every call into the handler.
  mutable absl::Mutex handler_mu_;
  TransportHandler* handler_ ABSL_GUARDED_BY(handler_mu_) = nullptr;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_PEER_TRANSPORT_H_
