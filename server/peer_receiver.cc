// The receiving half of PeerTransport: the peer ports, a thread per new
// connection for its hello (and for a snapshot's transfer), and the
// message connections, read without blocking by whoever calls ReadReady
// (see peer_transport.h for the contract).
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <map>
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
  explicit Receiver(PeerTransport* t) : t_(t), o_(t->options_), ep_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~Receiver() {
    Stop();
    if (ep_ >= 0) close(ep_);
  }

  // Polls readable when a stream has bytes (see Transport::ReadFd).
  int fd() const { return ep_; }

  absl::StatusOr<std::vector<int>> Listen(const std::vector<std::string>& host_ports) {
    if (ep_ < 0) return absl::InternalError(absl::StrCat("epoll: ", std::strerror(errno)));
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
    if (!o_.loop_reads) {
      read_thread_ = std::thread([this] {
        SetThreadName("peer-recv");
        ReadLoop();
      });
    }
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
    if (read_thread_.joinable()) read_thread_.join();
    for (int f : listen_fds_) close(f);
    listen_fds_.clear();
    std::list<std::unique_ptr<Conn>> conns;
    {
      absl::MutexLock l(&mu_);
      conns.swap(conns_);
    }
    for (auto& c : conns) {
      c->thread.join();
      if (c->fd >= 0) close(c->fd);
    }
    // The streams close without being reported lost: this member is the
    // one going away.
    absl::MutexLock l(&streams_mu_);
    for (auto& [fd, st] : streams_) {
      close(fd);
      t_->InboundStreamClosed(st.peer, /*by_peer=*/false);
    }
    streams_.clear();
  }

  // Reads every stream that has bytes, without blocking, and delivers
  // whole frames. Called by the member's loop (loop_reads) or the reader
  // thread.
  void ReadReady() {
    absl::MutexLock l(&streams_mu_);
    epoll_event ev[16];
    const int n = epoll_wait(ep_, ev, 16, 0);
    for (int i = 0; i < n; ++i) {
      auto it = streams_.find(ev[i].data.fd);
      if (it == streams_.end()) continue;
      bool by_peer = false;
      if (ReadStream(it->first, &it->second, &by_peer)) continue;
      // The end: the descriptor goes now (no other thread can hold it:
      // streams are only touched under streams_mu_).
      epoll_ctl(ep_, EPOLL_CTL_DEL, it->first, nullptr);
      close(it->first);
      const uint64_t peer = it->second.peer;
      streams_.erase(it);
      t_->InboundStreamClosed(peer, by_peer);
    }
  }

 private:
  struct Conn {
    int fd = -1;  // -1 once handed to the streams
    std::thread thread;
    bool done = false;
  };

  // A message connection after its hello: frames from buf[start, end).
  struct Stream {
    uint64_t peer = 0;
    std::string buf;
    size_t start = 0;
    size_t end = 0;
  };
  static constexpr size_t kBufBytes = 256 << 10;

  void ReadLoop() {
    pollfd p[2] = {{ep_, POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
    while (true) {
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        Log(t_->logger_, raft::LogLevel::kError,
            absl::StrCat("peer reader: poll: ", std::strerror(errno)));
        return;
      }
      if ((p[1].revents & POLLIN) != 0) return;  // stopping
      if ((p[0].revents & POLLIN) != 0) ReadReady();
    }
  }

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
        // Join the hello threads that ended (they exited already).
        for (auto it = conns_.begin(); it != conns_.end();) {
          if ((*it)->done) {
            (*it)->thread.join();
            if ((*it)->fd >= 0) close((*it)->fd);
            it = conns_.erase(it);
          } else {
            ++it;
          }
        }
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        Conn* raw = c.get();
        c->thread = std::thread([this, raw] {
          SetThreadName("peer-hello");
          if (!Serve(raw)) {
            // The peer hears the end now; the descriptor is closed when
            // the thread is joined, so Stop never shuts down a reused
            // number.
            shutdown(raw->fd, SHUT_RDWR);
          }
          absl::MutexLock l(&mu_);
          raw->done = true;
        });
        conns_.push_back(std::move(c));
      }
    }
  }

  void Refuse(int fd, const absl::Status& why) {
    t_->CountRefused();
    SetIoTimeout(fd, o_.connect_timeout);
    (void)WriteFrame(fd, ToProto(why));
  }

  // Answers a connection's hello; serves a snapshot connection to its end.
  // True if it was a message connection, now handed to the streams (and
  // c->fd is -1).
  bool Serve(Conn* c) {
    const int fd = c->fd;
    SetIoTimeout(fd, o_.connect_timeout);
    char magic[sizeof(kMagic)];
    if (!ReadFull(fd, magic, sizeof(magic)).ok()) return false;
    if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
      // Not a peer of this version (or not a peer at all): nothing to say
      // in a language it would understand.
      t_->CountRefused();
      return false;
    }
    peerpb::PeerHello hello;
    if (!ReadFrame(fd, kMaxControlFrame, &hello).ok()) return false;
    absl::Status s = t_->CheckPeer(hello.cluster_id(), hello.from(), hello.to());
    if (!s.ok()) {
      Refuse(fd, s);
      return false;
    }
    if (!WriteFrame(fd, ToProto(absl::OkStatus())).ok()) return false;
    if (hello.kind() == peerpb::PeerHello::SNAPSHOT) {
      ServeSnapshot(fd, hello);
      return false;
    }
    SetIoTimeout(fd, absl::ZeroDuration());
    if (!SetNonBlocking(fd, true).ok()) return false;
    absl::MutexLock l(&mu_);
    if (stopping_) return false;
    absl::MutexLock sl(&streams_mu_);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      Log(t_->logger_, raft::LogLevel::kError,
          absl::StrCat("peer listener: epoll_ctl: ", std::strerror(errno)));
      return false;
    }
    Stream& st = streams_[fd];
    st.peer = hello.from();
    st.buf.resize(kBufBytes);
    t_->InboundStreamOpened(st.peer);
    c->fd = -1;
    return true;
  }

  // Reads what fd has without blocking (a few reads at most, so that one
  // busy peer does not hold up the others) and delivers the whole frames,
  // all of one read in one call. False when the stream ended; *by_peer
  // then says whether the peer ended it.
  bool ReadStream(int fd, Stream* st, bool* by_peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_) {
    std::string& buf = st->buf;
    for (int reads = 0; reads < 4; ++reads) {
      // Make room: move the partial frame to the front, grow for a big one
      // (and give the memory back once it is through).
      if (st->start == st->end) {
        st->start = st->end = 0;
        if (buf.size() > kBufBytes) {
          buf.resize(kBufBytes);
          buf.shrink_to_fit();
        }
      } else if (st->end - st->start >= 4) {
        const size_t need = 4 + size_t{FrameLength(buf.data() + st->start)};
        if (need > buf.size() && need <= 4 + o_.max_frame_bytes) {
          std::memmove(buf.data(), buf.data() + st->start, st->end - st->start);
          st->end -= st->start;
          st->start = 0;
          buf.resize(need);
        }
      }
      if (st->end == buf.size()) {
        std::memmove(buf.data(), buf.data() + st->start, st->end - st->start);
        st->end -= st->start;
        st->start = 0;
      }
      const size_t room = buf.size() - st->end;
      const ssize_t n = recv(fd, buf.data() + st->end, room, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The peer closed the connection, or its kernel reset it (the
        // process is gone). A timeout (a partition, a host that is down)
        // says nothing of the peer.
        *by_peer = n == 0 || errno == ECONNRESET;
        return false;
      }
      st->end += static_cast<size_t>(n);
      std::vector<raft::Message> msgs;
      absl::Status bad;
      while (st->end - st->start >= 4) {
        const uint32_t len = FrameLength(buf.data() + st->start);
        if (len > o_.max_frame_bytes) {
          bad = absl::InvalidArgumentError(
              absl::StrCat("frame of ", len, " bytes is over the limit"));
          break;
        }
        if (st->end - st->start < 4 + size_t{len}) break;
        batch_.Clear();
        if (!batch_.ParseFromArray(buf.data() + st->start + 4, static_cast<int>(len))) {
          bad = absl::InvalidArgumentError("malformed message batch");
          break;
        }
        st->start += 4 + size_t{len};
        bad = Check(st->peer, &batch_, &msgs);
        if (!bad.ok()) break;
      }
      if (!msgs.empty()) t_->Deliver(std::move(msgs));
      if (!bad.ok()) {
        // Best effort on the non-blocking socket (the reason is a few dozen
        // bytes, and the socket's send side is otherwise unused).
        t_->CountRefused();
        std::string why;
        AppendFrame(ToProto(bad), &why);
        (void)!send(fd, why.data(), why.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        shutdown(fd, SHUT_WR);
        *by_peer = false;
        return false;
      }
      if (static_cast<size_t>(n) < room) return true;  // drained
    }
    return true;
  }

  // Moves batch's messages to *out if peer may send them.
  absl::Status Check(uint64_t peer, peerpb::MessageBatch* batch, std::vector<raft::Message>* out) {
    // A member removed since its hello is a stranger now.
    if (!t_->IsPeer(peer)) {
      return absl::PermissionDeniedError(
          absl::StrFormat("member %x is no longer a member of cluster %x", peer, o_.cluster_id));
    }
    for (raft::Message& m : *batch->mutable_messages()) {
      if (m.to() != o_.local_id || (m.from() != peer && !IsForwarded(m.type()))) {
        return absl::InvalidArgumentError("message addressed differently from its connection");
      }
    }
    for (raft::Message& m : *batch->mutable_messages()) out->push_back(std::move(m));
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

  std::thread read_thread_;  // unless o_.loop_reads
  const int ep_;             // the streams' epoll set

  // Lock order: mu_, then streams_mu_.
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::list<std::unique_ptr<Conn>> conns_ ABSL_GUARDED_BY(mu_);

  // Held while a stream is read, so that ReadReady runs on one thread at
  // a time and Stop waits for it.
  absl::Mutex streams_mu_;
  std::map<int, Stream> streams_ ABSL_GUARDED_BY(streams_mu_);
  peerpb::MessageBatch batch_ ABSL_GUARDED_BY(streams_mu_);  // reused
};

void PeerTransport::ReceiverDeleter::operator()(Receiver* r) const { delete r; }

PeerTransport::ReceiverPtr PeerTransport::NewReceiver(PeerTransport* t) {
  return ReceiverPtr(new Receiver(t));
}

absl::StatusOr<std::vector<int>> PeerTransport::Listen(const std::vector<std::string>& host_ports) {
  return receiver_->Listen(host_ports);
}

void PeerTransport::StopListening() { receiver_->Stop(); }

int PeerTransport::ReadFd() const { return options_.loop_reads ? receiver_->fd() : -1; }

void PeerTransport::ReadReady() { receiver_->ReadReady(); }

}  // namespace arbiter::server
