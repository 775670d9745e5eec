// Measures the key-value state machine's hot paths on the real disk (the
// default Env, a fresh directory under /tmp): applying Put commands as a
// member does (serialized internalpb.Request in, serialized Response out),
// Range of one key, of 100 keys, and a Range of one key while another
// thread applies puts. Reports operations per second.
//
//   kv_state_machine_bench --benchmark_filter=Range
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "kvstore/kv_state_machine.h"

namespace arbiter::kv {
namespace {

constexpr int kKeys = 100000;

std::string Key(int i) { return absl::StrFormat("/bench/key/%08d", i); }

// A store in a fresh temp directory, removed on destruction.
class BenchStore {
 public:
  BenchStore() {
    char tmpl[] = "/tmp/kv_state_machine_bench.XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    absl::StatusOr<std::unique_ptr<KvStateMachine>> sm = KvStateMachine::Open(dir_, {});
    if (sm.ok()) sm_ = std::move(*sm);
  }
  ~BenchStore() {
    sm_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  KvStateMachine* sm() { return sm_.get(); }

  // Applies a put of key i with a value of value_bytes.
  bool Put(int i, size_t value_bytes) {
    internalpb::Request r;
    r.mutable_put()->set_key(Key(i));
    r.mutable_put()->set_value(std::string(value_bytes, 'v'));
    std::string out;
    return sm_->Apply(++index_, r.SerializeAsString(), &out).ok();
  }

  void Fill(size_t value_bytes) {
    for (int i = 0; i < kKeys; ++i) Put(i, value_bytes);
  }

 private:
  std::string dir_;
  std::unique_ptr<KvStateMachine> sm_;
  uint64_t index_ = 0;
};

// range(0): value bytes.
void BM_ApplyPut(benchmark::State& state) {
  BenchStore store;
  if (store.sm() == nullptr) return state.SkipWithError("open failed");
  const size_t value_bytes = static_cast<size_t>(state.range(0));
  int i = 0;
  for (auto _ : state) {
    if (!store.Put(i++ % kKeys, value_bytes)) return state.SkipWithError("apply failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApplyPut)->Arg(16)->Arg(256)->Arg(4096)->Unit(benchmark::kMicrosecond);

void BM_RangeOneKey(benchmark::State& state) {
  BenchStore store;
  if (store.sm() == nullptr) return state.SkipWithError("open failed");
  store.Fill(256);
  etcdserverpb::RangeRequest r;
  etcdserverpb::RangeResponse resp;
  int i = 0;
  for (auto _ : state) {
    r.set_key(Key((i++ * 7919) % kKeys));
    if (!store.sm()->Range(r, &resp).ok() || resp.kvs_size() != 1) {
      return state.SkipWithError("range failed");
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RangeOneKey)->Unit(benchmark::kMicrosecond);

void BM_Range100Keys(benchmark::State& state) {
  BenchStore store;
  if (store.sm() == nullptr) return state.SkipWithError("open failed");
  store.Fill(256);
  etcdserverpb::RangeRequest r;
  etcdserverpb::RangeResponse resp;
  int i = 0;
  for (auto _ : state) {
    const int first = (i++ * 7919) % (kKeys - 100);
    r.set_key(Key(first));
    r.set_range_end(Key(first + 100));
    if (!store.sm()->Range(r, &resp).ok() || resp.kvs_size() != 100) {
      return state.SkipWithError("range failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_Range100Keys)->Unit(benchmark::kMicrosecond);

// One-key ranges on this thread while another applies puts.
void BM_RangeWhileApplying(benchmark::State& state) {
  BenchStore store;
  if (store.sm() == nullptr) return state.SkipWithError("open failed");
  store.Fill(256);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> applied{0};
  std::thread writer([&] {
    int i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      store.Put(i++ % kKeys, 256);
      applied.fetch_add(1, std::memory_order_relaxed);
    }
  });
  etcdserverpb::RangeRequest r;
  etcdserverpb::RangeResponse resp;
  int i = 0;
  for (auto _ : state) {
    r.set_key(Key((i++ * 7919) % kKeys));
    if (!store.sm()->Range(r, &resp).ok()) break;
  }
  stop.store(true);
  writer.join();
  state.SetItemsProcessed(state.iterations());
  state.counters["puts_applied"] = static_cast<double>(applied.load());
}
BENCHMARK(BM_RangeWhileApplying)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace arbiter::kv
