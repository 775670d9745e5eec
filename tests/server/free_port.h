// A free TCP port on 127.0.0.1 for tests that must name their ports before
// they listen (cluster configurations list every member's URLs). The port
// is released before it is returned, so another process could take it in
// between; on a test machine's loopback that is rare, and the test then
// fails at listen with a clear message rather than silently.
#ifndef ARBITER_TESTS_SERVER_FREE_PORT_H_
#define ARBITER_TESTS_SERVER_FREE_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace arbiter::server::testing {

inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace arbiter::server::testing

#endif  // ARBITER_TESTS_SERVER_FREE_PORT_H_
