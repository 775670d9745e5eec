// The durable raft state of one member: log entries, the hard state, and the
// latest snapshot, in a LevelDB database opened through an injectable
// leveldb::Env (tests inject faults; production uses the default Env).
//
// Durability contract: Save() persists a Ready's hard state, entries and
// snapshot in ONE LevelDB WriteBatch, synced (fsync) when sync is true. When
// it returns OK the data survives a crash; until then none of it may be
// acted on (no message sent, no entry applied). A failed Save is
// fail-stop: the caller must stop the member, never retry (the state of the
// write is unknown after a failed fsync).
//
// Recovery: Open() validates what it finds. LevelDB itself truncates a torn
// tail of its write-ahead log (a write that was never acknowledged). Anything
// else inconsistent (a checksum mismatch in the middle of a file, a gap in
// the entry indexes, a hard-state commit beyond the last entry, entries that
// point before a missing snapshot) makes Open() fail with a DataLoss error
// naming the file or key and what is wrong: a member must never vote or
// acknowledge with a silently shortened log.
//
// The on-disk layout (keys, encodings) is documented in kvstore/keys.h.
//
// Thread safety: all methods are thread-safe (one internal mutex). The
// member's event loop writes; the snapshot sender may read concurrently.
#ifndef ARBITER_KVSTORE_RAFT_LOG_STORE_H_
#define ARBITER_KVSTORE_RAFT_LOG_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace leveldb {
class Env;
}  // namespace leveldb

namespace arbiter::kv {

class RaftLogStore : public raft::Storage {
 public:
  struct Options {
    // Not owned; nullptr means leveldb::Env::Default().
    leveldb::Env* env = nullptr;
    // Create the database if the directory holds none.
    bool create_if_missing = true;
    // Bytes of the most recent entries kept in memory, so that a leader
    // feeding a follower that lags a little reads no disk. Older entries
    // are read from LevelDB. (Terms of all entries are always in memory.)
    uint64_t entry_cache_bytes = 4 << 20;
    // Entries CreateSnapshot keeps at and before the snapshot's index (as
    // etcd keeps 5,000): a follower that lags by fewer catches up from the
    // log instead of needing the whole state sent. 0 keeps none.
    uint64_t catch_up_entries = 0;
  };

  // Opens (or creates) the store in dir, validating it (see above).
  // Errors: DataLoss for corruption or inconsistency, with the file/key named;
  // other errors for I/O failures.
  static absl::StatusOr<std::unique_ptr<RaftLogStore>> Open(const std::string& dir,
                                                            const Options& options);

  virtual ~RaftLogStore() = default;

  // True if nothing was ever saved (a new member that must bootstrap or join).
  virtual bool IsEmpty() const = 0;

  // Writes the initial state of a founding member of a new cluster: a
  // snapshot at index 1, term 1 holding conf_state (and empty data), and the
  // hard state {term 1, commit 1}. REQUIRES: IsEmpty().
  virtual absl::Status Bootstrap(const raft::ConfState& conf_state) = 0;

  // Persists a Ready's durable part atomically: if snapshot is not empty it
  // replaces the whole log (as MemoryStorage::ApplySnapshot: the core only
  // installs a snapshot whose last entry does not match ours, so nothing
  // stored after it can be trusted either); then entries are appended,
  // replacing any stored entries at the same or later indexes (entries at
  // or below the snapshot index are skipped); then hard_state (if not empty)
  // is recorded.
  // Errors: ErrSnapOutOfDate if snapshot is not newer than the stored one;
  // InvalidArgument/FailedPrecondition if the result would break the
  // invariants of kvstore/keys.h (nothing is written then). An I/O error
  // (ResourceExhausted for ENOSPC, Internal otherwise) is fail-stop: every
  // later write returns it too.
  virtual absl::Status Save(const raft::HardState& hard_state,
                            const std::vector<raft::Entry>& entries, const raft::Snapshot& snapshot,
                            bool sync) = 0;

  // Records a snapshot of the state machine at index (which must be stored
  // and committed) with membership conf_state, and discards the entries it
  // covers but the last Options::catch_up_entries (FirstIndex() stays at
  // most index + 1 and the term of FirstIndex() - 1 stays answerable), in
  // one synced batch.
  // Errors: ErrSnapOutOfDate if not newer than the current one;
  // FailedPrecondition if index is past the last entry or the commit index.
  virtual absl::Status CreateSnapshot(uint64_t index, const raft::ConfState& conf_state,
                                      std::string data) = 0;

  // Bytes of the entries stored (for metrics and compaction decisions).
  virtual uint64_t ApproximateLogBytes() const = 0;
};

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_RAFT_LOG_STORE_H_
