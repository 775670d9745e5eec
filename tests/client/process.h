// Child processes for the client tests: a command run to completion with
// its input given and its output captured, and long-running servers
// started in the background and stopped by PID. Only processes started here
// are ever signalled.
//
// Thread safety: a ChildProcess belongs to one thread; Run is reentrant.
#ifndef ARBITER_TESTS_CLIENT_PROCESS_H_
#define ARBITER_TESTS_CLIENT_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace arbiter::testing {

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by one.
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `input` on standard input. Kills it (by its
// PID) and fails if it has not exited by the timeout.
absl::StatusOr<RunResult> RunCommand(const std::vector<std::string>& argv, const std::string& input,
                                     absl::Duration timeout);

// A background process with its output in a log file.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // Stops the process if still running.
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  absl::Status Start(const std::vector<std::string>& argv, const std::string& log_path);
  // SIGTERM, then SIGKILL if it has not exited within `grace`.
  void Stop(absl::Duration grace = absl::Seconds(5));
  // SIGKILL: a crash.
  void Kill();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  void Reap(absl::Duration grace);
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago and is reserved from
// other test processes until this one exits (server::testing::FreePort),
// in [20000, 32000) so it never collides with the kernel's ephemeral ports
// and always has five digits (outputs of two clusters then line up).
int PickFreePort();

// A fresh directory under $TMPDIR; removed with RemoveTree.
std::string MakeTempDir(const std::string& prefix);
void RemoveTree(const std::string& path);

}  // namespace arbiter::testing

#endif  // ARBITER_TESTS_CLIENT_PROCESS_H_
