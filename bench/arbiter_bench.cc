// arbiter-bench: a load generator that speaks the etcd v3 gRPC API, so it
// drives Arbiter and etcd identically.
//
//   arbiter-bench put     [--key-size 8] [--val-size 256] [--key-space 50000] [--sequential-keys]
//   arbiter-bench range   [--consistency l|s] [--key-space N]
//   arbiter-bench txn-put (compare-and-swap on a key's mod revision)
//   arbiter-bench mixed   [--read-ratio 0.9]
//   arbiter-bench failover --kill-pid PID   (steady puts; reports the gap after the kill)
//   arbiter-bench watch   --watchers N [--streams S] --rate R   (fan-out; stream_workloads.cc)
//   arbiter-bench lease-keepalive --leases N [--ttl 60] [--window 256]   (stream_workloads.cc)
// Common flags: --endpoints a,b,c --conns 1 --clients 1 --total 10000 --max-time 30s
//               [--rate N] (open loop, total ops/s) [--server-pids p,q,r] [--json]
//               [--client h2|grpc] (closed loops: lean HTTP/2 client or gRPC's)
//
// Clients run closed loops (or paced by --rate) over --conns HTTP/2
// connections spread across the endpoints; every call has a deadline.
// Reports throughput, latency percentiles (p50, p90, p99, p99.9, max) from a
// log-linear histogram, errors by gRPC code and, given the servers' PIDs,
// the CPU time they used and their threads' context switches over the
// measured phase.
//
// This file: the paced and failover key-value workloads and the command
// line; kv_h2.cc and kv_async.cc: the closed-loop key-value workloads.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_common.h"
#include "grpcpp/grpcpp.h"
#include "proto/rpc.grpc.pb.h"
#include "server/histogram.h"

namespace arbiter::bench {
namespace {

struct Stats {
  std::mutex mu;
  arbiter::server::Histogram micros;
  std::map<std::string, int64_t> errors;
  int64_t ok = 0;
  // Failover: the first put both sent and acknowledged after the kill.
  absl::Time first_ok_after_kill = absl::InfiniteFuture();
};

std::string Key(const Options& o, int64_t i) {
  std::string k = absl::StrFormat("%0*d", o.key_size, i % o.key_space);
  if (static_cast<int>(k.size()) > o.key_size) k = k.substr(k.size() - o.key_size);
  return k;
}

// One operation of the workload; returns the call's status.
grpc::Status RunOp(const Options& o, etcdserverpb::KV::Stub* kv, int64_t n, absl::BitGen& rng,
                   const std::string& value) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const int64_t idx = o.sequential ? n : absl::Uniform<int64_t>(rng, 0, o.key_space);
  std::string workload = o.workload;
  if (workload == "mixed") workload = absl::Bernoulli(rng, o.read_ratio) ? "range" : "put";
  if (workload == "put" || workload == "failover") {
    etcdserverpb::PutRequest req;
    req.set_key(Key(o, idx));
    req.set_value(value);
    etcdserverpb::PutResponse resp;
    return kv->Put(&ctx, req, &resp);
  }
  if (workload == "range") {
    etcdserverpb::RangeRequest req;
    req.set_key(Key(o, idx));
    req.set_serializable(o.consistency == "s");
    etcdserverpb::RangeResponse resp;
    return kv->Range(&ctx, req, &resp);
  }
  // txn-put: put only if the key's mod revision is what a read just saw
  // (a compare-and-swap, as coordination clients do).
  etcdserverpb::RangeRequest get;
  get.set_key(Key(o, idx));
  get.set_serializable(true);
  etcdserverpb::RangeResponse got;
  grpc::Status s = kv->Range(&ctx, get, &got);
  if (!s.ok()) return s;
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* c = txn.add_compare();
  c->set_key(get.key());
  c->set_target(etcdserverpb::Compare::MOD);
  c->set_result(etcdserverpb::Compare::EQUAL);
  c->set_mod_revision(got.kvs_size() > 0 ? got.kvs(0).mod_revision() : 0);
  etcdserverpb::PutRequest* p = txn.add_success()->mutable_request_put();
  p->set_key(get.key());
  p->set_value(value);
  etcdserverpb::TxnResponse tr;
  return kv->Txn(&ctx2, txn, &tr);
}

}  // namespace

int RunKv(const Options& o) {
  // Closed loops need no thread per client (kv_async.cc); paced loops and
  // the failover's per-client bookkeeping keep the blocking clients.
  if (o.rate <= 0 && o.workload != "failover") {
    return o.client == "grpc" ? RunKvAsync(o) : RunKvH2(o);
  }
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (const auto& ch : MakeChannels(o)) stubs.push_back(etcdserverpb::KV::NewStub(ch));
  const std::string value(o.val_size, 'v');
  Stats stats;
  std::atomic<int64_t> next{0};
  const ServerUsage usage0 = SampleServers(o.server_pids);
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(o.max_time_s);
  // Unix nanoseconds of the kill; 0 before it.
  std::atomic<int64_t> kill_ns{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      absl::BitGen rng;
      etcdserverpb::KV::Stub* kv = stubs[c % stubs.size()].get();
      arbiter::server::Histogram local;
      std::map<std::string, int64_t> errors;
      int64_t ok = 0;
      absl::Time first_after_kill = absl::InfiniteFuture();
      while (true) {
        const int64_t n = next.fetch_add(1);
        if (n >= o.total || absl::Now() >= end) break;
        if (o.rate > 0) {
          // Open loop: operation n is due at start + n / rate.
          const absl::Time due = start + absl::Seconds(static_cast<double>(n) / o.rate);
          const absl::Duration wait = due - absl::Now();
          if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
        }
        const absl::Time t0 = absl::Now();
        grpc::Status s = RunOp(o, kv, n, rng, value);
        const absl::Time t1 = absl::Now();
        if (s.ok()) {
          ++ok;
          local.Record(static_cast<uint64_t>(absl::ToInt64Microseconds(t1 - t0)));
          // The gap ends with the first put both sent and acknowledged
          // after the kill (one sent before may have committed before).
          const int64_t k = kill_ns.load();
          if (k != 0 && absl::ToUnixNanos(t0) > k && t1 < first_after_kill) first_after_kill = t1;
        } else {
          ++errors[CodeName(s.error_code())];
        }
      }
      std::lock_guard<std::mutex> l(stats.mu);
      stats.micros.Merge(local);
      stats.ok += ok;
      for (auto& [k, v] : errors) stats.errors[k] += v;
      stats.first_ok_after_kill = std::min(stats.first_ok_after_kill, first_after_kill);
    });
  }
  if (o.workload == "failover") {
    absl::SleepFor(absl::Seconds(o.kill_after_s));
    if (kill(o.kill_pid, SIGKILL) != 0) std::fprintf(stderr, "kill %d failed\n", o.kill_pid);
    kill_ns = absl::ToUnixNanos(absl::Now());
  }
  for (auto& t : threads) t.join();
  Report r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  RecordServerUsage(o, usage0, &r);
  r.ops = stats.ok;
  r.micros = stats.micros;
  r.errors = stats.errors;
  double gap_ms = -1;
  if (o.workload == "failover" && stats.first_ok_after_kill != absl::InfiniteFuture()) {
    gap_ms = absl::ToDoubleMilliseconds(stats.first_ok_after_kill - absl::FromUnixNanos(kill_ns));
  }
  if (o.workload == "failover")
    r.extra.emplace_back("failover_gap_ms", absl::StrFormat("%.1f", gap_ms));
  PrintReport(o, r);
  return stats.ok > 0 ? 0 : 1;
}

}  // namespace arbiter::bench

int main(int argc, char** argv) {
  using arbiter::bench::Options;
  // The load generator shares the CPUs with the servers it measures: no
  // deadlock bookkeeping on every lock (Debian's abseil has it on), as in
  // arbiterd.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"arbiter-bench: etcd v3 API load generator"};
  Options o;
  std::string endpoints = "127.0.0.1:2379";
  std::vector<int> server_pids;
  app.add_option("--endpoints", endpoints, "comma-separated host:port list");
  app.add_option("--conns", o.conns, "HTTP/2 connections")->check(CLI::PositiveNumber);
  app.add_option("--clients", o.clients, "concurrent clients")->check(CLI::PositiveNumber);
  app.add_option("--total", o.total, "operations (watch: puts) at most")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-time", o.max_time_s, "seconds at most")->check(CLI::PositiveNumber);
  app.add_option("--rate", o.rate,
                 "open loop: operations per second in total (0: closed loop; watch: puts/s, "
                 "default 100)");
  app.add_option("--key-size", o.key_size)->check(CLI::Range(1, 1 << 20));
  app.add_option("--val-size", o.val_size)->check(CLI::Range(0, 1 << 20));
  app.add_option("--key-space", o.key_space)->check(CLI::PositiveNumber);
  app.add_flag("--sequential-keys", o.sequential);
  app.add_option("--consistency", o.consistency)->check(CLI::IsMember({"l", "s"}));
  app.add_option("--read-ratio", o.read_ratio)->check(CLI::Range(0.0, 1.0));
  app.add_option("--kill-pid", o.kill_pid, "failover: the leader's PID");
  app.add_option("--kill-after", o.kill_after_s, "failover: seconds of load before the kill");
  app.add_option("--watchers", o.watchers, "watch: watchers on one prefix")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--streams", o.streams, "watch: Watch streams (0: one per connection)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--leases", o.leases, "lease-keepalive: leases kept alive")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--ttl", o.ttl_s, "lease-keepalive: TTL of the leases (s)")
      ->check(CLI::Range(5, 1000000));
  app.add_option("--window", o.window, "lease-keepalive: keep-alives outstanding at most")
      ->check(CLI::PositiveNumber);
  app.add_option("--server-pids", server_pids,
                 "comma-separated PIDs of the servers: report their CPU time")
      ->delimiter(',');
  app.add_flag("--json", o.json, "one JSON object on stdout");
  app.add_option("--client", o.client,
                 "closed-loop put/range/txn-put/mixed: h2 (lean HTTP/2 client) or grpc "
                 "(gRPC's C++ client)")
      ->check(CLI::IsMember({"h2", "grpc"}));
  app.require_subcommand(1, 1);
  app.fallthrough();
  for (const char* w :
       {"put", "range", "txn-put", "mixed", "failover", "watch", "lease-keepalive"}) {
    app.add_subcommand(w, std::string(w) + " workload");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.workload = app.get_subcommands().front()->get_name();
  o.server_pids = server_pids;
  o.endpoints = absl::StrSplit(endpoints, ',', absl::SkipEmpty());
  for (std::string& e : o.endpoints) {
    if (e.rfind("http://", 0) == 0) e = e.substr(7);
  }
  if (o.endpoints.empty()) {
    std::fprintf(stderr, "no endpoints\n");
    return 2;
  }
  if (o.workload == "failover" && o.kill_pid <= 0) {
    std::fprintf(stderr, "failover needs --kill-pid\n");
    return 2;
  }
  if (o.workload == "watch") return arbiter::bench::RunWatch(o);
  if (o.workload == "lease-keepalive") {
    if (o.window > o.leases) o.window = o.leases;
    return arbiter::bench::RunLeaseKeepAlive(o);
  }
  return arbiter::bench::RunKv(o);
}
