#include "raft/rand.h"

namespace arbiter::raft {

uint64_t SeededRand::Next() {
  // splitmix64: passes BigCrush, one add and a few multiplies per value.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SeededRand::Uniform(uint64_t n) {
  // Multiply-shift mapping; the bias is below 2^-32 for the small n used here.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
}

}  // namespace arbiter::raft
