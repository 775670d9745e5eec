// Table tests of the MVCC key index (generations, tombstones, compaction) in
// the manner of etcd's mvcc/key_index_test.go, and of the revision encoding.
#include "kvstore/key_index.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"
#include "kvstore/mvcc_keys.h"
#include "kvstore/revision.h"

namespace arbiter::kv {
namespace {

using RevSet = absl::flat_hash_set<Revision>;

Revision R(int64_t main, int64_t sub = 0) { return Revision{main, sub}; }

// key "foo", current revision 16:
//   {empty}
//   {{14, 0}[1], {14, 1}[2], {16, 0}(t)[3]}
//   {{8, 0}[1], {10, 0}[2], {12, 0}(t)[3]}
//   {{2, 0}[1], {4, 0}[2], {6, 0}(t)[3]}
KeyIndex NewTestKeyIndex() {
  KeyIndex ki;
  EXPECT_TRUE(ki.Put(R(2)).ok());
  EXPECT_TRUE(ki.Put(R(4)).ok());
  EXPECT_TRUE(ki.Tombstone(R(6)).ok());
  EXPECT_TRUE(ki.Put(R(8)).ok());
  EXPECT_TRUE(ki.Put(R(10)).ok());
  EXPECT_TRUE(ki.Tombstone(R(12)).ok());
  EXPECT_TRUE(ki.Put(R(14)).ok());
  EXPECT_TRUE(ki.Put(R(14, 1)).ok());
  EXPECT_TRUE(ki.Tombstone(R(16)).ok());
  return ki;
}

Generation Gen(Revision created, int64_t ver, std::vector<Revision> revs) {
  return Generation{ver, created, std::move(revs)};
}

TEST(RevisionTest, EncodingPreservesOrder) {
  const std::vector<Revision> revs = {R(0),
                                      R(1),
                                      R(1, 1),
                                      R(1, 255),
                                      R(1, 256),
                                      R(2),
                                      R(255),
                                      R(256),
                                      R(65535),
                                      R(65536, 7),
                                      R(1LL << 32),
                                      R(1LL << 40, 3),
                                      R(INT64_MAX, 0),
                                      R(INT64_MAX, INT64_MAX)};
  for (size_t i = 0; i < revs.size(); ++i) {
    SCOPED_TRACE(i);
    const std::string key = mvcc_keys::RevisionKey(revs[i]);
    EXPECT_EQ(key.size(), mvcc_keys::kRevisionKeyLen);
    std::optional<Revision> back = mvcc_keys::DecodeRevisionKey(key);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, revs[i]);
    for (size_t j = 0; j < revs.size(); ++j) {
      const std::string other = mvcc_keys::RevisionKey(revs[j]);
      EXPECT_EQ(key < other, revs[i] < revs[j]) << revs[i] << " vs " << revs[j];
    }
  }
}

TEST(RevisionTest, DecodeRejectsMalformedKeys) {
  const std::string good = mvcc_keys::RevisionKey(R(5, 1));
  EXPECT_FALSE(mvcc_keys::DecodeRevisionKey(good.substr(0, good.size() - 1)).has_value());
  EXPECT_FALSE(mvcc_keys::DecodeRevisionKey(good + "x").has_value());
  EXPECT_FALSE(mvcc_keys::DecodeRevisionKey("l/" + good.substr(2)).has_value());
  std::string negative = good;
  negative[2] = static_cast<char>(0x80);  // main >= 2^63
  EXPECT_FALSE(mvcc_keys::DecodeRevisionKey(negative).has_value());
  EXPECT_EQ(mvcc_keys::DescribeKey(good), "r/5.1");
  EXPECT_EQ(mvcc_keys::DescribeKey(mvcc_keys::LeaseKey(7)), "l/7");
  EXPECT_EQ(mvcc_keys::DescribeKey("m/x\n"), "\"m/x\\n\"");
}

TEST(RevisionTest, LeaseValueRoundTrips) {
  int64_t ttl = 0, remaining = 0;
  ASSERT_TRUE(
      mvcc_keys::DecodeLeaseValue(mvcc_keys::EncodeLeaseValue(9000000000, 42), &ttl, &remaining));
  EXPECT_EQ(ttl, 9000000000);
  EXPECT_EQ(remaining, 42);
  EXPECT_FALSE(mvcc_keys::DecodeLeaseValue("short", &ttl, &remaining));
}

TEST(KeyIndexTest, Get) {
  KeyIndex ki = NewTestKeyIndex();
  RevSet am;
  ki.Compact(4, &am);
  struct {
    int64_t rev;
    bool found;
    Revision mod, created;
    int64_t ver;
  } tests[] = {
      {17, false, {}, {}, 0},
      {16, false, {}, {}, 0},
      // generation 3
      {15, true, R(14, 1), R(14), 2},
      {14, true, R(14, 1), R(14), 2},
      {13, false, {}, {}, 0},
      {12, false, {}, {}, 0},
      // generation 2
      {11, true, R(10), R(8), 2},
      {10, true, R(10), R(8), 2},
      {9, true, R(8), R(8), 1},
      {8, true, R(8), R(8), 1},
      {7, false, {}, {}, 0},
      {6, false, {}, {}, 0},
      // generation 1 (compacted at 4)
      {5, true, R(4), R(2), 2},
      {4, true, R(4), R(2), 2},
      {3, false, {}, {}, 0},
      {2, false, {}, {}, 0},
      {1, false, {}, {}, 0},
      {0, false, {}, {}, 0},
  };
  for (const auto& tt : tests) {
    SCOPED_TRACE(tt.rev);
    KeyAt at;
    ASSERT_EQ(ki.Get(tt.rev, &at), tt.found);
    Revision mod;
    ASSERT_EQ(ki.GetModified(tt.rev, &mod), tt.found);
    if (!tt.found) continue;
    EXPECT_EQ(at.modified, tt.mod);
    EXPECT_EQ(mod, tt.mod);
    EXPECT_EQ(at.created, tt.created);
    EXPECT_EQ(at.version, tt.ver);
  }
}

TEST(KeyIndexTest, Since) {
  KeyIndex ki = NewTestKeyIndex();
  RevSet am;
  ki.Compact(4, &am);
  const std::vector<Revision> all = {R(4), R(6), R(8), R(10), R(12), R(14, 1), R(16)};
  auto from = [&](size_t i) { return std::vector<Revision>(all.begin() + i, all.end()); };
  struct {
    int64_t rev;
    std::vector<Revision> want;
  } tests[] = {
      {17, {}},      {16, from(6)}, {15, from(6)}, {14, from(5)}, {13, from(5)}, {12, from(4)},
      {11, from(4)}, {10, from(3)}, {9, from(3)},  {8, from(2)},  {7, from(2)},  {6, from(1)},
      {5, from(1)},  {4, all},      {3, all},      {2, all},      {1, all},      {0, all},
  };
  for (const auto& tt : tests) {
    SCOPED_TRACE(tt.rev);
    EXPECT_EQ(ki.Since(tt.rev), tt.want);
  }
}

TEST(KeyIndexTest, Put) {
  KeyIndex ki;
  ASSERT_TRUE(ki.Put(R(5)).ok());
  EXPECT_EQ(ki.modified(), R(5));
  EXPECT_EQ(ki.generations(), std::vector<Generation>({Gen(R(5), 1, {R(5)})}));
  ASSERT_TRUE(ki.Put(R(7)).ok());
  EXPECT_EQ(ki.modified(), R(7));
  EXPECT_EQ(ki.generations(), std::vector<Generation>({Gen(R(5), 2, {R(5), R(7)})}));
  // Not after the last modification: refused, history unchanged.
  EXPECT_EQ(ki.Put(R(7)).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ki.Put(R(6, 3)).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ki.generations(), std::vector<Generation>({Gen(R(5), 2, {R(5), R(7)})}));
}

TEST(KeyIndexTest, Restore) {
  KeyIndex ki;
  ki.Restore(R(5), R(7), 2);
  EXPECT_EQ(ki.modified(), R(7));
  EXPECT_EQ(ki.generations(), std::vector<Generation>({Gen(R(5), 2, {R(7)})}));
  KeyAt at;
  ASSERT_TRUE(ki.Get(7, &at));
  EXPECT_EQ(at.created, R(5));
  EXPECT_EQ(at.version, 2);
}

TEST(KeyIndexTest, Tombstone) {
  KeyIndex ki;
  ASSERT_TRUE(ki.Put(R(5)).ok());
  ASSERT_TRUE(ki.Tombstone(R(7)).ok());
  EXPECT_EQ(ki.modified(), R(7));
  EXPECT_EQ(ki.generations(), std::vector<Generation>({Gen(R(5), 2, {R(5), R(7)}), Generation{}}));
  EXPECT_FALSE(ki.IsLive());

  ASSERT_TRUE(ki.Put(R(8)).ok());
  ASSERT_TRUE(ki.Put(R(9)).ok());
  ASSERT_TRUE(ki.Tombstone(R(15)).ok());
  EXPECT_EQ(ki.modified(), R(15));
  EXPECT_EQ(ki.generations(),
            std::vector<Generation>(
                {Gen(R(5), 2, {R(5), R(7)}), Gen(R(8), 3, {R(8), R(9), R(15)}), Generation{}}));
  EXPECT_EQ(ki.Tombstone(R(16)).code(), absl::StatusCode::kNotFound);
}

// The table of etcd's TestKeyIndexCompactAndKeep: compacting the test index
// at each revision, the history left and the revisions kept.
struct CompactCase {
  int64_t compact;
  std::vector<Generation> want;
  std::vector<Revision> keep;
};

std::vector<CompactCase> CompactCases() {
  const Generation g1 = Gen(R(2), 3, {R(2), R(4), R(6)});
  const Generation g1c = Gen(R(2), 3, {R(4), R(6)});
  const Generation g2 = Gen(R(8), 3, {R(8), R(10), R(12)});
  const Generation g2c = Gen(R(8), 3, {R(10), R(12)});
  const Generation g3 = Gen(R(14), 3, {R(14), R(14, 1), R(16)});
  const Generation g3c = Gen(R(14), 3, {R(14, 1), R(16)});
  const Generation empty;
  return {
      {1, {g1, g2, g3, empty}, {}},
      {2, {g1, g2, g3, empty}, {R(2)}},
      {3, {g1, g2, g3, empty}, {R(2)}},
      {4, {g1c, g2, g3, empty}, {R(4)}},
      {5, {g1c, g2, g3, empty}, {R(4)}},
      {6, {g2, g3, empty}, {}},
      {7, {g2, g3, empty}, {}},
      {8, {g2, g3, empty}, {R(8)}},
      {9, {g2, g3, empty}, {R(8)}},
      {10, {g2c, g3, empty}, {R(10)}},
      {11, {g2c, g3, empty}, {R(10)}},
      {12, {g3, empty}, {}},
      {13, {g3, empty}, {}},
      {14, {g3c, empty}, {R(14, 1)}},
      {15, {g3c, empty}, {R(14, 1)}},
      {16, {empty}, {}},
  };
}

RevSet ToSet(const std::vector<Revision>& revs) { return RevSet(revs.begin(), revs.end()); }

void CheckCompactStep(KeyIndex* ki, const CompactCase& tt) {
  RevSet am;
  const KeyIndex before = *ki;
  ki->Keep(tt.compact, &am);
  EXPECT_EQ(*ki, before) << "Keep changed the index";
  EXPECT_EQ(am, ToSet(tt.keep)) << "Keep";
  am.clear();
  ki->Compact(tt.compact, &am);
  EXPECT_EQ(ki->generations(), tt.want) << ki->DebugString();
  EXPECT_EQ(am, ToSet(tt.keep)) << "Compact";
  EXPECT_EQ(ki->modified(), R(16));
}

TEST(KeyIndexTest, CompactAndKeepContinuously) {
  KeyIndex ki = NewTestKeyIndex();
  for (const CompactCase& tt : CompactCases()) {
    SCOPED_TRACE(tt.compact);
    CheckCompactStep(&ki, tt);
  }
  EXPECT_TRUE(ki.IsEmpty());
}

TEST(KeyIndexTest, CompactAndKeepJumping) {
  KeyIndex ki = NewTestKeyIndex();
  const std::vector<CompactCase> cases = CompactCases();
  for (size_t i = 0; i < cases.size(); ++i) {
    if ((i % 2 == 0 && i < 6) || (i % 2 == 1 && i > 6)) {
      SCOPED_TRACE(cases[i].compact);
      CheckCompactStep(&ki, cases[i]);
    }
  }
}

TEST(KeyIndexTest, CompactAndKeepOnce) {
  for (const CompactCase& tt : CompactCases()) {
    SCOPED_TRACE(tt.compact);
    KeyIndex ki = NewTestKeyIndex();
    CheckCompactStep(&ki, tt);
  }
}

// Compacting beyond the last modification keeps the live value.
TEST(KeyIndexTest, CompactOnFurtherRevision) {
  KeyIndex ki;
  ASSERT_TRUE(ki.Put(R(1)).ok());
  ASSERT_TRUE(ki.Put(R(2)).ok());
  RevSet am;
  ki.Compact(3, &am);
  EXPECT_EQ(ki.modified(), R(2));
  EXPECT_EQ(ki.generations(), std::vector<Generation>({Gen(R(1), 2, {R(2)})}));
  EXPECT_EQ(am, ToSet({R(2)}));
  KeyAt at;
  ASSERT_TRUE(ki.Get(3, &at));
  EXPECT_EQ(at.version, 2);
}

TEST(KeyIndexTest, IsEmpty) {
  KeyIndex empty;
  EXPECT_TRUE(empty.IsEmpty());
  KeyIndex ki;
  ASSERT_TRUE(ki.Put(R(2)).ok());
  EXPECT_FALSE(ki.IsEmpty());
  ASSERT_TRUE(ki.Tombstone(R(3)).ok());
  EXPECT_FALSE(ki.IsEmpty());
  RevSet am;
  ki.Compact(3, &am);
  EXPECT_TRUE(ki.IsEmpty());
  EXPECT_TRUE(am.empty());
}

TEST(KeyIndexTest, FindGeneration) {
  const KeyIndex ki = NewTestKeyIndex();
  const Generation* g0 = &ki.generations()[0];
  const Generation* g1 = &ki.generations()[1];
  const Generation* g2 = &ki.generations()[2];
  struct {
    int64_t rev;
    const Generation* want;
  } tests[] = {
      {0, nullptr},  {1, nullptr},  {2, g0},  {3, g0},  {4, g0},       {5, g0},
      {6, nullptr},  {7, nullptr},  {8, g1},  {9, g1},  {10, g1},      {11, g1},
      {12, nullptr}, {13, nullptr}, {14, g2}, {15, g2}, {16, nullptr}, {17, nullptr},
  };
  for (const auto& tt : tests) {
    SCOPED_TRACE(tt.rev);
    EXPECT_EQ(ki.FindGeneration(tt.rev), tt.want);
  }
}

// A key put and deleted within one main revision (a txn): the history keeps
// both changes, and Since reports only the last.
TEST(KeyIndexTest, ChangesWithinOneRevision) {
  KeyIndex ki;
  ASSERT_TRUE(ki.Put(R(3)).ok());
  ASSERT_TRUE(ki.Put(R(5, 0)).ok());
  ASSERT_TRUE(ki.Tombstone(R(5, 1)).ok());
  EXPECT_EQ(ki.Since(5), std::vector<Revision>({R(5, 1)}));
  EXPECT_EQ(ki.Since(1), std::vector<Revision>({R(3), R(5, 1)}));
  KeyAt at;
  EXPECT_FALSE(ki.Get(5, &at));
  ASSERT_TRUE(ki.Get(4, &at));
  EXPECT_EQ(at.modified, R(3));
}

}  // namespace
}  // namespace arbiter::kv
