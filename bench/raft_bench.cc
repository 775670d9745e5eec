// Throughput of the consensus core alone: entries committed per second
// through an in-memory 3-node cluster (RawNode + MemoryStorage per node),
// with messages handed from node to node in-process on one thread. Nothing
// here does I/O, so the figures are the core's own ceiling: a real server
// adds fsync, the network and the state machine on top.
//
// Each loop iteration proposes a batch of 128-byte entries at the leader and
// then runs every node's Ready (persist into MemoryStorage, deliver messages,
// apply) until the cluster is quiescent, so every entry of the batch is
// committed and applied on all three nodes. Storage is compacted
// periodically so memory stays bounded however long the run.
//
// The test harness (tests/harness) is deliberately not used: its key-value
// state machine and bookkeeping would dominate the measurement.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/quorum.h"
#include "raft/rand.h"
#include "raft/raw_node.h"
#include "raft/tracker.h"

namespace arbiter::raft {
namespace {

constexpr size_t kEntryBytes = 128;
// Compact every node's storage once this many entries were applied since
// the last compaction.
constexpr uint64_t kCompactEvery = 1 << 14;

// One member: its durable state (MemoryStorage) and its RawNode.
struct Member {
  explicit Member(uint64_t id) : rand(id) {}
  MemoryStorage storage;
  SeededRand rand;
  std::unique_ptr<RawNode> node;
  uint64_t applied = 0;          // last applied index
  uint64_t applied_payload = 0;  // applied entries that carry data
};

// A lean driver for n RawNodes, following the Ready contract of ready.h.
class BenchCluster {
 public:
  explicit BenchCluster(uint64_t n) {
    for (uint64_t id = 1; id <= n; ++id) conf_state_.add_voters(id);
    for (uint64_t id = 1; id <= n; ++id) {
      auto m = std::make_unique<Member>(id);
      m->storage.BootstrapConfState(conf_state_);
      Config c;
      c.id = id;
      c.election_tick = 10;
      c.heartbeat_tick = 1;
      c.storage = &m->storage;
      c.rand = &m->rand;
      auto node = RawNode::Create(c);
      if (!node.ok()) std::abort();
      m->node = std::move(*node);
      members_.push_back(std::move(m));
    }
  }

  // Elects node 1 and waits for its first entry to commit everywhere.
  bool ElectFirst() {
    if (!leader().Campaign().ok()) return false;
    Pump();
    return leader().raft().state() == StateType::kLeader;
  }

  RawNode& leader() { return *members_[0]->node; }
  const Member& member(size_t i) const { return *members_[i]; }
  size_t size() const { return members_.size(); }
  uint64_t delivered() const { return delivered_; }

  // Handles Readies and delivers messages until nothing is left to do.
  void Pump() {
    for (;;) {
      for (auto& m : members_) {
        if (m->node->HasReady()) HandleReady(*m);
      }
      if (outbox_.empty()) return;
      inbox_.swap(outbox_);
      for (std::vector<Message>& batch : inbox_) {
        delivered_ += batch.size();
        for (Message& msg : batch) (void)members_[msg.to() - 1]->node->Step(std::move(msg));
      }
      inbox_.clear();
    }
  }

  // Snapshots and compacts every node's log at its applied index, every
  // kCompactEvery entries.
  void MaybeCompact() {
    if (members_[0]->applied < last_compact_ + kCompactEvery) return;
    for (auto& m : members_) {
      if (m->applied <= last_compact_) continue;
      if (!m->storage.CreateSnapshot(m->applied, &conf_state_, "").ok()) std::abort();
      if (!m->storage.Compact(m->applied).ok()) std::abort();
    }
    last_compact_ = members_[0]->applied;
  }

 private:
  void HandleReady(Member& m) {
    Ready rd = m.node->GetReady();
    // 1. Persist.
    if (!IsEmptySnapshot(rd.snapshot) && !m.storage.ApplySnapshot(rd.snapshot).ok()) std::abort();
    if (!rd.entries.empty() && !m.storage.Append(std::move(rd.entries)).ok()) std::abort();
    if (!IsEmptyHardState(rd.hard_state)) m.storage.SetHardState(rd.hard_state);
    // 2. Send.
    if (!rd.messages.empty()) outbox_.push_back(std::move(rd.messages));
    // 3. Apply: the state machine only looks at the payload.
    for (const Entry& e : rd.committed_entries) {
      benchmark::DoNotOptimize(e.data().data());
      if (!e.data().empty()) ++m.applied_payload;
      m.applied = e.index();
    }
    // 4. Advance.
    m.node->Advance();
  }

  ConfState conf_state_;
  std::vector<std::unique_ptr<Member>> members_;
  // Each Ready's messages, kept as one vector (no per-message move).
  std::vector<std::vector<Message>> outbox_;
  std::vector<std::vector<Message>> inbox_;
  uint64_t last_compact_ = 0;
  uint64_t delivered_ = 0;
};

// Reports the entries committed (and applied on every node) per second.
void Report(benchmark::State& state, const BenchCluster& c, uint64_t before,
            uint64_t delivered_before, int64_t batch) {
  const uint64_t committed = c.member(0).applied_payload - before;
  for (size_t i = 1; i < c.size(); ++i) {
    if (c.member(i).applied_payload != c.member(0).applied_payload) {
      state.SkipWithError("a follower did not apply every entry");
      return;
    }
  }
  if (committed != static_cast<uint64_t>(state.iterations()) * static_cast<uint64_t>(batch)) {
    state.SkipWithError("not every proposal was committed");
    return;
  }
  state.SetItemsProcessed(static_cast<int64_t>(committed));
  // Messages between nodes per committed entry: the per-message cost
  // dominates when entries travel one per MsgApp.
  state.counters["msgs_per_entry"] =
      static_cast<double>(c.delivered() - delivered_before) / static_cast<double>(committed);
  state.SetLabel("items/s = entries committed per second");
}

// RawNode::Propose once per entry, batch proposals per round.
void BM_CommitThroughput(benchmark::State& state) {
  const int64_t batch = state.range(0);
  BenchCluster c(3);
  if (!c.ElectFirst()) {
    state.SkipWithError("election failed");
    return;
  }
  const std::string payload(kEntryBytes, 'x');
  const uint64_t before = c.member(0).applied_payload;
  const uint64_t delivered_before = c.delivered();
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) {
      if (!c.leader().Propose(payload).ok()) {
        state.SkipWithError("proposal dropped");
        return;
      }
    }
    c.Pump();
    c.MaybeCompact();
  }
  Report(state, c, before, delivered_before, batch);
}
BENCHMARK(BM_CommitThroughput)->Arg(1)->Arg(64)->Arg(256)->Arg(1024);

// RawNode::ProposeBatch: the whole batch as one proposal, as the server's
// event loop proposes everything its inbox collected since the last round.
// One append and one MsgApp per follower per batch. The payloads are built
// fresh each round, as client requests would be.
void BM_CommitThroughputBatched(benchmark::State& state) {
  const int64_t batch = state.range(0);
  BenchCluster c(3);
  if (!c.ElectFirst()) {
    state.SkipWithError("election failed");
    return;
  }
  const std::string payload(kEntryBytes, 'x');
  const uint64_t before = c.member(0).applied_payload;
  const uint64_t delivered_before = c.delivered();
  for (auto _ : state) {
    std::vector<std::string> data(static_cast<size_t>(batch), payload);
    if (!c.leader().ProposeBatch(std::move(data)).ok()) {
      state.SkipWithError("proposal dropped");
      return;
    }
    c.Pump();
    c.MaybeCompact();
  }
  Report(state, c, before, delivered_before, batch);
}
BENCHMARK(BM_CommitThroughputBatched)->Arg(1)->Arg(64)->Arg(256)->Arg(1024);

// ---------------------------------------------------------------------------
// Micro benchmark: the quorum commit index, which the leader computes on
// every acknowledgement (ProgressTracker::Committed).

class VectorAckIndexer final : public AckedIndexer {
 public:
  explicit VectorAckIndexer(std::vector<uint64_t> acked) : acked_(std::move(acked)) {}
  std::optional<uint64_t> AckedIndex(uint64_t id) const override {
    if (id == 0 || id > acked_.size()) return std::nullopt;
    return acked_[id - 1];
  }

 private:
  std::vector<uint64_t> acked_;
};

void BM_MajorityCommittedIndex(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  MajorityConfig cfg;
  std::vector<uint64_t> acked;
  for (uint64_t id = 1; id <= n; ++id) {
    cfg.Insert(id);
    acked.push_back(1000 + (id * 7919) % 97);
  }
  VectorAckIndexer indexer(std::move(acked));
  for (auto _ : state) benchmark::DoNotOptimize(cfg.CommittedIndex(indexer));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MajorityCommittedIndex)->Arg(3)->Arg(5)->Arg(7);

void BM_TrackerCommitted(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  ProgressTracker trk(256, 0);
  for (uint64_t id = 1; id <= n; ++id) {
    trk.config.voters.incoming.Insert(id);
    Progress pr(1, 256, 0, false);
    pr.match = 1000 + (id * 7919) % 97;
    trk.progress.emplace(id, std::move(pr));
  }
  for (auto _ : state) benchmark::DoNotOptimize(trk.Committed());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrackerCommitted)->Arg(3)->Arg(5)->Arg(7);

}  // namespace
}  // namespace arbiter::raft
