// Names the calling thread, as `top -H`, `perf` and /proc/<pid>/task/*/comm
// show it, so an operator can tell a member's loop from its peer senders.
// Linux keeps at most 15 characters; longer names are cut.
//
// Thread safety: names only the calling thread.
#ifndef ARBITER_SERVER_THREAD_NAME_H_
#define ARBITER_SERVER_THREAD_NAME_H_

#include <pthread.h>

#include <string>

namespace arbiter::server {

inline void SetThreadName(const std::string& name) {
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_THREAD_NAME_H_
