// The logging interface the consensus core writes through. The core never
// writes to a file or stream itself: the embedding application injects a
// Logger through Config.
//
// Thread safety: implementations must be safe to call from the thread that
// drives the node; the provided ones are safe from any thread.
#ifndef ARBITER_RAFT_LOGGER_H_
#define ARBITER_RAFT_LOGGER_H_

#include <string_view>

namespace arbiter::raft {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

class Logger {
 public:
  virtual ~Logger() = default;
  virtual bool Enabled(LogLevel level) const = 0;
  virtual void Log(LogLevel level, std::string_view message) = 0;
};

// Drops everything. The default when Config has no logger.
Logger* DiscardLogger();

// Writes lines at or above min_level to stderr. The returned logger lives for
// the whole program.
Logger* StderrLogger(LogLevel min_level);

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_LOGGER_H_
