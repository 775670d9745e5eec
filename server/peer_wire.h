// What both ends of the peer transport share: the connection preamble, the
// limits of control frames, the hello exchange, and a poll-able wake-up.
// Internal to server/peer_transport*.cc.
//
// Thread safety: Wakeup is thread-safe; the functions keep no state.
#ifndef ARBITER_SERVER_PEER_WIRE_H_
#define ARBITER_SERVER_PEER_WIRE_H_

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/peer.pb.h"
#include "raft/logger.h"
#include "raft/types.h"
#include "server/net.h"
#include "server/peer_transport.h"

namespace arbiter::server::peer_wire {

inline constexpr char kMagic[8] = {'A', 'R', 'B', 'P', 'E', 'E', 'R', '1'};
// A hello or a status is a few dozen bytes.
inline constexpr size_t kMaxControlFrame = 4096;
// A snapshot connection's reads and writes must make progress this often.
inline constexpr absl::Duration kSnapshotIoTimeout = absl::Seconds(30);

inline void Log(raft::Logger* logger, raft::LogLevel level, const std::string& msg) {
  if (logger->Enabled(level)) logger->Log(level, msg);
}

// Messages a follower passes on to the leader it knows with their
// proposer's id kept (raft_follower.cc), so they may come from another
// member than the sender when a stale follower forwards to a follower that
// forwards again. Everything else is written by the sender itself.
inline bool IsForwarded(raft::MessageType t) {
  return t == raftpb::MSG_PROP || t == raftpb::MSG_READ_INDEX || t == raftpb::MSG_TRANSFER_LEADER;
}

// A level-triggered wake-up a thread can poll on.
class Wakeup {
 public:
  Wakeup() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Wakeup() {
    if (fd_ >= 0) close(fd_);
  }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  void Signal() {
    const uint64_t one = 1;
    (void)!write(fd_, &one, sizeof(one));
  }
  void Drain() {
    uint64_t v;
    (void)!read(fd_, &v, sizeof(v));
  }
  int fd() const { return fd_; }

 private:
  const int fd_;
};

inline peerpb::PeerStatus ToProto(const absl::Status& s) {
  peerpb::PeerStatus p;
  p.set_code(static_cast<int32_t>(s.code()));
  p.set_message(std::string(s.message()));
  return p;
}

inline absl::Status FromProto(const peerpb::PeerStatus& p) {
  return absl::Status(static_cast<absl::StatusCode>(p.code()), p.message());
}

// Writes the magic and the hello on a freshly dialed connection and reads
// the answer. Blocking, bounded by timeout.
inline absl::Status Introduce(int fd, const PeerTransportOptions& o, uint64_t peer,
                              peerpb::PeerHello::Kind kind, absl::Duration timeout) {
  SetIoTimeout(fd, timeout);
  peerpb::PeerHello hello;
  hello.set_cluster_id(o.cluster_id);
  hello.set_from(o.local_id);
  hello.set_to(peer);
  hello.set_kind(kind);
  std::string out(kMagic, sizeof(kMagic));
  AppendFrame(hello, &out);
  if (absl::Status s = WriteAll(fd, out.data(), out.size()); !s.ok()) return s;
  peerpb::PeerStatus answer;
  if (absl::Status s = ReadFrame(fd, kMaxControlFrame, &answer); !s.ok()) return s;
  return FromProto(answer);
}

}  // namespace arbiter::server::peer_wire

#endif  // ARBITER_SERVER_PEER_WIRE_H_
