// Named errors of the consensus core. Create them with the factories and test
// for them with the predicates; never compare message strings.
//
// Thread safety: plain functions; safe from any thread.
#ifndef ARBITER_RAFT_ERRORS_H_
#define ARBITER_RAFT_ERRORS_H_

#include "absl/status/status.h"

namespace arbiter::raft {

// The requested index is older than the storage's first index.
absl::Status ErrCompacted();
// The requested snapshot is older than the one storage already has.
absl::Status ErrSnapOutOfDate();
// The requested index is past the storage's last index.
absl::Status ErrUnavailable();
// A snapshot is being generated; ask again later.
absl::Status ErrSnapshotTemporarilyUnavailable();
// The proposal was not accepted (no leader, leader transfer in progress,
// uncommitted-size limit, removed node, or a conf change while one is pending).
absl::Status ErrProposalDropped();
// A local-only message type was given to Step.
absl::Status ErrStepLocalMsg();
// A response came from a node that is not in the configuration.
absl::Status ErrStepPeerNotFound();

bool IsCompacted(const absl::Status& s);
bool IsSnapOutOfDate(const absl::Status& s);
bool IsUnavailable(const absl::Status& s);
bool IsSnapshotTemporarilyUnavailable(const absl::Status& s);
bool IsProposalDropped(const absl::Status& s);
bool IsStepLocalMsg(const absl::Status& s);
bool IsStepPeerNotFound(const absl::Status& s);

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_ERRORS_H_
