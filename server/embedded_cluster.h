// N members in one process, wired by a LocalNetwork, each with its own raft
// log store behind its own FaultEnv: the test bed for member-level and
// cluster-level behaviour (elections, partitions, crashes, catch-up).
//
// Storage: every member's FaultEnv wraps either one shared in-memory Env
// (leveldb::NewMemEnv; fast, the default) or the default Env over a
// temporary directory (real files and fsyncs). One FaultEnv per member is
// what makes Kill possible: FaultEnv::DropUnsyncedData requires that no
// database is open on that Env, and only the killed member's is closed.
//
// Kill(id) is a crash: the member's loop stops without a clean shutdown,
// its store is closed, and everything it had not synced is thrown away.
// Restart(id) starts it again from what its store kept.
//
// Thread safety: the control methods (Kill, Stop, Restart, Partition, ...)
// are meant for one test thread; Leader, WaitFor and WaitForLeader may be
// called from any thread. A Member* from member(id) is valid until that
// member is killed, stopped or restarted.
#ifndef ARBITER_SERVER_EMBEDDED_CLUSTER_H_
#define ARBITER_SERVER_EMBEDDED_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kvstore/fault_env.h"
#include "leveldb/env.h"
#include "raft/logger.h"
#include "server/local_transport.h"
#include "server/member.h"

namespace arbiter::server {

struct EmbeddedClusterOptions {
  // Members get ids 1..size.
  int size = 3;
  absl::Duration tick_interval = absl::Milliseconds(10);
  int election_tick = 10;
  int heartbeat_tick = 1;
  uint64_t snapshot_count = 10000;
  // MemberOptions::snapshot_catchup_entries.
  uint64_t snapshot_catchup_entries = 0;
  enum class Storage { kMemEnv, kTempDir };
  Storage storage = Storage::kMemEnv;
  // kTempDir: the directory to put member directories in. Empty: a fresh
  // directory under $TMPDIR (or /tmp), removed with the cluster.
  std::string base_dir;
  // Seeds the members' election jitter (member i gets seed * 1000 + i).
  uint64_t seed = 1;
  // Not owned; nullptr: warnings and errors to stderr.
  raft::Logger* logger = nullptr;
};

class EmbeddedCluster {
 public:
  static absl::StatusOr<std::unique_ptr<EmbeddedCluster>> Start(
      const EmbeddedClusterOptions& options);
  // Kills every member still running.
  ~EmbeddedCluster();

  EmbeddedCluster(const EmbeddedCluster&) = delete;
  EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

  std::vector<uint64_t> ids() const;
  // nullptr while the member is down.
  Member* member(uint64_t id);
  kv::FaultEnv* fault_env(uint64_t id);
  LocalNetwork& network() { return network_; }

  // Crash: abrupt stop, store closed, unsynced data dropped.
  absl::Status Kill(uint64_t id);
  // Clean stop (a leader transfers leadership first); data is kept.
  absl::Status Stop(uint64_t id);
  // Starts a stopped or killed member from its store.
  absl::Status Restart(uint64_t id);
  // Starts a new, empty member that joins the running cluster: it waits to
  // be added by a conf change (Member::ProposeConfChange) and caught up by
  // a snapshot from the leader.
  absl::Status AddMember(uint64_t id);

  void Partition(const std::vector<std::vector<uint64_t>>& groups) { network_.Partition(groups); }
  void Isolate(uint64_t id) { network_.Isolate(id); }
  void Heal() { network_.Heal(); }

  // The leader that a majority of its voters (running members only)
  // follow in its term; 0 if there is none. A deposed leader cut off
  // from the majority is therefore not reported.
  uint64_t Leader() const;
  // Waits until Leader() is not 0. Errors: DeadlineExceeded.
  absl::StatusOr<uint64_t> WaitForLeader(absl::Time deadline) const;
  // Evaluates pred whenever a member's status changes (and at least every
  // 50 ms) until it holds or deadline passes. Returns whether it held.
  bool WaitFor(const std::function<bool()>& pred, absl::Time deadline) const;

 private:
  struct Node {
    std::unique_ptr<kv::FaultEnv> env;
    std::unique_ptr<Transport> transport;
    std::string dir;
    // Joined a running cluster instead of founding it.
    bool joined = false;
    std::unique_ptr<Member> member;
  };

  explicit EmbeddedCluster(const EmbeddedClusterOptions& options);
  absl::Status Init();
  void AddNodeLocked(uint64_t id, bool joined) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status StartMember(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnStatusChange();
  uint64_t Version() const;

  const EmbeddedClusterOptions options_;
  std::unique_ptr<leveldb::Env> mem_env_;
  // The Env every member's FaultEnv wraps.
  leveldb::Env* base_env_ = nullptr;
  std::string base_dir_;
  bool remove_base_dir_ = false;
  LocalNetwork network_;

  // Guards the member table against Leader()/WaitFor from other threads.
  mutable absl::Mutex mu_;
  std::map<uint64_t, Node> nodes_ ABSL_GUARDED_BY(mu_);

  // Bumped by members' on_status_change; WaitFor waits on it.
  mutable absl::Mutex change_mu_;
  uint64_t version_ ABSL_GUARDED_BY(change_mu_) = 0;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_EMBEDDED_CLUSTER_H_
