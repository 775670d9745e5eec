// A randomized, deterministic simulation of a Raft cluster: N members (3 or
// 5) plus spares that membership changes may add, on the simulated network
// of tests/harness, driven by one seed. Each step is one event: deliver a
// message, tick, a client write or linearizable read, a partition (random
// halves, an isolated leader, or the "bridge" shape), a heal, a crash that
// loses unpersisted state, a restart, a leadership transfer, a membership
// change, or a log compaction. After every step the InvariantChecker runs.
// At the end every fault is healed and the cluster must converge: a leader,
// a new write committed everywhere, every acknowledged write applied on
// every member.
//
// Thread safety: not thread-safe; one simulation per thread.
#ifndef ARBITER_TESTS_SIM_SIMULATOR_H_
#define ARBITER_TESTS_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>

namespace arbiter::raft::sim {

struct SimOptions {
  uint64_t seed = 1;
  // 3 or 5; 0 picks from the seed.
  int nodes = 0;
  // Scheduler steps before the final heal-and-converge phase.
  int steps = 3000;
  bool crashes = true;
  bool partitions = true;
  bool membership = true;
  bool snapshots = true;
  bool transfers = true;
  // Print every event (for replaying a failing seed).
  bool verbose = false;
};

struct SimResult {
  bool ok = true;
  std::string failure;  // which invariant, what was seen
  int step = 0;         // the step at which it failed
  // What the run exercised.
  uint64_t leaders_elected = 0;
  uint64_t writes_acked = 0;
  uint64_t reads_served = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t conf_changes = 0;
  uint64_t snapshots_sent = 0;
  uint64_t messages = 0;
  uint64_t max_term = 0;
};

SimResult RunSimulation(const SimOptions& opts);

}  // namespace arbiter::raft::sim

#endif  // ARBITER_TESTS_SIM_SIMULATOR_H_
