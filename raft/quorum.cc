#include "raft/quorum.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace arbiter::raft {

const char* VoteResultName(VoteResult r) {
  switch (r) {
    case VoteResult::kPending:
      return "VotePending";
    case VoteResult::kLost:
      return "VoteLost";
    case VoteResult::kWon:
      return "VoteWon";
  }
  return "VoteUnknown";
}

MajorityConfig::MajorityConfig(std::initializer_list<uint64_t> ids) : ids_(ids) {
  std::sort(ids_.begin(), ids_.end());
  ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
}

void MajorityConfig::Insert(uint64_t id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it == ids_.end() || *it != id) ids_.insert(it, id);
}

void MajorityConfig::Erase(uint64_t id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it != ids_.end() && *it == id) ids_.erase(it);
}

bool MajorityConfig::Contains(uint64_t id) const {
  return std::binary_search(ids_.begin(), ids_.end(), id);
}

uint64_t MajorityConfig::CommittedIndex(const AckedIndexer& acked) const {
  const size_t n = ids_.size();
  if (n == 0) return std::numeric_limits<uint64_t>::max();

  // A voter that has not reported counts as 0: it may still report, but until
  // it does it cannot help any index reach a quorum.
  // This runs on every acknowledgement: sort on the stack for the usual
  // cluster sizes, on the heap only for unusually large ones.
  uint64_t stack[7];
  std::vector<uint64_t> heap;
  uint64_t* idx = stack;
  if (n > std::size(stack)) {
    heap.resize(n);
    idx = heap.data();
  }
  for (size_t i = 0; i < n; ++i) idx[i] = acked.AckedIndex(ids_[i]).value_or(0);
  std::sort(idx, idx + n);

  // Sorted ascending, the element at n - quorum is the largest index that at
  // least quorum voters (it and every one to its right) have reached.
  const size_t quorum = n / 2 + 1;
  return idx[n - quorum];
}

VoteResult MajorityConfig::Vote(const std::map<uint64_t, bool>& votes) const {
  if (ids_.empty()) return VoteResult::kWon;

  size_t granted = 0;
  size_t missing = 0;
  for (uint64_t id : ids_) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++granted;
    }
  }
  const size_t quorum = ids_.size() / 2 + 1;
  if (granted >= quorum) return VoteResult::kWon;
  // The outstanding voters could still carry it.
  if (granted + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

std::string MajorityConfig::Describe() const {
  return absl::StrCat("(", absl::StrJoin(ids_, " "), ")");
}

std::vector<uint64_t> JointConfig::Ids() const {
  std::vector<uint64_t> out;
  out.reserve(incoming.size() + outgoing.size());
  std::set_union(incoming.ids().begin(), incoming.ids().end(), outgoing.ids().begin(),
                 outgoing.ids().end(), std::back_inserter(out));
  return out;
}

uint64_t JointConfig::CommittedIndex(const AckedIndexer& acked) const {
  return std::min(incoming.CommittedIndex(acked), outgoing.CommittedIndex(acked));
}

VoteResult JointConfig::Vote(const std::map<uint64_t, bool>& votes) const {
  const VoteResult in = incoming.Vote(votes);
  const VoteResult out = outgoing.Vote(votes);
  if (in == out) return in;
  // Losing either half loses the whole; otherwise one half has won and the
  // other is still open.
  if (in == VoteResult::kLost || out == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

std::string JointConfig::Describe() const {
  if (outgoing.empty()) return incoming.Describe();
  return absl::StrCat(incoming.Describe(), "&&", outgoing.Describe());
}

std::optional<uint64_t> MapAckIndexer::AckedIndex(uint64_t id) const {
  auto it = m_.find(id);
  if (it == m_.end()) return std::nullopt;
  return it->second;
}

}  // namespace arbiter::raft
