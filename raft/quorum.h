// Quorum arithmetic: commit indexes and vote outcomes for a majority
// configuration and for a joint configuration (two majorities that must both
// agree, Raft thesis §4.3). Pure functions over ids and acknowledgements.
//
// Thread safety: values; const methods safe from any thread.
#ifndef ARBITER_RAFT_QUORUM_H_
#define ARBITER_RAFT_QUORUM_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace arbiter::raft {

// Reports the highest log index a voter is known to have (its Match).
class AckedIndexer {
 public:
  virtual ~AckedIndexer() = default;
  virtual std::optional<uint64_t> AckedIndex(uint64_t voter_id) const = 0;
};

enum class VoteResult {
  kPending,  // not decided yet: more votes could still win or lose it
  kLost,     // cannot win any more
  kWon,      // a quorum granted
};
const char* VoteResultName(VoteResult r);

// A set of voters that decides by simple majority. Ids are kept sorted.
class MajorityConfig {
 public:
  MajorityConfig() = default;
  MajorityConfig(std::initializer_list<uint64_t> ids);

  void Insert(uint64_t id);
  void Erase(uint64_t id);
  bool Contains(uint64_t id) const;
  bool empty() const { return ids_.empty(); }
  size_t size() const { return ids_.size(); }
  const std::vector<uint64_t>& ids() const { return ids_; }
  bool operator==(const MajorityConfig& o) const { return ids_ == o.ids_; }

  // The largest index that a majority has acknowledged. An empty config
  // returns the maximum uint64 (it places no constraint, which lets a joint
  // config with an empty half behave as its other half). Voters without an
  // acked index count as 0.
  uint64_t CommittedIndex(const AckedIndexer& acked) const;

  // Outcome of an election given votes (id -> granted); voters missing from
  // votes have not answered. An empty config wins (again, no constraint).
  VoteResult Vote(const std::map<uint64_t, bool>& votes) const;

  // "(1 2 3)".
  std::string Describe() const;

 private:
  std::vector<uint64_t> ids_;
};

// Two majority configs; a decision needs both. Outside joint consensus the
// outgoing half is empty.
struct JointConfig {
  MajorityConfig incoming;
  MajorityConfig outgoing;

  bool operator==(const JointConfig& o) const = default;
  // All voters of both halves, sorted, without duplicates.
  std::vector<uint64_t> Ids() const;
  bool Contains(uint64_t id) const { return incoming.Contains(id) || outgoing.Contains(id); }
  bool IsJoint() const { return !outgoing.empty(); }
  // min of the two halves' committed indexes.
  uint64_t CommittedIndex(const AckedIndexer& acked) const;
  // Won if both halves won; lost if either lost; else pending.
  VoteResult Vote(const std::map<uint64_t, bool>& votes) const;
  // "(1 2 3)" or "(1 2 3)&&(1 2 4)".
  std::string Describe() const;
};

// An AckedIndexer over a plain map, for tests.
class MapAckIndexer final : public AckedIndexer {
 public:
  explicit MapAckIndexer(std::map<uint64_t, uint64_t> m) : m_(std::move(m)) {}
  std::optional<uint64_t> AckedIndex(uint64_t id) const override;

 private:
  std::map<uint64_t, uint64_t> m_;
};

}  // namespace arbiter::raft

#endif  // ARBITER_RAFT_QUORUM_H_
