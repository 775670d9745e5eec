// A simulated member for tests: a RawNode over a MemoryStorage with a small
// key-value state machine, handling each Ready by the contract of
// raft/ready.h (persist, then hand back messages, then apply, then advance).
//
// Crash() throws away everything not persisted (the RawNode, unsent
// messages, the state machine); Restart() rebuilds the node from storage and
// the state machine from the stored snapshot, as a real member would.
//
// Thread safety: not thread-safe; tests drive peers from one thread.
#ifndef ARBITER_TESTS_HARNESS_PEER_H_
#define ARBITER_TESTS_HARNESS_PEER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/rand.h"
#include "raft/raw_node.h"

namespace arbiter::raft::testing {

// Entries whose data is "k=v" set key k; any other data is applied as a
// no-op (it still counts toward the applied index).
class KvStateMachine {
 public:
  void Apply(const Entry& e);
  std::string Serialize() const;
  bool Restore(const std::string& data, uint64_t index);

  const std::map<std::string, std::string>& kv() const { return kv_; }
  // Log index of the entry that last wrote key k (0 if never written).
  uint64_t WriteIndex(const std::string& k) const;
  uint64_t applied() const { return applied_; }

 private:
  std::map<std::string, std::string> kv_;
  std::map<std::string, uint64_t> write_index_;
  uint64_t applied_ = 0;
};

// A read that became servable: the ReadState and the node's applied index
// when it was returned.
struct CompletedRead {
  ReadState state;
  uint64_t applied_at_return = 0;
};

class Peer {
 public:
  // Observes each entry a peer applies (the simulation checks State Machine
  // Safety through it).
  using ApplyObserver = std::function<void(uint64_t peer, const Entry& e)>;

  // cfg.id, storage and rand are filled in by the peer.
  Peer(uint64_t id, const Config& cfg, uint64_t seed);

  // A fresh node of a new cluster whose initial members are voters. The
  // membership is stored as a snapshot at index 1, term 1 (as a real member
  // bootstraps), so the log starts at index 2 and a node added later always
  // receives a snapshot carrying the membership before any log entry.
  void Bootstrap(const std::vector<uint64_t>& voters, const std::vector<uint64_t>& learners = {});
  // Creates the RawNode from storage (first start or restart).
  void Start();
  // Loses all volatile state. REQUIRES: running.
  void Crash();
  void Restart() { Start(); }
  bool running() const { return node_ != nullptr; }

  // Handles one Ready if there is one, returning its messages.
  std::vector<Message> ProcessReady();
  // Like ProcessReady, but crash after persisting and before sending.
  void ProcessReadyThenCrash();
  // Takes the next Ready, sends what it allows to be sent before it is
  // persisted (Ready::send_before_persist), and crashes before persisting
  // anything: the returned messages are for the network.
  std::vector<Message> SendReadyThenCrash();

  // Snapshot the state machine at its applied index and drop log entries
  // before it. REQUIRES: running.
  void CompactLog();

  RawNode& node() { return *node_; }
  const RawNode& node() const { return *node_; }
  Raft& raft() { return node_->mutable_raft(); }
  MemoryStorage& storage() { return storage_; }
  const KvStateMachine& sm() const { return sm_; }
  const ConfState& conf_state() const { return conf_state_; }
  uint64_t id() const { return id_; }
  std::vector<CompletedRead>& reads() { return reads_; }
  // Every applied entry, in order (only when record_applied is set).
  const std::vector<Entry>& applied_entries() const { return applied_entries_; }
  void set_record_applied(bool b) { record_applied_ = b; }
  void set_apply_observer(ApplyObserver f) { observer_ = std::move(f); }

 private:
  void ApplyEntry(const Entry& e);

  uint64_t id_;
  Config cfg_;
  SeededRand rand_;
  MemoryStorage storage_;
  std::unique_ptr<RawNode> node_;
  KvStateMachine sm_;
  ConfState conf_state_;
  std::vector<CompletedRead> reads_;
  bool record_applied_ = true;
  std::vector<Entry> applied_entries_;
  ApplyObserver observer_;
};

// A Config with test-friendly defaults: election 10 ticks, heartbeat 1,
// PreVote and CheckQuorum as given.
Config TestConfig(bool pre_vote = true, bool check_quorum = true);

}  // namespace arbiter::raft::testing

#endif  // ARBITER_TESTS_HARNESS_PEER_H_
