// WaitFor for server tests: polls a condition until a deadline. The only
// place in these tests that sleeps, and only between polls; nothing waits a
// fixed time for something to happen.
#ifndef ARBITER_TESTS_SERVER_WAIT_H_
#define ARBITER_TESTS_SERVER_WAIT_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace arbiter::server::testing {

// Generous: the machine running the tests may be loaded.
inline constexpr absl::Duration kLongTimeout = absl::Seconds(10);

inline bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = kLongTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

inline absl::Time Deadline(absl::Duration d = kLongTimeout) { return absl::Now() + d; }

}  // namespace arbiter::server::testing

#endif  // ARBITER_TESTS_SERVER_WAIT_H_
