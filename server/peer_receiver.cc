// The receiving half of PeerTransport: the peer ports, and one reader
// thread per inbound connection (see peer_transport.h for the contract).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/net.h"
#include "server/peer_transport.h"
#include "server/peer_wire.h"
#include "server/thread_name.h"

namespace arbiter::server {

using peer_wire::IsForwarded;
using peer_wire::kMagic;
using peer_wire::kMaxControlFrame;
using peer_wire::kSnapshotIoTimeout;
using peer_wire::Log;
using peer_wire::ToProto;
using peer_wire::Wakeup;

class PeerTransport::Receiver {
 public:
  explicit Receiver(PeerTransport* t) : t_(t), o_(t->options_) {}
  ~Receiver() { Stop(); }

  absl::StatusOr<std::vector<int>> Listen(const std::vector<std::string>& host_ports) {
    std::vector<int> ports;
    for (const std::string& hp : host_ports) {
      int port = 0;
      absl::StatusOr<int> fd = ListenTcp(hp, &port);
      if (!fd.ok()) {
        for (int f : listen_fds_) close(f);
        listen_fds_.clear();
        return fd.status();
      }
      listen_fds_.push_back(*fd);
      ports.push_back(port);
    }
    accept_thread_ = std::thread([this] {
      SetThreadName("peer-accept");
      AcceptLoop();
    });
    return ports;
  }

  void Stop() {
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      stopping_ = true;
      for (auto& c : conns_) shutdown(c->fd, SHUT_RDWR);
    }
    wake_.Signal();
    if (accept_thread_.joinable()) accept_thread_.join();
    for (int f : listen_fds_) close(f);
    listen_fds_.clear();
    std::list<std::unique_ptr<Conn>> conns;
    {
      absl::MutexLock l(&mu_);
      conns.swap(conns_);
    }
    for (auto& c : conns) {
      c->thread.join();
      close(c->fd);
    }
  }

 private:
  struct Conn {
    int fd = -1;
    std::thread thread;
    bool done = false;
  };

  void AcceptLoop() {
    std::vector<pollfd> p;
    for (int f : listen_fds_) p.push_back({f, POLLIN, 0});
    p.push_back({wake_.fd(), POLLIN, 0});
    while (true) {
      if (poll(p.data(), p.size(), -1) < 0) {
        if (errno == EINTR) continue;
        Log(t_->logger_, raft::LogLevel::kError,
            absl::StrCat("peer listener: poll: ", std::strerror(errno)));
        return;
      }
      if ((p.back().revents & POLLIN) != 0) return;  // stopping
      for (size_t i = 0; i + 1 < p.size(); ++i) {
        if ((p[i].revents & POLLIN) == 0) continue;
        const int fd = accept4(p[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            // The connection waits in the backlog, so the socket stays
            // readable: pause rather than spin until something is freed.
            Log(t_->logger_, raft::LogLevel::kWarning,
                absl::StrCat("peer listener: accept: ", std::strerror(errno)));
            pollfd w{wake_.fd(), POLLIN, 0};
            poll(&w, 1, 100);
          }
          continue;  // or the dialer gave up already
        }
        ConfigureAccepted(fd, TcpLiveness{o_.keepalive_time, o_.peer_timeout});
        std::list<std::unique_ptr<Conn>> finished;
        absl::MutexLock l(&mu_);
        if (stopping_) {
          close(fd);
          return;
        }
        // Join the readers of connections that ended (they exited already).
        for (auto it = conns_.begin(); it != conns_.end();) {
          if ((*it)->done) {
            (*it)->thread.join();
            close((*it)->fd);
            it = conns_.erase(it);
          } else {
            ++it;
          }
        }
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        Conn* raw = c.get();
        c->thread = std::thread([this, raw] {
          SetThreadName("peer-recv");
          Serve(raw->fd);
          // The peer hears the end now; the descriptor is closed when the
          // thread is joined, so Stop never shuts down a reused number.
          shutdown(raw->fd, SHUT_RDWR);
          absl::MutexLock l(&mu_);
          raw->done = true;
        });
        conns_.push_back(std::move(c));
      }
    }
  }

  bool Stopping() {
    absl::MutexLock l(&mu_);
    return stopping_;
  }

  void Refuse(int fd, const absl::Status& why) {
    t_->CountRefused();
    SetIoTimeout(fd, o_.connect_timeout);
    (void)WriteFrame(fd, ToProto(why));
  }

  void Serve(int fd) {
    SetIoTimeout(fd, o_.connect_timeout);
    char magic[sizeof(kMagic)];
    if (!ReadFull(fd, magic, sizeof(magic)).ok()) return;
    if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
      // Not a peer of this version (or not a peer at all): nothing to say
      // in a language it would understand.
      t_->CountRefused();
      return;
    }
    peerpb::PeerHello hello;
    if (!ReadFrame(fd, kMaxControlFrame, &hello).ok()) return;
    absl::Status s = t_->CheckPeer(hello.cluster_id(), hello.from(), hello.to());
    if (!s.ok()) {
      Refuse(fd, s);
      return;
    }
    if (!WriteFrame(fd, ToProto(absl::OkStatus())).ok()) return;
    if (hello.kind() == peerpb::PeerHello::SNAPSHOT) {
      ServeSnapshot(fd, hello);
      return;
    }
    SetIoTimeout(fd, absl::ZeroDuration());
    ServeStream(fd, hello.from());
  }

  void ServeStream(int fd, uint64_t peer) {
    t_->InboundStreamOpened(peer);
    bool by_peer = true;
    // Frames from buf[start, end); read in large pieces so a burst of small
    // batches costs one system call.
    constexpr size_t kBufBytes = 256 << 10;
    std::string buf(kBufBytes, '\0');
    size_t start = 0, end = 0;
    peerpb::MessageBatch batch;
    while (true) {
      // Make room: move the partial frame to the front, grow for a big one
      // (and give the memory back once it is through).
      if (start == end) {
        start = end = 0;
        if (buf.size() > kBufBytes) {
          buf.resize(kBufBytes);
          buf.shrink_to_fit();
        }
      } else if (end - start >= 4) {
        const size_t need = 4 + size_t{FrameLength(buf.data() + start)};
        if (need > buf.size()) {
          std::memmove(buf.data(), buf.data() + start, end - start);
          end -= start;
          start = 0;
          buf.resize(need);
        }
      }
      if (end == buf.size()) {
        std::memmove(buf.data(), buf.data() + start, end - start);
        end -= start;
        start = 0;
      }
      const ssize_t n = recv(fd, buf.data() + end, buf.size() - end, 0);
      if (n == 0 || (n < 0 && errno != EINTR)) {
        // The peer closed the connection, or its kernel reset it (the
        // process is gone). A timeout (a partition, a host that is down)
        // says nothing of the peer, nor does this member's own stop.
        const bool closed = n == 0 || errno == ECONNRESET;
        by_peer = closed && !Stopping();
        break;
      }
      if (n < 0) continue;
      end += static_cast<size_t>(n);
      absl::Status bad;
      while (end - start >= 4) {
        const uint32_t len = FrameLength(buf.data() + start);
        if (len > o_.max_frame_bytes) {
          bad = absl::InvalidArgumentError(
              absl::StrCat("frame of ", len, " bytes is over the limit"));
          break;
        }
        if (end - start < 4 + size_t{len}) break;
        batch.Clear();
        if (!batch.ParseFromArray(buf.data() + start + 4, static_cast<int>(len))) {
          bad = absl::InvalidArgumentError("malformed message batch");
          break;
        }
        start += 4 + size_t{len};
        bad = Deliver(peer, &batch);
        if (!bad.ok()) break;
      }
      if (!bad.ok()) {
        Refuse(fd, bad);
        by_peer = false;
        break;
      }
    }
    t_->InboundStreamClosed(peer, by_peer);
  }

  absl::Status Deliver(uint64_t peer, peerpb::MessageBatch* batch) {
    // A member removed since its hello is a stranger now.
    if (!t_->IsPeer(peer)) {
      return absl::PermissionDeniedError(
          absl::StrFormat("member %x is no longer a member of cluster %x", peer, o_.cluster_id));
    }
    std::vector<raft::Message> msgs;
    msgs.reserve(batch->messages_size());
    for (raft::Message& m : *batch->mutable_messages()) {
      if (m.to() != o_.local_id || (m.from() != peer && !IsForwarded(m.type()))) {
        return absl::InvalidArgumentError("message addressed differently from its connection");
      }
      msgs.push_back(std::move(m));
    }
    t_->Deliver(std::move(msgs));
    return absl::OkStatus();
  }

  void ServeSnapshot(int fd, const peerpb::PeerHello& hello) {
    SetIoTimeout(fd, kSnapshotIoTimeout);
    absl::Status s = ReceiveSnapshot(fd, hello);
    (void)WriteFrame(fd, ToProto(s));
  }

  absl::Status ReceiveSnapshot(int fd, const peerpb::PeerHello& hello) {
    peerpb::SnapshotChunk chunk;
    if (absl::Status s = ReadFrame(fd, o_.max_frame_bytes, &chunk); !s.ok()) return s;
    raft::Message m = std::move(*chunk.mutable_message());
    const uint64_t total = chunk.total_size();
    if (m.type() != raftpb::MSG_SNAP || m.from() != hello.from() || m.to() != hello.to()) {
      return absl::InvalidArgumentError("first chunk is not a MsgSnap");
    }
    if (total > o_.max_snapshot_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("snapshot of ", total, " bytes is over the limit"));
    }
    std::string data;
    data.reserve(total);
    while (true) {
      if (data.size() + chunk.data().size() > total) {
        return absl::InvalidArgumentError("snapshot longer than announced");
      }
      data.append(chunk.data());
      if (data.size() == total) break;
      if (absl::Status s = ReadFrame(fd, o_.max_frame_bytes, &chunk); !s.ok()) return s;
    }
    *m.mutable_snapshot()->mutable_data() = std::move(data);
    std::vector<raft::Message> msgs;
    msgs.push_back(std::move(m));
    t_->Deliver(std::move(msgs));
    return absl::OkStatus();
  }

  PeerTransport* const t_;
  const PeerTransportOptions& o_;
  Wakeup wake_;
  // Written by Listen and Stop only.
  std::vector<int> listen_fds_;
  std::thread accept_thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::list<std::unique_ptr<Conn>> conns_ ABSL_GUARDED_BY(mu_);
};

void PeerTransport::ReceiverDeleter::operator()(Receiver* r) const { delete r; }

PeerTransport::ReceiverPtr PeerTransport::NewReceiver(PeerTransport* t) {
  return ReceiverPtr(new Receiver(t));
}

absl::StatusOr<std::vector<int>> PeerTransport::Listen(const std::vector<std::string>& host_ports) {
  return receiver_->Listen(host_ports);
}

void PeerTransport::StopListening() { receiver_->Stop(); }

}  // namespace arbiter::server
