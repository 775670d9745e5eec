#include "raft/logger.h"

#include <cstdio>

namespace arbiter::raft {
namespace {

class Discard final : public Logger {
 public:
  bool Enabled(LogLevel) const override { return false; }
  void Log(LogLevel, std::string_view) override {}
};

class Stderr final : public Logger {
 public:
  explicit Stderr(LogLevel min) : min_(min) {}
  bool Enabled(LogLevel level) const override { return level >= min_; }
  void Log(LogLevel level, std::string_view message) override {
    if (!Enabled(level)) return;
    static const char* const kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    std::fprintf(stderr, "raft %s %.*s\n", kNames[static_cast<int>(level)],
                 static_cast<int>(message.size()), message.data());
  }

 private:
  LogLevel min_;
};

}  // namespace

Logger* DiscardLogger() {
  static Discard* logger = new Discard();
  return logger;
}

Logger* StderrLogger(LogLevel min_level) {
  static Stderr* loggers[] = {new Stderr(LogLevel::kDebug), new Stderr(LogLevel::kInfo),
                              new Stderr(LogLevel::kWarning), new Stderr(LogLevel::kError)};
  return loggers[static_cast<int>(min_level)];
}

}  // namespace arbiter::raft
