#include "raft/check.h"

#include <cstdio>
#include <cstdlib>

namespace arbiter::raft::internal {

FatalMessage::FatalMessage(const char* file, int line, const char* condition) {
  stream_ << file << ":" << line << ": raft invariant violated: " << condition << ": ";
}

FatalMessage::~FatalMessage() {
  std::string text = stream_.str();
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace arbiter::raft::internal
