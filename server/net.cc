#include "server/net.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace arbiter::server {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Splits "host:port" or "[v6]:port".
absl::Status SplitHostPort(const std::string& hp, std::string* host, std::string* port) {
  const size_t colon = hp.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address ", hp, " has no port"));
  }
  *host = hp.substr(0, colon);
  *port = hp.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  int p = 0;
  if (!absl::SimpleAtoi(*port, &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address ", hp, " has a bad port"));
  }
  return absl::OkStatus();
}

struct AddrInfo {
  addrinfo* list = nullptr;
  ~AddrInfo() {
    if (list != nullptr) freeaddrinfo(list);
  }
};

absl::Status Resolve(const std::string& hp, bool passive, AddrInfo* out) {
  std::string host, port;
  if (absl::Status s = SplitHostPort(hp, &host, &port); !s.ok()) return s;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const int rc =
      getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &out->list);
  if (rc != 0 || out->list == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", hp, ": ", gai_strerror(rc)));
  }
  return absl::OkStatus();
}

void Configure(int fd, const TcpLiveness& liveness) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (liveness.dead_after > absl::ZeroDuration()) {
    const unsigned int ms = static_cast<unsigned int>(
        std::max<int64_t>(1, absl::ToInt64Milliseconds(liveness.dead_after)));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
  }
  const absl::Duration idle = liveness.keepalive_idle;
  if (idle <= absl::ZeroDuration()) return;
  const int secs = std::max<int>(1, static_cast<int>(absl::ToInt64Seconds(idle)));
  const int count = 3;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof(secs));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

}  // namespace

absl::StatusOr<int> ListenTcp(const std::string& host_port, int* bound_port) {
  AddrInfo ai;
  if (absl::Status s = Resolve(host_port, /*passive=*/true, &ai); !s.ok()) return s;
  absl::Status last = absl::UnavailableError(absl::StrCat("cannot listen on ", host_port));
  for (addrinfo* a = ai.list; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = Errno("socket");
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
      last = Errno(absl::StrCat("listen on ", host_port));
      close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return fd;
  }
  return last;
}

absl::StatusOr<int> DialTcp(const std::string& host_port, absl::Duration timeout, int cancel_fd,
                            const TcpLiveness& liveness) {
  AddrInfo ai;
  if (absl::Status s = Resolve(host_port, /*passive=*/false, &ai); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::UnavailableError(absl::StrCat("cannot connect to ", host_port));
  for (addrinfo* a = ai.list; a != nullptr; a = a->ai_next) {
    const int fd =
        socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last = Errno("socket");
      continue;
    }
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      while (true) {
        pollfd p[2] = {{fd, POLLOUT, 0}, {cancel_fd, POLLIN, 0}};
        const int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
        rc = poll(p, cancel_fd >= 0 ? 2 : 1, static_cast<int>(ms));
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0) {
          errno = ETIMEDOUT;
          rc = -1;
        } else if (rc > 0 && cancel_fd >= 0 && (p[1].revents & POLLIN) != 0) {
          errno = ECANCELED;
          rc = -1;
        } else if (rc > 0) {
          int err = 0;
          socklen_t len = sizeof(err);
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          errno = err;
          rc = err == 0 ? 0 : -1;
        }
        break;
      }
    }
    if (rc != 0) {
      last = Errno(absl::StrCat("connect to ", host_port));
      close(fd);
      if (errno == ECANCELED) return last;
      continue;
    }
    Configure(fd, liveness);
    if (absl::Status s = SetNonBlocking(fd, false); !s.ok()) {
      close(fd);
      return s;
    }
    return fd;
  }
  return last;
}

void ConfigureAccepted(int fd, const TcpLiveness& liveness) { Configure(fd, liveness); }

void SetIoTimeout(int fd, absl::Duration timeout) {
  timeval tv{};
  if (timeout > absl::ZeroDuration()) tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

absl::Status SetNonBlocking(int fd, bool on) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0) return Errno("fcntl");
  const int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (want != flags && fcntl(fd, F_SETFL, want) != 0) return Errno("fcntl");
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status ReadFull(int fd, char* data, size_t size) {
  size_t got = 0;
  while (got < size) {
    const ssize_t n = recv(fd, data + got, size - got, 0);
    if (n == 0) {
      return got == 0 ? absl::OutOfRangeError("connection closed")
                      : absl::UnavailableError("connection closed mid-frame");
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read");
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

void AppendFrame(const google::protobuf::MessageLite& msg, std::string* out) {
  const size_t size = msg.ByteSizeLong();
  const size_t at = out->size();
  out->resize(at + 4 + size);
  auto* p = reinterpret_cast<unsigned char*>(out->data() + at);
  p[0] = static_cast<unsigned char>(size >> 24);
  p[1] = static_cast<unsigned char>(size >> 16);
  p[2] = static_cast<unsigned char>(size >> 8);
  p[3] = static_cast<unsigned char>(size);
  msg.SerializeWithCachedSizesToArray(p + 4);
}

absl::Status ReadFrame(int fd, size_t max_bytes, google::protobuf::MessageLite* msg) {
  char len[4];
  if (absl::Status s = ReadFull(fd, len, 4); !s.ok()) return s;
  const uint32_t size = FrameLength(len);
  if (size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame of ", size, " bytes is over the limit of ", max_bytes));
  }
  std::string body(size, '\0');
  if (absl::Status s = ReadFull(fd, body.data(), size); !s.ok()) {
    return s.code() == absl::StatusCode::kOutOfRange
               ? absl::UnavailableError("connection closed mid-frame")
               : s;
  }
  if (!msg->ParseFromString(body)) return absl::InvalidArgumentError("malformed frame");
  return absl::OkStatus();
}

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& msg) {
  std::string out;
  AppendFrame(msg, &out);
  return WriteAll(fd, out.data(), out.size());
}

}  // namespace arbiter::server
