#include "raft/read_only.h"

namespace arbiter::raft {

void ReadOnly::AddRequest(uint64_t index, const Message& req) {
  const std::string& ctx = req.entries(0).data();
  if (pending_.contains(ctx)) return;
  Status& st = pending_[ctx];
  st.req = req;
  st.index = index;
  queue_.push_back(ctx);
}

const std::map<uint64_t, bool>* ReadOnly::RecvAck(uint64_t id, const std::string& ctx) {
  auto it = pending_.find(ctx);
  if (it == pending_.end()) return nullptr;
  it->second.acks[id] = true;
  return &it->second.acks;
}

std::vector<ReadOnly::Status> ReadOnly::Advance(const std::string& ctx) {
  std::vector<Status> out;
  size_t n = 0;
  bool found = false;
  for (const std::string& c : queue_) {
    ++n;
    if (c == ctx) {
      found = true;
      break;
    }
  }
  if (!found) return out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto it = pending_.find(queue_.front());
    out.push_back(std::move(it->second));
    pending_.erase(it);
    queue_.pop_front();
  }
  return out;
}

std::string ReadOnly::LastPendingRequestCtx() const {
  return queue_.empty() ? std::string() : queue_.back();
}

}  // namespace arbiter::raft
