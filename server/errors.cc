#include "server/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace arbiter::server {
namespace {

// The error kind travels in a payload so predicates never parse messages.
constexpr absl::string_view kKindUrl = "arbiter.server/error";

absl::Status Make(absl::StatusCode code, absl::string_view kind, absl::string_view msg) {
  absl::Status s(code, msg);
  s.SetPayload(kKindUrl, absl::Cord(kind));
  return s;
}

bool Is(const absl::Status& s, absl::string_view kind) {
  auto p = s.GetPayload(kKindUrl);
  return p.has_value() && *p == kind;
}

}  // namespace

absl::Status ErrStopped(absl::string_view why) {
  return Make(absl::StatusCode::kUnavailable, "stopped", absl::StrCat("member stopped: ", why));
}
absl::Status ErrNoLeader() {
  return Make(absl::StatusCode::kUnavailable, "no_leader", "no leader is known");
}
absl::Status ErrLeadershipChanged() {
  return Make(absl::StatusCode::kAborted, "leadership_changed",
              "leadership changed while the request was pending; a proposal may or may not "
              "have committed");
}
absl::Status ErrInboxFull() {
  return Make(absl::StatusCode::kResourceExhausted, "inbox_full", "too many pending requests");
}
absl::Status ErrTimeout(absl::string_view what) {
  return Make(absl::StatusCode::kDeadlineExceeded, "timeout",
              absl::StrCat("deadline exceeded: ", what));
}

bool IsStopped(const absl::Status& s) { return Is(s, "stopped"); }
bool IsNoLeader(const absl::Status& s) { return Is(s, "no_leader"); }
bool IsLeadershipChanged(const absl::Status& s) { return Is(s, "leadership_changed"); }
bool IsInboxFull(const absl::Status& s) { return Is(s, "inbox_full"); }
bool IsTimeout(const absl::Status& s) { return Is(s, "timeout"); }

}  // namespace arbiter::server
