#include "kvstore/watch_hub.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "kvstore/kv_errors.h"

namespace arbiter::kv {
namespace {

// etcd's watch error strings (mvcc/watcher.go).
constexpr char kEmptyRange[] = "mvcc: watcher range is empty";
constexpr char kDuplicateId[] = "mvcc: duplicate watch ID provided on the WatchStream";

// Whether key falls in a watcher's range: range_end empty means the one
// key; "\0" means every key from key on; otherwise [key, range_end).
bool InRange(const std::string& key, const std::string& begin, const std::string& end) {
  if (end.empty()) return key == begin;
  if (end.size() == 1 && end[0] == '\0') return key >= begin;
  return key >= begin && key < end;
}

etcdserverpb::WatchResponse Response(int64_t watch_id, int64_t revision) {
  etcdserverpb::WatchResponse r;
  r.set_watch_id(watch_id);
  r.mutable_header()->set_revision(revision);
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------
// WatchHub
// ---------------------------------------------------------------------------

WatchHub::WatchHub(const KvStateMachine* kv, const Options& options)
    : kv_(kv), options_(options), revision_(kv->CurrentRevision()) {}

WatchHub::~WatchHub() = default;

std::unique_ptr<WatchStream> WatchHub::NewStream() {
  std::unique_ptr<WatchStream> s(new WatchStream(this));
  absl::MutexLock l(&mu_);
  s->next_progress_ = absl::Now() + options_.progress_interval;
  streams_.push_back(s.get());
  return s;
}

int64_t WatchHub::revision() const {
  absl::MutexLock l(&mu_);
  return revision_;
}

bool WatchHub::WantsPrevKv() const {
  absl::MutexLock l(&mu_);
  return prev_kv_watchers_ > 0;
}

void WatchHub::OnRevision(int64_t revision, std::vector<mvccpb::Event> events) {
  absl::MutexLock l(&mu_);
  for (WatchStream* s : streams_) s->RouteLocked(revision, events);
  revision_ = std::max(revision_, revision);
}

void WatchHub::OnRestore(int64_t revision) {
  absl::MutexLock l(&mu_);
  // The history between what watchers saw and the snapshot is in the store
  // (or compacted): every watcher reads it from there.
  for (WatchStream* s : streams_) {
    for (auto& [id, w] : s->watchers_) w.synced = false;
    s->cv_.Signal();
  }
  revision_ = revision;
}

// ---------------------------------------------------------------------------
// WatchStream
// ---------------------------------------------------------------------------

WatchStream::~WatchStream() {
  absl::MutexLock l(&hub_->mu_);
  for (auto& [id, w] : watchers_) {
    if (w.prev_kv) --hub_->prev_kv_watchers_;
  }
  watchers_.clear();
  auto& v = hub_->streams_;
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void WatchStream::Create(const etcdserverpb::WatchCreateRequest& req) {
  Watcher w;
  // An empty key is the smallest key, as in etcd.
  w.key = req.key().empty() ? std::string(1, '\0') : req.key();
  w.range_end = req.range_end();
  w.prev_kv = req.prev_kv();
  w.progress_notify = req.progress_notify();
  w.fragment = req.fragment();
  for (int f : req.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w.no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w.no_delete = true;
  }
  absl::MutexLock l(&hub_->mu_);
  const int64_t rev = hub_->revision_;
  const char* error = nullptr;
  const bool all_from_key = w.range_end.size() == 1 && w.range_end[0] == '\0';
  if (!w.range_end.empty() && !all_from_key && w.key >= w.range_end) error = kEmptyRange;
  int64_t id = req.watch_id();
  if (error == nullptr && id != 0 && watchers_.count(id) > 0) error = kDuplicateId;
  if (error != nullptr) {
    etcdserverpb::WatchResponse r = Response(-1, rev);
    r.set_created(true);
    r.set_canceled(true);
    r.set_cancel_reason(error);
    queue_.push_back(std::move(r));
    cv_.Signal();
    return;
  }
  if (id == 0) {
    // Server-assigned IDs count from 0 and skip IDs the client chose.
    while (watchers_.count(next_id_) > 0) ++next_id_;
    id = next_id_++;
  }
  w.id = id;
  // start_revision 0: from the next revision. A past one replays history;
  // a future one waits for it (synced: the hub hands it over when applied).
  w.next_rev = req.start_revision() > 0 ? req.start_revision() : rev + 1;
  if (req.start_revision() < 0) {
    // As etcd (the compacted revision is -1 until the first compaction): a
    // start below the compacted revision is canceled, -1 itself replays all
    // history.
    const int64_t compacted = hub_->kv_->CompactRevision();
    if (req.start_revision() < compacted) {
      etcdserverpb::WatchResponse created = Response(id, rev);
      created.set_created(true);
      queue_.push_back(std::move(created));
      etcdserverpb::WatchResponse r = Response(id, 0);
      r.set_canceled(true);
      r.set_compact_revision(compacted);
      queue_.push_back(std::move(r));
      cv_.Signal();
      return;
    }
    w.next_rev = 1;
  }
  w.synced = w.next_rev > rev;
  if (w.prev_kv) ++hub_->prev_kv_watchers_;
  // The created response is queued before anything can be routed to the
  // watcher: both happen under the hub's mutex.
  etcdserverpb::WatchResponse r = Response(id, rev);
  r.set_created(true);
  queue_.push_back(std::move(r));
  watchers_.emplace(id, std::move(w));
  cv_.Signal();
}

void WatchStream::Cancel(int64_t watch_id) {
  absl::MutexLock l(&hub_->mu_);
  auto it = watchers_.find(watch_id);
  if (it == watchers_.end()) return;
  if (it->second.prev_kv) --hub_->prev_kv_watchers_;
  watchers_.erase(it);
  etcdserverpb::WatchResponse r = Response(watch_id, hub_->revision_);
  r.set_canceled(true);
  queue_.push_back(std::move(r));
  cv_.Signal();
}

void WatchStream::RequestProgress() {
  absl::MutexLock l(&hub_->mu_);
  queue_.push_back(Response(-1, hub_->revision_));
  cv_.Signal();
}

void WatchStream::Close() {
  absl::MutexLock l(&hub_->mu_);
  closed_ = true;
  cv_.Signal();
}

bool WatchStream::closed() const {
  absl::MutexLock l(&hub_->mu_);
  return closed_;
}

void WatchStream::RouteLocked(int64_t rev, const std::vector<mvccpb::Event>& events) {
  for (auto& [id, w] : watchers_) {
    if (!w.synced || rev < w.next_rev) continue;
    if (rev > w.next_rev || queue_.size() >= hub_->options_.max_stream_queue) {
      // The client is slow (its queue is full): never block apply; the
      // writer catches up from history. (A skipped revision cannot happen
      // while synced, but history would be the safe answer to it too.)
      w.synced = false;
      cv_.Signal();
      continue;
    }
    std::vector<mvccpb::Event> mine;
    for (const mvccpb::Event& e : events) {
      if (!InRange(e.kv().key(), w.key, w.range_end)) continue;
      if (e.type() == mvccpb::Event::PUT && w.no_put) continue;
      if (e.type() == mvccpb::Event::DELETE && w.no_delete) continue;
      mine.push_back(e);
      if (!w.prev_kv) mine.back().clear_prev_kv();
    }
    w.next_rev = rev + 1;
    if (!mine.empty()) PushLocked(w, rev, std::move(mine));
  }
}

void WatchStream::PushLocked(Watcher& w, int64_t rev, std::vector<mvccpb::Event> events) {
  w.active = true;
  const size_t limit = hub_->options_.fragment_bytes;
  etcdserverpb::WatchResponse r = Response(w.id, rev);
  size_t bytes = 0;
  for (mvccpb::Event& e : events) {
    const size_t n = e.ByteSizeLong();
    if (w.fragment && bytes > 0 && bytes + n > limit) {
      r.set_fragment(true);
      queue_.push_back(std::move(r));
      r = Response(w.id, rev);
      bytes = 0;
    }
    bytes += n;
    *r.add_events() = std::move(e);
  }
  queue_.push_back(std::move(r));
  cv_.Signal();
}

bool WatchStream::CatchUpOne() {
  Watcher w;
  {
    absl::MutexLock l(&hub_->mu_);
    auto it = std::find_if(watchers_.begin(), watchers_.end(),
                           [](const auto& p) { return !p.second.synced; });
    if (it == watchers_.end()) return false;
    w = it->second;
  }
  // Read without the hub's mutex: apply goes on meanwhile.
  absl::StatusOr<EventBatch> batch = hub_->kv_->ReadEvents(
      w.key, w.range_end, w.next_rev, 0, w.prev_kv, hub_->options_.max_catch_up_events);
  absl::MutexLock l(&hub_->mu_);
  auto it = watchers_.find(w.id);
  // Canceled, or changed by another catch-up meanwhile: look again later.
  if (it == watchers_.end() || it->second.next_rev != w.next_rev || it->second.synced) return true;
  Watcher& cur = it->second;
  if (!batch.ok()) {
    if (IsKvError(batch.status(), ErrCompacted())) {
      // As etcd: header revision 0, no reason, compact_revision set
      // (clients turn that into ErrCompacted).
      etcdserverpb::WatchResponse r = Response(cur.id, 0);
      r.set_canceled(true);
      r.set_compact_revision(hub_->kv_->CompactRevision());
      if (cur.prev_kv) --hub_->prev_kv_watchers_;
      watchers_.erase(it);
      queue_.push_back(std::move(r));
    }
    // Other read errors: retried at the next call.
    return true;
  }
  std::vector<mvccpb::Event> events;
  for (mvccpb::Event& e : batch->events) {
    if (e.type() == mvccpb::Event::PUT && cur.no_put) continue;
    if (e.type() == mvccpb::Event::DELETE && cur.no_delete) continue;
    events.push_back(std::move(e));
  }
  // As etcd's syncWatchers: the batch travels in one response whose
  // header carries the store's revision (clients see it, e.g. etcdctl's
  // -w json and ETCD_WATCH_REVISION).
  if (!events.empty()) {
    const int64_t rev = std::max(hub_->revision_, events.back().kv().mod_revision());
    PushLocked(cur, rev, std::move(events));
  }
  cur.next_rev = std::max(cur.next_rev, batch->next_revision);
  // Revisions up to the hub's have all been routed; once the watcher has
  // everything up to there, routing takes over (no gap: RouteLocked hands
  // over revision_+1 next; no duplicate: it skips revisions below next_rev).
  if (cur.next_rev > hub_->revision_) cur.synced = true;
  return true;
}

void WatchStream::ProgressTickLocked() {
  for (auto& [id, w] : watchers_) {
    if (w.progress_notify && !w.active && w.synced) queue_.push_back(Response(id, hub_->revision_));
    w.active = false;
  }
  next_progress_ = absl::Now() + hub_->options_.progress_interval;
}

bool WatchStream::Next(etcdserverpb::WatchResponse* out, absl::Time deadline) {
  while (true) {
    {
      absl::MutexLock l(&hub_->mu_);
      if (closed_) return false;
      if (absl::Now() >= next_progress_) ProgressTickLocked();
      if (!queue_.empty()) {
        *out = std::move(queue_.front());
        queue_.pop_front();
        return true;
      }
    }
    if (CatchUpOne()) continue;
    absl::MutexLock l(&hub_->mu_);
    while (!closed_ && queue_.empty() && !HasUnsyncedLocked()) {
      const absl::Time wake = std::min(deadline, next_progress_);
      if (cv_.WaitWithDeadline(&hub_->mu_, wake)) break;  // timed out
    }
    if (!closed_ && queue_.empty() && absl::Now() >= deadline) return false;
  }
}

bool WatchStream::HasUnsyncedLocked() const {
  for (const auto& [id, w] : watchers_) {
    if (!w.synced) return true;
  }
  return false;
}

}  // namespace arbiter::kv
