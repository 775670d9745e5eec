// The watch hub: etcd's watchable store over KvStateMachine. It receives
// every applied revision's events (as the state machine's EventListener)
// and routes them to watchers, each bound to one client stream.
//
// Guarantees, per watcher: events in revision order, with no gap and no
// duplicate, starting at its start revision (history first, then live);
// its `created` response comes before any of its events; a cancel's
// response comes after the last event sent for it.
//
// How (LogCabin-style "why"): every watcher has next_rev, the first
// revision it has not been given. A watcher is *synced* while the hub hands
// it each new revision as it is applied (OnRevision, on the apply thread);
// it is *unsynced* while it must read history (a start revision in the past,
// a stream whose queue was full, a snapshot restore). Apply never waits for
// a client: when a stream's bounded queue is full, its synced watchers turn
// unsynced instead, and the stream's own writer thread later catches them up
// from the store (KvStateMachine::ReadEvents), at most kMaxCatchUpEvents at a
// time, turning them synced again once they reach the hub's revision. A
// watcher whose next revision was compacted away is canceled with
// compact_revision set, so the client can resume knowingly.
//
// Responses carry header.revision only; the server fills in the rest.
//
// Thread safety: all methods are thread-safe. One mutex guards the hub and
// every stream's queue; OnRevision holds it while it routes one revision.
// KvStateMachine reads happen without it.
#ifndef ARBITER_KVSTORE_WATCH_HUB_H_
#define ARBITER_KVSTORE_WATCH_HUB_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kvstore/kv_state_machine.h"
#include "proto/rpc.pb.h"

namespace arbiter::kv {

class WatchHub;

// One client stream: its watchers and its queue of responses to send.
class WatchStream {
 public:
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Creates a watcher and queues its `created` response (or, for a bad
  // request, a created+canceled one with watch_id -1 and a reason, as etcd).
  void Create(const etcdserverpb::WatchCreateRequest& req);
  // Removes a watcher and queues its canceled response; unknown IDs are
  // ignored (etcd sends nothing).
  void Cancel(int64_t watch_id);
  // Queues one progress response (watch_id -1, the hub's revision).
  void RequestProgress();
  // Ends the stream: Next returns false from now on.
  void Close();

  // The next response to send. Blocks until there is one, the stream is
  // closed (false), or deadline passes (false, not closed()). Catches up
  // unsynced watchers from history when the queue is empty; sends periodic
  // progress notifications.
  bool Next(etcdserverpb::WatchResponse* out, absl::Time deadline);
  bool closed() const;

 private:
  friend class WatchHub;
  struct Watcher {
    int64_t id = 0;
    std::string key, range_end;
    bool prev_kv = false, no_put = false, no_delete = false;
    bool progress_notify = false;
    bool fragment = false;
    // The first revision not yet handed to this watcher.
    int64_t next_rev = 0;
    bool synced = false;
    // An event was queued since the last progress tick.
    bool active = false;
  };

  explicit WatchStream(WatchHub* hub) : hub_(hub) {}
  // Routes one revision's events to this stream's watchers.
  void RouteLocked(int64_t rev, const std::vector<mvccpb::Event>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(hub_->mu_);
  void PushLocked(Watcher& w, int64_t rev, std::vector<mvccpb::Event> events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(hub_->mu_);
  // One catch-up step for one unsynced watcher; false if there was none.
  bool CatchUpOne();
  void ProgressTickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hub_->mu_);
  bool HasUnsyncedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(hub_->mu_);

  WatchHub* const hub_;
  std::map<int64_t, Watcher> watchers_ ABSL_GUARDED_BY(hub_->mu_);
  std::deque<etcdserverpb::WatchResponse> queue_ ABSL_GUARDED_BY(hub_->mu_);
  int64_t next_id_ ABSL_GUARDED_BY(hub_->mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(hub_->mu_) = false;
  absl::Time next_progress_ ABSL_GUARDED_BY(hub_->mu_);
  // Signalled (with the hub's mutex) when this stream has work: a queued
  // response, an unsynced watcher, or Close.
  absl::CondVar cv_;
};

class WatchHub final : public EventListener {
 public:
  struct Options {
    // Responses queued per stream before its watchers fall back to history.
    size_t max_stream_queue = 1024;
    // Events read from history per catch-up step (whole revisions).
    size_t max_catch_up_events = 1000;
    // Responses larger than this are split when the watcher allows
    // fragments (etcd: max request bytes + 512 KiB).
    size_t fragment_bytes = (1536 + 512) * 1024;
    // How often idle watchers that asked for it get a progress response
    // (etcd: 10 minutes).
    absl::Duration progress_interval = absl::Minutes(10);
  };

  // kv is not owned and must outlive the hub; the hub does not register
  // itself (call kv->SetEventListener(hub) before the first apply).
  WatchHub(const KvStateMachine* kv, const Options& options);
  ~WatchHub() override;

  std::unique_ptr<WatchStream> NewStream();

  // The last revision the hub routed.
  int64_t revision() const;

  // EventListener (apply thread).
  bool WantsPrevKv() const override;
  void OnRevision(int64_t revision, std::vector<mvccpb::Event> events) override;
  void OnRestore(int64_t revision) override;

 private:
  friend class WatchStream;

  const KvStateMachine* const kv_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<WatchStream*> streams_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Watchers that asked for prev_kv.
  int prev_kv_watchers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_WATCH_HUB_H_
