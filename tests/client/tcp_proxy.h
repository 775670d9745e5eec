// A TCP forwarder on 127.0.0.1 for tests that need a connection to a live
// member to fail (and stay failed) on demand, which killing the member
// cannot give: the member keeps applying the cluster's writes meanwhile.
//
// Thread safety: Cut and Resume may be called from any thread; one thread
// of its own forwards the bytes.
#ifndef ARBITER_TESTS_CLIENT_TCP_PROXY_H_
#define ARBITER_TESTS_CLIENT_TCP_PROXY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace arbiter::testing {

class TcpProxy {
 public:
  // Forwards connections to `target` ("127.0.0.1:<port>").
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(const std::string& target);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // "127.0.0.1:<port>" where the proxy listens.
  std::string endpoint() const;
  // Resets every forwarded connection and closes new ones at once, until
  // Resume.
  void Cut();
  // Stops forwarding while keeping every connection open (a member that
  // hangs, or a partition that drops packets), until Resume.
  void Freeze();
  void Resume();

 private:
  TcpProxy(int listen_fd, int port, int target_port);
  void Loop();

  const int listen_fd_;
  const int port_;
  const int target_port_;
  absl::Mutex mu_;
  bool cut_ ABSL_GUARDED_BY(mu_) = false;
  bool frozen_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Forwarded connections: client side, target side.
  std::vector<std::pair<int, int>> pairs_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace arbiter::testing

#endif  // ARBITER_TESTS_CLIENT_TCP_PROXY_H_
