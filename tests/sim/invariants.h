// Safety checks for the cluster simulation, run after every step. They
// cover the properties of Figure 3 of the Raft paper:
//   Election Safety       at most one leader can be elected in a given term.
//   Leader Append-Only    a leader never overwrites or deletes entries in its
//                         log; it only appends new entries.
//   Log Matching          if two logs contain an entry with the same index
//                         and term, then the logs are identical in all
//                         entries up through the given index.
//   Leader Completeness   if a log entry is committed in a given term, then
//                         that entry will be present in the logs of the
//                         leaders for all higher-numbered terms.
//   State Machine Safety  if a server has applied a log entry at a given
//                         index, no other server will ever apply a different
//                         log entry for the same index.
// plus: terms never decrease (also across restarts), commit and applied
// indexes never decrease while a node runs, and every linearizable read
// reflects every write acknowledged before the read began.
//
// Thread safety: not thread-safe; the simulation is single-threaded.
#ifndef ARBITER_TESTS_SIM_INVARIANTS_H_
#define ARBITER_TESTS_SIM_INVARIANTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/harness/network.h"

namespace arbiter::raft::sim {

class InvariantChecker {
 public:
  // Records an applied entry (State Machine Safety is checked here).
  void OnApply(uint64_t peer, const Entry& e);
  // Records a completed linearizable read of `key` that observed the write
  // at log index observed_index (0: never written), for a read that
  // required at least required_index.
  void OnRead(uint64_t peer, const std::string& key, uint64_t observed_index,
              uint64_t required_index);
  // A node restarted: its volatile indexes start over.
  void OnRestart(uint64_t peer);

  // Checks every invariant against the current state of the network.
  void Check(testing::Network& net);

  bool failed() const { return failure_.has_value(); }
  const std::string& failure() const { return *failure_; }
  uint64_t checks() const { return checks_; }
  uint64_t leaders_elected() const { return leader_of_term_.size(); }

 private:
  void Fail(std::string what);
  void CheckNode(testing::Peer& p);
  void CheckLeaders(testing::Network& net);
  void CheckLogMatching(testing::Network& net);

  // A cheap fingerprint of an entry's identity and content.
  static uint64_t Fingerprint(const Entry& e);

  std::optional<std::string> failure_;
  uint64_t checks_ = 0;
  // term -> the node that was leader in it.
  std::map<uint64_t, uint64_t> leader_of_term_;
  // index -> fingerprint of the entry applied there (by anyone).
  std::map<uint64_t, uint64_t> applied_;
  // index -> (fingerprint, term in which its commit was first observed) of
  // entries known committed.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> committed_;
  // Per node: highest term seen (persisted; survives restarts) and the
  // volatile commit / applied indexes of the current run.
  std::map<uint64_t, uint64_t> max_term_;
  std::map<uint64_t, uint64_t> commit_;
  std::map<uint64_t, uint64_t> applied_index_;
  // The current leadership of each node, as (term, entry terms from
  // first_index) for the Leader Append-Only check.
  struct LeaderLog {
    uint64_t term = 0;
    uint64_t first_index = 0;
    std::vector<uint64_t> terms;
  };
  std::map<uint64_t, LeaderLog> leader_logs_;
};

}  // namespace arbiter::raft::sim

#endif  // ARBITER_TESTS_SIM_INVARIANTS_H_
