// Named errors of the server layer. Create them with the factories and test
// for them with the predicates; never compare message strings.
//
// Thread safety: plain functions; safe from any thread.
#ifndef ARBITER_SERVER_ERRORS_H_
#define ARBITER_SERVER_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace arbiter::server {

// The member is stopped (or stopping) and takes no requests. After a
// fail-stop the message names the storage error.
absl::Status ErrStopped(absl::string_view why);
// No leader is known; retry later or elsewhere.
absl::Status ErrNoLeader();
// Leadership changed (or the state was replaced by a snapshot) while the
// request was pending: a proposal may or may not commit; retry reads.
absl::Status ErrLeadershipChanged();
// Too many requests are queued in the member's inbox.
absl::Status ErrInboxFull();
// The caller's deadline passed. For a proposal the outcome is unknown.
absl::Status ErrTimeout(absl::string_view what);

bool IsStopped(const absl::Status& s);
bool IsNoLeader(const absl::Status& s);
bool IsLeadershipChanged(const absl::Status& s);
bool IsInboxFull(const absl::Status& s);
bool IsTimeout(const absl::Status& s);

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_ERRORS_H_
