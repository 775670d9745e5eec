#include "server/peer_transport.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/peer.pb.h"
#include "server/net.h"
#include "server/peer_wire.h"
#include "server/thread_name.h"

namespace arbiter::server {
using peer_wire::FromProto;
using peer_wire::Introduce;
using peer_wire::kMaxControlFrame;
using peer_wire::kSnapshotIoTimeout;
using peer_wire::Log;
using peer_wire::Wakeup;

// ---------------------------------------------------------------------------
// Sender: the connection, queue and threads for one peer.
// ---------------------------------------------------------------------------

class PeerTransport::Sender {
 public:
  Sender(PeerTransport* t, uint64_t peer, std::string address)
      : t_(t), o_(t->options_), peer_(peer), address_(std::move(address)) {
    stream_thread_ = std::thread([this] {
      SetThreadName("peer-send");
      RunStream();
    });
    snap_thread_ = std::thread([this] {
      SetThreadName("peer-snapshot");
      RunSnapshots();
    });
  }

  ~Sender() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
      if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
      if (dialing_fd_ >= 0) shutdown(dialing_fd_, SHUT_RDWR);
      if (snap_fd_ >= 0) shutdown(snap_fd_, SHUT_RDWR);
    }
    wake_.Signal();
    snap_wake_.Signal();
    stream_thread_.join();
    snap_thread_.join();
    // What is left was never sent.
    if (pending_msgs_ > 0) t_->ReportUnreachable(peer_);
    for (size_t i = 0; i < snaps_.size(); ++i) {
      t_->ReportUnreachable(peer_);
      t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFailure);
    }
  }

  void SetAddress(const std::string& address) {
    absl::MutexLock l(&mu_);
    if (address == address_) return;
    address_ = address;
    // The stream thread sees the connection break and dials the new one.
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  }

  void EnqueueSnapshot(raft::Message m) {
    absl::MutexLock l(&mu_);
    if (!snaps_.empty()) {
      // Raft sends at most one snapshot per follower at a time; a newer
      // one supersedes the queued one, which counts as failed.
      t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFailure);
      snaps_.clear();
    }
    snaps_.push_back(std::move(m));
  }

  // Called from the member's loop thread (through Send): writes msgs now
  // if the connection is up and idle, else queues them.
  void SendBatch(std::vector<raft::Message> msgs) {
    std::vector<Frame> frames = Encode(&msgs);
    absl::MutexLock l(&mu_);
    if (stop_) return;
    // Limits apply to what was queued before: one call's frames always go
    // when nothing is queued, however large, so a follower far behind gets
    // its entries even when one Ready carries more than max_queue_bytes.
    const bool was_empty = pending_.empty();
    for (Frame& f : frames) {
      if (!was_empty && (pending_msgs_ + f.msgs > o_.max_queue ||
                         pending_bytes_ + f.bytes.size() > o_.max_queue_bytes)) {
        // The rest is dropped with it, so what arrives stays in order.
        ++dropped_;
        t_->ReportUnreachable(peer_);
        return;
      }
      Write(std::move(f));
    }
  }

 private:
  // Sleeps for backoff unless stopped first. False on stop.
  bool Backoff(absl::Duration d) {
    absl::MutexLock l(&mu_);
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    return !mu_.AwaitWithTimeout(absl::Condition(&stopped), d);
  }

  // One MessageBatch, framed, and how many messages it holds.
  struct Frame {
    std::string bytes;
    size_t msgs = 0;
  };

  // Frames msgs (moved from) in order, about o_.batch_bytes each.
  std::vector<Frame> Encode(std::vector<raft::Message>* msgs) const {
    std::vector<Frame> out;
    peerpb::MessageBatch batch;
    batch.mutable_messages()->Reserve(static_cast<int>(msgs->size()));
    size_t bytes = 0;
    auto flush = [&] {
      Frame& f = out.emplace_back();
      f.msgs = static_cast<size_t>(batch.messages_size());
      AppendFrame(batch, &f.bytes);
      batch.Clear();
      bytes = 0;
    };
    for (raft::Message& m : *msgs) {
      // Sizing costs a walk of the message; one message needs none.
      const size_t size = msgs->size() > 1 ? m.ByteSizeLong() : 0;
      if (batch.messages_size() > 0 && bytes + size > o_.batch_bytes) flush();
      batch.add_messages()->Swap(&m);
      bytes += size;
    }
    if (batch.messages_size() > 0) flush();
    return out;
  }

  // Writes f to the socket now if it is connected and nothing is queued
  // ahead; queues what is not written. A socket that broke is left to the
  // stream thread, which hears it too and drops the queue.
  void Write(Frame f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t written = 0;
    if (fd_ >= 0 && pending_.empty()) {
      const ssize_t n = send(fd_, f.bytes.data(), f.bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(f.bytes.size())) return;
      if (n > 0) written = static_cast<size_t>(n);
    }
    pending_off_ = pending_.empty() ? written : pending_off_;
    pending_bytes_ += f.bytes.size() - written;
    pending_msgs_ += f.msgs;
    pending_.push_back(std::move(f));
    if (fd_ >= 0) wake_.Signal();
  }

  // Writes as much of the queue as the socket takes. False if it broke.
  bool Flush(int fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    constexpr size_t kMaxIov = 64;
    iovec iov[kMaxIov];
    size_t k = 0;
    for (auto it = pending_.begin(); it != pending_.end() && k < kMaxIov; ++it, ++k) {
      const size_t skip = k == 0 ? pending_off_ : 0;
      iov[k].iov_base = it->bytes.data() + skip;
      iov[k].iov_len = it->bytes.size() - skip;
    }
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = k;
    const ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    // Retire the frames written whole; their messages are gone from the
    // queue's count as they go.
    size_t left = static_cast<size_t>(n);
    pending_bytes_ -= left;
    while (left > 0) {
      const size_t rest = pending_.front().bytes.size() - pending_off_;
      if (left < rest) {
        pending_off_ += left;
        break;
      }
      left -= rest;
      pending_msgs_ -= pending_.front().msgs;
      pending_.pop_front();
      pending_off_ = 0;
    }
    return true;
  }

  // Drops what is queued (it was meant for a connection that is gone).
  // True if anything was.
  bool DropPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool any = !pending_.empty();
    pending_.clear();
    pending_off_ = 0;
    pending_bytes_ = 0;
    pending_msgs_ = 0;
    return any;
  }

  // Dials the peer and introduces this member. Cancelled by a stop. The
  // socket is in *slot from the moment it is connected, where a stop finds
  // and shuts it down; on success it stays there for the caller to clear.
  absl::StatusOr<int> Dial(peerpb::PeerHello::Kind kind, Wakeup* cancel, int* slot) {
    // Drained before stop_ is read: a stop signalled after that read still
    // cancels the dial.
    cancel->Drain();
    std::string address;
    {
      absl::MutexLock l(&mu_);
      if (stop_) return absl::CancelledError("stopped");
      address = address_;
    }
    absl::StatusOr<int> fd = DialTcp(address, o_.connect_timeout, cancel->fd(),
                                     TcpLiveness{o_.keepalive_time, o_.peer_timeout});
    if (!fd.ok()) return fd.status();
    {
      absl::MutexLock l(&mu_);
      if (stop_) {
        close(*fd);
        return absl::CancelledError("stopped");
      }
      *slot = *fd;
    }
    absl::Status s = Introduce(*fd, o_, peer_, kind, o_.connect_timeout);
    absl::MutexLock l(&mu_);
    if (!s.ok() || stop_) {
      *slot = -1;
      close(*fd);
      return s.ok() ? absl::CancelledError("stopped") : s;
    }
    return fd;
  }

  void RunStream() {
    absl::Duration backoff = o_.min_backoff;
    absl::BitGen rng;
    bool logged_failure = false;
    while (true) {
      absl::StatusOr<int> fd = Dial(peerpb::PeerHello::STREAM, &wake_, &dialing_fd_);
      absl::Status failure;
      if (fd.ok()) {
        SetIoTimeout(*fd, absl::ZeroDuration());
        {
          absl::MutexLock l(&mu_);
          dialing_fd_ = -1;
          fd_ = *fd;
          if (!pending_.empty()) wake_.Signal();
        }
        backoff = o_.min_backoff;
        if (logged_failure) {
          Log(t_->logger_, raft::LogLevel::kInfo,
              absl::StrFormat("peer %x: connection to %x is up again", o_.local_id, peer_));
          logged_failure = false;
        }
        failure = Serve(*fd);
        {
          absl::MutexLock l(&mu_);
          fd_ = -1;
          DropPending();
        }
        close(*fd);
      } else {
        failure = fd.status();
        absl::MutexLock l(&mu_);
        DropPending();
      }
      {
        absl::MutexLock l(&mu_);
        if (stop_) return;
      }
      // Whatever was written lately may be lost with the connection.
      t_->ReportUnreachable(peer_);
      if (!logged_failure) {
        Log(t_->logger_, raft::LogLevel::kWarning,
            absl::StrFormat("peer %x: connection to %x failed: %s; retrying", o_.local_id, peer_,
                            failure.ToString()));
        logged_failure = true;
      }
      const double jitter = absl::Uniform(rng, 0.5, 1.0);
      if (!Backoff(backoff * jitter)) return;
      backoff = std::min(backoff * 2, o_.max_backoff);
    }
  }

  // Writes what SendBatch could not while the connection lasts; returns why
  // it ended. The peer writes nothing on a message connection unless it
  // refuses a batch (a PeerStatus, then it closes), so anything readable
  // means the end.
  absl::Status Serve(int fd) {
    while (true) {
      bool want_out;
      {
        absl::MutexLock l(&mu_);
        if (stop_) return absl::CancelledError("stopped");
        want_out = !pending_.empty();
      }
      pollfd p[2] = {{fd, static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0},
                     {wake_.fd(), POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
      }
      if ((p[1].revents & POLLIN) != 0) wake_.Drain();
      if ((p[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        peerpb::PeerStatus why;
        SetIoTimeout(fd, absl::Milliseconds(100));
        absl::Status s = ReadFrame(fd, kMaxControlFrame, &why);
        if (s.ok()) return FromProto(why);
        return s.code() == absl::StatusCode::kOutOfRange
                   ? absl::UnavailableError("the peer closed the connection")
                   : s;
      }
      if ((p[0].revents & POLLOUT) != 0) {
        absl::MutexLock l(&mu_);
        if (!Flush(fd))
          return absl::UnavailableError(absl::StrCat("write: ", std::strerror(errno)));
      }
    }
  }

  void RunSnapshots() {
    while (true) {
      raft::Message m;
      {
        absl::MutexLock l(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !snaps_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (stop_) return;
        m = std::move(snaps_.front());
        snaps_.pop_front();
      }
      absl::Status st = SendSnapshot(std::move(m));
      if (st.ok()) {
        t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFinish);
      } else {
        Log(t_->logger_, raft::LogLevel::kWarning,
            absl::StrFormat("peer %x: snapshot to %x failed: %s", o_.local_id, peer_,
                            st.ToString()));
        t_->ReportUnreachable(peer_);
        t_->ReportSnapshot(peer_, raft::SnapshotStatus::kFailure);
      }
    }
  }

  absl::Status SendSnapshot(raft::Message m) {
    // snap_fd_ holds the socket from its connect on, so a stop interrupts
    // the transfer at any point.
    absl::StatusOr<int> fd = Dial(peerpb::PeerHello::SNAPSHOT, &snap_wake_, &snap_fd_);
    if (!fd.ok()) return fd.status();
    absl::Status s = WriteSnapshot(*fd, std::move(m));
    {
      absl::MutexLock l(&mu_);
      snap_fd_ = -1;
    }
    close(*fd);
    return s;
  }

  absl::Status WriteSnapshot(int fd, raft::Message m) {
    SetIoTimeout(fd, kSnapshotIoTimeout);
    std::string data = std::move(*m.mutable_snapshot()->mutable_data());
    m.mutable_snapshot()->clear_data();
    size_t off = 0;
    bool first = true;
    while (first || off < data.size()) {
      peerpb::SnapshotChunk chunk;
      if (first) {
        *chunk.mutable_message() = m;
        chunk.set_total_size(data.size());
        first = false;
      }
      const size_t n = std::min(o_.snapshot_chunk_bytes, data.size() - off);
      chunk.set_data(data.substr(off, n));
      off += n;
      if (absl::Status s = WriteFrame(fd, chunk); !s.ok()) return s;
    }
    peerpb::PeerStatus answer;
    if (absl::Status s = ReadFrame(fd, kMaxControlFrame, &answer); !s.ok()) return s;
    return FromProto(answer);
  }

  PeerTransport* const t_;
  const PeerTransportOptions& o_;
  const uint64_t peer_;
  Wakeup wake_;       // the stream thread: queued bytes, a stop
  Wakeup snap_wake_;  // the snapshot thread's dial: a stop

  absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);
  // The connected message socket, -1 while there is none. Only the stream
  // thread closes it, after setting this to -1.
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  int dialing_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int snap_fd_ ABSL_GUARDED_BY(mu_) = -1;
  // Frames not yet written whole (the first from pending_off_ on), the
  // bytes left to write and the messages they hold.
  std::deque<Frame> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_off_ ABSL_GUARDED_BY(mu_) = 0;
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t pending_msgs_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<raft::Message> snaps_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread stream_thread_;
  std::thread snap_thread_;
};

// ---------------------------------------------------------------------------
// PeerTransport
// ---------------------------------------------------------------------------

PeerTransport::PeerTransport(const PeerTransportOptions& options)
    : options_(options),
      logger_(options.logger != nullptr ? options.logger
                                        : raft::StderrLogger(raft::LogLevel::kWarning)),
      receiver_(NewReceiver(this)) {}

PeerTransport::~PeerTransport() {
  StopListening();
  std::map<uint64_t, std::unique_ptr<Sender>> senders;
  {
    absl::MutexLock l(&mu_);
    senders.swap(senders_);
  }
  senders.clear();
}

void PeerTransport::AddPeer(uint64_t id, const std::string& address) {
  if (id == options_.local_id) return;
  absl::MutexLock l(&mu_);
  auto it = senders_.find(id);
  if (it != senders_.end()) {
    it->second->SetAddress(address);
    return;
  }
  senders_[id] = std::make_unique<Sender>(this, id, address);
}

void PeerTransport::RemovePeer(uint64_t id) {
  std::unique_ptr<Sender> s;
  {
    absl::MutexLock l(&mu_);
    auto it = senders_.find(id);
    if (it == senders_.end()) return;
    s = std::move(it->second);
    senders_.erase(it);
  }
  // Joined outside mu_: its threads may report through the handler.
}

std::vector<uint64_t> PeerTransport::Peers() const {
  absl::MutexLock l(&mu_);
  std::vector<uint64_t> out;
  for (const auto& [id, s] : senders_) out.push_back(id);
  return out;
}

bool PeerTransport::IsPeer(uint64_t id) const {
  absl::MutexLock l(&mu_);
  return senders_.count(id) > 0;
}

absl::Status PeerTransport::CheckPeer(uint64_t cluster_id, uint64_t from, uint64_t to) const {
  if (cluster_id != options_.cluster_id) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cluster ID mismatch: this member is in cluster %x, the sender in %x",
                        options_.cluster_id, cluster_id));
  }
  if (to != options_.local_id) {
    return absl::FailedPreconditionError(
        absl::StrFormat("messages for member %x reached member %x", to, options_.local_id));
  }
  if (!IsPeer(from)) {
    return absl::PermissionDeniedError(
        absl::StrFormat("member %x is not a member of cluster %x", from, options_.cluster_id));
  }
  return absl::OkStatus();
}

void PeerTransport::Attach(TransportHandler* handler) {
  absl::WriterMutexLock l(&handler_mu_);
  handler_ = handler;
}

void PeerTransport::Detach() {
  absl::WriterMutexLock l(&handler_mu_);
  handler_ = nullptr;
}

void PeerTransport::Send(std::vector<raft::Message> msgs) {
  // One batch per peer, in send order.
  std::map<uint64_t, std::vector<raft::Message>> by_peer;
  absl::MutexLock l(&mu_);
  for (raft::Message& m : msgs) {
    auto it = senders_.find(m.to());
    if (it == senders_.end()) {
      // Not a peer (yet): nobody to send to.
      ReportUnreachable(m.to());
      if (m.type() == raftpb::MSG_SNAP) ReportSnapshot(m.to(), raft::SnapshotStatus::kFailure);
      continue;
    }
    if (m.type() == raftpb::MSG_SNAP) {
      it->second->EnqueueSnapshot(std::move(m));
    } else {
      by_peer[m.to()].push_back(std::move(m));
    }
  }
  for (auto& [peer, batch] : by_peer) senders_[peer]->SendBatch(std::move(batch));
}

uint64_t PeerTransport::inbound_streams_closed() const {
  absl::MutexLock l(&mu_);
  return inbound_closed_;
}

uint64_t PeerTransport::refused_batches() const {
  absl::MutexLock l(&mu_);
  return refused_;
}

void PeerTransport::CountRefused() {
  absl::MutexLock l(&mu_);
  ++refused_;
}

void PeerTransport::Deliver(std::vector<raft::Message> msgs) {
  absl::ReaderMutexLock l(&handler_mu_);
  if (handler_ != nullptr) handler_->OnMessages(std::move(msgs));
}

void PeerTransport::ReportUnreachable(uint64_t peer) {
  absl::ReaderMutexLock l(&handler_mu_);
  if (handler_ != nullptr) handler_->OnUnreachable(peer);
}

void PeerTransport::InboundStreamOpened(uint64_t peer) {
  absl::MutexLock l(&mu_);
  ++inbound_streams_[peer];
}

void PeerTransport::InboundStreamClosed(uint64_t peer, bool by_peer) {
  {
    absl::MutexLock l(&mu_);
    auto it = inbound_streams_.find(peer);
    if (it == inbound_streams_.end()) return;
    if (--it->second > 0) {
      ++inbound_closed_;
      // The peer already reconnected (a new connection overlapping the
      // old): it is still there.
      return;
    }
    inbound_streams_.erase(it);
    if (!by_peer || senders_.count(peer) == 0) {
      ++inbound_closed_;
      return;
    }
  }
  Log(logger_, raft::LogLevel::kInfo,
      absl::StrFormat("peer %x: connection from %x closed", options_.local_id, peer));
  {
    absl::ReaderMutexLock l(&handler_mu_);
    if (handler_ != nullptr) handler_->OnConnectionLost(peer);
  }
  absl::MutexLock l(&mu_);
  ++inbound_closed_;
}

void PeerTransport::ReportSnapshot(uint64_t peer, raft::SnapshotStatus status) {
  absl::ReaderMutexLock l(&handler_mu_);
  if (handler_ != nullptr) handler_->OnSnapshotStatus(peer, status);
}

}  // namespace arbiter::server
