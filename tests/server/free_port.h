// A free TCP port on 127.0.0.1 for tests that must name their ports before
// they listen (cluster configurations list every member's URLs).
//
// A port is only known free when it is checked, and a member may listen on
// it much later (or stop and listen again after a restart). Test binaries
// run in parallel, so each port handed out is also reserved machine-wide:
// an flock on /tmp/arbiter-test-ports/<port> held until the process exits
// (the kernel drops it then, even on a crash, so nothing goes stale).
// Another test process skips a port whose lock is held. Ports come from
// 20000-31999, below Linux's ephemeral range, so outgoing connections do
// not take them either. A port is never handed out twice in one process.
//
// Thread-safe.
#ifndef ARBITER_TESTS_SERVER_FREE_PORT_H_
#define ARBITER_TESTS_SERVER_FREE_PORT_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <random>
#include <set>
#include <string>

namespace arbiter::server::testing {

inline int FreePort() {
  static std::mutex mu;
  static std::mt19937 rng(std::random_device{}());
  static std::set<int> given;
  constexpr char kLockDir[] = "/tmp/arbiter-test-ports";
  std::lock_guard<std::mutex> lock(mu);
  mkdir(kLockDir, 0777);
  chmod(kLockDir, 0777);
  std::uniform_int_distribution<int> dist(20000, 31999);
  for (int attempt = 0; attempt < 100000; ++attempt) {
    const int port = dist(rng);
    if (!given.insert(port).second) continue;
    // Reserve first: the lock (kept open on purpose) is what keeps other
    // test processes away from the port from now on.
    const std::string path = std::string(kLockDir) + "/" + std::to_string(port);
    const int lock_fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock_fd < 0) continue;
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      close(lock_fd);
      continue;
    }
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) return port;
    close(lock_fd);
  }
  return 0;
}

}  // namespace arbiter::server::testing

#endif  // ARBITER_TESTS_SERVER_FREE_PORT_H_
