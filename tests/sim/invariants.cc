#include "tests/sim/invariants.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace arbiter::raft::sim {

using testing::Network;
using testing::Peer;

uint64_t InvariantChecker::Fingerprint(const Entry& e) {
  return absl::HashOf(e.term(), e.index(), static_cast<int>(e.type()), e.data());
}

void InvariantChecker::Fail(std::string what) {
  if (!failure_) failure_ = std::move(what);
}

void InvariantChecker::OnApply(uint64_t peer, const Entry& e) {
  const uint64_t fp = Fingerprint(e);
  auto [it, inserted] = applied_.emplace(e.index(), fp);
  if (!inserted && it->second != fp) {
    Fail(absl::StrCat("State Machine Safety: node ", peer, " applied ", DescribeEntry(e),
                      " but another node applied a different entry at index ", e.index()));
  }
  uint64_t& last = applied_index_[peer];
  if (e.index() <= last && last != 0) {
    Fail(absl::StrCat("node ", peer, " applied index ", e.index(), " after ", last));
  }
  last = e.index();
}

void InvariantChecker::OnRead(uint64_t peer, const std::string& key, uint64_t observed_index,
                              uint64_t required_index) {
  if (observed_index < required_index) {
    Fail(absl::StrCat("Linearizability: a ReadIndex read of ", key, " on node ", peer,
                      " observed the write at index ", observed_index, " but a write at index ",
                      required_index, " was acknowledged before the read began (stale read)"));
  }
}

void InvariantChecker::OnRestart(uint64_t peer) {
  commit_.erase(peer);
  leader_logs_.erase(peer);
  // Replay after a restart re-applies entries after the snapshot.
  applied_index_.erase(peer);
}

void InvariantChecker::Check(Network& net) {
  ++checks_;
  for (uint64_t id : net.ids()) {
    Peer& p = net.peer(id);
    if (p.running()) CheckNode(p);
  }
  CheckLeaders(net);
  CheckLogMatching(net);
}

void InvariantChecker::CheckNode(Peer& p) {
  const Raft& r = p.node().raft();
  const uint64_t id = p.id();
  uint64_t& max_term = max_term_[id];
  if (r.term() < max_term) {
    Fail(absl::StrCat("node ", id, " term went back from ", max_term, " to ", r.term()));
  }
  max_term = std::max(max_term, r.term());

  const RaftLog& log = r.log();
  uint64_t& commit = commit_[id];
  if (log.committed() < commit) {
    Fail(absl::StrCat("node ", id, " commit went back from ", commit, " to ", log.committed()));
  }
  if (log.committed() > log.LastIndex()) {
    Fail(absl::StrCat("node ", id, " commit ", log.committed(), " beyond last index ",
                      log.LastIndex()));
  }
  // Record newly committed entries and check they agree with what others
  // committed at the same index.
  const uint64_t from = std::max(commit + 1, log.FirstIndex());
  if (log.committed() >= from) {
    auto ents = log.Slice(from, log.committed() + 1, kNoLimit);
    if (!ents.ok()) {
      Fail(absl::StrCat("node ", id,
                        " cannot read its committed entries: ", ents.status().ToString()));
    } else {
      for (const Entry& e : *ents) {
        const uint64_t fp = Fingerprint(e);
        auto [it, inserted] = committed_.emplace(e.index(), std::make_pair(fp, r.term()));
        if (!inserted && it->second.first != fp) {
          Fail(absl::StrCat("node ", id, " committed ", DescribeEntry(e),
                            " but a different entry was committed at index ", e.index()));
        }
      }
    }
  }
  commit = std::max(commit, log.committed());
}

void InvariantChecker::CheckLeaders(Network& net) {
  for (uint64_t id : net.ids()) {
    Peer& p = net.peer(id);
    if (!p.running() || p.node().raft().state() != StateType::kLeader) {
      leader_logs_.erase(id);
      continue;
    }
    const Raft& r = p.node().raft();
    const RaftLog& log = r.log();
    // Election Safety.
    auto [it, inserted] = leader_of_term_.emplace(r.term(), id);
    if (!inserted && it->second != id) {
      Fail(absl::StrCat("Election Safety: nodes ", it->second, " and ", id,
                        " were both leader in term ", r.term()));
    }
    // Leader Completeness: every entry whose commit was observed in an
    // earlier term is in this leader's log (or in its snapshot).
    for (auto cit = committed_.lower_bound(log.FirstIndex()); cit != committed_.end(); ++cit) {
      if (cit->second.second >= r.term()) continue;
      auto t = log.Term(cit->first);
      if (!t.ok()) {
        if (cit->first > log.LastIndex()) {
          Fail(absl::StrCat("Leader Completeness: leader ", id, " of term ", r.term(),
                            " lacks committed index ", cit->first, " (last index ", log.LastIndex(),
                            ")"));
        }
        continue;
      }
      auto ents = log.Slice(cit->first, cit->first + 1, kNoLimit);
      if (ents.ok() && Fingerprint((*ents)[0]) != cit->second.first) {
        Fail(absl::StrCat("Leader Completeness: leader ", id, " of term ", r.term(),
                          " has a different entry at committed index ", cit->first));
      }
    }
    // Leader Append-Only: compare with the log seen at the last check in the
    // same leadership.
    LeaderLog& seen = leader_logs_[id];
    std::vector<uint64_t> terms;
    const uint64_t first = log.FirstIndex();
    terms.reserve(log.LastIndex() + 1 - first);
    for (uint64_t i = first; i <= log.LastIndex(); ++i) terms.push_back(log.ZeroTermOnErr(i));
    if (seen.term == r.term()) {
      const uint64_t lo = std::max(first, seen.first_index);
      const uint64_t seen_last = seen.first_index + seen.terms.size() - 1;
      if (!seen.terms.empty() && log.LastIndex() < seen_last) {
        Fail(absl::StrCat("Leader Append-Only: leader ", id, " log shrank from ", seen_last, " to ",
                          log.LastIndex()));
      }
      for (uint64_t i = lo; i <= std::min(seen_last, log.LastIndex()) && !seen.terms.empty(); ++i) {
        if (terms[i - first] != seen.terms[i - seen.first_index]) {
          Fail(absl::StrCat("Leader Append-Only: leader ", id, " rewrote index ", i));
          break;
        }
      }
    }
    seen.term = r.term();
    seen.first_index = first;
    seen.terms = std::move(terms);
  }
}

void InvariantChecker::CheckLogMatching(Network& net) {
  std::vector<Peer*> running;
  for (uint64_t id : net.ids()) {
    if (net.peer(id).running()) running.push_back(&net.peer(id));
  }
  for (size_t a = 0; a < running.size(); ++a) {
    for (size_t b = a + 1; b < running.size(); ++b) {
      const RaftLog& la = running[a]->node().raft().log();
      const RaftLog& lb = running[b]->node().raft().log();
      const uint64_t lo = std::max(la.FirstIndex(), lb.FirstIndex());
      const uint64_t hi = std::min(la.LastIndex(), lb.LastIndex());
      if (lo > hi) continue;
      // Find the highest index where both have the same term; every entry
      // at or below it must be identical.
      uint64_t match = 0;
      for (uint64_t i = hi; i >= lo; --i) {
        if (la.ZeroTermOnErr(i) == lb.ZeroTermOnErr(i)) {
          match = i;
          break;
        }
        if (i == lo) break;
      }
      if (match == 0) continue;
      auto ea = la.Slice(lo, match + 1, kNoLimit);
      auto eb = lb.Slice(lo, match + 1, kNoLimit);
      if (!ea.ok() || !eb.ok()) continue;
      for (size_t k = 0; k < ea->size(); ++k) {
        if (Fingerprint((*ea)[k]) != Fingerprint((*eb)[k])) {
          Fail(absl::StrCat("Log Matching: nodes ", running[a]->id(), " and ", running[b]->id(),
                            " agree on index ", match, " term ", la.ZeroTermOnErr(match),
                            " but differ at index ", (*ea)[k].index(), ": ",
                            DescribeEntry((*ea)[k]), " vs ", DescribeEntry((*eb)[k])));
          return;
        }
      }
    }
  }
}

}  // namespace arbiter::raft::sim
