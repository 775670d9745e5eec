// Table tests of MemoryStorage, the reference Storage. The cases follow
// etcd-io/raft storage_test.go, adapted to our EntrySize-based size limits.
#include "raft/memory_storage.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "raft/errors.h"
#include "raft/types.h"

namespace arbiter::raft {
namespace {

// Entries at consecutive indexes starting at first, with the given terms.
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

// "term/index" per entry, so mismatches print readably.
std::vector<std::string> Ids(const std::vector<Entry>& ents) {
  std::vector<std::string> out;
  for (const Entry& e : ents)
    out.push_back(std::to_string(e.term()) + "/" + std::to_string(e.index()));
  return out;
}

Snapshot MakeSnap(uint64_t index, uint64_t term) {
  Snapshot s;
  s.mutable_metadata()->set_index(index);
  s.mutable_metadata()->set_term(term);
  return s;
}

// The storage of etcd's tests: dummy entry at index 3 (term 3), then entries
// 4.. with the given terms. Built through the public API: a snapshot at 3
// plus appends.
MemoryStorage StorageFrom3(std::initializer_list<uint64_t> later_terms) {
  MemoryStorage s;
  EXPECT_TRUE(s.ApplySnapshot(MakeSnap(3, 3)).ok());
  EXPECT_TRUE(s.Append(Ents(4, later_terms)).ok());
  return s;
}

// Named error kinds for tables.
enum class Err { kNone, kCompacted, kUnavailable, kSnapOutOfDate };

void ExpectErr(const absl::Status& s, Err want) {
  switch (want) {
    case Err::kNone:
      EXPECT_TRUE(s.ok()) << s;
      break;
    case Err::kCompacted:
      EXPECT_TRUE(IsCompacted(s)) << s;
      break;
    case Err::kUnavailable:
      EXPECT_TRUE(raft::IsUnavailable(s)) << s;
      break;
    case Err::kSnapOutOfDate:
      EXPECT_TRUE(IsSnapOutOfDate(s)) << s;
      break;
  }
}

TEST(MemoryStorageTest, NewStorageHasOnlyTheDummyEntry) {
  MemoryStorage s;
  EXPECT_EQ(*s.FirstIndex(), 1u);
  EXPECT_EQ(*s.LastIndex(), 0u);
  EXPECT_EQ(*s.Term(0), 0u);
  ExpectErr(s.Term(1).status(), Err::kUnavailable);
  // Nothing is stored past the (empty) snapshot.
  ExpectErr(s.Entries(1, 1, kNoLimit).status(), Err::kUnavailable);
  EXPECT_TRUE(IsEmptySnapshot(*s.Snapshot()));
}

TEST(MemoryStorageTest, Term) {
  struct {
    uint64_t i;
    Err werr;
    uint64_t wterm;
  } tests[] = {
      {2, Err::kCompacted, 0},
      // The dummy entry keeps the snapshot's term.
      {3, Err::kNone, 3},
      {4, Err::kNone, 4},
      {5, Err::kNone, 5},
      {6, Err::kUnavailable, 0},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage s = StorageFrom3({4, 5});
    absl::StatusOr<uint64_t> term = s.Term(tt.i);
    ExpectErr(term.status(), tt.werr);
    EXPECT_EQ(term.ok() ? *term : 0, tt.wterm);
  }
}

TEST(MemoryStorageTest, Entries) {
  const uint64_t kOne = EntrySize(Ents(4, {4})[0]);  // every entry here is this size
  struct {
    uint64_t lo, hi, max_size;
    Err werr;
    std::vector<Entry> wents;
  } tests[] = {
      {2, 6, kNoLimit, Err::kCompacted, {}},
      // The dummy entry itself is not available.
      {3, 4, kNoLimit, Err::kCompacted, {}},
      {4, 5, kNoLimit, Err::kNone, Ents(4, {4})},
      {4, 6, kNoLimit, Err::kNone, Ents(4, {4, 5})},
      {4, 7, kNoLimit, Err::kNone, Ents(4, {4, 5, 6})},
      {4, 4, kNoLimit, Err::kNone, {}},
      // hi past LastIndex()+1.
      {4, 8, kNoLimit, Err::kUnavailable, {}},
      // Even with max_size 0 the first entry is returned.
      {4, 7, 0, Err::kNone, Ents(4, {4})},
      {4, 7, kOne - 1, Err::kNone, Ents(4, {4})},
      // Limit to two.
      {4, 7, 2 * kOne, Err::kNone, Ents(4, {4, 5})},
      {4, 7, 2 * kOne + kOne / 2, Err::kNone, Ents(4, {4, 5})},
      {4, 7, 3 * kOne - 1, Err::kNone, Ents(4, {4, 5})},
      // All.
      {4, 7, 3 * kOne, Err::kNone, Ents(4, {4, 5, 6})},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage s = StorageFrom3({4, 5, 6});
    absl::StatusOr<std::vector<Entry>> ents = s.Entries(tt.lo, tt.hi, tt.max_size);
    ExpectErr(ents.status(), tt.werr);
    if (ents.ok()) {
      EXPECT_EQ(Ids(*ents), Ids(tt.wents));
    }
  }
}

// Size limits count the payload: EntrySize grows with the data.
TEST(MemoryStorageTest, EntriesSizeLimitCountsPayload) {
  std::vector<Entry> ents = Ents(1, {1, 1, 1});
  ents[0].set_data(std::string(100, 'a'));
  ents[1].set_data(std::string(10, 'b'));
  ents[2].set_data(std::string(10, 'c'));
  const uint64_t s0 = EntrySize(ents[0]), s1 = EntrySize(ents[1]), s2 = EntrySize(ents[2]);
  ASSERT_GT(s0, s1);
  MemoryStorage s;
  ASSERT_TRUE(s.Append(ents).ok());

  struct {
    uint64_t lo, max_size;
    size_t wlen;
  } tests[] = {
      {1, s0 - 1, 1},  // the big first entry alone, though over the limit
      {1, s0 + s1 - 1, 1}, {1, s0 + s1, 2}, {1, s0 + s1 + s2, 3},
      {2, s1 + s2 - 1, 1}, {2, s1 + s2, 2},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    absl::StatusOr<std::vector<Entry>> got = s.Entries(tests[i].lo, 4, tests[i].max_size);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), tests[i].wlen);
    EXPECT_EQ((*got)[0].data(), ents[tests[i].lo - 1].data());
  }
}

TEST(MemoryStorageDeathTest, EntriesInvertedRangeAborts) {
  MemoryStorage s = StorageFrom3({4, 5});
  EXPECT_DEATH((void)s.Entries(5, 4, kNoLimit), "invalid range");
}

TEST(MemoryStorageTest, LastIndex) {
  MemoryStorage s = StorageFrom3({4, 5});
  EXPECT_EQ(*s.LastIndex(), 5u);
  ASSERT_TRUE(s.Append(Ents(6, {5})).ok());
  EXPECT_EQ(*s.LastIndex(), 6u);
}

TEST(MemoryStorageTest, FirstIndex) {
  MemoryStorage s = StorageFrom3({4, 5});
  EXPECT_EQ(*s.FirstIndex(), 4u);
  ASSERT_TRUE(s.Compact(4).ok());
  EXPECT_EQ(*s.FirstIndex(), 5u);
}

TEST(MemoryStorageTest, Compact) {
  struct {
    uint64_t i;
    Err werr;
    uint64_t windex, wterm;  // the dummy entry afterwards
    uint64_t wlen;           // entries including the dummy
  } tests[] = {
      {2, Err::kCompacted, 3, 3, 3},
      {3, Err::kCompacted, 3, 3, 3},
      {4, Err::kNone, 4, 4, 2},
      {5, Err::kNone, 5, 5, 1},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage s = StorageFrom3({4, 5});
    ExpectErr(s.Compact(tt.i), tt.werr);
    const uint64_t first = *s.FirstIndex();
    EXPECT_EQ(first - 1, tt.windex);
    EXPECT_EQ(*s.Term(first - 1), tt.wterm);
    EXPECT_EQ(*s.LastIndex() - first + 2, tt.wlen);
    // Entries from the new first index on are still readable.
    if (tt.wlen > 1) {
      absl::StatusOr<std::vector<Entry>> ents = s.Entries(first, *s.LastIndex() + 1, kNoLimit);
      ASSERT_TRUE(ents.ok());
      EXPECT_EQ(ents->front().index(), first);
    }
  }
}

TEST(MemoryStorageTest, CompactKeepsTermOfNewDummy) {
  MemoryStorage s;
  std::vector<Entry> ents = Ents(1, {1, 2});
  ents[0].set_data("payload");
  ASSERT_TRUE(s.Append(ents).ok());
  ASSERT_TRUE(s.Compact(1).ok());
  EXPECT_EQ(*s.Term(1), 1u);
  ExpectErr(s.Entries(1, 2, kNoLimit).status(), Err::kCompacted);
}

TEST(MemoryStorageDeathTest, CompactPastLastIndexAborts) {
  MemoryStorage s = StorageFrom3({4, 5});
  EXPECT_DEATH((void)s.Compact(6), "out of bound");
}

TEST(MemoryStorageTest, CreateSnapshot) {
  ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  cs.add_voters(3);
  struct {
    uint64_t i;
    Err werr;
    uint64_t windex, wterm;
  } tests[] = {
      {4, Err::kNone, 4, 4},
      {5, Err::kNone, 5, 5},
      // Not newer than the snapshot at 3.
      {3, Err::kSnapOutOfDate, 0, 0},
      {2, Err::kSnapOutOfDate, 0, 0},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage s = StorageFrom3({4, 5});
    absl::StatusOr<Snapshot> snap = s.CreateSnapshot(tt.i, &cs, "data");
    ExpectErr(snap.status(), tt.werr);
    if (!snap.ok()) continue;
    EXPECT_EQ(snap->metadata().index(), tt.windex);
    EXPECT_EQ(snap->metadata().term(), tt.wterm);
    EXPECT_EQ(snap->data(), "data");
    EXPECT_EQ(DescribeConfState(snap->metadata().conf_state()), DescribeConfState(cs));
    // Snapshot() now returns it; the log itself is untouched.
    EXPECT_EQ(s.Snapshot()->metadata().index(), tt.windex);
    EXPECT_EQ(*s.FirstIndex(), 4u);
    EXPECT_EQ(*s.LastIndex(), 5u);
  }
}

TEST(MemoryStorageTest, CreateSnapshotWithoutConfStateKeepsPrevious) {
  MemoryStorage s;
  Snapshot boot;
  boot.mutable_metadata()->mutable_conf_state()->add_voters(7);
  ASSERT_TRUE(s.ApplySnapshot(boot).ok());
  ASSERT_TRUE(s.Append(Ents(1, {1, 1})).ok());
  absl::StatusOr<Snapshot> snap = s.CreateSnapshot(2, nullptr, "d");
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->metadata().conf_state().voters_size(), 1);
  EXPECT_EQ(snap->metadata().conf_state().voters(0), 7u);
  // A second snapshot at the same index is out of date.
  ExpectErr(s.CreateSnapshot(2, nullptr, "d").status(), Err::kSnapOutOfDate);
}

TEST(MemoryStorageDeathTest, CreateSnapshotPastLastIndexAborts) {
  MemoryStorage s = StorageFrom3({4, 5});
  EXPECT_DEATH((void)s.CreateSnapshot(6, nullptr, ""), "out of bound");
}

TEST(MemoryStorageTest, Append) {
  struct {
    std::vector<Entry> entries;
    std::vector<Entry> wentries;  // from the dummy entry on
  } tests[] = {
      // Everything offered is compacted: no change.
      {Ents(1, {1, 2}), Ents(3, {3, 4, 5})},
      {Ents(3, {3, 4, 5}), Ents(3, {3, 4, 5})},
      // Replace a conflicting suffix.
      {Ents(3, {3, 6, 6}), Ents(3, {3, 6, 6})},
      {Ents(3, {3, 4, 5, 5}), Ents(3, {3, 4, 5, 5})},
      // Skip the compacted incoming prefix, truncate ours, and append.
      {Ents(2, {3, 3, 5}), Ents(3, {3, 5})},
      // Truncate the existing entries and append.
      {Ents(4, {5}), Ents(3, {3, 5})},
      // Direct append.
      {Ents(6, {5}), Ents(3, {3, 4, 5, 5})},
      // Nothing to append.
      {{}, Ents(3, {3, 4, 5})},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    MemoryStorage s = StorageFrom3({4, 5});
    ASSERT_TRUE(s.Append(tt.entries).ok());
    const uint64_t first = *s.FirstIndex();
    EXPECT_EQ(first - 1, tt.wentries[0].index());
    EXPECT_EQ(*s.Term(first - 1), tt.wentries[0].term());
    absl::StatusOr<std::vector<Entry>> got = s.Entries(first, *s.LastIndex() + 1, kNoLimit);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(Ids(*got), Ids(std::vector<Entry>(tt.wentries.begin() + 1, tt.wentries.end())));
  }
}

TEST(MemoryStorageDeathTest, AppendWithGapAborts) {
  MemoryStorage s = StorageFrom3({4, 5});
  EXPECT_DEATH((void)s.Append(Ents(7, {5})), "missing log entry");
}

TEST(MemoryStorageTest, ApplySnapshot) {
  ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  cs.add_voters(3);
  auto snap = [&](uint64_t index, uint64_t term) {
    Snapshot s = MakeSnap(index, term);
    s.set_data("data");
    *s.mutable_metadata()->mutable_conf_state() = cs;
    return s;
  };
  struct {
    const char* name;
    std::vector<Snapshot> snaps;
    Err werr;  // of the last ApplySnapshot
  } tests[] = {
      {"normal", {snap(4, 4)}, Err::kNone},
      {"out of date", {snap(4, 4), snap(3, 3)}, Err::kSnapOutOfDate},
      {"same index", {snap(4, 4), snap(4, 4)}, Err::kSnapOutOfDate},
      {"newer", {snap(4, 4), snap(9, 5)}, Err::kNone},
      // Bootstrap: only a ConfState, index and term 0.
      {"bootstrap with conf state", {snap(0, 0)}, Err::kNone},
  };
  for (const auto& tt : tests) {
    SCOPED_TRACE(tt.name);
    MemoryStorage s;
    absl::Status err;
    for (const Snapshot& sn : tt.snaps) err = s.ApplySnapshot(sn);
    ExpectErr(err, tt.werr);
  }
}

TEST(MemoryStorageTest, ApplySnapshotReplacesContents) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Ents(1, {1, 1, 2, 2})).ok());
  Snapshot snap = MakeSnap(10, 3);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(2);
  ASSERT_TRUE(s.ApplySnapshot(snap).ok());
  EXPECT_EQ(*s.FirstIndex(), 11u);
  EXPECT_EQ(*s.LastIndex(), 10u);
  EXPECT_EQ(*s.Term(10), 3u);
  ExpectErr(s.Term(9).status(), Err::kCompacted);
  ExpectErr(s.Term(11).status(), Err::kUnavailable);
  EXPECT_EQ(s.Snapshot()->metadata().index(), 10u);
  absl::StatusOr<StorageState> st = s.InitialState();
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->conf_state.voters_size(), 1);
  EXPECT_EQ(st->conf_state.voters(0), 2u);
  // Appending right after the snapshot works.
  ASSERT_TRUE(s.Append(Ents(11, {3})).ok());
  EXPECT_EQ(*s.LastIndex(), 11u);
}

TEST(MemoryStorageTest, InitialStateReturnsHardState) {
  MemoryStorage s;
  HardState hs;
  hs.set_term(5);
  hs.set_vote(2);
  hs.set_commit(0);
  s.SetHardState(hs);
  absl::StatusOr<StorageState> st = s.InitialState();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(HardStateEqual(st->hard_state, hs));
  EXPECT_TRUE(HardStateEqual(s.hard_state(), hs));
}

TEST(MemoryStorageTest, CountsReads) {
  MemoryStorage s = StorageFrom3({4, 5});
  const uint64_t before = s.call_count();
  (void)s.Term(4);
  (void)s.Entries(4, 5, kNoLimit);
  (void)s.FirstIndex();
  (void)s.LastIndex();
  EXPECT_EQ(s.call_count(), before + 4);
}

}  // namespace
}  // namespace arbiter::raft
