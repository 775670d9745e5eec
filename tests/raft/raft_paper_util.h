// Helpers for the Raft paper tests (raft_paper_test.cc and
// raft_paper_log_test.cc): bare Raft nodes over a MemoryStorage, stepped by
// hand, and the init steps the tests share (make a node follower,
// candidate or leader; acknowledge a leader's appends).
//
// Thread safety: test code; single-threaded.
#ifndef ARBITER_TESTS_RAFT_RAFT_PAPER_UTIL_H_
#define ARBITER_TESTS_RAFT_RAFT_PAPER_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/rand.h"

namespace arbiter::raft::paper_test {

// Entries at consecutive indexes from first, with the given terms.
inline std::vector<Entry> Ents(uint64_t first, std::initializer_list<uint64_t> terms) {
  std::vector<Entry> out;
  for (uint64_t t : terms) {
    Entry e;
    e.set_index(first++);
    e.set_term(t);
    out.push_back(std::move(e));
  }
  return out;
}

inline Entry Ent(uint64_t index, uint64_t term, const std::string& data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data);
  return e;
}

inline std::vector<std::string> Strs(const std::vector<Entry>& ents) {
  std::vector<std::string> out;
  for (const Entry& e : ents) out.push_back(e.ShortDebugString());
  return out;
}

inline std::vector<std::string> Strs(const std::vector<Message>& msgs) {
  std::vector<std::string> out;
  for (const Message& m : msgs) out.push_back(m.ShortDebugString());
  return out;
}

inline HardState Hs(uint64_t term, uint64_t vote = kNone, uint64_t commit = 0) {
  HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

inline Message Msg(uint64_t from, uint64_t to, MessageType type, uint64_t term = 0) {
  Message m;
  m.set_from(from);
  m.set_to(to);
  m.set_type(type);
  m.set_term(term);
  return m;
}

// The nodes' election timeout, in ticks; the heartbeat interval is 1 tick.
inline constexpr int kElectionTick = 10;

struct NodeOptions {
  bool pre_vote = false;
  bool check_quorum = false;
};

// A bare Raft over a MemoryStorage that already holds ents and hs.
class Node {
 public:
  Node(uint64_t id, const std::vector<uint64_t>& voters, const std::vector<Entry>& ents = {},
       const HardState& hs = HardState(), const NodeOptions& opts = NodeOptions())
      : rand_(id) {
    ConfState cs;
    for (uint64_t v : voters) cs.add_voters(v);
    storage_.BootstrapConfState(cs);
    if (!ents.empty()) {
      EXPECT_TRUE(storage_.Append(ents).ok());
    }
    storage_.SetHardState(hs);
    Config c;
    c.id = id;
    c.election_tick = kElectionTick;
    c.heartbeat_tick = 1;
    c.pre_vote = opts.pre_vote;
    c.check_quorum = opts.check_quorum;
    c.storage = &storage_;
    c.rand = &rand_;
    raft_ = std::make_unique<Raft>(c);
  }

  Raft& r() { return *raft_; }

  // What a RawNode would do after handing the unstable entries and the
  // committed ones to the application: persist and apply them.
  void PersistAndApply() {
    std::vector<Entry> ents = raft_->log().UnstableEntries();
    if (!ents.empty()) {
      EXPECT_TRUE(storage_.Append(ents).ok());
      raft_->mutable_log().StableTo(ents.back().index(), ents.back().term());
    }
    raft_->AppliedTo(raft_->log().committed());
  }

 private:
  MemoryStorage storage_;
  SeededRand rand_;
  std::unique_ptr<Raft> raft_;
};

// Takes the node's outgoing messages, sorted by recipient, type and sender.
inline std::vector<Message> Take(Raft& r) {
  std::vector<Message> out;
  out.swap(r.msgs());
  std::stable_sort(out.begin(), out.end(), [](const Message& a, const Message& b) {
    return std::make_tuple(a.to(), a.type(), a.from()) <
           std::make_tuple(b.to(), b.type(), b.from());
  });
  return out;
}

inline void Hup(Raft& r) { ASSERT_TRUE(r.Step(Msg(r.id(), r.id(), raftpb::MSG_HUP)).ok()); }

inline void Propose(Raft& r, const std::string& data) {
  Message m = Msg(r.id(), r.id(), raftpb::MSG_PROP);
  m.add_entries()->set_data(data);
  ASSERT_TRUE(r.Step(std::move(m)).ok());
}

inline void TickN(Raft& r, int n) {
  for (int i = 0; i < n; ++i) r.Tick();
}

// Init: a follower of lead at term (learned from a heartbeat).
inline void MakeFollower(Raft& r, uint64_t term, uint64_t lead) {
  ASSERT_TRUE(r.Step(Msg(lead, r.id(), raftpb::MSG_HEARTBEAT, term)).ok());
  ASSERT_EQ(r.state(), StateType::kFollower);
  ASSERT_EQ(r.term(), term);
  Take(r);
}

// Init: a candidate one term up, with its vote requests discarded.
inline void MakeCandidate(Raft& r) {
  Hup(r);
  ASSERT_EQ(r.state(), StateType::kCandidate);
  Take(r);
}

// Init: a leader one term up, elected by every voter. Returns the appends
// of its empty entry that it sent on election.
inline std::vector<Message> MakeLeader(Raft& r) {
  Hup(r);
  if (r.state() != StateType::kLeader) Take(r);  // the vote requests
  for (uint64_t id : r.tracker().VoterNodes()) {
    if (id == r.id() || r.state() == StateType::kLeader) continue;
    EXPECT_TRUE(r.Step(Msg(id, r.id(), raftpb::MSG_VOTE_RESP, r.term())).ok());
  }
  EXPECT_EQ(r.state(), StateType::kLeader) << r.DescribeState();
  return Take(r);
}

// Delivers msgs and everything they cause among nodes until none is left.
// Messages to a node not in nodes are lost.
inline void Pump(const std::map<uint64_t, Raft*>& nodes, std::vector<Message> msgs) {
  std::deque<Message> queue(msgs.begin(), msgs.end());
  while (!queue.empty()) {
    Message m = std::move(queue.front());
    queue.pop_front();
    auto it = nodes.find(m.to());
    if (it == nodes.end()) continue;
    ASSERT_TRUE(it->second->Step(m).ok());
    for (Message& out : Take(*it->second)) queue.push_back(std::move(out));
  }
}

// The answer of a follower that accepts the append m.
inline Message AcceptAndReply(const Message& m) {
  EXPECT_EQ(m.type(), raftpb::MSG_APP);
  Message r = Msg(m.to(), m.from(), raftpb::MSG_APP_RESP, m.term());
  r.set_index(m.index() + static_cast<uint64_t>(m.entries_size()));
  return r;
}

// Every follower accepts every append, until the leader sends no more.
inline void AckAll(Raft& r, std::vector<Message> msgs) {
  while (!msgs.empty()) {
    for (const Message& m : msgs) {
      if (m.type() == raftpb::MSG_APP) {
        ASSERT_TRUE(r.Step(AcceptAndReply(m)).ok());
      }
    }
    msgs = Take(r);
  }
}

// Init: a leader that committed, persisted and applied its empty entry.
inline void ElectAndCommitEmptyEntry(Node& n) {
  AckAll(n.r(), MakeLeader(n.r()));
  ASSERT_EQ(n.r().log().committed(), n.r().log().LastIndex());
  n.PersistAndApply();
}

}  // namespace arbiter::raft::paper_test

#endif  // ARBITER_TESTS_RAFT_RAFT_PAPER_UTIL_H_
