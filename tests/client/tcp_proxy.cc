#include "tests/client/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace arbiter::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool WriteAll(int fd, const char* data, ssize_t size) {
  while (size > 0) {
    // No SIGPIPE when the other side is gone: the connection just ends.
    const ssize_t n = send(fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= n;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(const std::string& target) {
  int target_port = 0;
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(target.substr(colon + 1), &target_port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad target ", target));
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("cannot listen on 127.0.0.1");
  }
  return std::unique_ptr<TcpProxy>(new TcpProxy(fd, ntohs(addr.sin_port), target_port));
}

TcpProxy::TcpProxy(int listen_fd, int port, int target_port)
    : listen_fd_(listen_fd), port_(port), target_port_(target_port) {
  thread_ = std::thread([this] { Loop(); });
}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  for (auto [a, b] : pairs_) {
    close(a);
    close(b);
  }
  close(listen_fd_);
}

std::string TcpProxy::endpoint() const { return absl::StrCat("127.0.0.1:", port_); }

void TcpProxy::Cut() {
  absl::MutexLock lock(&mu_);
  cut_ = true;
  // The loop sees both ends readable at end-of-file and closes them.
  for (auto [a, b] : pairs_) {
    shutdown(a, SHUT_RDWR);
    shutdown(b, SHUT_RDWR);
  }
}

void TcpProxy::Freeze() {
  absl::MutexLock lock(&mu_);
  frozen_ = true;
}

void TcpProxy::Resume() {
  absl::MutexLock lock(&mu_);
  cut_ = false;
  frozen_ = false;
}

void TcpProxy::Loop() {
  char buffer[64 * 1024];
  for (;;) {
    std::vector<std::pair<int, int>> pairs;
    bool frozen = false;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      frozen = frozen_;
      if (!frozen) pairs = pairs_;
    }
    // Frozen: nothing is read, accepted or forwarded.
    std::vector<pollfd> fds = {{listen_fd_, static_cast<short>(frozen ? 0 : POLLIN), 0}};
    for (auto [a, b] : pairs) {
      fds.push_back({a, POLLIN, 0});
      fds.push_back({b, POLLIN, 0});
    }
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      const int client = accept(listen_fd_, nullptr, nullptr);
      if (client >= 0) {
        absl::MutexLock lock(&mu_);
        const int upstream = cut_ ? -1 : socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr = Loopback(target_port_);
        if (upstream < 0 ||
            connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
          if (upstream >= 0) close(upstream);
          close(client);
        } else {
          const int one = 1;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          pairs_.emplace_back(client, upstream);
        }
      }
    }
    for (size_t i = 0; i < pairs.size(); ++i) {
      const auto [a, b] = pairs[i];
      bool closed = false;
      for (int side = 0; side < 2 && !closed; ++side) {
        const pollfd& p = fds[1 + 2 * i + side];
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const int from = side == 0 ? a : b;
        const int to = side == 0 ? b : a;
        const ssize_t n = read(from, buffer, sizeof(buffer));
        closed = n <= 0 || !WriteAll(to, buffer, n);
      }
      if (closed) {
        absl::MutexLock lock(&mu_);
        close(a);
        close(b);
        std::erase(pairs_, std::make_pair(a, b));
      }
    }
  }
}

}  // namespace arbiter::testing
