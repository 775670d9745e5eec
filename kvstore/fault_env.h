// A leveldb::Env for tests that injects storage faults: it remembers what
// each file had when last synced and can throw the rest away to simulate
// power loss, fail syncs with EIO, fail writes with ENOSPC, tear the last
// write of a file in half, and stall writes until released. Wraps any base
// Env (usually an in-memory one from leveldb/helpers/memenv.h, or the
// default Env over a temp directory).
//
// Thread safety: the switches are atomic; file bookkeeping has its own mutex.
#ifndef ARBITER_KVSTORE_FAULT_ENV_H_
#define ARBITER_KVSTORE_FAULT_ENV_H_

#include <atomic>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "leveldb/env.h"

namespace arbiter::kv {

class FaultEnv : public leveldb::EnvWrapper {
 public:
  explicit FaultEnv(leveldb::Env* base);

  // Fail every Sync() with an I/O error (EIO).
  void set_sync_error(bool on) { sync_error_.store(on); }
  // Fail every Append() with "No space left on device" (ENOSPC).
  void set_no_space(bool on) { no_space_.store(on); }
  // The next Append() writes only the first half of its data, then fails.
  void set_tear_next_write(bool on) { tear_next_write_.store(on); }
  // While on, every Append() waits until it is turned off: a disk that
  // stalls, which freezes whatever thread writes (a member's apply, say)
  // at a known point.
  void set_hold_writes(bool on);
  // How many Append() calls are waiting on set_hold_writes now.
  int held_writes() const;

  // Simulates power loss: truncates every file written through this Env to
  // what it held at its last successful Sync(). Call while no DB is open.
  leveldb::Status DropUnsyncedData();

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override;
  leveldb::Status RemoveFile(const std::string& fname) override;
  leveldb::Status RenameFile(const std::string& src, const std::string& target) override;

  // Called by the files it hands out.
  void OnSynced(const std::string& fname, uint64_t size);
  bool sync_error() const { return sync_error_.load(); }
  bool no_space() const { return no_space_.load(); }
  bool TakeTearNextWrite() { return tear_next_write_.exchange(false); }
  // Returns at once unless writes are held; then waits for the release.
  void WaitWhileHeld();

 private:
  std::atomic<bool> sync_error_{false};
  std::atomic<bool> no_space_{false};
  std::atomic<bool> tear_next_write_{false};
  mutable absl::Mutex hold_mu_;
  bool hold_ ABSL_GUARDED_BY(hold_mu_) = false;
  int held_ ABSL_GUARDED_BY(hold_mu_) = 0;
  absl::Mutex mu_;
  // File name -> size at its last successful sync (files created through
  // this Env only).
  std::map<std::string, uint64_t> synced_size_ ABSL_GUARDED_BY(mu_);
};

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_FAULT_ENV_H_
