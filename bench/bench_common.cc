#include "bench/bench_common.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace arbiter::bench {

std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const Options& o) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < o.conns; ++i) {
    grpc::ChannelArguments args;
    // A distinct argument per channel: one HTTP/2 connection each.
    args.SetInt("arbiter-bench.conn", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    out.push_back(grpc::CreateCustomChannel(o.endpoints[i % o.endpoints.size()],
                                            grpc::InsecureChannelCredentials(), args));
  }
  return out;
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

double ProcessCpuSeconds(const std::vector<int>& pids) {
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  double total = 0;
  for (int pid : pids) {
    std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string stat = ss.str();
    // The command name (field 2) is in parentheses and may hold spaces;
    // fields from the state (3) on follow the last ')'.
    const size_t paren = stat.rfind(')');
    if (!f || paren == std::string::npos) return -1;
    std::vector<std::string> fields =
        absl::StrSplit(stat.substr(paren + 2), ' ', absl::SkipEmpty());
    int64_t utime = 0, stime = 0;
    // utime and stime are fields 14 and 15: 11 and 12 after the state.
    if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
        !absl::SimpleAtoi(fields[12], &stime)) {
      return -1;
    }
    total += static_cast<double>(utime + stime) / tick;
  }
  return total;
}

int64_t ProcessContextSwitches(const std::vector<int>& pids) {
  int64_t total = 0;
  for (int pid : pids) {
    const std::filesystem::path tasks = absl::StrCat("/proc/", pid, "/task");
    std::error_code ec;
    std::filesystem::directory_iterator it(tasks, ec);
    if (ec) return -1;
    for (const auto& task : it) {
      // A thread that exits meanwhile is skipped (its switches are lost).
      std::ifstream f(task.path() / "status");
      std::string line;
      while (std::getline(f, line)) {
        if (!absl::StartsWith(line, "voluntary_ctxt_switches:") &&
            !absl::StartsWith(line, "nonvoluntary_ctxt_switches:")) {
          continue;
        }
        int64_t n = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)), &n)) {
          total += n;
        }
      }
    }
  }
  return total;
}

ServerUsage SampleServers(const std::vector<int>& pids) {
  if (pids.empty()) return {};
  return {ProcessCpuSeconds(pids), ProcessContextSwitches(pids)};
}

void RecordServerUsage(const Options& o, const ServerUsage& begin, Report* r) {
  if (o.server_pids.empty()) return;
  const ServerUsage end = SampleServers(o.server_pids);
  if (begin.cpu_s >= 0 && end.cpu_s >= 0) r->server_cpu_s = end.cpu_s - begin.cpu_s;
  if (begin.switches >= 0 && end.switches >= 0) r->server_switches = end.switches - begin.switches;
}

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

double SelfCpuSeconds() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return -1;
  const auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

}  // namespace

void PrintReport(const Options& o, const Report& r) {
  // The load generator's own CPU over its whole run: if it nears the
  // elapsed time times the cores, the client is what limits the figures.
  const double client_cpu_s = SelfCpuSeconds();
  const double tput = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
  const auto ms = [&](double p) { return r.micros.Percentile(p) / 1000.0; };
  const double cpu_ms_per_op =
      r.server_cpu_s >= 0 && r.ops > 0 ? r.server_cpu_s * 1000.0 / static_cast<double>(r.ops) : -1;
  const double switches_per_op =
      r.server_switches >= 0 && r.ops > 0 ? static_cast<double>(r.server_switches) / r.ops : -1;
  if (o.json) {
    std::string errs;
    for (const auto& [k, v] : r.errors) {
      absl::StrAppend(&errs, errs.empty() ? "" : ",", "\"", k, "\":", v);
    }
    std::string extra;
    for (const auto& [k, v] : r.extra) absl::StrAppend(&extra, ",\"", k, "\":", v);
    std::printf(
        "{\"workload\":\"%s\",\"clients\":%d,\"conns\":%d,\"ops\":%lld,\"seconds\":%.3f,"
        "\"ops_per_sec\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"server_cpu_s\":%.2f,\"server_cpu_ms_per_op\":%.4f,"
        "\"server_switches_per_op\":%.2f,\"client_cpu_s\":%.2f%s,\"errors\":{%s}}\n",
        o.workload.c_str(), o.clients, o.conns, static_cast<long long>(r.ops), r.seconds, tput,
        ms(0.5), ms(0.9), ms(0.99), ms(0.999), r.micros.max() / 1000.0, r.server_cpu_s,
        cpu_ms_per_op, switches_per_op, client_cpu_s, extra.c_str(), errs.c_str());
  } else {
    std::printf("%s: %lld ops in %.2f s = %.0f ops/s (clients %d, conns %d)\n", o.workload.c_str(),
                static_cast<long long>(r.ops), r.seconds, tput, o.clients, o.conns);
    std::printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", ms(0.5),
                ms(0.9), ms(0.99), ms(0.999), r.micros.max() / 1000.0);
    if (r.server_cpu_s >= 0) {
      std::printf("server CPU: %.2f s (%.4f ms per op)\n", r.server_cpu_s, cpu_ms_per_op);
    }
    if (r.server_switches >= 0) {
      std::printf("server context switches: %lld (%.1f per op)\n",
                  static_cast<long long>(r.server_switches), switches_per_op);
    }
    std::printf("client CPU: %.2f s\n", client_cpu_s);
    for (const auto& [k, v] : r.extra) std::printf("%s: %s\n", k.c_str(), v.c_str());
    for (const auto& [k, v] : r.errors) {
      std::printf("errors %s: %lld\n", k.c_str(), static_cast<long long>(v));
    }
  }
  std::fflush(stdout);
}

}  // namespace arbiter::bench
