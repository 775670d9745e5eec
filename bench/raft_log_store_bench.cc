// Measures the fsync path of a member: RaftLogStore::Save on the real disk
// (the default Env, a fresh directory under /tmp), as the event loop calls it
// for each Ready: a hard state plus 1, 8 or 64 entries of 128 bytes, synced.
// Reports Saves per second and the p50/p99 latency of one Save; the
// unsynced variant shows what the fsync costs.
//
//   raft_log_store_bench --benchmark_filter=Synced
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kvstore/raft_log_store.h"
#include "raft/types.h"

namespace arbiter::kv {
namespace {

constexpr size_t kEntryBytes = 128;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// range(0): entries per Save; range(1): 1 to fsync each Save.
void BM_Save(benchmark::State& state) {
  const int per_save = static_cast<int>(state.range(0));
  const bool sync = state.range(1) != 0;
  char tmpl[] = "/tmp/raft_log_store_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  const std::string dir = tmpl;
  {
    absl::StatusOr<std::unique_ptr<RaftLogStore>> store = RaftLogStore::Open(dir, {});
    if (!store.ok()) {
      state.SkipWithError(store.status().ToString().c_str());
      return;
    }
    raft::ConfState cs;
    cs.add_voters(1);
    if (!(*store)->Bootstrap(cs).ok()) {
      state.SkipWithError("bootstrap failed");
      return;
    }
    uint64_t last = 1;
    std::vector<double> latency_us;
    const std::string payload(kEntryBytes, 'p');
    for (auto _ : state) {
      std::vector<raft::Entry> ents(static_cast<size_t>(per_save));
      for (raft::Entry& e : ents) {
        e.set_index(++last);
        e.set_term(1);
        e.set_data(payload);
      }
      raft::HardState hs;
      hs.set_term(1);
      hs.set_vote(1);
      hs.set_commit(last - static_cast<uint64_t>(per_save));
      const auto start = std::chrono::steady_clock::now();
      absl::Status s = (*store)->Save(hs, ents, raft::Snapshot(), sync);
      const auto end = std::chrono::steady_clock::now();
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        break;
      }
      latency_us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
    }
    state.counters["saves_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["entries_per_s"] = benchmark::Counter(
        static_cast<double>(state.iterations() * per_save), benchmark::Counter::kIsRate);
    state.counters["p50_us"] = Percentile(latency_us, 0.50);
    state.counters["p99_us"] = Percentile(latency_us, 0.99);
  }
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_Save)
    ->ArgNames({"entries", "sync"})
    ->Args({1, 1})
    ->Args({8, 1})
    ->Args({64, 1})
    ->Args({8, 0})
    ->MinTime(3.0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace arbiter::kv
