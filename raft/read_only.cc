#include "raft/read_only.h"

namespace arbiter::raft {

void ReadOnly::Reset() {
  queue_.clear();
  round_sent_.clear();
  acked_.clear();
}

void ReadOnly::AddRequest(uint64_t index, Message req) {
  queue_.push_back(Request{std::move(req), index, last_round_});
}

bool ReadOnly::NeedsRound() const {
  return !queue_.empty() && queue_.back().after_round == last_round_;
}

uint64_t ReadOnly::StartRound(uint64_t now) {
  round_sent_[++last_round_] = now;
  return last_round_;
}

void ReadOnly::RecvAck(uint64_t id, uint64_t seq) {
  // Only rounds this leadership started count: anything else is stale
  // (from before a Reset) or forged.
  if (!round_sent_.contains(seq)) return;
  uint64_t& a = acked_[id];
  if (seq > a) a = seq;
}

uint64_t ReadOnly::QuorumAckedRound(const JointConfig& voters) const {
  MapAckIndexer acks(std::map<uint64_t, uint64_t>(acked_.begin(), acked_.end()));
  const uint64_t q = voters.CommittedIndex(acks);
  // An empty configuration places no constraint (CommittedIndex returns the
  // maximum); it confirms nothing here.
  return q == UINT64_MAX ? 0 : q;
}

std::vector<ReadOnly::Request> ReadOnly::Advance(const JointConfig& voters) {
  std::vector<Request> out;
  const uint64_t q = QuorumAckedRound(voters);
  while (!queue_.empty() && queue_.front().after_round < q) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  // Rounds older than the newest quorum-acknowledged one can no longer
  // confirm anything or extend the lease.
  if (q > 0) round_sent_.erase(round_sent_.begin(), round_sent_.lower_bound(q));
  return out;
}

std::optional<uint64_t> ReadOnly::LeaseEnd(const JointConfig& voters,
                                           uint64_t election_timeout) const {
  const uint64_t q = QuorumAckedRound(voters);
  auto it = round_sent_.find(q);
  if (q == 0 || it == round_sent_.end()) return std::nullopt;
  return it->second + election_timeout;
}

std::string ReadOnly::EncodeRound(uint64_t seq) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, seq >>= 8) s[i] = static_cast<char>(seq & 0xff);
  return s;
}

std::optional<uint64_t> ReadOnly::DecodeRound(const std::string& ctx) {
  if (ctx.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (unsigned char c : ctx) v = (v << 8) | c;
  return v;
}

}  // namespace arbiter::raft
