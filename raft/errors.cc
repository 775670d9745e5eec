#include "raft/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace arbiter::raft {
namespace {

// Each named error carries a payload under this type URL; predicates compare
// the payload, so callers never depend on message text.
constexpr absl::string_view kPayloadUrl = "arbiter.raft/error";

absl::Status Make(absl::StatusCode code, absl::string_view name, absl::string_view message) {
  absl::Status s(code, message);
  s.SetPayload(kPayloadUrl, absl::Cord(name));
  return s;
}

bool Is(const absl::Status& s, absl::string_view name) {
  auto p = s.GetPayload(kPayloadUrl);
  return p.has_value() && *p == name;
}

}  // namespace

absl::Status ErrCompacted() {
  return Make(absl::StatusCode::kOutOfRange, "compacted",
              "requested index is unavailable due to compaction");
}
absl::Status ErrSnapOutOfDate() {
  return Make(absl::StatusCode::kFailedPrecondition, "snap_out_of_date",
              "requested index is older than the existing snapshot");
}
absl::Status ErrUnavailable() {
  return Make(absl::StatusCode::kOutOfRange, "unavailable",
              "requested entry at index is unavailable");
}
absl::Status ErrSnapshotTemporarilyUnavailable() {
  return Make(absl::StatusCode::kUnavailable, "snapshot_temporarily_unavailable",
              "snapshot is temporarily unavailable");
}
absl::Status ErrProposalDropped() {
  return Make(absl::StatusCode::kUnavailable, "proposal_dropped", "raft proposal dropped");
}
absl::Status ErrStepLocalMsg() {
  return Make(absl::StatusCode::kInvalidArgument, "step_local_msg",
              "raft: cannot step raft local message");
}
absl::Status ErrStepPeerNotFound() {
  return Make(absl::StatusCode::kNotFound, "step_peer_not_found",
              "raft: cannot step as peer not found");
}

bool IsCompacted(const absl::Status& s) { return Is(s, "compacted"); }
bool IsSnapOutOfDate(const absl::Status& s) { return Is(s, "snap_out_of_date"); }
bool IsUnavailable(const absl::Status& s) { return Is(s, "unavailable"); }
bool IsSnapshotTemporarilyUnavailable(const absl::Status& s) {
  return Is(s, "snapshot_temporarily_unavailable");
}
bool IsProposalDropped(const absl::Status& s) { return Is(s, "proposal_dropped"); }
bool IsStepLocalMsg(const absl::Status& s) { return Is(s, "step_local_msg"); }
bool IsStepPeerNotFound(const absl::Status& s) { return Is(s, "step_peer_not_found"); }

}  // namespace arbiter::raft
