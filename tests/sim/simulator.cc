#include "tests/sim/simulator.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/confchange.h"
#include "tests/harness/network.h"
#include "tests/sim/invariants.h"

namespace arbiter::raft::sim {
namespace {

using testing::Network;
using testing::NetworkOptions;
using testing::Peer;

constexpr int kKeys = 5;
// Rounds of tick + deliver allowed for the healed cluster to converge.
constexpr int kConvergeRounds = 800;

class Simulation {
 public:
  explicit Simulation(const SimOptions& opts) : opts_(opts), rng_(opts.seed ^ 0x5eed5eedULL) {}

  SimResult Run();

 private:
  // ---- Scheduler events ----
  void RandomEvent(int step);
  void TickAll();
  void TickOne();
  void ClientWrite();
  void ClientRead();
  void StartPartition();
  void Heal();
  void CrashNode();
  void CrashLeader();
  void Crash(Peer& p);
  void FalseConnectionLoss();
  void RestartNode(bool any);
  void Transfer();
  void ChangeMembership();
  void Compact();
  bool Converge();

  // ---- Bookkeeping ----
  void AfterReady(Peer& p);
  void Flush(Peer& p);  // process p's Ready and queue its messages
  void ApplyBaseFaults();
  std::vector<uint64_t> Running() const;
  std::vector<uint64_t> Members(const Raft& leader) const;
  uint64_t Pick(const std::vector<uint64_t>& v) { return v[rng_.Uniform(v.size())]; }
  bool Chance(double p) { return static_cast<double>(rng_.Uniform(1000000)) < p * 1e6; }
  void Log(const std::string& s) {
    if (opts_.verbose) std::fprintf(stderr, "[step %d] %s\n", step_, s.c_str());
  }
  void Check() { checker_.Check(*net_); }

  SimOptions opts_;
  SeededRand rng_;
  std::unique_ptr<Network> net_;
  InvariantChecker checker_;
  SimResult result_;
  int step_ = 0;
  int nodes_ = 3;

  // Fault settings drawn from the seed.
  double base_drop_ = 0;
  bool partitioned_ = false;
  std::map<uint64_t, int> crashed_at_;
  std::set<uint64_t> removed_;

  // Client state.
  struct PendingWrite {
    std::string key;
    uint64_t node;
  };
  std::map<std::string, PendingWrite> pending_writes_;  // by entry data
  std::map<std::string, uint64_t> acked_index_;         // key -> highest acked write index
  uint64_t max_acked_index_ = 0;
  struct PendingRead {
    uint64_t node;
    std::string key;
    uint64_t required;
  };
  std::map<std::string, PendingRead> pending_reads_;  // by ctx
  uint64_t next_value_ = 0;
};

SimResult Simulation::Run() {
  nodes_ = opts_.nodes != 0 ? opts_.nodes : (rng_.Uniform(2) == 0 ? 3 : 5);
  NetworkOptions nopts;
  nopts.seed = opts_.seed;
  nopts.config.election_tick = 10;
  nopts.config.heartbeat_tick = 1;
  // Small messages and windows stress batching and flow control.
  // A third of the runs send one entry per message, so followers can hold
  // (and acknowledge) a prefix of what a new leader sends them: the
  // histories of Figure 8.
  nopts.config.max_size_per_msg = rng_.Uniform(3) == 0 ? 1 : 1 + rng_.Uniform(4096);
  nopts.config.max_inflight_msgs = 1 + rng_.Uniform(16);
  nopts.config.pre_vote = true;
  nopts.config.check_quorum = true;
  std::vector<uint64_t> voters;
  for (int i = 1; i <= nodes_; ++i) voters.push_back(static_cast<uint64_t>(i));
  net_ = std::make_unique<Network>(voters, nopts);
  // Two spares that membership changes may add.
  for (int i = 1; i <= 2; ++i) net_->AddPeer(static_cast<uint64_t>(nodes_ + i));
  for (uint64_t id : net_->ids()) {
    net_->peer(id).set_record_applied(false);
    net_->peer(id).set_apply_observer([this](uint64_t peer, const Entry& e) {
      checker_.OnApply(peer, e);
      auto it = pending_writes_.find(e.data());
      if (it != pending_writes_.end() && it->second.node == peer) {
        uint64_t& idx = acked_index_[it->second.key];
        idx = std::max(idx, e.index());
        max_acked_index_ = std::max(max_acked_index_, e.index());
        ++result_.writes_acked;
        pending_writes_.erase(it);
      }
    });
  }
  net_->SetAfterReady([this](Peer& p) { AfterReady(p); });

  net_->SetMaxDelay(rng_.Uniform(4));
  net_->SetReorder(rng_.Uniform(2) == 0);
  net_->SetDuplicate(rng_.Uniform(3) == 0 ? 0.02 : 0.0);
  base_drop_ = rng_.Uniform(2) == 0 ? 0.0 : 0.02 * static_cast<double>(1 + rng_.Uniform(3));
  ApplyBaseFaults();
  Log(absl::StrCat("seed ", opts_.seed, ": ", nodes_, " nodes, drop ", base_drop_));

  for (step_ = 0; step_ < opts_.steps; ++step_) {
    RandomEvent(step_);
    Check();
    if (checker_.failed()) break;
  }
  if (!checker_.failed() && !Converge() && !checker_.failed()) {
    result_.ok = false;
    result_.failure =
        result_.failure.empty() ? "liveness: the healed cluster did not converge" : result_.failure;
  }
  if (checker_.failed()) {
    result_.ok = false;
    result_.failure = checker_.failure();
  }
  result_.step = step_;
  result_.leaders_elected = checker_.leaders_elected();
  result_.messages = net_->delivered();
  result_.snapshots_sent = net_->delivered(raftpb::MSG_SNAP);
  for (uint64_t id : net_->ids()) {
    if (net_->peer(id).running()) {
      result_.max_term = std::max(result_.max_term, net_->peer(id).node().raft().term());
    }
  }
  return result_;
}

void Simulation::ApplyBaseFaults() {
  if (base_drop_ <= 0) return;
  for (uint64_t a : net_->ids()) {
    for (uint64_t b : net_->ids()) {
      if (a != b) net_->Drop(a, b, base_drop_);
    }
  }
}

std::vector<uint64_t> Simulation::Running() const {
  std::vector<uint64_t> out;
  for (uint64_t id : net_->ids()) {
    if (net_->peer(id).running()) out.push_back(id);
  }
  return out;
}

std::vector<uint64_t> Simulation::Members(const Raft& leader) const {
  std::vector<uint64_t> out = leader.tracker().config.voters.Ids();
  for (uint64_t l : leader.tracker().config.learners) out.push_back(l);
  std::sort(out.begin(), out.end());
  return out;
}

void Simulation::Flush(Peer& p) {
  if (!p.running()) return;
  std::vector<Message> msgs = p.ProcessReady();
  AfterReady(p);
  net_->Enqueue(std::move(msgs));
}

void Simulation::AfterReady(Peer& p) {
  // Serve the linearizable reads whose read index is now applied.
  auto& reads = p.reads();
  for (auto it = reads.begin(); it != reads.end();) {
    auto pr = pending_reads_.find(it->state.request_ctx);
    if (pr == pending_reads_.end() || pr->second.node != p.id()) {
      it = reads.erase(it);
      continue;
    }
    if (p.sm().applied() < it->state.index) {
      ++it;
      continue;
    }
    checker_.OnRead(p.id(), pr->second.key, p.sm().WriteIndex(pr->second.key), pr->second.required);
    ++result_.reads_served;
    pending_reads_.erase(pr);
    it = reads.erase(it);
  }
}

void Simulation::RandomEvent(int step) {
  (void)step;
  struct Weighted {
    int weight;
    void (Simulation::*fn)();
  };
  // Deliveries dominate so the network drains faster than ticks fill it.
  static const Weighted kEvents[] = {
      {600, nullptr},  // deliver one message
      {60, &Simulation::TickAll},
      {8, &Simulation::TickOne},
      {40, &Simulation::ClientWrite},
      {25, &Simulation::ClientRead},
      {3, &Simulation::StartPartition},
      {8, &Simulation::Heal},
      {1, &Simulation::CrashNode},
      {1, &Simulation::CrashLeader},
      {1, &Simulation::FalseConnectionLoss},
      {4, &Simulation::Compact},
      {1, &Simulation::Transfer},
      {2, &Simulation::ChangeMembership},
  };
  int total = 0;
  for (const auto& e : kEvents) total += e.weight;
  int r = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(total)));
  for (const auto& e : kEvents) {
    if (r < e.weight) {
      if (e.fn == nullptr) {
        net_->DeliverOne();
      } else {
        (this->*e.fn)();
      }
      break;
    }
    r -= e.weight;
  }
  RestartNode(false);
}

void Simulation::TickAll() {
  // Network latency is below a tick unless a delay was drawn: deliver what
  // is due before time moves on, checking after each delivery. Without this
  // the queue outgrows the delivery rate and every election times out.
  for (int i = 0; i < 100000 && !checker_.failed() && net_->DeliverOne(); ++i) Check();
  net_->AdvanceClock();
  for (uint64_t id : Running()) net_->peer(id).node().Tick();
  for (uint64_t id : Running()) Flush(net_->peer(id));
}

void Simulation::TickOne() {
  std::vector<uint64_t> r = Running();
  if (r.empty()) return;
  Peer& p = net_->peer(Pick(r));
  p.node().Tick();
  Flush(p);
}

void Simulation::ClientWrite() {
  std::vector<uint64_t> r = Running();
  if (r.empty()) return;
  Peer& p = net_->peer(Pick(r));
  std::string key = absl::StrCat("k", rng_.Uniform(kKeys));
  std::string data = absl::StrCat(key, "=v", ++next_value_);
  if (p.node().Propose(data).ok()) {
    pending_writes_[data] = PendingWrite{key, p.id()};
    Log(absl::StrCat("write ", data, " at ", p.id()));
  }
  Flush(p);
}

void Simulation::ClientRead() {
  std::vector<uint64_t> r = Running();
  if (r.empty()) return;
  Peer& p = net_->peer(Pick(r));
  std::string key = absl::StrCat("k", rng_.Uniform(kKeys));
  std::string ctx = absl::StrCat("read-", ++next_value_);
  // The read must see every write acknowledged before it starts.
  pending_reads_[ctx] = PendingRead{p.id(), key, acked_index_[key]};
  p.node().ReadIndex(ctx);
  Log(absl::StrCat("read ", key, " at ", p.id(), " requires index ", acked_index_[key]));
  Flush(p);
}

void Simulation::StartPartition() {
  if (!opts_.partitions || partitioned_) return;
  std::vector<uint64_t> ids = net_->ids();
  const uint64_t leader = net_->Leader();
  const int shape = static_cast<int>(rng_.Uniform(4));
  std::string what;
  if (shape == 0 && leader != kNone) {
    net_->Isolate(leader);
    what = absl::StrCat("isolate leader ", leader);
  } else if (shape == 1 && ids.size() >= 3) {
    // The bridge: two sides that reach each other only through one node.
    std::vector<uint64_t> order = ids;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng_.Uniform(i)]);
    const uint64_t bridge = order[0];
    std::vector<uint64_t> left, right;
    for (size_t i = 1; i < order.size(); ++i) (i % 2 ? left : right).push_back(order[i]);
    for (uint64_t a : left) {
      for (uint64_t b : right) net_->Cut(a, b);
    }
    what = absl::StrCat("bridge via ", bridge, ": {", absl::StrJoin(left, ","), "} | {",
                        absl::StrJoin(right, ","), "}");
  } else if (shape == 2) {
    // One-way: a random node can send but not receive (or the reverse).
    const uint64_t n = Pick(ids);
    const bool inbound = rng_.Uniform(2) == 0;
    for (uint64_t o : ids) {
      if (o == n) continue;
      if (inbound) {
        net_->Drop(o, n, 1.0);
      } else {
        net_->Drop(n, o, 1.0);
      }
    }
    what = absl::StrCat("one-way ", inbound ? "into " : "out of ", n);
  } else {
    std::vector<uint64_t> a, b;
    for (uint64_t id : ids) (rng_.Uniform(2) == 0 ? a : b).push_back(id);
    net_->Partition({a, b});
    what = absl::StrCat("partition {", absl::StrJoin(a, ","), "} | {", absl::StrJoin(b, ","), "}");
  }
  partitioned_ = true;
  ++result_.partitions;
  Log(what);
}

void Simulation::Heal() {
  if (!partitioned_) return;
  net_->Recover();
  ApplyBaseFaults();
  partitioned_ = false;
  Log("heal");
}

void Simulation::CrashNode() {
  if (!opts_.crashes) return;
  std::vector<uint64_t> r = Running();
  if (!r.empty()) Crash(net_->peer(Pick(r)));
}

void Simulation::CrashLeader() {
  // Leaders are where the interesting histories start: entries replicated
  // to some but not a quorum, a new leader with a different suffix.
  if (!opts_.crashes) return;
  const uint64_t leader = net_->Leader();
  if (leader != kNone) Crash(net_->peer(leader));
}

void Simulation::Crash(Peer& p) {
  // Between steps (everything since the last Ready is lost), after
  // persisting a Ready but before sending its messages, or (a leader's)
  // after sending a Ready's messages but before persisting it.
  switch (rng_.Uniform(3)) {
    case 0:
      p.ProcessReadyThenCrash();
      break;
    case 1:
      net_->Enqueue(p.SendReadyThenCrash());
      break;
    default:
      p.Crash();
      break;
  }
  crashed_at_[p.id()] = step_;
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    it = it->second.node == p.id() ? pending_writes_.erase(it) : std::next(it);
  }
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    it = it->second.node == p.id() ? pending_reads_.erase(it) : std::next(it);
  }
  checker_.OnRestart(p.id());
  ++result_.crashes;
  Log(absl::StrCat("crash ", p.id()));
  // A crashed process's connections close, and the others' transports
  // report it (most of the time: a report may be lost or late).
  for (uint64_t id : Running()) {
    if (Chance(0.8)) net_->peer(id).node().ReportConnectionLost(p.id());
  }
}

void Simulation::FalseConnectionLoss() {
  // A connection closed for another reason than a crash (a reconnect, a
  // proxy): a running node is told a running peer is gone. It must not
  // matter for safety.
  std::vector<uint64_t> r = Running();
  if (r.size() < 2) return;
  const uint64_t to = Pick(r);
  const uint64_t about = Pick(r);
  if (to == about) return;
  net_->peer(to).node().ReportConnectionLost(about);
  Log(absl::StrCat("tell ", to, " the connection from ", about, " closed"));
}

void Simulation::RestartNode(bool any) {
  for (auto it = crashed_at_.begin(); it != crashed_at_.end();) {
    const bool due = any || step_ - it->second > 30 + static_cast<int>(rng_.Uniform(200));
    if (!due) {
      ++it;
      continue;
    }
    Peer& p = net_->peer(it->first);
    p.Restart();
    checker_.OnRestart(p.id());
    Log(absl::StrCat("restart ", p.id()));
    Flush(p);
    it = crashed_at_.erase(it);
  }
}

void Simulation::Transfer() {
  if (!opts_.transfers) return;
  const uint64_t leader = net_->Leader();
  if (leader == kNone) return;
  std::vector<uint64_t> voters = net_->peer(leader).node().raft().tracker().config.voters.Ids();
  const uint64_t to = Pick(voters);
  Log(absl::StrCat("transfer leadership ", leader, " -> ", to));
  net_->peer(leader).node().TransferLeader(to);
  Flush(net_->peer(leader));
}

void Simulation::ChangeMembership() {
  if (!opts_.membership) return;
  const uint64_t leader = net_->Leader();
  if (leader == kNone) return;
  Peer& lp = net_->peer(leader);
  const TrackerConfig& cfg = lp.node().raft().tracker().config;
  if (cfg.voters.IsJoint()) {
    if (!cfg.auto_leave) {
      Log("leave joint config");
      (void)lp.node().ProposeConfChange(ConfChangeV2());
      Flush(lp);
    }
    return;
  }
  std::vector<uint64_t> voters = cfg.voters.incoming.ids();
  std::vector<uint64_t> learners(cfg.learners.begin(), cfg.learners.end());
  std::vector<uint64_t> candidates;  // nodes never added and never removed
  for (uint64_t id : net_->ids()) {
    if (!cfg.voters.Contains(id) && !cfg.learners.contains(id) && !removed_.contains(id)) {
      candidates.push_back(id);
    }
  }
  std::vector<ConfChangeSingle> changes;
  auto add = [&](raftpb::ConfChangeType t, uint64_t id) {
    ConfChangeSingle c;
    c.set_type(t);
    c.set_node_id(id);
    changes.push_back(c);
  };
  const int op = static_cast<int>(rng_.Uniform(4));
  if (op == 0 && !candidates.empty()) {
    add(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, Pick(candidates));
  } else if (op == 1 && !learners.empty()) {
    add(raftpb::CONF_CHANGE_ADD_NODE, Pick(learners));
  } else if (op == 2 && voters.size() > 3) {
    const uint64_t id = Pick(voters);
    if (rng_.Uniform(2) == 0) {
      add(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, id);  // demote
    } else {
      add(raftpb::CONF_CHANGE_REMOVE_NODE, id);
      removed_.insert(id);
    }
  } else if (op == 3 && !learners.empty() && voters.size() > 3) {
    // Swap a voter for a learner in one joint step.
    add(raftpb::CONF_CHANGE_ADD_NODE, Pick(learners));
    const uint64_t out = Pick(voters);
    add(raftpb::CONF_CHANGE_REMOVE_NODE, out);
    removed_.insert(out);
  } else {
    return;
  }
  ConfChangeV2 cc;
  for (const auto& c : changes) *cc.add_changes() = c;
  const int mode = static_cast<int>(rng_.Uniform(3));
  if (mode == 1) cc.set_transition(raftpb::CONF_CHANGE_TRANSITION_JOINT_IMPLICIT);
  if (mode == 2) cc.set_transition(raftpb::CONF_CHANGE_TRANSITION_JOINT_EXPLICIT);
  absl::Status s;
  if (changes.size() == 1 && mode == 0 && rng_.Uniform(2) == 0) {
    ConfChange v1;
    v1.set_type(changes[0].type());
    v1.set_node_id(changes[0].node_id());
    s = lp.node().ProposeConfChange(v1);
  } else {
    s = lp.node().ProposeConfChange(cc);
  }
  ++result_.conf_changes;
  Log(absl::StrCat("conf change at ", leader, " (mode ", mode, "): ", cc.ShortDebugString(), " -> ",
                   s.ToString()));
  Flush(lp);
}

void Simulation::Compact() {
  if (!opts_.snapshots) return;
  std::vector<uint64_t> r = Running();
  if (r.empty()) return;
  Peer& p = net_->peer(Pick(r));
  p.CompactLog();
  Log(absl::StrCat("compact ", p.id(), " at ", p.sm().applied()));
}

bool Simulation::Converge() {
  Log("converge: heal everything");
  if (opts_.verbose) net_->SetTrace(true);
  net_->Recover();
  net_->SetDuplicate(0);
  partitioned_ = false;
  RestartNode(true);
  std::string final_write;
  bool final_acked = false;
  int proposed_round = 0;
  for (int round = 0; round < kConvergeRounds; ++round) {
    TickAll();
    for (int i = 0; i < 20000 && net_->DeliverOne(); ++i) {
    }
    net_->AdvanceClock();
    for (int i = 0; i < 20000 && net_->DeliverOne(); ++i) {
    }
    Check();
    if (checker_.failed()) return false;
    const uint64_t leader = net_->Leader();
    if (leader == kNone) continue;
    Peer& lp = net_->peer(leader);
    final_acked = acked_index_.contains("final");
    // (Re)propose the final write if there is none yet, or if it was lost
    // (e.g. dropped by a leader that lost leadership before committing it).
    if (final_write.empty() ||
        (!final_acked && (!pending_writes_.contains(final_write) || round - proposed_round > 60))) {
      pending_writes_.erase(final_write);
      proposed_round = round;
      final_write = absl::StrCat("final=", ++next_value_);
      if (lp.node().Propose(final_write).ok()) {
        pending_writes_[final_write] = PendingWrite{"final", leader};
      } else {
        final_write.clear();
      }
      Flush(lp);
      continue;
    }
    if (!final_acked) continue;
    const uint64_t commit = lp.node().raft().log().committed();
    if (commit < max_acked_index_) continue;
    bool all = true;
    for (uint64_t m : Members(lp.node().raft())) {
      Peer& mp = net_->peer(m);
      if (!mp.running() || mp.sm().applied() < commit) all = false;
    }
    if (all) return true;
  }
  // Describe the stuck state.
  std::string dump;
  for (uint64_t id : net_->ids()) {
    Peer& p = net_->peer(id);
    absl::StrAppend(&dump, "\n  ", p.running() ? p.node().raft().DescribeState() : "down",
                    " applied=", p.sm().applied());
    if (p.running() && p.node().raft().state() == StateType::kLeader) {
      absl::StrAppend(&dump, "\n    progress: ", p.node().Status().Describe());
    }
  }
  result_.failure = absl::StrCat("liveness: the healed cluster did not converge in ",
                                 kConvergeRounds, " rounds (max acked index ", max_acked_index_,
                                 ")", dump, "\n  in flight: ", net_->DescribeInFlight());
  return false;
}

}  // namespace

SimResult RunSimulation(const SimOptions& opts) { return Simulation(opts).Run(); }

}  // namespace arbiter::raft::sim
