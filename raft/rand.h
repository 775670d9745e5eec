// The source of randomness for the consensus core (randomized election
// timeouts). It is injected so that a simulation replays exactly from a seed.
//
// Thread safety: not thread-safe; owned by whoever drives the node.
#ifndef ARBITER_RAFT_RAND_H_
#define ARBITER_RAFT_RAND_H_

#include <cstdint>

namespace arbiter::raft {

class Rand {
 public:
  virtual ~Rand() = default;
  // A uniformly distributed value in [0, n).
  // REQUIRES: n > 0.
  virtual uint64_t Uniform(uint64_t n) = 0;
};

// A small, fast, deterministic generator (splitmix64).
class SeededRand final : public Rand {
 public:
  explicit SeededRand(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  uint64_t Uniform(uint64_t n) override;

 private:
  uint64_t state_;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_RAND_H_
