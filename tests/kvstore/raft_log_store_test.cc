// Tests of RaftLogStore without faults: the raft::Storage semantics (the
// cases of tests/raft/memory_storage_test.cc, ported), Save's replacement
// rules, snapshots and compaction, Bootstrap, and reopening. A randomized
// test drives the store and a raft::MemoryStorage model with the same
// operations and compares everything the core can observe.
#include "kvstore/raft_log_store.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kvstore/leveldb_check.h"
#include "leveldb/env.h"
#include "leveldb/helpers/memenv.h"
#include "raft/errors.h"
#include "raft/memory_storage.h"
#include "tests/kvstore/store_test_util.h"

namespace arbiter::kv {
namespace {

using raft::ConfState;
using raft::Entry;
using raft::HardState;
using raft::kNoLimit;
using raft::Snapshot;
using testing::Digest;
using testing::Ents;
using testing::MakeHardState;
using testing::MakeSnap;
using testing::OpenStore;

enum class Err { kNone, kCompacted, kUnavailable, kSnapOutOfDate };

void ExpectErr(const absl::Status& s, Err want) {
  switch (want) {
    case Err::kNone:
      EXPECT_TRUE(s.ok()) << s;
      break;
    case Err::kCompacted:
      EXPECT_TRUE(raft::IsCompacted(s)) << s;
      break;
    case Err::kUnavailable:
      EXPECT_TRUE(raft::IsUnavailable(s)) << s;
      break;
    case Err::kSnapOutOfDate:
      EXPECT_TRUE(raft::IsSnapOutOfDate(s)) << s;
      break;
  }
}

std::vector<std::string> Ids(const std::vector<Entry>& ents) {
  std::vector<std::string> out;
  for (const Entry& e : ents)
    out.push_back(std::to_string(e.term()) + "/" + std::to_string(e.index()));
  return out;
}

class RaftLogStoreTest : public ::testing::Test {
 protected:
  RaftLogStoreTest() : env_(leveldb::NewMemEnv(leveldb::Env::Default())) {}

  std::unique_ptr<RaftLogStore> Open(const std::string& dir = "/db",
                                     uint64_t cache_bytes = 16 << 20, uint64_t catch_up = 0) {
    absl::StatusOr<std::unique_ptr<RaftLogStore>> s =
        OpenStore(dir, env_.get(), cache_bytes, catch_up);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // etcd's storage_test fixture: a snapshot at 3 (term 3), then entries 4..
  // with the given terms. The hard state is term 10, commit 3.
  std::unique_ptr<RaftLogStore> StoreFrom3(std::initializer_list<uint64_t> later_terms,
                                           const std::string& dir = "/db") {
    std::unique_ptr<RaftLogStore> s = Open(dir);
    EXPECT_TRUE(s->Save(MakeHardState(10, 0, 3), Ents(4, later_terms), MakeSnap(3, 3), true).ok());
    return s;
  }

  std::unique_ptr<leveldb::Env> env_;
};

TEST_F(RaftLogStoreTest, NewStoreIsEmpty) {
  std::unique_ptr<RaftLogStore> s = Open();
  EXPECT_TRUE(s->IsEmpty());
  EXPECT_EQ(*s->FirstIndex(), 1u);
  EXPECT_EQ(*s->LastIndex(), 0u);
  EXPECT_EQ(*s->Term(0), 0u);
  ExpectErr(s->Term(1).status(), Err::kUnavailable);
  ExpectErr(s->Entries(1, 1, kNoLimit).status(), Err::kUnavailable);
  EXPECT_TRUE(raft::IsEmptySnapshot(*s->Snapshot()));
  EXPECT_EQ(s->ApproximateLogBytes(), 0u);
  // Reopening an empty store (format key only) keeps it empty.
  s.reset();
  EXPECT_TRUE(Open()->IsEmpty());
}

TEST_F(RaftLogStoreTest, Term) {
  struct {
    uint64_t i;
    Err werr;
    uint64_t wterm;
  } tests[] = {
      {2, Err::kCompacted, 0}, {3, Err::kNone, 3},        {4, Err::kNone, 4},
      {5, Err::kNone, 5},      {6, Err::kUnavailable, 0},
  };
  std::unique_ptr<RaftLogStore> s = StoreFrom3({4, 5});
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    absl::StatusOr<uint64_t> term = s->Term(tests[i].i);
    ExpectErr(term.status(), tests[i].werr);
    EXPECT_EQ(term.ok() ? *term : 0, tests[i].wterm);
  }
}

TEST_F(RaftLogStoreTest, Entries) {
  const uint64_t kOne = raft::EntrySize(Ents(4, {4})[0]);
  struct {
    uint64_t lo, hi, max_size;
    Err werr;
    std::vector<Entry> wents;
  } tests[] = {
      {2, 6, kNoLimit, Err::kCompacted, {}},
      {3, 4, kNoLimit, Err::kCompacted, {}},
      {4, 5, kNoLimit, Err::kNone, Ents(4, {4})},
      {4, 6, kNoLimit, Err::kNone, Ents(4, {4, 5})},
      {4, 7, kNoLimit, Err::kNone, Ents(4, {4, 5, 6})},
      {4, 4, kNoLimit, Err::kNone, {}},
      {4, 8, kNoLimit, Err::kUnavailable, {}},
      {4, 7, 0, Err::kNone, Ents(4, {4})},
      {4, 7, kOne - 1, Err::kNone, Ents(4, {4})},
      {4, 7, 2 * kOne, Err::kNone, Ents(4, {4, 5})},
      {4, 7, 2 * kOne + kOne / 2, Err::kNone, Ents(4, {4, 5})},
      {4, 7, 3 * kOne - 1, Err::kNone, Ents(4, {4, 5})},
      {4, 7, 3 * kOne, Err::kNone, Ents(4, {4, 5, 6})},
  };
  // Once served from the entry cache, once from LevelDB (cache disabled),
  // once half and half (a cache of about one entry).
  for (uint64_t cache : {uint64_t{16} << 20, uint64_t{0}, kOne}) {
    const std::string dir = "/db" + std::to_string(cache);
    StoreFrom3({4, 5, 6}, dir);  // written, then closed
    std::unique_ptr<RaftLogStore> s = Open(dir, cache);
    for (size_t i = 0; i < std::size(tests); ++i) {
      SCOPED_TRACE(::testing::Message() << "cache " << cache << " case " << i);
      const auto& tt = tests[i];
      absl::StatusOr<std::vector<Entry>> ents = s->Entries(tt.lo, tt.hi, tt.max_size);
      ExpectErr(ents.status(), tt.werr);
      if (ents.ok()) {
        EXPECT_EQ(Ids(*ents), Ids(tt.wents));
      }
    }
  }
}

TEST_F(RaftLogStoreTest, EntriesSizeLimitCountsPayload) {
  std::vector<Entry> ents = Ents(1, {1, 1, 1});
  ents[0].set_data(std::string(100, 'a'));
  ents[1].set_data(std::string(10, 'b'));
  ents[2].set_data(std::string(10, 'c'));
  const uint64_t s0 = raft::EntrySize(ents[0]), s1 = raft::EntrySize(ents[1]),
                 s2 = raft::EntrySize(ents[2]);
  std::unique_ptr<RaftLogStore> s = Open();
  ASSERT_TRUE(s->Save(MakeHardState(1, 0, 0), ents, Snapshot(), true).ok());
  struct {
    uint64_t lo, max_size;
    size_t wlen;
  } tests[] = {
      {1, s0 - 1, 1},       {1, s0 + s1 - 1, 1}, {1, s0 + s1, 2},
      {1, s0 + s1 + s2, 3}, {2, s1 + s2 - 1, 1}, {2, s1 + s2, 2},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    absl::StatusOr<std::vector<Entry>> got = s->Entries(tests[i].lo, 4, tests[i].max_size);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), tests[i].wlen);
    EXPECT_EQ((*got)[0].data(), ents[tests[i].lo - 1].data());
  }
}

TEST_F(RaftLogStoreTest, EntriesInvertedRangeIsAnError) {
  std::unique_ptr<RaftLogStore> s = StoreFrom3({4, 5});
  EXPECT_EQ(s->Entries(5, 4, kNoLimit).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RaftLogStoreTest, LastAndFirstIndex) {
  std::unique_ptr<RaftLogStore> s = StoreFrom3({4, 5});
  EXPECT_EQ(*s->FirstIndex(), 4u);
  EXPECT_EQ(*s->LastIndex(), 5u);
  ASSERT_TRUE(s->Save(HardState(), Ents(6, {5}), Snapshot(), true).ok());
  EXPECT_EQ(*s->LastIndex(), 6u);
}

TEST_F(RaftLogStoreTest, CreateSnapshotCompacts) {
  ConfState cs;
  for (uint64_t id : {1, 2, 3}) cs.add_voters(id);
  struct {
    uint64_t i;
    Err werr;
    uint64_t windex, wterm;
  } tests[] = {
      {4, Err::kNone, 4, 4},
      {5, Err::kNone, 5, 5},
      {3, Err::kSnapOutOfDate, 3, 3},
      {2, Err::kSnapOutOfDate, 3, 3},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    const std::string dir = "/snap" + std::to_string(i);
    std::unique_ptr<RaftLogStore> s = StoreFrom3({4, 5}, dir);
    ASSERT_TRUE(s->Save(MakeHardState(10, 0, 5), {}, Snapshot(), true).ok());
    const uint64_t bytes_before = s->ApproximateLogBytes();
    ExpectErr(s->CreateSnapshot(tt.i, cs, "data"), tt.werr);
    absl::StatusOr<Snapshot> snap = s->Snapshot();
    ASSERT_TRUE(snap.ok());
    EXPECT_EQ(snap->metadata().index(), tt.windex);
    EXPECT_EQ(snap->metadata().term(), tt.wterm);
    // The entries the snapshot covers are gone; the term of its index stays.
    EXPECT_EQ(*s->FirstIndex(), tt.windex + 1);
    EXPECT_EQ(*s->LastIndex(), 5u);
    EXPECT_EQ(*s->Term(tt.windex), tt.wterm);
    ExpectErr(s->Entries(tt.windex, 6, kNoLimit).status(), Err::kCompacted);
    if (tt.werr == Err::kNone) {
      EXPECT_EQ(snap->data(), "data");
      EXPECT_EQ(raft::DescribeConfState(snap->metadata().conf_state()),
                raft::DescribeConfState(cs));
      EXPECT_LT(s->ApproximateLogBytes(), bytes_before);
      EXPECT_EQ(raft::DescribeConfState(s->InitialState()->conf_state),
                raft::DescribeConfState(cs));
    }
    const std::string before = Digest(*s);
    s.reset();
    EXPECT_EQ(Digest(*Open(dir)), before);
  }
}

// With catch_up_entries, a snapshot keeps that many entries up to its
// index: the log starts before the snapshot, across reopens, and a later
// snapshot moves the start on; a received snapshot still replaces it all.
TEST_F(RaftLogStoreTest, CreateSnapshotKeepsCatchUpEntries) {
  std::unique_ptr<RaftLogStore> s = Open("/db", 16 << 20, /*catch_up=*/3);
  ASSERT_TRUE(
      s->Save(MakeHardState(3, 0, 8), Ents(1, {1, 1, 2, 2, 2, 3, 3, 3}, "x"), Snapshot(), true)
          .ok());
  ASSERT_TRUE(s->CreateSnapshot(2, ConfState(), "two").ok());
  EXPECT_EQ(*s->FirstIndex(), 1u) << "fewer entries than kept: none discarded";
  ASSERT_TRUE(s->CreateSnapshot(6, ConfState(), "six").ok());
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(s->Snapshot()->metadata().index(), 6u);
    EXPECT_EQ(s->Snapshot()->data(), "six");
    EXPECT_EQ(*s->FirstIndex(), 4u);
    EXPECT_EQ(*s->LastIndex(), 8u);
    EXPECT_EQ(*s->Term(3), 2u);
    ExpectErr(s->Term(2).status(), Err::kCompacted);
    ExpectErr(s->Entries(3, 5, kNoLimit).status(), Err::kCompacted);
    EXPECT_EQ(Ids(*s->Entries(4, 9, kNoLimit)),
              (std::vector<std::string>{"2/4", "2/5", "3/6", "3/7", "3/8"}));
    s.reset();
    s = Open("/db", 16 << 20, 3);
    ASSERT_NE(s, nullptr);
  }
  ASSERT_TRUE(s->CreateSnapshot(8, ConfState(), "eight").ok());
  EXPECT_EQ(*s->FirstIndex(), 6u);
  EXPECT_EQ(*s->Term(5), 2u);
  ASSERT_TRUE(s->Save(MakeHardState(4, 0, 20), {}, MakeSnap(20, 4, "received"), true).ok());
  s.reset();
  s = Open("/db", 16 << 20, 3);
  EXPECT_EQ(*s->FirstIndex(), 21u);
  EXPECT_EQ(*s->LastIndex(), 20u);
  EXPECT_EQ(*s->Term(20), 4u);
}

TEST_F(RaftLogStoreTest, CreateSnapshotRequiresStoredAndCommitted) {
  std::unique_ptr<RaftLogStore> s = StoreFrom3({4, 5});  // commit 3
  EXPECT_EQ(s->CreateSnapshot(4, ConfState(), "").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->Save(MakeHardState(10, 0, 5), {}, Snapshot(), true).ok());
  EXPECT_EQ(s->CreateSnapshot(6, ConfState(), "").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(s->CreateSnapshot(5, ConfState(), "").ok());
  // The log is empty now but still answers for the snapshot's index.
  EXPECT_EQ(*s->FirstIndex(), 6u);
  EXPECT_EQ(*s->LastIndex(), 5u);
  EXPECT_EQ(*s->Term(5), 5u);
  ExpectErr(s->Entries(6, 6, kNoLimit).status(), Err::kUnavailable);
  EXPECT_EQ(s->ApproximateLogBytes(), 0u);
}

// Save with entries: the cases of MemoryStorage::Append.
TEST_F(RaftLogStoreTest, SaveEntriesReplacesSuffix) {
  struct {
    std::vector<Entry> entries;
    std::vector<Entry> wentries;  // from the snapshot's index on
  } tests[] = {
      {Ents(1, {1, 2}), Ents(3, {3, 4, 5})},    {Ents(3, {3, 4, 5}), Ents(3, {3, 4, 5})},
      {Ents(3, {3, 6, 6}), Ents(3, {3, 6, 6})}, {Ents(3, {3, 4, 5, 5}), Ents(3, {3, 4, 5, 5})},
      {Ents(2, {3, 3, 5}), Ents(3, {3, 5})},    {Ents(4, {5}), Ents(3, {3, 5})},
      {Ents(6, {5}), Ents(3, {3, 4, 5, 5})},    {{}, Ents(3, {3, 4, 5})},
  };
  for (size_t i = 0; i < std::size(tests); ++i) {
    SCOPED_TRACE(i);
    const auto& tt = tests[i];
    const std::string dir = "/append" + std::to_string(i);
    std::unique_ptr<RaftLogStore> s = StoreFrom3({4, 5}, dir);
    ASSERT_TRUE(s->Save(HardState(), tt.entries, Snapshot(), true).ok());
    for (int round = 0; round < 2; ++round) {  // before and after a reopen
      const uint64_t first = *s->FirstIndex();
      EXPECT_EQ(first - 1, tt.wentries[0].index());
      EXPECT_EQ(*s->Term(first - 1), tt.wentries[0].term());
      absl::StatusOr<std::vector<Entry>> got = s->Entries(first, *s->LastIndex() + 1, kNoLimit);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(Ids(*got), Ids(std::vector<Entry>(tt.wentries.begin() + 1, tt.wentries.end())));
      s.reset();
      s = Open(dir);
    }
  }
}

TEST_F(RaftLogStoreTest, SaveRejectsBrokenInputsAndWritesNothing) {
  std::unique_ptr<RaftLogStore> s = StoreFrom3({4, 5});
  const std::string before = Digest(*s);
  // A gap after the last entry.
  EXPECT_EQ(s->Save(HardState(), Ents(7, {5}), Snapshot(), true).code(),
            absl::StatusCode::kInvalidArgument);
  // Entries that are not contiguous.
  std::vector<Entry> holes = Ents(6, {5, 5});
  holes[1].set_index(8);
  EXPECT_EQ(s->Save(HardState(), holes, Snapshot(), true).code(),
            absl::StatusCode::kInvalidArgument);
  // Terms going down.
  EXPECT_EQ(s->Save(HardState(), Ents(6, {4}), Snapshot(), true).code(),
            absl::StatusCode::kInvalidArgument);
  // A commit index beyond what would be stored.
  EXPECT_EQ(s->Save(MakeHardState(10, 0, 7), Ents(6, {5}), Snapshot(), true).code(),
            absl::StatusCode::kFailedPrecondition);
  // A hard state term below the last entry's.
  EXPECT_EQ(s->Save(MakeHardState(10, 0, 3), Ents(6, {11}), Snapshot(), true).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Digest(*s), before);
  // None of that poisoned the store.
  EXPECT_TRUE(s->Save(MakeHardState(10, 0, 6), Ents(6, {5}), Snapshot(), true).ok());
  s.reset();
  EXPECT_EQ(*Open()->LastIndex(), 6u);
}

TEST_F(RaftLogStoreTest, SaveSnapshot) {
  ConfState cs;
  cs.add_voters(1);
  struct {
    const char* name;
    std::vector<Snapshot> snaps;
    Err werr;  // of the last Save
  } tests[] = {
      {"normal", {MakeSnap(4, 4)}, Err::kNone},
      {"out of date", {MakeSnap(4, 4), MakeSnap(3, 3)}, Err::kSnapOutOfDate},
      {"same index", {MakeSnap(4, 4), MakeSnap(4, 4)}, Err::kSnapOutOfDate},
      {"newer", {MakeSnap(4, 4), MakeSnap(9, 5)}, Err::kNone},
  };
  int n = 0;
  for (const auto& tt : tests) {
    SCOPED_TRACE(tt.name);
    std::unique_ptr<RaftLogStore> s = Open("/snapsave" + std::to_string(n++));
    absl::Status err;
    for (Snapshot sn : tt.snaps) {
      *sn.mutable_metadata()->mutable_conf_state() = cs;
      err = s->Save(MakeHardState(sn.metadata().term(), 0, sn.metadata().index()), {}, sn, true);
    }
    ExpectErr(err, tt.werr);
  }
}

TEST_F(RaftLogStoreTest, SaveSnapshotReplacesLog) {
  std::unique_ptr<RaftLogStore> s = Open();
  ASSERT_TRUE(s->Save(MakeHardState(2, 1, 2), Ents(1, {1, 1, 2, 2}, "x"), Snapshot(), true).ok());
  Snapshot snap = MakeSnap(10, 3, "state");
  snap.mutable_metadata()->mutable_conf_state()->add_voters(2);
  // The snapshot and the entries that follow it, in one Save (one batch).
  ASSERT_TRUE(s->Save(MakeHardState(3, 0, 10), Ents(11, {3}), snap, true).ok());
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(*s->FirstIndex(), 11u);
    EXPECT_EQ(*s->LastIndex(), 11u);
    EXPECT_EQ(*s->Term(10), 3u);
    ExpectErr(s->Term(9).status(), Err::kCompacted);
    EXPECT_EQ(s->Snapshot()->data(), "state");
    absl::StatusOr<raft::StorageState> st = s->InitialState();
    ASSERT_TRUE(st.ok());
    ASSERT_EQ(st->conf_state.voters_size(), 1);
    EXPECT_EQ(st->conf_state.voters(0), 2u);
    EXPECT_EQ(st->hard_state.commit(), 10u);
    s.reset();
    s = Open();
  }
}

// A snapshot below the stored log's end still drops every stored entry:
// the core installs one only when its last entry does not match ours.
TEST_F(RaftLogStoreTest, SaveSnapshotDropsLaterEntriesToo) {
  std::unique_ptr<RaftLogStore> s = Open();
  ASSERT_TRUE(s->Save(MakeHardState(2, 0, 1), Ents(1, {1, 2, 2, 2}), Snapshot(), true).ok());
  ASSERT_TRUE(s->Save(MakeHardState(3, 0, 2), {}, MakeSnap(2, 3), true).ok());
  EXPECT_EQ(*s->LastIndex(), 2u);
  s.reset();
  s = Open();
  EXPECT_EQ(*s->FirstIndex(), 3u);
  EXPECT_EQ(*s->LastIndex(), 2u);
}

TEST_F(RaftLogStoreTest, Bootstrap) {
  ConfState cs;
  for (uint64_t id : {1, 2, 3}) cs.add_voters(id);
  std::unique_ptr<RaftLogStore> s = Open();
  ASSERT_TRUE(s->IsEmpty());
  ASSERT_TRUE(s->Bootstrap(cs).ok());
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    EXPECT_FALSE(s->IsEmpty());
    EXPECT_EQ(*s->FirstIndex(), 2u);
    EXPECT_EQ(*s->LastIndex(), 1u);
    EXPECT_EQ(*s->Term(1), 1u);
    absl::StatusOr<raft::StorageState> st = s->InitialState();
    ASSERT_TRUE(st.ok());
    EXPECT_TRUE(raft::HardStateEqual(st->hard_state, MakeHardState(1, 0, 1)));
    EXPECT_EQ(raft::DescribeConfState(st->conf_state), raft::DescribeConfState(cs));
    EXPECT_EQ(s->Snapshot()->metadata().index(), 1u);
    EXPECT_EQ(s->Bootstrap(cs).code(), absl::StatusCode::kFailedPrecondition);
    s.reset();
    s = Open();
  }
  // The log continues after the bootstrap snapshot.
  ASSERT_TRUE(s->Save(MakeHardState(2, 1, 2), Ents(2, {2}), Snapshot(), true).ok());
  EXPECT_EQ(*s->LastIndex(), 2u);
}

TEST_F(RaftLogStoreTest, InitialStateReturnsHardState) {
  std::unique_ptr<RaftLogStore> s = Open();
  const HardState hs = MakeHardState(5, 2, 0);
  ASSERT_TRUE(s->Save(hs, {}, Snapshot(), true).ok());
  EXPECT_FALSE(s->IsEmpty());
  s.reset();
  s = Open();
  EXPECT_TRUE(raft::HardStateEqual(s->InitialState()->hard_state, hs));
}

TEST_F(RaftLogStoreTest, ApproximateLogBytesTracksEntries) {
  std::unique_ptr<RaftLogStore> s = Open();
  ASSERT_TRUE(s->Save(MakeHardState(1, 0, 0), Ents(1, {1, 1, 1, 1}, std::string(1000, 'x')),
                      Snapshot(), true)
                  .ok());
  const uint64_t four = s->ApproximateLogBytes();
  EXPECT_GE(four, 4000u);
  ASSERT_TRUE(s->Save(HardState(), Ents(3, {1}, "y"), Snapshot(), true).ok());
  EXPECT_LT(s->ApproximateLogBytes(), four / 2 + 100);
  const uint64_t now = s->ApproximateLogBytes();
  s.reset();
  EXPECT_EQ(Open()->ApproximateLogBytes(), now);
}

// The default Env on a real directory: the production path.
TEST_F(RaftLogStoreTest, ReopenOnRealDisk) {
  char tmpl[] = "/tmp/raft_log_store_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    absl::StatusOr<std::unique_ptr<RaftLogStore>> s = OpenStore(dir, nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    ConfState cs;
    cs.add_voters(1);
    ASSERT_TRUE((*s)->Bootstrap(cs).ok());
    ASSERT_TRUE((*s)->Save(MakeHardState(2, 1, 3), Ents(2, {2, 2}, "v"), Snapshot(), true).ok());
    ASSERT_TRUE((*s)->CreateSnapshot(2, cs, "kv").ok());
    const std::string before = Digest(**s);
    s->reset();
    absl::StatusOr<std::unique_ptr<RaftLogStore>> again = OpenStore(dir, nullptr);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(Digest(**again), before);
  }
  std::filesystem::remove_all(dir);
}

TEST(Crc32cTest, KnownVector) {
  // RFC 3720 B.4 check value.
  EXPECT_EQ(Crc32c(0, "123456789"), 0xe3069283u);
  EXPECT_TRUE(CheckLevelDbFiles(leveldb::Env::Default(), "/nonexistent/dir").empty());
}

// The same random operations on the store and on a MemoryStorage model;
// after each, everything observable must agree. The store is reopened at
// random points (with a random entry cache size, so Entries is served from
// the cache, from LevelDB, or both).
TEST_F(RaftLogStoreTest, RandomizedAgainstMemoryStorage) {
  const int kSeeds = 12, kSteps = 250;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    auto rnd = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
    const std::string dir = "/rand" + std::to_string(seed);
    const uint64_t caches[] = {0, 200, 2000, 16 << 20};
    // Entries kept behind the application's snapshots; a reopen may change
    // it, as a restart with another flag would.
    const uint64_t keeps[] = {0, 3, 10};
    uint64_t keep = keeps[seed % 3];
    std::unique_ptr<RaftLogStore> store = Open(dir, caches[rnd(4)], keep);
    raft::MemoryStorage model;
    HardState hs;
    uint64_t term = 1;
    for (int step = 0; step < kSteps; ++step) {
      SCOPED_TRACE(::testing::Message() << "step " << step);
      const uint64_t first = *model.FirstIndex(), last = *model.LastIndex();
      const uint64_t op = rnd(10);
      if (op < 6) {  // a Ready: maybe a new term, entries, a commit
        if (rnd(4) == 0) term += 1 + rnd(2);
        HardState next = hs;
        next.set_term(term);
        if (rnd(3) == 0) next.set_vote(rnd(4));
        // Overwrite only uncommitted entries, as the core would.
        const uint64_t lo = std::max(first, hs.commit() + 1);
        const uint64_t at = lo + rnd(last + 2 - lo);
        std::vector<Entry> ents;
        const uint64_t n = rnd(6);
        for (uint64_t k = 0; k < n; ++k) {
          Entry e;
          e.set_index(at + k);
          e.set_term(term);
          e.set_type(static_cast<raftpb::EntryType>(rnd(3)));
          e.set_data(std::string(rnd(300), static_cast<char>('a' + rnd(26))));
          ents.push_back(std::move(e));
        }
        const uint64_t new_last = n > 0 ? at + n - 1 : last;
        next.set_commit(std::max(hs.commit(), std::min(new_last, hs.commit() + rnd(4))));
        const bool sync = rnd(2) == 0;
        ASSERT_TRUE(store->Save(next, ents, Snapshot(), sync).ok());
        ASSERT_TRUE(model.Append(ents).ok());
        model.SetHardState(next);
        hs = next;
      } else if (op < 7) {  // a snapshot from the leader
        term += rnd(2);
        Snapshot snap = MakeSnap(hs.commit() + 1 + rnd(last + 4 - hs.commit()), term,
                                 "snap" + std::to_string(step));
        snap.mutable_metadata()->mutable_conf_state()->add_voters(1 + rnd(5));
        HardState next = MakeHardState(term, hs.vote(), snap.metadata().index());
        std::vector<Entry> ents = Ents(snap.metadata().index() + 1, {term}, "after");
        if (rnd(2) == 0) ents.clear();
        ASSERT_TRUE(store->Save(next, ents, snap, true).ok());
        ASSERT_TRUE(model.ApplySnapshot(snap).ok());
        ASSERT_TRUE(model.Append(ents).ok());
        model.SetHardState(next);
        hs = next;
      } else if (op < 8) {  // the application snapshots what it applied
        const uint64_t lo = std::max(first, model.Snapshot()->metadata().index() + 1);
        if (hs.commit() < lo) continue;
        const uint64_t i = lo + rnd(hs.commit() + 1 - lo);
        ConfState cs;
        cs.add_voters(1 + rnd(5));
        ASSERT_TRUE(store->CreateSnapshot(i, cs, "app" + std::to_string(step)).ok());
        ASSERT_TRUE(model.CreateSnapshot(i, &cs, "app" + std::to_string(step)).ok());
        const uint64_t compact = i > keep ? i - keep : 0;
        if (compact >= first) ASSERT_TRUE(model.Compact(compact).ok());
      } else if (op < 9) {  // reads with limits, against the model
        const uint64_t lo = first - 1 + rnd(last + 3 - first);
        const uint64_t hi = lo + rnd(last + 3 - lo);
        const uint64_t max = rnd(3) == 0 ? kNoLimit : rnd(1500);
        absl::StatusOr<std::vector<Entry>> got = store->Entries(lo, hi, max);
        absl::StatusOr<std::vector<Entry>> want = model.Entries(lo, hi, max);
        ASSERT_EQ(got.status().code(), want.status().code()) << lo << " " << hi;
        if (got.ok()) {
          ASSERT_EQ(got->size(), want->size());
          for (size_t k = 0; k < got->size(); ++k) {
            ASSERT_EQ((*got)[k].SerializeAsString(), (*want)[k].SerializeAsString());
          }
        }
      } else {
        store.reset();
        keep = keeps[rnd(3)];
        store = Open(dir, caches[rnd(4)], keep);
        ASSERT_NE(store, nullptr);
      }
      ASSERT_EQ(Digest(*store), Digest(model));
      ASSERT_EQ(store->IsEmpty(), raft::IsEmptyHardState(hs) && *model.LastIndex() == 0);
    }
  }
}

}  // namespace
}  // namespace arbiter::kv
