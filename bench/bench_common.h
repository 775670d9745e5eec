// What arbiter-bench's workloads share: the options, the connections, the
// servers' CPU time read from /proc, and the report (text or one JSON
// object on stdout).
//
// Thread safety: Options and Report are values filled by one thread; the
// functions are pure or read only /proc.
#ifndef ARBITER_BENCH_BENCH_COMMON_H_
#define ARBITER_BENCH_BENCH_COMMON_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "server/histogram.h"

namespace arbiter::bench {

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
  // watch: watchers on one prefix, spread over `streams` Watch streams
  // (0: one per connection).
  int watchers = 100;
  int streams = 0;
  // lease-keepalive: leases granted (by `clients` threads), their TTL, and
  // how many keep-alives may be outstanding on the one stream.
  int leases = 1000;
  int64_t ttl_s = 60;
  int window = 256;
  // Members whose CPU time (utime + stime) the report covers, over the
  // measured phase only.
  std::vector<int> server_pids;
  bool json = false;
  // The client of the closed-loop key-value workloads: "h2" (kv_h2.cc) or
  // "grpc" (gRPC's callback API, kv_async.cc).
  std::string client = "h2";
};

// One channel (one HTTP/2 connection) per connection asked for, spread
// round-robin over the endpoints.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const Options& o);

// gRPC's name for a status code ("DEADLINE_EXCEEDED").
std::string CodeName(grpc::StatusCode c);

// Sum of user and system CPU seconds of the processes; -1 if one of them
// cannot be read (it exited).
double ProcessCpuSeconds(const std::vector<int>& pids);

// Context switches (voluntary and involuntary) of the processes' live
// threads; -1 if one of them cannot be read. Each time a thread blocks to
// hand work to another, both pay one: a measure of the thread hand-offs
// per operation, which on a VM cost more than the work they carry.
int64_t ProcessContextSwitches(const std::vector<int>& pids);

// The servers' CPU time and context switches at one moment.
struct ServerUsage {
  double cpu_s = -1;
  int64_t switches = -1;
};
ServerUsage SampleServers(const std::vector<int>& pids);

// Unix time in nanoseconds from the system clock (comparable across
// processes on one machine).
int64_t NowNanos();

struct Report {
  int64_t ops = 0;  // operations (or events, keep-alives) counted
  double seconds = 0;
  // Latency of each counted operation, in microseconds.
  arbiter::server::Histogram micros;
  std::map<std::string, int64_t> errors;
  // CPU seconds the server processes used over the measured phase; < 0 if
  // not measured.
  double server_cpu_s = -1;
  // Context switches of the servers' threads over the measured phase; < 0
  // if not measured.
  int64_t server_switches = -1;
  // Workload-specific fields, as (name, JSON value) in print order.
  std::vector<std::pair<std::string, std::string>> extra;
};

// Fills r's server usage from a sample taken when the measured phase began
// and one taken now (nothing if no --server-pids or a sample failed).
void RecordServerUsage(const Options& o, const ServerUsage& begin, Report* r);

// Prints the report (one JSON object with --json) to stdout.
void PrintReport(const Options& o, const Report& r);

// The workloads; each returns the process exit code (0: success).
int RunKv(const Options& o);  // put, range, txn-put, mixed, failover
// The closed-loop put, range, txn-put and mixed, on gRPC's callback API.
int RunKvAsync(const Options& o);
// The same workloads on a lean HTTP/2 client (nghttp2, one thread).
int RunKvH2(const Options& o);
int RunWatch(const Options& o);
int RunLeaseKeepAlive(const Options& o);

}  // namespace arbiter::bench

#endif  // ARBITER_BENCH_BENCH_COMMON_H_
