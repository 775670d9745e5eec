// How an arbiterctl command ends: etcdctl's exit codes and the message it
// prints as "Error: <message>" on standard error.
//
// Thread safety: values.
#ifndef ARBITER_CLI_EXIT_H_
#define ARBITER_CLI_EXIT_H_

#include <string>
#include <utility>

namespace arbiter::cli {

// etcdctl's exit codes (ctlv3/command/error.go).
inline constexpr int kExitSuccess = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitBadConnection = 2;
inline constexpr int kExitInvalidInput = 3;  // txn input
inline constexpr int kExitBadFeature = 4;    // a valid flag with an unsupported value
inline constexpr int kExitInterrupted = 5;   // a watch the server canceled
inline constexpr int kExitBadArgs = 128;

struct Exit {
  int code = kExitSuccess;
  // Printed after "Error: "; empty means print nothing.
  std::string message;
  // Written to standard error before the message (a command's usage).
  std::string preface;
  // Where etcdctl crashes with a Go panic: printed as "panic: <message>"
  // and the start of a goroutine trace, with Go's exit code 2.
  bool panic = false;
};

inline Exit GoPanic(std::string message) {
  Exit exit{2, std::move(message)};
  exit.panic = true;
  return exit;
}

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_EXIT_H_
