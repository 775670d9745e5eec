// Helpers shared by the RaftLogStore tests: building entries and snapshots,
// and a digest of everything a raft::Storage lets the core observe, so two
// storages (the store under test and a raft::MemoryStorage model, or a store
// before and after a reopen) can be compared in one EXPECT_EQ.
//
// Thread safety: plain functions; use from the test thread.
#ifndef ARBITER_TESTS_KVSTORE_STORE_TEST_UTIL_H_
#define ARBITER_TESTS_KVSTORE_STORE_TEST_UTIL_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "kvstore/raft_log_store.h"
#include "leveldb/env.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace arbiter::kv::testing {

// Entries at consecutive indexes starting at first, with the given terms and
// payload.
inline std::vector<raft::Entry> Ents(uint64_t first, std::initializer_list<uint64_t> terms,
                                     const std::string& data = "") {
  std::vector<raft::Entry> ents;
  for (uint64_t t : terms) {
    raft::Entry e;
    e.set_index(first++);
    e.set_term(t);
    e.set_data(data);
    ents.push_back(std::move(e));
  }
  return ents;
}

inline raft::Snapshot MakeSnap(uint64_t index, uint64_t term, const std::string& data = "") {
  raft::Snapshot s;
  s.mutable_metadata()->set_index(index);
  s.mutable_metadata()->set_term(term);
  s.set_data(data);
  return s;
}

inline raft::HardState MakeHardState(uint64_t term, uint64_t vote, uint64_t commit) {
  raft::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

// Everything the consensus core can observe through the Storage interface.
inline std::string Digest(const raft::Storage& s) {
  std::ostringstream out;
  absl::StatusOr<raft::StorageState> st = s.InitialState();
  if (!st.ok()) return "InitialState: " + st.status().ToString();
  out << "hs=" << st->hard_state.term() << "/" << st->hard_state.vote() << "/"
      << st->hard_state.commit() << " conf=" << raft::DescribeConfState(st->conf_state);
  const uint64_t first = *s.FirstIndex();
  const uint64_t last = *s.LastIndex();
  out << " first=" << first << " last=" << last << " terms=";
  for (uint64_t i = first - 1; i <= last; ++i) {
    absl::StatusOr<uint64_t> t = s.Term(i);
    out << (t.ok() ? std::to_string(*t) : t.status().ToString()) << ",";
  }
  absl::StatusOr<std::vector<raft::Entry>> ents = s.Entries(first, last + 1, raft::kNoLimit);
  if (ents.ok()) {
    out << " ents=";
    for (const raft::Entry& e : *ents) {
      out << e.index() << "/" << e.term() << "/" << e.type() << ":" << absl::CEscape(e.data())
          << ",";
    }
  } else {
    out << " ents: " << ents.status().code();
  }
  absl::StatusOr<raft::Snapshot> snap = s.Snapshot();
  if (snap.ok()) {
    out << " snap=" << snap->metadata().index() << "/" << snap->metadata().term() << " "
        << raft::DescribeConfState(snap->metadata().conf_state()) << " "
        << absl::CEscape(snap->data());
  } else {
    out << " snap: " << snap.status();
  }
  return out.str();
}

inline absl::StatusOr<std::unique_ptr<RaftLogStore>> OpenStore(const std::string& dir,
                                                               leveldb::Env* env,
                                                               uint64_t cache_bytes = 16 << 20,
                                                               uint64_t catch_up_entries = 0) {
  RaftLogStore::Options options;
  options.env = env;
  options.entry_cache_bytes = cache_bytes;
  options.catch_up_entries = catch_up_entries;
  return RaftLogStore::Open(dir, options);
}

}  // namespace arbiter::kv::testing

#endif  // ARBITER_TESTS_KVSTORE_STORE_TEST_UTIL_H_
