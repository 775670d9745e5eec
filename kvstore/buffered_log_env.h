// A leveldb::Env for a database whose writes need not reach the file system
// one by one: what LevelDB appends to its write-ahead log ("<number>.log")
// is gathered in memory and written in pieces of kPieceBytes, and at Sync()
// and Close(), instead of with one write(2) per record (when `gather` is
// set). A log LevelDB closes (as it moves to a new one) is kept open, to be
// synced by SyncClosedLogs(). Every other file goes to the wrapped Env
// unchanged.
//
// For the MVCC state database (kvstore/kv_state_machine.h), which syncs
// only when the member is about to discard raft log entries
// (KvStateMachine::Sync): until then the raft log is the durable record,
// and a member whose state database lost its last writes replays them from
// the raft log at startup. A crash of the process loses up to kPieceBytes
// of state writes, as a power loss could lose any unsynced amount; recovery
// is the same. A torn last record is dropped by LevelDB's log reader as
// unfinished.
//
// Why keep closed logs: LevelDB closes a full log without syncing it and
// keeps its records only there until the memtable they are in is written
// to a table file. A synced write covers only the current log, so a Sync()
// that did not also sync those could report writes durable that a power
// loss then takes. They are synced at Sync() rather than when closed, which
// would put an fsync of a whole log inside an apply, under LevelDB's lock.
// At most kMaxClosedLogs wait; beyond that the oldest is synced at close.
//
// Why gather: a member applies every committed entry with one LevelDB
// write, and on a VM each write(2) costs several microseconds of CPU.
//
// Thread safety: as leveldb::Env; each file is used by one thread at a time.
#ifndef ARBITER_KVSTORE_BUFFERED_LOG_ENV_H_
#define ARBITER_KVSTORE_BUFFERED_LOG_ENV_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "leveldb/env.h"

namespace arbiter::kv {

class BufferedLogEnv : public leveldb::EnvWrapper {
 public:
  static constexpr size_t kPieceBytes = 64 << 10;
  static constexpr size_t kMaxClosedLogs = 16;

  // base is not owned and must outlive this Env. Without gather, log
  // writes go to base as they are made (and are still synced at close).
  explicit BufferedLogEnv(leveldb::Env* base, bool gather = true)
      : leveldb::EnvWrapper(base), gather_(gather) {}
  // Closes the logs still waiting, unsynced.
  ~BufferedLogEnv() override;

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;

  // True for the name of a LevelDB write-ahead log ("dir/000123.log").
  static bool IsLogFileName(const std::string& fname);

  // Syncs and closes every log LevelDB closed since the last call. Errors:
  // the first failure (the logs after it stay waiting).
  leveldb::Status SyncClosedLogs();

  // How many closed logs wait for SyncClosedLogs.
  size_t closed_logs() const;

  // Called by the log files it hands out, as LevelDB closes them.
  void AddClosedLog(std::unique_ptr<leveldb::WritableFile> file);

 private:
  const bool gather_;
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<leveldb::WritableFile>> closed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_BUFFERED_LOG_ENV_H_
