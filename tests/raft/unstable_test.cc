// Table tests of Unstable, the not-yet-persisted tail of the log. The cases
// follow etcd-io/raft log_unstable_test.go (without its async-write
// "in progress" columns: Arbiter persists synchronously).
#include "raft/unstable.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace arbiter::raft {
namespace {

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

// An Unstable holding snap (if any), then entries starting at offset.
Unstable Make(const std::vector<Entry>& ents, uint64_t offset, std::optional<Snapshot> snap) {
  Unstable u;
  if (snap.has_value()) u.Restore(*snap);
  u.set_offset(offset);
  u.TruncateAndAppend(ents);
  EXPECT_EQ(u.offset(), offset);
  EXPECT_EQ(u.entries().size(), ents.size());
  return u;
}

TEST(UnstableTest, MaybeFirstIndex) {
  struct {
    std::vector<Entry> ents;
    uint64_t offset;
    std::optional<Snapshot> snap;
    std::optional<uint64_t> want;
  } tests[] = {
      // No snapshot: the first index lives in storage.
      {Ents(5, {1}), 5, std::nullopt, std::nullopt},
      {{}, 0, std::nullopt, std::nullopt},
      // With a snapshot: the index after it.
      {Ents(5, {1}), 5, Snap(4, 1), 5},
      {{}, 5, Snap(4, 1), 5},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    Unstable u = Make(tt.ents, tt.offset, tt.snap);
    EXPECT_EQ(u.MaybeFirstIndex(), tt.want);
  }
}

TEST(UnstableTest, MaybeLastIndex) {
  struct {
    std::vector<Entry> ents;
    uint64_t offset;
    std::optional<Snapshot> snap;
    std::optional<uint64_t> want;
  } tests[] = {
      // Last in entries.
      {Ents(5, {1}), 5, std::nullopt, 5},
      {Ents(5, {1, 1, 2}), 5, std::nullopt, 7},
      {Ents(5, {1}), 5, Snap(4, 1), 5},
      // Last in the snapshot.
      {{}, 5, Snap(4, 1), 4},
      // Empty.
      {{}, 0, std::nullopt, std::nullopt},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    Unstable u = Make(tt.ents, tt.offset, tt.snap);
    EXPECT_EQ(u.MaybeLastIndex(), tt.want);
  }
}

TEST(UnstableTest, MaybeTerm) {
  struct {
    std::vector<Entry> ents;
    uint64_t offset;
    std::optional<Snapshot> snap;
    uint64_t index;
    std::optional<uint64_t> want;
  } tests[] = {
      // Term from entries.
      {Ents(5, {1}), 5, std::nullopt, 5, 1},
      {Ents(5, {1}), 5, std::nullopt, 6, std::nullopt},
      {Ents(5, {1}), 5, std::nullopt, 4, std::nullopt},
      {Ents(5, {1, 3}), 5, std::nullopt, 6, 3},
      {Ents(5, {1}), 5, Snap(4, 1), 5, 1},
      {Ents(5, {1}), 5, Snap(4, 1), 6, std::nullopt},
      // Term from the snapshot.
      {Ents(5, {2}), 5, Snap(4, 1), 4, 1},
      {Ents(5, {1}), 5, Snap(4, 1), 3, std::nullopt},
      {{}, 5, Snap(4, 1), 5, std::nullopt},
      {{}, 5, Snap(4, 1), 4, 1},
      {{}, 0, std::nullopt, 5, std::nullopt},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    Unstable u = Make(tt.ents, tt.offset, tt.snap);
    EXPECT_EQ(u.MaybeTerm(tt.index), tt.want);
  }
}

TEST(UnstableTest, Restore) {
  Unstable u = Make(Ents(5, {1}), 5, Snap(4, 1));
  Snapshot s = Snap(6, 2);
  s.set_data("state");
  u.Restore(s);
  EXPECT_EQ(u.offset(), 7u);
  EXPECT_TRUE(u.entries().empty());
  ASSERT_TRUE(u.snapshot().has_value());
  EXPECT_EQ(u.snapshot()->metadata().index(), 6u);
  EXPECT_EQ(u.snapshot()->metadata().term(), 2u);
  EXPECT_EQ(u.snapshot()->data(), "state");
  EXPECT_EQ(u.MaybeLastIndex(), 6u);
  EXPECT_EQ(u.MaybeTerm(6), 2u);
}

// Ready takes the snapshot's data rather than a copy of it; the metadata
// stays, and so do the indexes and terms it answers for.
TEST(UnstableTest, HandOutSnapshotMovesTheData) {
  Unstable u = Make({}, 5, std::nullopt);
  Snapshot s = Snap(6, 2);
  s.set_data("state");
  u.Restore(s);
  EXPECT_FALSE(u.snapshot_handed_out());
  Snapshot out = u.HandOutSnapshot();
  EXPECT_EQ(out.data(), "state");
  EXPECT_EQ(out.metadata().index(), 6u);
  EXPECT_EQ(out.metadata().term(), 2u);
  EXPECT_TRUE(u.snapshot_handed_out());
  ASSERT_TRUE(u.snapshot().has_value());
  EXPECT_EQ(u.snapshot()->data(), "");
  EXPECT_EQ(u.snapshot()->metadata().index(), 6u);
  EXPECT_EQ(u.MaybeTerm(6), 2u);
  EXPECT_EQ(u.MaybeLastIndex(), 6u);
  // A newer snapshot is whole again; a persisted one is gone.
  s = Snap(8, 3);
  s.set_data("newer");
  u.Restore(s);
  EXPECT_FALSE(u.snapshot_handed_out());
  EXPECT_EQ(u.HandOutSnapshot().data(), "newer");
  u.StableSnapTo(8);
  EXPECT_FALSE(u.snapshot().has_value());
  EXPECT_FALSE(u.snapshot_handed_out());
}

TEST(UnstableTest, StableTo) {
  struct {
    std::vector<Entry> ents;
    uint64_t offset;
    std::optional<Snapshot> snap;
    uint64_t index, term;
    uint64_t woffset;
    size_t wlen;
  } tests[] = {
      {{}, 0, std::nullopt, 5, 1, 0, 0},
      // Stable to the first entry.
      {Ents(5, {1}), 5, std::nullopt, 5, 1, 6, 0},
      {Ents(5, {1, 1}), 5, std::nullopt, 5, 1, 6, 1},
      {Ents(5, {1, 1, 1}), 5, std::nullopt, 6, 1, 7, 1},
      // Term mismatch: the entry was replaced since; the newer one stays.
      {Ents(6, {2}), 6, std::nullopt, 6, 1, 6, 1},
      // Stable to an old entry: not here, ignored.
      {Ents(5, {1}), 5, std::nullopt, 4, 1, 5, 1},
      {Ents(5, {1}), 5, std::nullopt, 4, 2, 5, 1},
      // Past the end: ignored.
      {Ents(5, {1}), 5, std::nullopt, 6, 1, 5, 1},
      // With a snapshot.
      {Ents(5, {1}), 5, Snap(4, 1), 5, 1, 6, 0},
      {Ents(5, {1, 1}), 5, Snap(4, 1), 5, 1, 6, 1},
      {Ents(6, {2}), 6, Snap(5, 1), 6, 1, 6, 1},
      // (4, 1) is the snapshot, not an entry: StableSnapTo's job.
      {Ents(5, {1}), 5, Snap(4, 1), 4, 1, 5, 1},
      // Stale term at the snapshot's index.
      {Ents(5, {2}), 5, Snap(4, 2), 4, 1, 5, 1},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    Unstable u = Make(tt.ents, tt.offset, tt.snap);
    u.StableTo(tt.index, tt.term);
    EXPECT_EQ(u.offset(), tt.woffset);
    EXPECT_EQ(u.entries().size(), tt.wlen);
    // StableTo never touches the snapshot.
    EXPECT_EQ(u.snapshot().has_value(), tt.snap.has_value());
  }
}

TEST(UnstableTest, StableToKeepsTheRightEntries) {
  Unstable u = Make(Ents(5, {1, 1, 2, 3}), 5, std::nullopt);
  u.StableTo(6, 1);
  EXPECT_EQ(Ids(u.entries()), Ids(Ents(7, {2, 3})));
  u.StableTo(8, 3);
  EXPECT_TRUE(u.entries().empty());
  EXPECT_EQ(u.offset(), 9u);
}

TEST(UnstableTest, StableSnapTo) {
  struct {
    std::optional<Snapshot> snap;
    uint64_t index;
    bool wsnap;  // snapshot still held afterwards
  } tests[] = {
      {std::nullopt, 4, false},
      {Snap(4, 1), 4, false},
      {Snap(4, 1), 3, true},
      {Snap(4, 1), 5, true},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    Unstable u = Make(Ents(5, {1}), 5, tt.snap);
    u.StableSnapTo(tt.index);
    EXPECT_EQ(u.snapshot().has_value(), tt.wsnap);
    EXPECT_EQ(u.entries().size(), 1u);
  }
}

TEST(UnstableTest, TruncateAndAppend) {
  struct {
    std::vector<Entry> ents;
    uint64_t offset;
    std::optional<Snapshot> snap;
    std::vector<Entry> toappend;
    uint64_t woffset;
    std::vector<Entry> wents;
  } tests[] = {
      // Append to the end.
      {Ents(5, {1}), 5, std::nullopt, Ents(6, {1, 1}), 5, Ents(5, {1, 1, 1})},
      {{}, 5, std::nullopt, Ents(5, {1, 1}), 5, Ents(5, {1, 1})},
      // Replace the unstable entries.
      {Ents(5, {1}), 5, std::nullopt, Ents(5, {2, 2}), 5, Ents(5, {2, 2})},
      {Ents(5, {1}), 5, std::nullopt, Ents(4, {2, 2, 2}), 4, Ents(4, {2, 2, 2})},
      // Truncate the existing entries and append.
      {Ents(5, {1, 1, 1}), 5, std::nullopt, Ents(6, {2}), 5, Ents(5, {1, 2})},
      {Ents(5, {1, 1, 1}), 5, std::nullopt, Ents(7, {2, 2}), 5, Ents(5, {1, 1, 2, 2})},
      // Nothing to append.
      {Ents(5, {1}), 5, std::nullopt, {}, 5, Ents(5, {1})},
      // After a snapshot.
      {{}, 5, Snap(4, 1), Ents(5, {2}), 5, Ents(5, {2})},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    Unstable u = Make(tt.ents, tt.offset, tt.snap);
    u.TruncateAndAppend(tt.toappend);
    EXPECT_EQ(u.offset(), tt.woffset);
    EXPECT_EQ(Ids(u.entries()), Ids(tt.wents));
  }
}

TEST(UnstableTest, Slice) {
  Unstable u = Make(Ents(5, {1, 2, 3}), 5, std::nullopt);
  struct {
    uint64_t lo, hi;
    std::vector<Entry> want;
  } tests[] = {
      {5, 5, {}}, {5, 6, Ents(5, {1})}, {5, 8, Ents(5, {1, 2, 3})}, {6, 8, Ents(6, {2, 3})},
      {8, 8, {}},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(Ids(u.Slice(tests[i].lo, tests[i].hi)), Ids(tests[i].want));
  }
}

TEST(UnstableDeathTest, SliceOutOfBoundsAborts) {
  Unstable u = Make(Ents(5, {1, 2, 3}), 5, std::nullopt);
  EXPECT_DEATH((void)u.Slice(4, 6), "out of bound");
  EXPECT_DEATH((void)u.Slice(6, 9), "out of bound");
  EXPECT_DEATH((void)u.Slice(7, 6), "invalid unstable.slice");
}

TEST(UnstableDeathTest, AppendWithGapAborts) {
  Unstable u = Make(Ents(5, {1, 2, 3}), 5, std::nullopt);
  EXPECT_DEATH(u.TruncateAndAppend(Ents(10, {3})), "gap");
}

}  // namespace
}  // namespace arbiter::raft
