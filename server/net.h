// Small TCP helpers for the peer transport: listening, dialing with a
// deadline, and length-prefixed frames (a 4-byte big-endian length, then the
// body; proto/peer.proto describes what the bodies are).
//
// Thread safety: the functions keep no state; a file descriptor is the
// caller's to share or not.
#ifndef ARBITER_SERVER_NET_H_
#define ARBITER_SERVER_NET_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"

namespace arbiter::server {

// A listening socket on host_port ("host:port", "[v6]:port"; port 0 picks a
// free one). *bound_port receives the port it listens on.
absl::StatusOr<int> ListenTcp(const std::string& host_port, int* bound_port);

// How a connection notices that the other end is gone without being told:
// a host that is down or cut off sends no FIN and no RST.
struct TcpLiveness {
  // Keepalive probes after this long idle, then this often (0: none).
  absl::Duration keepalive_idle;
  // Written data (or a keepalive probe) left unacknowledged this long
  // breaks the connection with ETIMEDOUT (TCP_USER_TIMEOUT; 0: the
  // kernel's default, which retransmits for many minutes).
  absl::Duration dead_after;
};

// A connected socket to host_port, in blocking mode, with TCP_NODELAY and
// the given liveness checks. Fails after timeout, or at once if *cancel
// becomes readable (cancel_fd < 0: no cancellation). The name is resolved
// first, which no cancel interrupts (numeric addresses resolve at once).
absl::StatusOr<int> DialTcp(const std::string& host_port, absl::Duration timeout, int cancel_fd,
                            const TcpLiveness& liveness);

// Sets what DialTcp sets on an accepted socket.
void ConfigureAccepted(int fd, const TcpLiveness& liveness);

// Blocking reads and writes give up after this long (0: never).
void SetIoTimeout(int fd, absl::Duration timeout);
absl::Status SetNonBlocking(int fd, bool on);

// Writes all of data (blocking socket). EINTR is retried.
absl::Status WriteAll(int fd, const char* data, size_t size);
// Reads exactly size bytes (blocking socket). The connection ending first is
// an error (OutOfRange for an orderly close before the first byte).
absl::Status ReadFull(int fd, char* data, size_t size);

// Appends msg as one frame to *out.
void AppendFrame(const google::protobuf::MessageLite& msg, std::string* out);
// Reads one frame into *msg. A length above max_bytes is refused before
// anything is allocated for it.
absl::Status ReadFrame(int fd, size_t max_bytes, google::protobuf::MessageLite* msg);
absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& msg);

// Decodes the frame length at p (4 bytes).
inline uint32_t FrameLength(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_NET_H_
