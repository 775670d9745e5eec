#include "raft/inflights.h"

#include <algorithm>

#include "raft/check.h"

namespace arbiter::raft {

Inflights::Inflights(size_t max_count, uint64_t max_bytes)
    : max_count_(max_count), max_bytes_(max_bytes) {
  RAFT_CHECK(max_count > 0) << "Inflights needs room for at least one message";
}

void Inflights::Add(uint64_t index, uint64_t bytes) {
  RAFT_CHECK(!Full()) << "Add on a full Inflights (count=" << count_ << " bytes=" << bytes_ << ")";
  if (count_ > 0) {
    const Inflight& last = buffer_[(start_ + count_ - 1) % max_count_];
    RAFT_CHECK(index > last.index)
        << "Inflights index " << index << " not above the last one, " << last.index;
  }
  size_t slot = start_ + count_;
  if (slot >= max_count_) slot -= max_count_;
  if (slot >= buffer_.size()) {
    // Grow by doubling, capped at max_count_: a node with many idle followers
    // should not pay for full windows it never uses. While the buffer is
    // smaller than max_count_ the ring has not wrapped (start_ + count_ fits),
    // so the live entries keep their positions when it grows.
    size_t grown = std::max<size_t>(1, buffer_.size() * 2);
    buffer_.resize(std::min(grown, max_count_));
  }
  buffer_[slot] = Inflight{index, bytes};
  ++count_;
  bytes_ += bytes;
}

void Inflights::FreeLE(uint64_t to) {
  if (count_ == 0 || to < buffer_[start_].index) return;  // left of the window

  size_t freed = 0;
  uint64_t freed_bytes = 0;
  size_t idx = start_;
  while (freed < count_ && buffer_[idx].index <= to) {
    freed_bytes += buffer_[idx].bytes;
    ++freed;
    if (++idx >= max_count_) idx -= max_count_;
  }
  count_ -= freed;
  bytes_ -= freed_bytes;
  // Restarting at slot 0 when empty keeps the ring unwrapped, so it only
  // grows when the window really holds more messages.
  start_ = count_ == 0 ? 0 : idx;
}

void Inflights::Reset() {
  start_ = 0;
  count_ = 0;
  bytes_ = 0;
}

bool Inflights::Full() const {
  // The byte limit is soft: one message may take the total past it.
  return count_ == max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

}  // namespace arbiter::raft
