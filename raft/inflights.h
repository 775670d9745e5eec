// The flow-control window of a follower in replicate state: the MsgApp
// messages sent but not yet acknowledged, as (last index, bytes) pairs. The
// leader stops sending when the window is full by count or by bytes.
//
// Thread safety: not thread-safe; part of a node's raft state.
#ifndef ARBITER_RAFT_INFLIGHTS_H_
#define ARBITER_RAFT_INFLIGHTS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace arbiter::raft {

class Inflights {
 public:
  // max_bytes == 0 means no byte limit.
  // REQUIRES: max_count > 0.
  Inflights(size_t max_count, uint64_t max_bytes);

  // Records a MsgApp whose last entry is index and whose entries total bytes.
  // REQUIRES: !Full(); index greater than every index already recorded.
  void Add(uint64_t index, uint64_t bytes);
  // Frees every message whose last index is <= to (acknowledged).
  void FreeLE(uint64_t to);
  // Forgets everything (the follower changed state).
  void Reset();

  bool Full() const;
  size_t Count() const { return count_; }
  uint64_t Bytes() const { return bytes_; }
  size_t max_count() const { return max_count_; }

 private:
  struct Inflight {
    uint64_t index;
    uint64_t bytes;
  };
  size_t max_count_;
  uint64_t max_bytes_;
  // Ring buffer; grows on demand up to max_count_ entries.
  std::vector<Inflight> buffer_;
  size_t start_ = 0;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_INFLIGHTS_H_
