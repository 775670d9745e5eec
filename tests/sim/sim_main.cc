// raft_sim: runs the randomized cluster simulation over a range of seeds.
//
//   raft_sim --seeds 1000                  seeds 1..1000 (the default run)
//   raft_sim --seed 4242 --verbose         replay one seed, printing events
//   raft_sim --duration 600                as many seeds as fit in 10 minutes
//   raft_sim --expect-violation --seeds 300
//       for builds with a planted bug: succeeds only if some seed fails.
//
// Prints one line per failing seed (with the command that replays it) and
// closes with "N passed, N failed".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/sim/simulator.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: raft_sim [--seed N | --start-seed N --seeds COUNT] [--duration SECONDS]\n"
               "                [--steps N] [--nodes 3|5] [--verbose] [--expect-violation]\n"
               "                [--no-crashes] [--no-partitions] [--no-membership]\n"
               "                [--no-snapshots] [--no-transfers]\n");
}

}  // namespace

int main(int argc, char** argv) {
  using arbiter::raft::sim::RunSimulation;
  using arbiter::raft::sim::SimOptions;
  using arbiter::raft::sim::SimResult;

  SimOptions base;
  uint64_t start_seed = 1, seeds = 100;
  double duration = 0;
  bool expect_violation = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seed") {
      start_seed = std::strtoull(next(), nullptr, 10);
      seeds = 1;
    } else if (a == "--start-seed") {
      start_seed = std::strtoull(next(), nullptr, 10);
    } else if (a == "--seeds") {
      seeds = std::strtoull(next(), nullptr, 10);
    } else if (a == "--duration") {
      duration = std::strtod(next(), nullptr);
      seeds = UINT64_MAX;
    } else if (a == "--steps") {
      base.steps = std::atoi(next());
    } else if (a == "--nodes") {
      base.nodes = std::atoi(next());
    } else if (a == "--verbose") {
      base.verbose = true;
    } else if (a == "--expect-violation") {
      expect_violation = true;
    } else if (a == "--no-crashes") {
      base.crashes = false;
    } else if (a == "--no-partitions") {
      base.partitions = false;
    } else if (a == "--no-membership") {
      base.membership = false;
    } else if (a == "--no-snapshots") {
      base.snapshots = false;
    } else if (a == "--no-transfers") {
      base.transfers = false;
    } else {
      Usage();
      return 2;
    }
  }
  if (base.nodes != 0 && base.nodes != 3 && base.nodes != 5) {
    Usage();
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  uint64_t passed = 0, failed = 0;
  SimResult total;
  for (uint64_t n = 0; n < seeds; ++n) {
    if (duration > 0) {
      std::chrono::duration<double> el = std::chrono::steady_clock::now() - start;
      if (el.count() >= duration) break;
    }
    SimOptions o = base;
    o.seed = start_seed + n;
    SimResult r = RunSimulation(o);
    total.leaders_elected += r.leaders_elected;
    total.writes_acked += r.writes_acked;
    total.reads_served += r.reads_served;
    total.crashes += r.crashes;
    total.partitions += r.partitions;
    total.conf_changes += r.conf_changes;
    total.snapshots_sent += r.snapshots_sent;
    total.messages += r.messages;
    if (r.ok) {
      ++passed;
    } else {
      ++failed;
      std::printf("FAIL seed %llu at step %d: %s\n  replay: scripts/sim.sh --seed %llu --verbose\n",
                  static_cast<unsigned long long>(o.seed), r.step, r.failure.c_str(),
                  static_cast<unsigned long long>(o.seed));
      if (expect_violation) break;
    }
  }
  std::chrono::duration<double> el = std::chrono::steady_clock::now() - start;
  std::printf(
      "simulated %llu seeds in %.1fs: %llu leaders elected, %llu writes acknowledged, %llu "
      "linearizable reads checked, %llu crashes, %llu partitions, %llu conf changes, %llu "
      "snapshots sent, %llu messages\n",
      static_cast<unsigned long long>(passed + failed), el.count(),
      static_cast<unsigned long long>(total.leaders_elected),
      static_cast<unsigned long long>(total.writes_acked),
      static_cast<unsigned long long>(total.reads_served),
      static_cast<unsigned long long>(total.crashes),
      static_cast<unsigned long long>(total.partitions),
      static_cast<unsigned long long>(total.conf_changes),
      static_cast<unsigned long long>(total.snapshots_sent),
      static_cast<unsigned long long>(total.messages));
  if (expect_violation) {
    if (failed > 0) {
      std::printf("planted bug caught after %llu seeds\n",
                  static_cast<unsigned long long>(passed + failed));
      std::printf("1 passed, 0 failed\n");
      return 0;
    }
    std::printf("planted bug NOT caught in %llu seeds\n", static_cast<unsigned long long>(passed));
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  std::printf("%llu passed, %llu failed\n", static_cast<unsigned long long>(passed),
              static_cast<unsigned long long>(failed));
  return failed == 0 ? 0 : 1;
}
