// arbiter-bench: a load generator that speaks the etcd v3 gRPC API, so it
// drives Arbiter and etcd identically.
//
//   arbiter-bench put     [--key-size 8] [--val-size 256] [--key-space 50000] [--sequential-keys]
//   arbiter-bench range   [--consistency l|s] [--key-space N]
//   arbiter-bench txn-put (compare-and-swap on a key's mod revision)
//   arbiter-bench mixed   [--read-ratio 0.9]
//   arbiter-bench failover --kill-pid PID   (steady puts; reports the gap after the kill)
// Common flags: --endpoints a,b,c --conns 1 --clients 1 --total 10000 --max-time 30s
//               [--rate N] (open loop, total ops/s) [--json]
//
// Clients run closed loops (or paced by --rate) over --conns HTTP/2
// connections spread across the endpoints; every call has a deadline.
// Reports throughput, latency percentiles (p50, p90, p99, p99.9, max) from a
// log-linear histogram, and errors by gRPC code.
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
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/rpc.grpc.pb.h"
#include "server/histogram.h"

namespace {

struct Options {
  std::string workload;
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  int conns = 1;
  int clients = 1;
  int64_t total = 10000;
  double max_time_s = 30;
  double rate = 0;
  int key_size = 8;
  int val_size = 256;
  int64_t key_space = 50000;
  bool sequential = false;
  std::string consistency = "l";
  double read_ratio = 0.9;
  int kill_pid = 0;
  double kill_after_s = 2;
  bool json = false;
};

struct Stats {
  std::mutex mu;
  arbiter::server::Histogram micros;
  std::map<std::string, int64_t> errors;
  int64_t ok = 0;
  // Failover: when the last acknowledged put before the first failure,
  // and the first acknowledged put after the kill, happened.
  absl::Time first_ok_after_kill = absl::InfiniteFuture();
};

std::string Key(const Options& o, int64_t i) {
  std::string k = absl::StrFormat("%0*d", o.key_size, i % o.key_space);
  if (static_cast<int>(k.size()) > o.key_size) k = k.substr(k.size() - o.key_size);
  return k;
}

std::string CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i < 17 ? kNames[i] : absl::StrCat("CODE_", i);
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

int Run(const Options& o) {
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int i = 0; i < o.conns; ++i) {
    grpc::ChannelArguments args;
    // A distinct argument per channel: one HTTP/2 connection each.
    args.SetInt("arbiter-bench.conn", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto ch = grpc::CreateCustomChannel(o.endpoints[i % o.endpoints.size()],
                                        grpc::InsecureChannelCredentials(), args);
    stubs.push_back(etcdserverpb::KV::NewStub(ch));
  }
  const std::string value(o.val_size, 'v');
  Stats stats;
  std::atomic<int64_t> next{0};
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
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  const double tput = static_cast<double>(stats.ok) / elapsed;
  const auto ms = [&](double p) { return stats.micros.Percentile(p) / 1000.0; };
  double gap_ms = -1;
  if (o.workload == "failover" && stats.first_ok_after_kill != absl::InfiniteFuture()) {
    gap_ms = absl::ToDoubleMilliseconds(stats.first_ok_after_kill - absl::FromUnixNanos(kill_ns));
  }
  if (o.json) {
    std::string errs;
    for (const auto& [k, v] : stats.errors) {
      absl::StrAppend(&errs, errs.empty() ? "" : ",", "\"", k, "\":", v);
    }
    std::printf(
        "{\"workload\":\"%s\",\"clients\":%d,\"conns\":%d,\"ops\":%lld,\"seconds\":%.3f,"
        "\"ops_per_sec\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"failover_gap_ms\":%.1f,\"errors\":{%s}}\n",
        o.workload.c_str(), o.clients, o.conns, static_cast<long long>(stats.ok), elapsed, tput,
        ms(0.5), ms(0.9), ms(0.99), ms(0.999), stats.micros.max() / 1000.0, gap_ms, errs.c_str());
  } else {
    std::printf("%s: %lld ops in %.2f s = %.0f ops/s (clients %d, conns %d)\n", o.workload.c_str(),
                static_cast<long long>(stats.ok), elapsed, tput, o.clients, o.conns);
    std::printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", ms(0.5),
                ms(0.9), ms(0.99), ms(0.999), stats.micros.max() / 1000.0);
    for (const auto& [k, v] : stats.errors) {
      std::printf("errors %s: %lld\n", k.c_str(), static_cast<long long>(v));
    }
    if (gap_ms >= 0) std::printf("failover gap: %.1f ms\n", gap_ms);
  }
  return stats.ok > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"arbiter-bench: etcd v3 API load generator"};
  Options o;
  std::string endpoints = "127.0.0.1:2379";
  app.add_option("--endpoints", endpoints, "comma-separated host:port list");
  app.add_option("--conns", o.conns, "HTTP/2 connections")->check(CLI::PositiveNumber);
  app.add_option("--clients", o.clients, "concurrent clients")->check(CLI::PositiveNumber);
  app.add_option("--total", o.total, "operations at most")->check(CLI::PositiveNumber);
  app.add_option("--max-time", o.max_time_s, "seconds at most")->check(CLI::PositiveNumber);
  app.add_option("--rate", o.rate, "open loop: operations per second in total (0: closed loop)");
  app.add_option("--key-size", o.key_size)->check(CLI::Range(1, 1 << 20));
  app.add_option("--val-size", o.val_size)->check(CLI::Range(0, 1 << 20));
  app.add_option("--key-space", o.key_space)->check(CLI::PositiveNumber);
  app.add_flag("--sequential-keys", o.sequential);
  app.add_option("--consistency", o.consistency)->check(CLI::IsMember({"l", "s"}));
  app.add_option("--read-ratio", o.read_ratio)->check(CLI::Range(0.0, 1.0));
  app.add_option("--kill-pid", o.kill_pid, "failover: the leader's PID");
  app.add_option("--kill-after", o.kill_after_s, "failover: seconds of load before the kill");
  app.add_flag("--json", o.json, "one JSON object on stdout");
  app.require_subcommand(1, 1);
  app.fallthrough();
  for (const char* w : {"put", "range", "txn-put", "mixed", "failover"}) {
    app.add_subcommand(w, std::string(w) + " workload");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.workload = app.get_subcommands().front()->get_name();
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
  return Run(o);
}
