// Internal to the consensus core: RLOG(level, format, args...) logs one line
// through the node's injected Logger, prefixed with the node id in hex,
// formatting only when the level is enabled. For use inside Raft methods
// (it reads logger_ and id_).
#ifndef ARBITER_RAFT_RLOG_H_
#define ARBITER_RAFT_RLOG_H_

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raft/logger.h"

#define RLOG(level, ...)                                                             \
  do {                                                                               \
    if (logger_->Enabled(::arbiter::raft::LogLevel::level)) {                        \
      logger_->Log(::arbiter::raft::LogLevel::level,                                 \
                   absl::StrCat(absl::Hex(id_), " ", absl::StrFormat(__VA_ARGS__))); \
    }                                                                                \
  } while (0)

#endif  // ARBITER_RAFT_RLOG_H_
