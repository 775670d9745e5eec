#include "tests/harness/network.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "raft/check.h"

namespace arbiter::raft::testing {
namespace {

bool Chance(SeededRand& r, double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return static_cast<double>(r.Uniform(1u << 30)) < p * static_cast<double>(1u << 30);
}

}  // namespace

Network::Network(std::vector<uint64_t> voters, Options opts, std::vector<uint64_t> learners)
    : opts_(std::move(opts)), rand_(opts_.seed) {
  std::vector<uint64_t> all = voters;
  all.insert(all.end(), learners.begin(), learners.end());
  for (uint64_t id : all) {
    auto p = std::make_unique<Peer>(id, opts_.config, opts_.seed * 1000003 + id);
    p->Bootstrap(voters, learners);
    p->Start();
    peers_[id] = std::move(p);
  }
}

std::vector<uint64_t> Network::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, p] : peers_) out.push_back(id);
  return out;
}

Peer& Network::AddPeer(uint64_t id) {
  auto p = std::make_unique<Peer>(id, opts_.config, opts_.seed * 1000003 + id);
  p->Start();
  Peer& ref = *p;
  peers_[id] = std::move(p);
  return ref;
}

bool Network::Allowed(const Message& m) {
  bool ok = !ignore_.contains(m.type());
  auto it = drop_.find({m.from(), m.to()});
  if (ok && it != drop_.end() && Chance(rand_, it->second)) ok = false;
  if (ok && hook_ && !hook_(m)) ok = false;
  if (!ok) ReportSnapshot(m, false);
  return ok;
}

void Network::ReportSnapshot(const Message& m, bool delivered) {
  if (m.type() != raftpb::MSG_SNAP) return;
  auto it = peers_.find(m.from());
  if (it == peers_.end() || !it->second->running()) return;
  it->second->node().ReportSnapshot(m.to(),
                                    delivered ? SnapshotStatus::kFinish : SnapshotStatus::kFailure);
}

void Network::DeliverTo(Message m, std::vector<Message>* out) {
  auto it = peers_.find(m.to());
  if (it == peers_.end() || !it->second->running()) {
    ReportSnapshot(m, false);
    return;
  }
  Peer& p = *it->second;
  if (m.type() == raftpb::MSG_SNAP) ReportSnapshot(m, true);
  ++delivered_;
  if (trace_) std::fprintf(stderr, "  deliver %s\n", DescribeMessage(m).c_str());
  ++delivered_by_type_[m.type()];
  // Errors (a response from an unknown peer, ...) are the node refusing the
  // message; the network does not care.
  (void)p.node().Step(std::move(m));
  std::vector<Message> more = p.ProcessReady();
  if (after_ready_) after_ready_(p);
  for (Message& x : more) out->push_back(std::move(x));
}

void Network::Send(std::vector<Message> msgs) {
  std::deque<Message> queue(std::make_move_iterator(msgs.begin()),
                            std::make_move_iterator(msgs.end()));
  while (!queue.empty()) {
    Message m = std::move(queue.front());
    queue.pop_front();
    if (!Allowed(m)) continue;
    std::vector<Message> out;
    DeliverTo(std::move(m), &out);
    for (Message& x : out) queue.push_back(std::move(x));
  }
}

void Network::Stabilize() {
  for (;;) {
    std::vector<Message> msgs;
    for (auto& [id, p] : peers_) {
      if (!p->running()) continue;
      for (Message& m : p->ProcessReady()) msgs.push_back(std::move(m));
      if (after_ready_) after_ready_(*p);
    }
    if (msgs.empty()) return;
    Send(std::move(msgs));
  }
}

void Network::Campaign(uint64_t id) {
  (void)peer(id).node().Campaign();
  Stabilize();
}

absl::Status Network::Propose(uint64_t id, const std::string& data) {
  absl::Status s = peer(id).node().Propose(data);
  Stabilize();
  return s;
}

void Network::Tick(uint64_t id, int n) {
  for (int i = 0; i < n; ++i) {
    peer(id).node().Tick();
    Stabilize();
  }
}

void Network::TickAll(int n) {
  for (int i = 0; i < n; ++i) {
    for (auto& [id, p] : peers_) {
      if (p->running()) p->node().Tick();
    }
    Stabilize();
  }
}

void Network::Enqueue(std::vector<Message> msgs) {
  for (Message& m : msgs) {
    if (!Allowed(m)) continue;
    const int copies = Chance(rand_, duplicate_p_) ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      uint64_t delay = max_delay_ == 0 ? 0 : rand_.Uniform(max_delay_ + 1);
      auto& q = in_flight_[{m.from(), m.to()}];
      q.push_back(InFlight{now_ + delay, c + 1 < copies ? m : std::move(m)});
      ++in_flight_count_;
    }
  }
}

bool Network::DeliverOne() {
  // Collect the candidates: with reordering, every due message; without,
  // the head of each link if it is due.
  std::vector<std::pair<std::deque<InFlight>*, size_t>> due;
  for (auto& [link, q] : in_flight_) {
    if (reorder_) {
      for (size_t i = 0; i < q.size(); ++i) {
        if (q[i].due <= now_) due.emplace_back(&q, i);
      }
    } else if (!q.empty() && q.front().due <= now_) {
      due.emplace_back(&q, 0);
    }
  }
  if (due.empty()) return false;
  auto [q, i] = due[rand_.Uniform(due.size())];
  Message m = std::move((*q)[i].msg);
  q->erase(q->begin() + static_cast<long>(i));
  --in_flight_count_;
  std::vector<Message> out;
  DeliverTo(std::move(m), &out);
  Enqueue(std::move(out));
  return true;
}

std::string Network::DescribeInFlight() const {
  std::string out;
  for (const auto& [link, q] : in_flight_) {
    if (q.empty()) continue;
    absl::StrAppend(&out, " ", link.first, "->", link.second, ":", q.size(), "(head ",
                    MessageTypeName(q.front().msg.type()), " due ", q.front().due, ")");
  }
  return absl::StrCat("now ", now_, out);
}

void Network::ClearInFlight() {
  in_flight_.clear();
  in_flight_count_ = 0;
}

void Network::Drop(uint64_t from, uint64_t to, double p) { drop_[{from, to}] = p; }

void Network::Cut(uint64_t a, uint64_t b) {
  Drop(a, b, 1.0);
  Drop(b, a, 1.0);
}

void Network::Isolate(uint64_t id) {
  for (const auto& [other, p] : peers_) {
    if (other != id) Cut(id, other);
  }
}

void Network::Partition(const std::vector<std::vector<uint64_t>>& groups) {
  std::map<uint64_t, int> group_of;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (uint64_t id : groups[g]) group_of[id] = static_cast<int>(g);
  }
  for (const auto& [a, pa] : peers_) {
    for (const auto& [b, pb] : peers_) {
      if (a == b) continue;
      auto ga = group_of.find(a), gb = group_of.find(b);
      if (ga == group_of.end() || gb == group_of.end() || ga->second != gb->second) {
        Drop(a, b, 1.0);
      }
    }
  }
}

void Network::Ignore(MessageType t) { ignore_.insert(t); }

void Network::Recover() {
  drop_.clear();
  ignore_.clear();
  hook_ = nullptr;
}

void Network::Crash(uint64_t id) {
  if (peer(id).running()) peer(id).Crash();
}

void Network::Restart(uint64_t id) {
  if (!peer(id).running()) peer(id).Restart();
}

uint64_t Network::Leader() const {
  uint64_t best = kNone, best_term = 0;
  for (const auto& [id, p] : peers_) {
    if (!p->running()) continue;
    const Raft& r = p->node().raft();
    if (r.state() == StateType::kLeader && r.term() >= best_term) {
      best = id;
      best_term = r.term();
    }
  }
  return best;
}

int TickUntil(Network& net, const std::function<bool()>& done, int limit) {
  for (int t = 0; t <= limit; ++t) {
    if (done()) return t;
    net.TickAll();
  }
  return -1;
}

std::shared_ptr<std::map<MessageType, int>> CountMessages(Network& net) {
  auto counts = std::make_shared<std::map<MessageType, int>>();
  net.SetHook([counts](const Message& m) {
    ++(*counts)[m.type()];
    return true;
  });
  return counts;
}

}  // namespace arbiter::raft::testing
