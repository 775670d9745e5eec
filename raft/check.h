// Invariant checks for the consensus core. A failed check is a programmer
// error: it prints the message (callers append the node's state) and aborts,
// because continuing with a broken invariant could corrupt replicated state.
//
// Thread safety: safe from any thread.
#ifndef ARBITER_RAFT_CHECK_H_
#define ARBITER_RAFT_CHECK_H_

#include <sstream>

namespace arbiter::raft::internal {

class FatalMessage {
 public:
  FatalMessage(const char* file, int line, const char* condition);
  FatalMessage(const FatalMessage&) = delete;
  FatalMessage& operator=(const FatalMessage&) = delete;
  [[noreturn]] ~FatalMessage();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets the macro below be used as a statement that takes `<<` operands.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace arbiter::raft::internal

// RAFT_CHECK(cond) << "context"; aborts when cond is false.
#define RAFT_CHECK(cond)                          \
  (cond) ? (void)0                                \
         : ::arbiter::raft::internal::Voidify() & \
               ::arbiter::raft::internal::FatalMessage(__FILE__, __LINE__, #cond).stream()

// RAFT_FATAL() << "why"; always aborts.
#define RAFT_FATAL() ::arbiter::raft::internal::FatalMessage(__FILE__, __LINE__, "fatal").stream()

#endif  // ARBITER_RAFT_CHECK_H_
