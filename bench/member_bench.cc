// Group commit under concurrent proposals: a 3-member embedded cluster on
// the real disk (fsync on), N client threads each proposing small commands
// in a closed loop through the leader for a fixed time. Reports proposals
// per second with their latency, and on the leader: synced saves per second,
// entries per synced save (how many proposals share one fsync) and the
// p50/p99 of one save.
//
//   member_bench [--seconds S] [--clients 1,8,64] [--dir /path]
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/embedded_cluster.h"
#include "server/histogram.h"

namespace arbiter::server {
namespace {

struct Result {
  int clients = 0;
  double proposals_per_sec = 0;
  uint64_t p50_us = 0, p99_us = 0;
  double synced_saves_per_sec = 0;
  double entries_per_synced_save = 0;
  uint64_t save_p50_us = 0, save_p99_us = 0;
  uint64_t errors = 0;
};

Result Run(int clients, double seconds, const std::string& dir) {
  EmbeddedClusterOptions o;
  o.storage = EmbeddedClusterOptions::Storage::kTempDir;
  o.base_dir = dir;
  o.logger = raft::DiscardLogger();
  auto cluster = EmbeddedCluster::Start(o);
  if (!cluster.ok()) {
    std::fprintf(stderr, "start: %s\n", cluster.status().ToString().c_str());
    std::exit(1);
  }
  auto leader = (*cluster)->WaitForLeader(absl::Now() + absl::Seconds(10));
  if (!leader.ok()) {
    std::fprintf(stderr, "no leader\n");
    std::exit(1);
  }
  Member* m = (*cluster)->member(*leader);
  const PersistStats before = m->persist_stats();
  absl::Mutex mu;
  Histogram latency;
  std::atomic<uint64_t> done{0}, errors{0};
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Histogram local;
      for (uint64_t i = 0; absl::Now() < end; ++i) {
        const absl::Time t0 = absl::Now();
        auto r =
            m->Propose(absl::StrCat("k", c, "-", i % 1000, "=value-", i), end + absl::Seconds(5));
        if (!r.ok()) {
          errors.fetch_add(1);
          continue;
        }
        local.Record(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - t0)));
        done.fetch_add(1);
      }
      absl::MutexLock l(&mu);
      latency.Merge(local);
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  const PersistStats after = m->persist_stats();
  Result r;
  r.clients = clients;
  r.proposals_per_sec = static_cast<double>(done.load()) / elapsed;
  r.p50_us = latency.Percentile(0.5);
  r.p99_us = latency.Percentile(0.99);
  const uint64_t synced = after.synced_saves - before.synced_saves;
  r.synced_saves_per_sec = static_cast<double>(synced) / elapsed;
  r.entries_per_synced_save =
      synced == 0 ? 0 : static_cast<double>(after.entries - before.entries) / synced;
  // The histogram covers the whole run (election included); it is
  // dominated by the measured interval.
  r.save_p50_us = after.save_micros.Percentile(0.5);
  r.save_p99_us = after.save_micros.Percentile(0.99);
  r.errors = errors.load();
  return r;
}

}  // namespace
}  // namespace arbiter::server

int main(int argc, char** argv) {
  double seconds = 3;
  std::vector<int> clients = {1, 8, 64};
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seconds") {
      if (!absl::SimpleAtod(argv[i + 1], &seconds)) return 2;
    } else if (flag == "--clients") {
      clients.clear();
      for (absl::string_view c : absl::StrSplit(argv[i + 1], ',')) {
        int n;
        if (!absl::SimpleAtoi(c, &n) || n < 1) return 2;
        clients.push_back(n);
      }
    } else if (flag == "--dir") {
      dir = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: member_bench [--seconds S] [--clients 1,8,64] [--dir D]\n");
      return 2;
    }
  }
  std::printf(
      "| clients | proposals/s | p50 ms | p99 ms | synced saves/s (leader) | "
      "entries per synced save | save p50 ms | save p99 ms | errors |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  bool ok = true;
  for (int c : clients) {
    const arbiter::server::Result r = arbiter::server::Run(c, seconds, dir);
    std::printf("| %d | %.0f | %.2f | %.2f | %.0f | %.1f | %.2f | %.2f | %llu |\n", r.clients,
                r.proposals_per_sec, r.p50_us / 1000.0, r.p99_us / 1000.0, r.synced_saves_per_sec,
                r.entries_per_synced_save, r.save_p50_us / 1000.0, r.save_p99_us / 1000.0,
                static_cast<unsigned long long>(r.errors));
    std::fflush(stdout);
    if (r.proposals_per_sec <= 0) ok = false;
  }
  return ok ? 0 : 1;
}
