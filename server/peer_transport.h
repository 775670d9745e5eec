// The member-to-member transport over gRPC (proto/peer.proto): how the
// members of a real cluster exchange Raft messages on their peer ports.
//
// Sending: one sender per remote member, each with its own bounded queue and
// its own thread, so a slow or dead peer never stalls the others. A sender
// keeps one long-lived client stream (RaftPeer.Stream) open and writes
// everything queued since its last write as one MessageBatch (batches are
// cut at max_batch_bytes). When the stream breaks it reports the messages it
// lost with OnUnreachable, then reconnects with exponential backoff
// (min_backoff doubling up to max_backoff, jittered); messages queued while
// the queue is full are dropped and reported the same way. Raft retries.
// A MsgSnap goes on a separate RaftPeer.Snapshot call, cut into chunks of
// snapshot_chunk_bytes, on its own thread (one snapshot at a time per peer),
// so a large snapshot never delays heartbeats; its outcome is always
// reported with OnSnapshotStatus.
//
// Receiving: service() is the RaftPeer service to register on the member's
// peer gRPC server. It accepts a batch only if it names this cluster, this
// member, and a sender that is a known peer; anything else is refused with
// FAILED_PRECONDITION (another cluster) or PERMISSION_DENIED (unknown
// member) and never reaches Raft. Snapshot chunks are reassembled up to
// max_snapshot_bytes before the whole MsgSnap is handed over.
//
// Connection loss: a peer's messages arrive on the stream its sender keeps
// open. When the last such stream from a peer ends from the peer's side
// (its process exited and the kernel closed its sockets, or it stopped its
// sender), the handler hears OnConnectionLost(peer), after every message
// that arrived on it; a follower whose leader that is can then campaign
// without waiting out an election timeout. A peer that only stops talking
// (paused, partitioned) closes nothing and is not reported; neither is a
// stream this member refuses, nor one replaced by a newer stream already
// open (a reconnect).
//
// Thread safety: every public method is thread-safe. Send is non-blocking.
// The handler (the member) is called from gRPC threads and sender threads
// under a reader lock, sometimes with transport locks held (hence the
// TransportHandler rule: non-blocking, leaf locks only); Detach waits for
// calls in progress, so after it returns the handler may be destroyed.
#ifndef ARBITER_SERVER_PEER_TRANSPORT_H_
#define ARBITER_SERVER_PEER_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "raft/logger.h"
#include "server/transport.h"

namespace arbiter::server {

struct PeerTransportOptions {
  uint64_t cluster_id = 0;
  uint64_t local_id = 0;
  // Messages queued per peer before new ones are dropped.
  size_t max_queue = 4096;
  // A stream write carries at most about this many bytes of messages.
  size_t max_batch_bytes = 4 << 20;
  size_t snapshot_chunk_bytes = 1 << 20;
  // Largest snapshot accepted from a peer.
  uint64_t max_snapshot_bytes = uint64_t{8} << 30;
  absl::Duration min_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(1);
  // HTTP/2 keepalive pings on peer connections, so a peer that hangs (a
  // paused process, a dead link) is noticed without waiting for TCP.
  absl::Duration keepalive_time = absl::Seconds(1);
  absl::Duration keepalive_timeout = absl::Seconds(3);
  // Not owned; nullptr logs warnings and errors to stderr.
  raft::Logger* logger = nullptr;
};

// The channel arguments a peer server needs: large messages, and pings as
// often as peers send them.
grpc::ChannelArguments PeerChannelArguments(const PeerTransportOptions& options);
void ConfigurePeerServer(const PeerTransportOptions& options, grpc::ServerBuilder* builder);

class PeerTransport final : public Transport {
 public:
  explicit PeerTransport(const PeerTransportOptions& options);
  // Stops every sender and fails whatever is queued.
  // REQUIRES: the peer gRPC server serving service() was shut down.
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

  // The RaftPeer service for the peer gRPC server. Owned by the transport.
  grpc::Service* service();

  // Counters, for tests and status output.
  uint64_t refused_batches() const;

 private:
  class Sender;
  class Service;

  void Deliver(std::vector<raft::Message> msgs);
  void ReportUnreachable(uint64_t peer);
  void ReportSnapshot(uint64_t peer, raft::SnapshotStatus status);
  // Bookkeeping of the inbound message streams per peer; the last one
  // ending by the peer's doing is reported with OnConnectionLost.
  void InboundStreamOpened(uint64_t peer);
  void InboundStreamClosed(uint64_t peer, bool by_peer);
  bool IsPeer(uint64_t id) const;
  void CountRefused();

  const PeerTransportOptions options_;
  raft::Logger* const logger_;
  std::unique_ptr<Service> service_;

  mutable absl::Mutex mu_;
  std::map<uint64_t, std::unique_ptr<Sender>> senders_ ABSL_GUARDED_BY(mu_);
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  // Inbound RaftPeer.Stream calls in progress per peer (counted from their
  // first accepted batch).
  std::map<uint64_t, int> inbound_streams_ ABSL_GUARDED_BY(mu_);

  // Reader-locked around every call into the handler.
  mutable absl::Mutex handler_mu_;
  TransportHandler* handler_ ABSL_GUARDED_BY(handler_mu_) = nullptr;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_PEER_TRANSPORT_H_
