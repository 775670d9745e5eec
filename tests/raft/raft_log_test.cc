// Table tests of RaftLog: the stable log in Storage plus the unstable tail,
// with the commit and apply points. The cases follow etcd-io/raft
// log_test.go, adapted to the synchronous-storage flavour (no in-progress
// writes, no apply-size pausing) and to EntrySize-based size limits.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "raft/errors.h"
#include "raft/memory_storage.h"

namespace arbiter::raft {
namespace {

// Entries at consecutive indexes from first, with the given terms.
std::vector<Entry> Ents(uint64_t first, std::initializer_list<uint64_t> terms) {
  std::vector<Entry> ents;
  for (uint64_t t : terms) {
    Entry e;
    e.set_index(first++);
    e.set_term(t);
    ents.push_back(std::move(e));
  }
  return ents;
}

// Entries at consecutive indexes from first, with terms from, from+1, ..., to-1.
std::vector<Entry> TermRange(uint64_t first, uint64_t from, uint64_t to) {
  std::vector<Entry> ents;
  ents.reserve(to - from);
  for (uint64_t t = from; t < to; ++t) {
    Entry e;
    e.set_index(first++);
    e.set_term(t);
    ents.push_back(std::move(e));
  }
  return ents;
}

std::vector<std::string> Ids(const std::vector<Entry>& ents) {
  std::vector<std::string> out;
  for (const Entry& e : ents)
    out.push_back(std::to_string(e.term()) + "/" + std::to_string(e.index()));
  return out;
}

Snapshot Snap(uint64_t index, uint64_t term) {
  Snapshot s;
  s.mutable_metadata()->set_index(index);
  s.mutable_metadata()->set_term(term);
  return s;
}

uint64_t MustTerm(const RaftLog& l, uint64_t i) {
  absl::StatusOr<uint64_t> t = l.Term(i);
  EXPECT_TRUE(t.ok()) << "Term(" << i << "): " << t.status();
  return t.ok() ? *t : 0;
}

// A log over an empty MemoryStorage with previous entries in its unstable part.
struct LogFixture {
  explicit LogFixture(const std::vector<Entry>& previous, uint64_t max_size = kNoLimit)
      : log(&storage, nullptr, max_size) {
    log.Append(previous);
  }
  MemoryStorage storage;
  RaftLog log;
};

TEST(RaftLogTest, NewLogStartsAfterStorage) {
  MemoryStorage storage;
  ASSERT_TRUE(storage.ApplySnapshot(Snap(5, 2)).ok());
  ASSERT_TRUE(storage.Append(Ents(6, {2, 3})).ok());
  RaftLog l(&storage, nullptr, kNoLimit);
  EXPECT_EQ(l.FirstIndex(), 6u);
  EXPECT_EQ(l.LastIndex(), 7u);
  EXPECT_EQ(l.LastTerm(), 3u);
  EXPECT_EQ(l.unstable().offset(), 8u);
  // Committed and applied start at the snapshot.
  EXPECT_EQ(l.committed(), 5u);
  EXPECT_EQ(l.applied(), 5u);
  EXPECT_EQ(l.applying(), 5u);
  EXPECT_FALSE(l.HasUnstableEntries());
  EXPECT_NE(l.Describe().find("committed=5"), std::string::npos) << l.Describe();
}

TEST(RaftLogTest, FindConflict) {
  struct {
    std::vector<Entry> ents;
    uint64_t wconflict;
  } tests[] = {
      // No conflict, empty ents.
      {{}, 0},
      // No conflict.
      {Ents(1, {1, 2, 3}), 0},
      {Ents(2, {2, 3}), 0},
      {Ents(3, {3}), 0},
      // No conflict, but new entries: the first new index.
      {Ents(1, {1, 2, 3, 4, 4}), 4},
      {Ents(2, {2, 3, 4, 5}), 4},
      {Ents(3, {3, 4, 4}), 4},
      {Ents(4, {4, 4}), 4},
      // Conflicts with existing entries.
      {Ents(1, {4, 4}), 1},
      {Ents(2, {1, 4, 4}), 2},
      {Ents(3, {1, 2, 4, 4}), 3},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    LogFixture f(Ents(1, {1, 2, 3}));
    EXPECT_EQ(f.log.FindConflict(tests[i].ents), tests[i].wconflict);
  }
}

TEST(RaftLogTest, FindConflictByTerm) {
  struct {
    std::vector<Entry> ents;  // ents[0] is the (index, term) of the snapshot
    uint64_t index, term;
    uint64_t want;
  } tests[] = {
      // Log starts from index 1.
      {Ents(0, {0, 2, 2, 5, 5, 5}), 100, 2, 100},  // past the end: unknown
      {Ents(0, {0, 2, 2, 5, 5, 5}), 5, 6, 5},
      {Ents(0, {0, 2, 2, 5, 5, 5}), 5, 5, 5},
      {Ents(0, {0, 2, 2, 5, 5, 5}), 5, 4, 2},
      {Ents(0, {0, 2, 2, 5, 5, 5}), 5, 2, 2},
      {Ents(0, {0, 2, 2, 5, 5, 5}), 5, 1, 0},
      {Ents(0, {0, 2, 2, 5, 5, 5}), 1, 2, 1},
      {Ents(0, {0, 2, 2, 5, 5, 5}), 1, 1, 0},
      {Ents(0, {0, 2, 2, 5, 5, 5}), 0, 0, 0},
      // Log with compacted entries.
      {Ents(10, {3, 3, 3, 4, 4, 4}), 30, 3, 30},  // past the end: unknown
      {Ents(10, {3, 3, 3, 4, 4, 4}), 14, 9, 14},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 14, 4, 14},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 14, 3, 12},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 14, 2, 9},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 11, 5, 11},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 10, 5, 10},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 10, 3, 10},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 10, 2, 9},
      {Ents(10, {3, 3, 3, 4, 4, 4}), 9, 2, 9},  // compacted: unknown
      {Ents(10, {3, 3, 3, 4, 4, 4}), 4, 2, 4},  // compacted: unknown
      {Ents(10, {3, 3, 3, 4, 4, 4}), 0, 0, 0},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage st;
    ASSERT_TRUE(st.ApplySnapshot(Snap(tt.ents[0].index(), tt.ents[0].term())).ok());
    RaftLog l(&st, nullptr, kNoLimit);
    l.Append(std::vector<Entry>(tt.ents.begin() + 1, tt.ents.end()));
    auto [index, term] = l.FindConflictByTerm(tt.index, tt.term);
    EXPECT_EQ(index, tt.want);
    EXPECT_EQ(term, l.ZeroTermOnErr(index));
  }
}

TEST(RaftLogTest, IsUpToDate) {
  // Raft §5.4.1: "If the logs have last entries with different terms, then
  // the log with the later term is more up-to-date. If the logs end with the
  // same term, then whichever log is longer is more up-to-date."
  LogFixture f(Ents(1, {1, 2, 3}));
  const uint64_t last = f.log.LastIndex();
  struct {
    uint64_t last_index, term;
    bool want;
  } tests[] = {
      // Greater term: index does not matter.
      {last - 1, 4, true},
      {last, 4, true},
      {last + 1, 4, true},
      // Smaller term: index does not matter.
      {last - 1, 2, false},
      {last, 2, false},
      {last + 1, 2, false},
      // Equal term: equal or longer wins.
      {last - 1, 3, false},
      {last, 3, true},
      {last + 1, 3, true},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(f.log.IsUpToDate(tests[i].last_index, tests[i].term), tests[i].want);
  }
}

TEST(RaftLogTest, Append) {
  struct {
    std::vector<Entry> ents;
    uint64_t windex;
    std::vector<Entry> wents;
    uint64_t wunstable;  // unstable offset afterwards
  } tests[] = {
      {{}, 2, Ents(1, {1, 2}), 3},
      {Ents(3, {2}), 3, Ents(1, {1, 2, 2}), 3},
      // Conflicts with index 1.
      {Ents(1, {2}), 1, Ents(1, {2}), 1},
      // Conflicts with index 2.
      {Ents(2, {3, 3}), 3, Ents(1, {1, 3, 3}), 2},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage storage;
    ASSERT_TRUE(storage.Append(Ents(1, {1, 2})).ok());
    RaftLog l(&storage, nullptr, kNoLimit);
    EXPECT_EQ(l.Append(tt.ents), tt.windex);
    absl::StatusOr<std::vector<Entry>> got = l.Entries(1, kNoLimit);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(Ids(*got), Ids(tt.wents));
    EXPECT_EQ(l.unstable().offset(), tt.wunstable);
  }
}

TEST(RaftLogDeathTest, AppendBelowCommitAborts) {
  LogFixture f(Ents(1, {1, 2, 3}));
  f.log.CommitTo(2);
  EXPECT_DEATH(f.log.Append(Ents(2, {4})), "committed");
}

// Raft §5.3, Figure 2, AppendEntries receiver: "Reply false if log doesn't
// contain an entry at prevLogIndex whose term matches prevLogTerm. If an
// existing entry conflicts with a new one (same index but different terms),
// delete the existing entry and all that follow it. Append any new entries
// not already in the log. If leaderCommit > commitIndex, set commitIndex =
// min(leaderCommit, index of last new entry)."
TEST(RaftLogTest, MaybeAppend) {
  const uint64_t last = 3, last_term = 3, commit = 1;
  struct {
    uint64_t prev_index, prev_term, committed;
    std::vector<Entry> ents;
    std::optional<uint64_t> wlasti;
    uint64_t wcommit;
    std::vector<Entry> wlog;  // the whole log afterwards
  } tests[] = {
      // No match: the term differs.
      {last, last_term - 1, last, Ents(last + 1, {4}), std::nullopt, commit, Ents(1, {1, 2, 3})},
      // No match: the index is past the end.
      {last + 1, last_term, last, Ents(last + 2, {4}), std::nullopt, commit, Ents(1, {1, 2, 3})},
      // Match with the last existing entry.
      {last, last_term, last, {}, last, last, Ents(1, {1, 2, 3})},
      // Do not commit past the last new entry.
      {last, last_term, last + 1, {}, last, last, Ents(1, {1, 2, 3})},
      // Commit up to the leader's commit.
      {last, last_term, last - 1, {}, last, last - 1, Ents(1, {1, 2, 3})},
      // The commit index never decreases.
      {last, last_term, 0, {}, last, commit, Ents(1, {1, 2, 3})},
      {0, 0, last, {}, 0, commit, Ents(1, {1, 2, 3})},
      {last, last_term, last, Ents(last + 1, {4}), last + 1, last, Ents(1, {1, 2, 3, 4})},
      {last, last_term, last + 1, Ents(last + 1, {4}), last + 1, last + 1, Ents(1, {1, 2, 3, 4})},
      {last, last_term, last + 2, Ents(last + 1, {4}), last + 1, last + 1, Ents(1, {1, 2, 3, 4})},
      {last, last_term, last + 2, Ents(last + 1, {4, 4}), last + 2, last + 2,
       Ents(1, {1, 2, 3, 4, 4})},
      // Match with an entry in the middle: conflicting suffix replaced.
      {last - 1, last_term - 1, last, Ents(last, {4}), last, last, Ents(1, {1, 2, 4})},
      {last - 2, last_term - 2, last, Ents(last - 1, {4}), last - 1, last - 1, Ents(1, {1, 4})},
      {last - 2, last_term - 2, last, Ents(last - 1, {4, 4}), last, last, Ents(1, {1, 4, 4})},
      // Already present entries are kept; only the new tail is appended.
      {1, 1, last, Ents(2, {2, 3, 4}), 4, 3, Ents(1, {1, 2, 3, 4})},
      {1, 1, 1, Ents(2, {2, 4}), 3, 1, Ents(1, {1, 2, 4})},
      // A stale (shorter) message does not truncate the log.
      {1, 1, 2, Ents(2, {2}), 2, 2, Ents(1, {1, 2, 3})},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    LogFixture f(Ents(1, {1, 2, 3}));
    f.log.CommitTo(commit);
    EXPECT_EQ(f.log.MaybeAppend(tt.prev_index, tt.prev_term, tt.committed, tt.ents), tt.wlasti);
    EXPECT_EQ(f.log.committed(), tt.wcommit);
    EXPECT_EQ(Ids(f.log.AllEntries()), Ids(tt.wlog));
  }
}

TEST(RaftLogDeathTest, MaybeAppendConflictWithCommittedAborts) {
  // Leader Completeness (§5.4): a committed entry is never overwritten.
  LogFixture f(Ents(1, {1, 2, 3}));
  f.log.CommitTo(1);
  EXPECT_DEATH(f.log.MaybeAppend(0, 0, 3, Ents(1, {4})), "conflicts with committed entry");
}

TEST(RaftLogTest, CompactionSideEffects) {
  // 750 entries in storage, 250 unstable; term == index.
  const uint64_t kLast = 1000, kUnstable = 750;
  MemoryStorage storage;
  ASSERT_TRUE(storage.Append(TermRange(1, 1, kUnstable + 1)).ok());
  RaftLog l(&storage, nullptr, kNoLimit);
  l.Append(TermRange(kUnstable + 1, kUnstable + 1, kLast + 1));

  ASSERT_TRUE(l.MaybeCommit(l.LastIndex(), l.LastTerm()));
  l.AppliedTo(l.committed());

  const uint64_t offset = 500;
  ASSERT_TRUE(storage.Compact(offset).ok());
  EXPECT_EQ(l.LastIndex(), kLast);
  EXPECT_EQ(l.FirstIndex(), offset + 1);

  for (uint64_t j = offset; j <= l.LastIndex(); ++j) {
    ASSERT_EQ(MustTerm(l, j), j);
    ASSERT_TRUE(l.MatchTerm(j, j));
  }
  // Below the compaction point only ErrCompacted comes back.
  EXPECT_TRUE(IsCompacted(l.Term(offset - 1).status()));
  EXPECT_FALSE(l.MatchTerm(offset - 1, offset - 1));
  EXPECT_TRUE(IsCompacted(l.Entries(offset, kNoLimit).status()));
  EXPECT_TRUE(IsCompacted(l.Slice(offset - 10, offset + 10, kNoLimit).status()));
  EXPECT_EQ(l.ZeroTermOnErr(offset - 1), 0u);

  std::vector<Entry> unstable = l.UnstableEntries();
  ASSERT_EQ(unstable.size(), 250u);
  EXPECT_EQ(unstable[0].index(), 751u);

  const uint64_t prev = l.LastIndex();
  l.Append(Ents(prev + 1, {prev + 1}));
  EXPECT_EQ(l.LastIndex(), prev + 1);
  absl::StatusOr<std::vector<Entry>> ents = l.Entries(l.LastIndex(), kNoLimit);
  ASSERT_TRUE(ents.ok());
  EXPECT_EQ(ents->size(), 1u);
}

// The log of etcd's NextCommittedEnts tests: snapshot at 3, entry 4 stable,
// entries 5 and 6 unstable, committed up to 5.
struct ApplyFixture {
  explicit ApplyFixture(uint64_t max_size = kNoLimit)
      : log((Prepare(&storage), &storage), nullptr, max_size) {
    log.Append(Ents(4, {1, 1, 1}));
    log.StableTo(4, 1);
    EXPECT_TRUE(log.MaybeCommit(5, 1));
  }
  static void Prepare(MemoryStorage* s) {
    EXPECT_TRUE(s->ApplySnapshot(Snap(3, 1)).ok());
    EXPECT_TRUE(s->Append(Ents(4, {1})).ok());
  }
  MemoryStorage storage;
  RaftLog log;
};

TEST(RaftLogTest, NextCommittedEntries) {
  struct {
    uint64_t applied, applying;
    bool allow_unstable;
    bool snap;  // a snapshot is pending
    std::vector<Entry> wents;
  } tests[] = {
      {3, 3, true, false, Ents(4, {1, 1})},
      {3, 4, true, false, Ents(5, {1})},
      {3, 5, true, false, {}},
      {4, 4, true, false, Ents(5, {1})},
      {4, 5, true, false, {}},
      {5, 5, true, false, {}},
      // Only entries already persisted locally.
      {3, 3, false, false, Ents(4, {1})},
      {3, 4, false, false, {}},
      {3, 5, false, false, {}},
      {4, 4, false, false, {}},
      {4, 5, false, false, {}},
      {5, 5, false, false, {}},
      // Nothing while a snapshot waits to be applied.
      {3, 3, true, true, {}},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    ApplyFixture f;
    f.log.AppliedTo(tt.applied);
    f.log.AcceptApplying(tt.applying);
    if (tt.snap) f.log.Restore(Snap(4, 1));
    EXPECT_EQ(Ids(f.log.NextCommittedEntries(tt.allow_unstable)), Ids(tt.wents));
    EXPECT_EQ(f.log.HasNextCommittedEntries(tt.allow_unstable), !tt.wents.empty());
  }
}

TEST(RaftLogTest, NextCommittedEntriesSizeLimit) {
  const uint64_t kOne = EntrySize(Ents(1, {1})[0]);
  struct {
    uint64_t max_size;
    bool allow_unstable;
    std::vector<Entry> wents;
  } tests[] = {
      // At least one entry even if it is over the limit.
      {0, true, Ents(4, {1})},
      {kOne - 1, true, Ents(4, {1})},
      {kOne, true, Ents(4, {1})},
      {2 * kOne - 1, true, Ents(4, {1})},
      // The limit spans the stable entry 4 and the unstable entry 5.
      {2 * kOne, true, Ents(4, {1, 1})},
      {kNoLimit, true, Ents(4, {1, 1})},
      {2 * kOne, false, Ents(4, {1})},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    ApplyFixture f(tt.max_size);
    EXPECT_EQ(Ids(f.log.NextCommittedEntries(tt.allow_unstable)), Ids(tt.wents));
  }
}

// The application takes entries in pieces: applying moves the window on
// before they are applied, and applied catches up.
TEST(RaftLogTest, ApplyingThenApplied) {
  const uint64_t kOne = EntrySize(Ents(1, {1})[0]);
  ApplyFixture f(kOne);
  std::vector<Entry> ents = f.log.NextCommittedEntries(true);
  ASSERT_EQ(Ids(ents), Ids(Ents(4, {1})));
  f.log.AcceptApplying(ents.back().index());
  EXPECT_EQ(f.log.applying(), 4u);
  EXPECT_EQ(f.log.applied(), 3u);
  // Handed out but not yet applied: not handed out again.
  ents = f.log.NextCommittedEntries(true);
  ASSERT_EQ(Ids(ents), Ids(Ents(5, {1})));
  f.log.AcceptApplying(5);
  EXPECT_FALSE(f.log.HasNextCommittedEntries(true));
  f.log.AppliedTo(4);
  EXPECT_EQ(f.log.applied(), 4u);
  EXPECT_EQ(f.log.applying(), 5u);  // applied never pulls applying back
  f.log.AppliedTo(5);
  EXPECT_EQ(f.log.applied(), 5u);
  // Committing entry 6 makes it available.
  f.log.CommitTo(6);
  EXPECT_EQ(Ids(f.log.NextCommittedEntries(true)), Ids(Ents(6, {1})));
  EXPECT_FALSE(f.log.HasNextCommittedEntries(false));
  // Persist the unstable entries, as the application does with a Ready.
  ASSERT_TRUE(f.storage.Append(f.log.UnstableEntries()).ok());
  f.log.StableTo(6, 1);
  EXPECT_FALSE(f.log.HasUnstableEntries());
  EXPECT_EQ(Ids(f.log.NextCommittedEntries(false)), Ids(Ents(6, {1})));
}

TEST(RaftLogTest, AppliedToAdvancesApplying) {
  ApplyFixture f;
  f.log.AppliedTo(5);
  EXPECT_EQ(f.log.applied(), 5u);
  EXPECT_EQ(f.log.applying(), 5u);
  EXPECT_FALSE(f.log.HasNextCommittedEntries(true));
}

TEST(RaftLogDeathTest, ApplyOutOfRangeAborts) {
  ApplyFixture f;  // applied 3, committed 5
  EXPECT_DEATH(f.log.AppliedTo(6), "out of range");
  EXPECT_DEATH(f.log.AcceptApplying(6), "out of range");
  f.log.AppliedTo(4);
  EXPECT_DEATH(f.log.AppliedTo(3), "out of range");
}

TEST(RaftLogTest, UnstableEntries) {
  struct {
    uint64_t unstable;  // index of the first unstable entry
    std::vector<Entry> wents;
  } tests[] = {
      {3, {}},
      {1, Ents(1, {1, 2})},
      {2, Ents(2, {2})},
  };
  const std::vector<Entry> previous = Ents(1, {1, 2});
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage storage;
    const auto split = previous.begin() + static_cast<ptrdiff_t>(tt.unstable - 1);
    ASSERT_TRUE(storage.Append(std::vector<Entry>(previous.begin(), split)).ok());
    RaftLog l(&storage, nullptr, kNoLimit);
    l.Append(std::vector<Entry>(split, previous.end()));
    std::vector<Entry> ents = l.UnstableEntries();
    EXPECT_EQ(l.HasUnstableEntries(), !ents.empty());
    if (!ents.empty()) l.StableTo(ents.back().index(), ents.back().term());
    EXPECT_EQ(Ids(ents), Ids(tt.wents));
    EXPECT_EQ(l.unstable().offset(), 3u);
    EXPECT_FALSE(l.HasUnstableEntries());
  }
}

TEST(RaftLogTest, CommitTo) {
  struct {
    uint64_t commit, wcommit;
  } tests[] = {
      {3, 3},
      {1, 2},  // never decreases
      {2, 2},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    LogFixture f(Ents(1, {1, 2, 3}));
    f.log.CommitTo(2);
    f.log.CommitTo(tests[i].commit);
    EXPECT_EQ(f.log.committed(), tests[i].wcommit);
  }
}

TEST(RaftLogDeathTest, CommitToPastLastIndexAborts) {
  LogFixture f(Ents(1, {1, 2, 3}));
  EXPECT_DEATH(f.log.CommitTo(4), "corrupted, truncated, or lost");
}

TEST(RaftLogTest, MaybeCommit) {
  // Raft §5.4.2: "Raft never commits log entries from previous terms by
  // counting replicas. Only log entries from the leader's current term are
  // committed by counting replicas."
  struct {
    uint64_t index, term;
    bool wok;
    uint64_t wcommit;
  } tests[] = {
      {3, 3, true, 3},  {3, 2, false, 1},  // entry 3 is not of term 2
      {2, 2, true, 2},  {1, 1, false, 1},  // not past the commit index
      {4, 3, false, 1},                    // no entry 4
      {0, 0, false, 1},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    LogFixture f(Ents(1, {1, 2, 3}));
    f.log.CommitTo(1);
    EXPECT_EQ(f.log.MaybeCommit(tests[i].index, tests[i].term), tests[i].wok);
    EXPECT_EQ(f.log.committed(), tests[i].wcommit);
  }
}

// Term 0 is never a leader's term: entries of term 0 are not committed by
// MaybeCommit.
TEST(RaftLogTest, MaybeCommitIgnoresTermZero) {
  LogFixture f(Ents(1, {0, 1}));
  EXPECT_FALSE(f.log.MaybeCommit(1, 0));
  EXPECT_EQ(f.log.committed(), 0u);
  EXPECT_TRUE(f.log.MaybeCommit(2, 1));
  EXPECT_EQ(f.log.committed(), 2u);
}

// While a snapshot is pending, entries committed after it wait until the
// snapshot is persisted and applied.
TEST(RaftLogTest, NoCommittedEntriesWhileSnapshotPending) {
  ApplyFixture f;  // applied 3, committed 5
  f.log.Restore(Snap(6, 2));
  f.log.Append(Ents(7, {2}));
  f.log.CommitTo(7);
  EXPECT_FALSE(f.log.HasNextCommittedEntries(true));
  EXPECT_TRUE(f.log.NextCommittedEntries(true).empty());
  // Persist and apply the snapshot, then entry 7 is next.
  ASSERT_TRUE(f.storage.ApplySnapshot(*f.log.UnstableSnapshot()).ok());
  f.log.StableSnapTo(6);
  f.log.AppliedTo(6);
  EXPECT_EQ(Ids(f.log.NextCommittedEntries(true)), Ids(Ents(7, {2})));
}

TEST(RaftLogTest, StableTo) {
  struct {
    uint64_t index, term, wunstable;
  } tests[] = {
      {1, 1, 2},
      {2, 2, 3},
      {2, 1, 1},  // bad term
      {3, 1, 1},  // bad index
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    LogFixture f(Ents(1, {1, 2}));
    f.log.StableTo(tests[i].index, tests[i].term);
    EXPECT_EQ(f.log.unstable().offset(), tests[i].wunstable);
  }
}

TEST(RaftLogTest, StableToWithSnap) {
  const uint64_t si = 5, st = 2;
  struct {
    uint64_t index, term;
    std::vector<Entry> new_ents;
    uint64_t wunstable;
  } tests[] = {
      {si + 1, st, {}, si + 1},
      {si, st, {}, si + 1},
      {si - 1, st, {}, si + 1},
      {si + 1, st + 1, {}, si + 1},
      {si, st + 1, {}, si + 1},
      {si - 1, st + 1, {}, si + 1},
      {si + 1, st, Ents(si + 1, {st}), si + 2},
      {si, st, Ents(si + 1, {st}), si + 1},
      {si - 1, st, Ents(si + 1, {st}), si + 1},
      {si + 1, st + 1, Ents(si + 1, {st}), si + 1},
      {si, st + 1, Ents(si + 1, {st}), si + 1},
      {si - 1, st + 1, Ents(si + 1, {st}), si + 1},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage s;
    ASSERT_TRUE(s.ApplySnapshot(Snap(si, st)).ok());
    RaftLog l(&s, nullptr, kNoLimit);
    l.Append(tt.new_ents);
    l.StableTo(tt.index, tt.term);
    EXPECT_EQ(l.unstable().offset(), tt.wunstable);
  }
}

TEST(RaftLogTest, Compaction) {
  struct {
    uint64_t last_index;
    std::vector<uint64_t> compact;
    std::vector<int> wleft;  // -1: the compaction is refused
  } tests[] = {
      {1000, {300, 500, 800, 900}, {700, 500, 200, 100}},
      // Below the previous compaction point.
      {1000, {300, 299}, {700, -1}},
      {1000, {1000}, {0}},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage storage;
    ASSERT_TRUE(storage.Append(TermRange(1, 1, tt.last_index + 1)).ok());
    RaftLog l(&storage, nullptr, kNoLimit);
    l.CommitTo(tt.last_index);
    l.AppliedTo(l.committed());
    for (size_t j = 0; j < tt.compact.size(); ++j) {
      absl::Status s = storage.Compact(tt.compact[j]);
      if (tt.wleft[j] < 0) {
        EXPECT_TRUE(IsCompacted(s)) << s;
        continue;
      }
      ASSERT_TRUE(s.ok()) << s;
      EXPECT_EQ(static_cast<int>(l.AllEntries().size()), tt.wleft[j]);
    }
  }
}

TEST(RaftLogDeathTest, StorageCompactionPastLastIndexAborts) {
  MemoryStorage storage;
  ASSERT_TRUE(storage.Append(TermRange(1, 1, 11)).ok());
  EXPECT_DEATH((void)storage.Compact(11), "out of bound");
}

TEST(RaftLogTest, LogRestoreFromStorage) {
  const uint64_t index = 1000, term = 1000;
  MemoryStorage storage;
  ASSERT_TRUE(storage.ApplySnapshot(Snap(index, term)).ok());
  RaftLog l(&storage, nullptr, kNoLimit);
  EXPECT_TRUE(l.AllEntries().empty());
  EXPECT_EQ(l.FirstIndex(), index + 1);
  EXPECT_EQ(l.committed(), index);
  EXPECT_EQ(l.unstable().offset(), index + 1);
  EXPECT_EQ(MustTerm(l, index), term);
}

TEST(RaftLogTest, Restore) {
  LogFixture f(Ents(1, {1, 2, 3}));
  f.log.CommitTo(2);
  EXPECT_FALSE(f.log.HasPendingSnapshot());
  Snapshot s = Snap(10, 4);
  s.set_data("state");
  f.log.Restore(s);
  // The log now starts after the snapshot and everything in it is committed.
  EXPECT_EQ(f.log.committed(), 10u);
  EXPECT_EQ(f.log.FirstIndex(), 11u);
  EXPECT_EQ(f.log.LastIndex(), 10u);
  EXPECT_EQ(f.log.LastTerm(), 4u);
  EXPECT_TRUE(f.log.AllEntries().empty());
  EXPECT_TRUE(f.log.HasPendingSnapshot());
  absl::StatusOr<Snapshot> got = f.log.GetSnapshot();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->metadata().index(), 10u);
  EXPECT_EQ(got->data(), "state");
  // While a Ready holds its data, it is not offered to be sent (a leader
  // would send a snapshot without its state).
  EXPECT_EQ(f.log.HandOutUnstableSnapshot().data(), "state");
  EXPECT_TRUE(IsSnapshotTemporarilyUnavailable(f.log.GetSnapshot().status()));
  EXPECT_EQ(f.log.LastIndex(), 10u);
  EXPECT_EQ(MustTerm(f.log, 10), 4u);
  // Once persisted, the snapshot comes from storage.
  ASSERT_TRUE(f.storage.ApplySnapshot(s).ok());
  f.log.StableSnapTo(10);
  EXPECT_FALSE(f.log.HasPendingSnapshot());
  EXPECT_EQ(f.log.GetSnapshot()->metadata().index(), 10u);
  EXPECT_EQ(f.log.FirstIndex(), 11u);
  EXPECT_EQ(MustTerm(f.log, 10), 4u);
}

TEST(RaftLogTest, Term) {
  const uint64_t offset = 100, num = 100;
  MemoryStorage storage;
  ASSERT_TRUE(storage.ApplySnapshot(Snap(offset, 1)).ok());
  RaftLog l(&storage, nullptr, kNoLimit);
  l.Append(TermRange(offset + 1, 1, num));
  struct {
    uint64_t index, term;
    bool compacted, unavailable;
  } tests[] = {
      {offset - 1, 0, true, false},
      {offset, 1, false, false},  // the snapshot's term
      {offset + num / 2, num / 2, false, false},
      {offset + num - 1, num - 1, false, false},
      {offset + num, 0, false, true},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    absl::StatusOr<uint64_t> t = l.Term(tt.index);
    EXPECT_EQ(IsCompacted(t.status()), tt.compacted);
    EXPECT_EQ(raft::IsUnavailable(t.status()), tt.unavailable);
    EXPECT_EQ(t.ok() ? *t : 0, tt.term);
    EXPECT_EQ(l.ZeroTermOnErr(tt.index), tt.term);
  }
}

TEST(RaftLogTest, TermWithUnstableSnapshot) {
  const uint64_t storage_si = 100, unstable_si = storage_si + 5;
  MemoryStorage storage;
  ASSERT_TRUE(storage.ApplySnapshot(Snap(storage_si, 1)).ok());
  RaftLog l(&storage, nullptr, kNoLimit);
  l.Restore(Snap(unstable_si, 1));
  struct {
    uint64_t index, term;
    bool compacted, unavailable;
  } tests[] = {
      // Storage's snapshot is older than the log now.
      {storage_si, 0, true, false},
      // The gap between storage and the unstable snapshot.
      {storage_si + 1, 0, true, false},
      {unstable_si - 1, 0, true, false},
      {unstable_si, 1, false, false},
      {unstable_si + 1, 0, false, true},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    absl::StatusOr<uint64_t> t = l.Term(tt.index);
    EXPECT_EQ(IsCompacted(t.status()), tt.compacted);
    EXPECT_EQ(raft::IsUnavailable(t.status()), tt.unavailable);
    EXPECT_EQ(t.ok() ? *t : 0, tt.term);
  }
}

// Entries 101..149 in storage, 150..199 unstable; term == index.
struct SliceFixture {
  static constexpr uint64_t kOffset = 100, kNum = 100, kLast = kOffset + kNum,
                            kHalf = kOffset + kNum / 2;
  SliceFixture() : log((Prepare(&storage), &storage), nullptr, kNoLimit) {
    log.Append(TermRange(kHalf, kHalf, kLast));
  }
  static void Prepare(MemoryStorage* s) {
    EXPECT_TRUE(s->ApplySnapshot(Snap(kOffset, 0)).ok());
    EXPECT_TRUE(s->Append(TermRange(kOffset + 1, kOffset + 1, kHalf)).ok());
  }
  MemoryStorage storage;
  RaftLog log;
};

TEST(RaftLogTest, Slice) {
  using F = SliceFixture;
  const uint64_t offset = F::kOffset, last = F::kLast, half = F::kHalf;
  const uint64_t one = EntrySize(TermRange(half, half, half + 1)[0]);
  auto range = [](uint64_t from, uint64_t to) { return TermRange(from, from, to); };
  struct {
    uint64_t lo, hi, lim;
    std::vector<Entry> want;
  } tests[] = {
      // No limit.
      {offset + 1, offset + 1, kNoLimit, {}},
      {offset + 1, half - 1, kNoLimit, range(offset + 1, half - 1)},
      {offset + 1, half, kNoLimit, range(offset + 1, half)},
      {offset + 1, half + 1, kNoLimit, range(offset + 1, half + 1)},
      {offset + 1, last, kNoLimit, range(offset + 1, last)},
      {half - 1, half, kNoLimit, range(half - 1, half)},
      {half - 1, half + 1, kNoLimit, range(half - 1, half + 1)},
      {half - 1, last, kNoLimit, range(half - 1, last)},
      {half, half + 1, kNoLimit, range(half, half + 1)},
      {half, last, kNoLimit, range(half, last)},
      {last - 1, last, kNoLimit, range(last - 1, last)},
      {last, last, kNoLimit, {}},
      // At least one entry is always returned.
      {offset + 1, last, 0, range(offset + 1, offset + 2)},
      {half - 1, half + 1, 0, range(half - 1, half)},
      {half, last, 0, range(half, half + 1)},
      {half + 1, last, 0, range(half + 1, half + 2)},
      // Low limit.
      {offset + 1, last, one - 1, range(offset + 1, offset + 2)},
      {half - 1, half + 1, one - 1, range(half - 1, half)},
      {half, last, one - 1, range(half, half + 1)},
      // Just enough for one.
      {offset + 1, last, one, range(offset + 1, offset + 2)},
      {half - 1, half + 1, one, range(half - 1, half)},
      {half, last, one, range(half, half + 1)},
      // Not enough for two.
      {offset + 1, last, one + 1, range(offset + 1, offset + 2)},
      {half - 1, half + 1, one + 1, range(half - 1, half)},
      {half, last, one + 1, range(half, half + 1)},
      // Enough for two (across the storage/unstable boundary too).
      {offset + 1, last, 2 * one, range(offset + 1, offset + 3)},
      {half - 2, half + 1, 2 * one, range(half - 2, half)},
      {half - 1, half + 1, 2 * one, range(half - 1, half + 1)},
      {half, last, 2 * one, range(half, half + 2)},
      // Not enough for three.
      {half - 2, half + 1, 3 * one - 1, range(half - 2, half)},
      {half - 1, half + 2, 3 * one - 1, range(half - 1, half + 1)},
      // Enough for three.
      {half - 1, half + 2, 3 * one, range(half - 1, half + 2)},
      {half - 2, half + 1, 3 * one, range(half - 2, half + 1)},
  };
  F f;
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    absl::StatusOr<std::vector<Entry>> got = f.log.Slice(tt.lo, tt.hi, tt.lim);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(Ids(*got), Ids(tt.want));
  }
}

TEST(RaftLogTest, SliceCompacted) {
  using F = SliceFixture;
  F f;
  struct {
    uint64_t lo, hi;
  } tests[] = {
      {F::kOffset - 1, F::kOffset + 1},
      {F::kOffset, F::kOffset + 1},
      {F::kOffset, F::kOffset},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(IsCompacted(f.log.Slice(tests[i].lo, tests[i].hi, kNoLimit).status()));
  }
}

TEST(RaftLogDeathTest, SliceOutOfBoundsAborts) {
  using F = SliceFixture;
  F f;
  // lo and hi inverted.
  EXPECT_DEATH((void)f.log.Slice(F::kHalf, F::kHalf - 1, kNoLimit), "invalid slice");
  // hi past LastIndex()+1.
  EXPECT_DEATH((void)f.log.Slice(F::kLast, F::kLast + 1, kNoLimit), "out of bound");
  EXPECT_DEATH((void)f.log.Slice(F::kLast + 1, F::kLast + 1, kNoLimit), "out of bound");
}

TEST(RaftLogTest, EntriesFromIndex) {
  using F = SliceFixture;
  F f;
  EXPECT_TRUE(f.log.Entries(F::kLast, kNoLimit)->empty());  // past the end: empty
  EXPECT_EQ(f.log.Entries(F::kLast - 1, kNoLimit)->size(), 1u);
  EXPECT_EQ(f.log.Entries(F::kOffset + 1, kNoLimit)->size(), F::kNum - 1);
  EXPECT_EQ(f.log.AllEntries().size(), F::kNum - 1);
}

// Reads that the unstable part can answer do not touch storage.
TEST(RaftLogTest, UnstableReadsSkipStorage) {
  using F = SliceFixture;
  F f;
  const uint64_t before = f.storage.call_count();
  EXPECT_EQ(MustTerm(f.log, F::kHalf + 3), F::kHalf + 3);
  EXPECT_EQ(f.log.LastIndex(), F::kLast - 1);
  EXPECT_TRUE(f.log.MatchTerm(F::kLast - 1, F::kLast - 1));
  EXPECT_EQ(f.storage.call_count(), before);
}

}  // namespace
}  // namespace arbiter::raft
