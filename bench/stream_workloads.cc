// arbiter-bench's streaming workloads:
//
// watch: --watchers watchers on one fresh prefix, spread over --streams
// Watch streams (round-robin over the connections), then puts under the
// prefix at a fixed --rate (by --clients threads) until --total or
// --max-time. Each put's value starts with its send time (Unix ns), so the
// latency recorded is put-sent to event-received, per watcher and event.
// Once the puts end it waits (with a deadline) for every watcher to have
// every acknowledged put, and checks each watcher saw exactly those
// revisions in increasing order. Reports events/s delivered over all
// watchers (from the first put to the last event) and "verified".
//
// lease-keepalive: grants --leases leases (TTL --ttl, by --clients
// threads), then keeps them alive round-robin over one LeaseKeepAlive
// stream for --max-time with at most --window keep-alives outstanding;
// reports keep-alives/s and their latency, then revokes the leases.
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_common.h"
#include "proto/rpc.grpc.pb.h"

namespace arbiter::bench {
namespace {

using WatchStream =
    grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

// What one watcher received.
struct Watcher {
  int64_t events = 0;
  int64_t revision_sum = 0;
  int64_t last_revision = 0;
  bool bad = false;  // out of order, wrong key or type, or canceled
};

// One Watch stream and its reader thread. Until the reader is joined, only
// the atomics may be read by other threads.
struct StreamState {
  grpc::ClientContext ctx;
  std::unique_ptr<WatchStream> rw;
  int want = 0;  // watchers to create on this stream
  std::vector<Watcher> watchers;
  std::unordered_map<int64_t, int> by_id;
  arbiter::server::Histogram micros;
  std::map<std::string, int64_t> errors;
  std::atomic<int> created{0};
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> last_event_ns{0};
  // Set by the reader when the stream ends; `stopping` is set before the
  // run cancels the streams itself, so an earlier end is an error.
  std::atomic<bool> ended{false};
  std::atomic<bool>* stopping = nullptr;
  std::thread reader;
};

constexpr int kStampDigits = 20;

void ReadWatchStream(const std::string& prefix, StreamState* st) {
  etcdserverpb::WatchResponse resp;
  while (st->rw->Read(&resp)) {
    if (resp.created()) {
      if (resp.canceled()) {
        ++st->errors[absl::StrCat("watch refused: ", resp.cancel_reason())];
        continue;
      }
      st->by_id[resp.watch_id()] = static_cast<int>(st->watchers.size());
      st->watchers.emplace_back();
      st->created.fetch_add(1);
      continue;
    }
    auto it = st->by_id.find(resp.watch_id());
    if (it == st->by_id.end()) {
      ++st->errors["event for an unknown watch id"];
      continue;
    }
    Watcher& w = st->watchers[it->second];
    if (resp.canceled()) {
      ++st->errors[absl::StrCat("watch canceled: ", resp.cancel_reason())];
      w.bad = true;
      continue;
    }
    if (resp.events_size() == 0) continue;  // progress notification
    const int64_t now = NowNanos();
    for (const mvccpb::Event& ev : resp.events()) {
      int64_t sent = 0;
      if (ev.type() != mvccpb::Event::PUT || !absl::StartsWith(ev.kv().key(), prefix) ||
          !absl::SimpleAtoi(ev.kv().value().substr(0, kStampDigits), &sent)) {
        w.bad = true;
        continue;
      }
      st->micros.Record(static_cast<uint64_t>(std::max<int64_t>(0, now - sent) / 1000));
      const int64_t rev = ev.kv().mod_revision();
      if (rev <= w.last_revision) w.bad = true;
      w.last_revision = rev;
      w.revision_sum += rev;
      ++w.events;
    }
    st->events.fetch_add(resp.events_size());
    st->last_event_ns.store(now);
  }
  if (!st->stopping->load()) ++st->errors["watch stream ended early"];
  st->ended.store(true);
}

// Polls done() every 5 ms until it holds or the deadline passes.
template <typename F>
bool WaitFor(F done, absl::Time deadline) {
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

}  // namespace

int RunWatch(const Options& o) {
  const auto channels = MakeChannels(o);
  const int nstreams = o.streams > 0 ? o.streams : o.conns;
  const double rate = o.rate > 0 ? o.rate : 100;
  const std::string prefix = absl::StrCat("bench-watch/", NowNanos(), "/");
  std::string range_end = prefix;
  range_end.back() = static_cast<char>(range_end.back() + 1);

  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> watch_stubs;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv_stubs;
  for (const auto& ch : channels) {
    watch_stubs.push_back(etcdserverpb::Watch::NewStub(ch));
    kv_stubs.push_back(etcdserverpb::KV::NewStub(ch));
  }
  std::atomic<bool> stopping{false};
  std::vector<std::unique_ptr<StreamState>> streams;
  for (int s = 0; s < nstreams; ++s) {
    auto st = std::make_unique<StreamState>();
    st->want = o.watchers / nstreams + (s < o.watchers % nstreams ? 1 : 0);
    st->stopping = &stopping;
    st->rw = watch_stubs[s % watch_stubs.size()]->Watch(&st->ctx);
    st->reader = std::thread(ReadWatchStream, prefix, st.get());
    streams.push_back(std::move(st));
  }
  for (auto& st : streams) {
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key(prefix);
    req.mutable_create_request()->set_range_end(range_end);
    for (int i = 0; i < st->want; ++i) {
      if (!st->rw->Write(req)) break;
    }
  }
  const auto all_created = [&] {
    for (auto& st : streams) {
      if (st->created.load() < st->want && !st->ended.load()) return false;
    }
    return true;
  };
  bool created_ok = WaitFor(all_created, absl::Now() + absl::Seconds(60));
  for (auto& st : streams) created_ok = created_ok && st->created.load() == st->want;

  // Puts at a fixed rate.
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> acked_revision_sum{0};
  std::mutex put_mu;
  std::map<std::string, int64_t> put_errors;
  const ServerUsage usage0 = SampleServers(o.server_pids);
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(o.max_time_s);
  std::vector<std::thread> putters;
  for (int c = 0; created_ok && c < o.clients; ++c) {
    putters.emplace_back([&, c] {
      etcdserverpb::KV::Stub* kv = kv_stubs[c % kv_stubs.size()].get();
      while (true) {
        const int64_t n = next.fetch_add(1);
        if (n >= o.total) break;
        const absl::Time due = start + absl::Seconds(static_cast<double>(n) / rate);
        if (due >= end) break;
        const absl::Duration wait = due - absl::Now();
        if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
        etcdserverpb::PutRequest req;
        req.set_key(absl::StrCat(prefix, n));
        std::string value = absl::StrFormat("%0*d", kStampDigits, NowNanos());
        if (static_cast<int>(value.size()) < o.val_size) value.resize(o.val_size, 'v');
        req.set_value(std::move(value));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        etcdserverpb::PutResponse resp;
        grpc::Status s = kv->Put(&ctx, req, &resp);
        if (s.ok()) {
          acked.fetch_add(1);
          acked_revision_sum.fetch_add(resp.header().revision());
        } else {
          std::lock_guard<std::mutex> l(put_mu);
          ++put_errors[absl::StrCat("put ", CodeName(s.error_code()))];
        }
      }
    });
  }
  for (auto& t : putters) t.join();
  const int64_t puts = acked.load();
  // A stream that ended will deliver nothing more: not waited for.
  const auto all_delivered = [&] {
    for (auto& st : streams) {
      if (!st->ended.load() && st->events.load() < puts * st->want) return false;
    }
    return true;
  };
  WaitFor(all_delivered, absl::Now() + absl::Seconds(std::max(30.0, o.max_time_s)));
  Report r;
  // Sampled before the streams are torn down (that is not the workload).
  RecordServerUsage(o, usage0, &r);
  stopping.store(true);
  for (auto& st : streams) st->ctx.TryCancel();

  int64_t last_event_ns = 0;
  int complete = 0;
  for (auto& st : streams) {
    st->reader.join();
    st->rw->Finish();
    r.micros.Merge(st->micros);
    r.ops += st->events.load();
    last_event_ns = std::max(last_event_ns, st->last_event_ns.load());
    for (const auto& [k, v] : st->errors) r.errors[k] += v;
    for (const Watcher& w : st->watchers) {
      if (!w.bad && w.events == puts && w.revision_sum == acked_revision_sum.load()) ++complete;
    }
  }
  for (const auto& [k, v] : put_errors) r.errors[k] += v;
  if (!created_ok) ++r.errors["watchers not all created (60 s deadline, or a stream ended)"];
  r.seconds = last_event_ns > 0
                  ? static_cast<double>(last_event_ns - absl::ToUnixNanos(start)) / 1e9
                  : absl::ToDoubleSeconds(absl::Now() - start);
  // Every watcher must have every acknowledged put, and no put may have
  // failed (a failed put may or may not have been applied).
  const bool verified = created_ok && puts > 0 && put_errors.empty() && complete == o.watchers;
  r.extra = {{"watchers", absl::StrCat(o.watchers)},
             {"streams", absl::StrCat(nstreams)},
             {"puts", absl::StrCat(puts)},
             {"put_rate", absl::StrFormat("%.1f", rate)},
             {"events_expected", absl::StrCat(puts * o.watchers)},
             {"watchers_complete", absl::StrCat(complete)},
             {"verified", verified ? "true" : "false"}};
  PrintReport(o, r);
  return verified ? 0 : 1;
}

namespace {

// Grants (ids[i] == 0) or revokes (ids[i] != 0) every lease over `clients`
// threads; returns errors by kind.
std::map<std::string, int64_t> GrantOrRevoke(
    const Options& o, const std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>>& stubs,
    bool grant, std::vector<int64_t>* ids) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::map<std::string, int64_t> errors;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      etcdserverpb::Lease::Stub* lease = stubs[c % stubs.size()].get();
      for (size_t i = next.fetch_add(1); i < ids->size(); i = next.fetch_add(1)) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s;
        if (grant) {
          etcdserverpb::LeaseGrantRequest req;
          req.set_ttl(o.ttl_s);
          etcdserverpb::LeaseGrantResponse resp;
          s = lease->LeaseGrant(&ctx, req, &resp);
          if (s.ok()) (*ids)[i] = resp.id();
        } else {
          if ((*ids)[i] == 0) continue;
          etcdserverpb::LeaseRevokeRequest req;
          req.set_id((*ids)[i]);
          etcdserverpb::LeaseRevokeResponse resp;
          s = lease->LeaseRevoke(&ctx, req, &resp);
        }
        if (!s.ok()) {
          std::lock_guard<std::mutex> l(mu);
          ++errors[absl::StrCat(grant ? "grant " : "revoke ", CodeName(s.error_code()))];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

}  // namespace

int RunLeaseKeepAlive(const Options& o) {
  const auto channels = MakeChannels(o);
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> stubs;
  for (const auto& ch : channels) stubs.push_back(etcdserverpb::Lease::NewStub(ch));
  std::vector<int64_t> ids(o.leases, 0);
  const absl::Time grant_start = absl::Now();
  Report r;
  r.errors = GrantOrRevoke(o, stubs, /*grant=*/true, &ids);
  const double grant_s = absl::ToDoubleSeconds(absl::Now() - grant_start);
  std::unordered_map<int64_t, int> index;
  for (int i = 0; i < o.leases; ++i) index[ids[i]] = i;

  // Send time (Unix ns) of each lease's outstanding keep-alive; 0 if none.
  std::vector<std::atomic<int64_t>> sent_ns(o.leases);
  for (auto& s : sent_ns) s.store(0);
  absl::Mutex mu;
  int outstanding = 0;                                  // guarded by mu
  bool reader_done = false;                             // guarded by mu
  int64_t answered = 0, unexpected = 0, not_found = 0;  // the reader's until joined
  int64_t last_answer_ns = 0;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(o.max_time_s * 1000) + 30000));
  const ServerUsage usage0 = SampleServers(o.server_pids);
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(o.max_time_s);
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                           etcdserverpb::LeaseKeepAliveResponse>>
      rw;
  std::thread reader;
  if (r.errors.empty()) {
    rw = stubs[0]->LeaseKeepAlive(&ctx);
    reader = std::thread([&] {
      etcdserverpb::LeaseKeepAliveResponse resp;
      while (rw->Read(&resp)) {
        const int64_t now = NowNanos();
        auto it = index.find(resp.id());
        const int64_t sent = it == index.end() ? 0 : sent_ns[it->second].exchange(0);
        if (sent == 0) {
          ++unexpected;
        } else {
          r.micros.Record(static_cast<uint64_t>((now - sent) / 1000));
          if (resp.ttl() <= 0) ++not_found;
          ++answered;
          last_answer_ns = now;
        }
        absl::MutexLock l(&mu);
        --outstanding;
      }
      absl::MutexLock l(&mu);
      reader_done = true;
    });
    const auto room = [&]() { return outstanding < o.window || reader_done; };
    int i = 0;
    etcdserverpb::LeaseKeepAliveRequest req;
    while (absl::Now() < end) {
      if (!mu.LockWhenWithDeadline(absl::Condition(&room), end) || reader_done) {
        mu.Unlock();
        break;
      }
      ++outstanding;
      mu.Unlock();
      // The next lease without a keep-alive in flight (window <= leases).
      while (sent_ns[i].load() != 0) i = (i + 1) % o.leases;
      sent_ns[i].store(NowNanos());
      req.set_id(ids[i]);
      i = (i + 1) % o.leases;
      if (!rw->Write(req)) break;
    }
    rw->WritesDone();
    const auto drained = [&]() { return outstanding <= 0 || reader_done; };
    mu.LockWhenWithDeadline(absl::Condition(&drained), absl::Now() + absl::Seconds(10));
    mu.Unlock();
    ctx.TryCancel();
    reader.join();
    rw->Finish();
  }
  RecordServerUsage(o, usage0, &r);
  r.ops = answered;
  r.seconds = last_answer_ns > 0
                  ? static_cast<double>(last_answer_ns - absl::ToUnixNanos(start)) / 1e9
                  : absl::ToDoubleSeconds(absl::Now() - start);
  if (unexpected > 0) r.errors["unexpected keep-alive response"] += unexpected;
  if (not_found > 0) r.errors["lease not found (TTL <= 0)"] += not_found;
  const auto revoke_errors = GrantOrRevoke(o, stubs, /*grant=*/false, &ids);
  for (const auto& [k, v] : revoke_errors) r.errors[k] += v;
  r.extra = {{"leases", absl::StrCat(o.leases)},
             {"window", absl::StrCat(o.window)},
             {"grant_seconds", absl::StrFormat("%.2f", grant_s)}};
  PrintReport(o, r);
  return answered > 0 && r.errors.empty() ? 0 : 1;
}

}  // namespace arbiter::bench
