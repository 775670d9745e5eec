// A single-threaded simulated network of Peers, for unit tests and the
// cluster simulation. Everything random (drops, delays, reordering,
// duplication) comes from one seed, so a run replays exactly.
//
// Two ways to move messages:
//  - Send()/Stabilize(): synchronous, like etcd's test network: deliver each
//    message at once (subject to the filters), process the recipient's
//    Ready, and keep going until no message is left.
//  - Enqueue()/DeliverOne(): asynchronous: messages wait in flight, each
//    with a delivery time on the network's logical clock; DeliverOne picks
//    one that is due (in random order when reordering is on, else oldest
//    first per link) and may duplicate it.
//
// Thread safety: not thread-safe.
#ifndef ARBITER_TESTS_HARNESS_NETWORK_H_
#define ARBITER_TESTS_HARNESS_NETWORK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "raft/rand.h"
#include "tests/harness/peer.h"

namespace arbiter::raft::testing {

struct NetworkOptions {
  Config config = TestConfig();
  uint64_t seed = 1;
};

class Network {
 public:
  using Options = NetworkOptions;

  // A cluster whose initial configuration is the given voters and learners.
  explicit Network(std::vector<uint64_t> voters, Options opts = Options(),
                   std::vector<uint64_t> learners = {});

  Peer& peer(uint64_t id) { return *peers_.at(id); }
  bool has_peer(uint64_t id) const { return peers_.contains(id); }
  std::vector<uint64_t> ids() const;
  // Adds a node with an empty configuration (it learns its membership from
  // the leader after a conf change adds it).
  Peer& AddPeer(uint64_t id);

  // ---- Synchronous delivery ----
  void Send(std::vector<Message> msgs);
  // Processes every running peer's Ready and delivers until quiescent.
  void Stabilize();
  // Node id campaigns; then Stabilize.
  void Campaign(uint64_t id);
  // Proposes data at node id; then Stabilize. Returns the Propose status.
  absl::Status Propose(uint64_t id, const std::string& data);
  // Ticks node id n times, stabilizing after each tick.
  void Tick(uint64_t id, int n = 1);
  // Ticks every running node n times, stabilizing after each round.
  void TickAll(int n = 1);

  // ---- Asynchronous delivery ----
  // Applies the filters and duplication, then queues the survivors.
  void Enqueue(std::vector<Message> msgs);
  // Delivers one due message (if any) and queues what the recipient sends.
  // Returns false when no message is due.
  bool DeliverOne();
  // Moves the logical clock by one unit (delays are counted in units).
  void AdvanceClock() { ++now_; }
  uint64_t now() const { return now_; }
  size_t in_flight() const { return in_flight_count_; }
  // "from->to: n msgs (head due at t)" per non-empty link, for failure dumps.
  std::string DescribeInFlight() const;
  // Drops every queued message (e.g. when a partition starts they would be
  // lost anyway).
  void ClearInFlight();

  // ---- Faults ----
  // Drop messages from -> to with probability p (1 = always).
  void Drop(uint64_t from, uint64_t to, double p);
  // Drops everything between a and b, both directions.
  void Cut(uint64_t a, uint64_t b);
  // Drops everything to and from id.
  void Isolate(uint64_t id);
  // Only nodes in the same group talk; a node in no group is isolated.
  void Partition(const std::vector<std::vector<uint64_t>>& groups);
  // Drops every message of this type.
  void Ignore(MessageType t);
  // Delivery delay drawn uniformly from [0, max_delay] clock units.
  void SetMaxDelay(uint64_t max_delay) { max_delay_ = max_delay; }
  // Deliver due messages in random order rather than per-link FIFO.
  void SetReorder(bool on) { reorder_ = on; }
  // Deliver a message twice with probability p.
  void SetDuplicate(double p) { duplicate_p_ = p; }
  // Called after a peer handled a Ready during delivery (the simulation
  // serves reads and checks invariants through it).
  void SetAfterReady(std::function<void(Peer&)> f) { after_ready_ = std::move(f); }
  // Called for each message before delivery; returning false drops it.
  void SetHook(std::function<bool(const Message&)> hook) { hook_ = std::move(hook); }
  // Heals everything: drops, cuts, ignores, hook (delay/reorder/duplicate
  // settings stay).
  void Recover();

  // Loses the volatile state of id (see Peer::Crash); messages to it are
  // dropped until Restart.
  void Crash(uint64_t id);
  void Restart(uint64_t id);

  // The running leader with the highest term, or kNone.
  uint64_t Leader() const;

  // Print every delivered message to stderr (for replaying a failure).
  void SetTrace(bool on) { trace_ = on; }

  SeededRand& rand() { return rand_; }
  uint64_t delivered() const { return delivered_; }
  // Messages delivered, by type.
  uint64_t delivered(MessageType t) const {
    auto it = delivered_by_type_.find(t);
    return it == delivered_by_type_.end() ? 0 : it->second;
  }

 private:
  bool Allowed(const Message& m);
  // A real transport tells the sender the outcome of a snapshot; the
  // simulated one does the same when it loses or delivers a MsgSnap.
  void ReportSnapshot(const Message& m, bool delivered);
  void DeliverTo(Message m, std::vector<Message>* out);

  struct InFlight {
    uint64_t due;
    Message msg;
  };

  Options opts_;
  SeededRand rand_;
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;
  std::map<std::pair<uint64_t, uint64_t>, double> drop_;
  std::set<MessageType> ignore_;
  std::function<bool(const Message&)> hook_;
  std::function<void(Peer&)> after_ready_;
  uint64_t max_delay_ = 0;
  bool reorder_ = false;
  double duplicate_p_ = 0;
  uint64_t now_ = 0;
  // Per-link queues (from, to) in send order.
  std::map<std::pair<uint64_t, uint64_t>, std::deque<InFlight>> in_flight_;
  size_t in_flight_count_ = 0;
  uint64_t delivered_ = 0;
  bool trace_ = false;
  std::map<MessageType, uint64_t> delivered_by_type_;
};

// Ticks every running node until done() holds. Returns the ticks it took,
// or -1 if it still does not hold after limit ticks.
int TickUntil(Network& net, const std::function<bool()>& done, int limit);

// Counts the messages, by type, that pass the network's filters (sets the
// network's hook).
std::shared_ptr<std::map<MessageType, int>> CountMessages(Network& net);

}  // namespace arbiter::raft::testing

#endif  // ARBITER_TESTS_HARNESS_NETWORK_H_
