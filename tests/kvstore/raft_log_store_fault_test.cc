// RaftLogStore under storage faults, injected with FaultEnv over LevelDB's
// in-memory Env (and once over the real disk): power loss that drops
// unsynced bytes, torn writes, flipped bits, EIO on fsync, ENOSPC, and
// inconsistent content written behind the store's back. Each property is
// paired with a control run showing that the check can fail: the same
// procedure without the fault (or with the weaker setting) gives a
// different, detectable outcome.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "kvstore/fault_env.h"
#include "kvstore/keys.h"
#include "kvstore/raft_log_store.h"
#include "leveldb/db.h"
#include "leveldb/env.h"
#include "leveldb/helpers/memenv.h"
#include "leveldb/write_batch.h"
#include "raft/types.h"
#include "tests/kvstore/store_test_util.h"

namespace arbiter::kv {
namespace {

using raft::ConfState;
using raft::Entry;
using raft::HardState;
using raft::Snapshot;
using testing::Digest;
using testing::Ents;
using testing::MakeHardState;
using testing::MakeSnap;
using testing::OpenStore;

// One Ready's worth: n entries of `bytes` bytes after the last index, in the
// current term, committing what was stored before.
absl::Status AppendSome(RaftLogStore* s, int n, size_t bytes, bool sync, char fill = 'x') {
  const uint64_t last = *s->LastIndex();
  HardState hs = s->InitialState()->hard_state;
  const uint64_t term = std::max<uint64_t>(hs.term(), 1);
  std::vector<Entry> ents;
  for (int k = 0; k < n; ++k) {
    Entry e;
    e.set_index(last + 1 + k);
    e.set_term(term);
    e.set_data(std::string(bytes, fill));
    ents.push_back(std::move(e));
  }
  return s->Save(MakeHardState(term, hs.vote(), last), ents, Snapshot(), sync);
}

// Names of the files in dir ending in suffix, in name order (LevelDB file
// numbers grow, so the last is the newest).
std::vector<std::string> FilesWithSuffix(leveldb::Env* env, const std::string& dir,
                                         const std::string& suffix) {
  std::vector<std::string> children, out;
  EXPECT_TRUE(env->GetChildren(dir, &children).ok());
  for (const std::string& c : children) {
    if (absl::EndsWith(c, suffix)) out.push_back(dir + "/" + c);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void CopyDir(leveldb::Env* env, const std::string& from, const std::string& to) {
  ASSERT_TRUE(env->CreateDir(to).ok());
  std::vector<std::string> children;
  ASSERT_TRUE(env->GetChildren(from, &children).ok());
  for (const std::string& c : children) {
    std::string data;
    if (!leveldb::ReadFileToString(env, from + "/" + c, &data).ok()) continue;  // "." etc.
    ASSERT_TRUE(leveldb::WriteStringToFile(env, data, to + "/" + c).ok());
  }
}

class FaultTest : public ::testing::Test {
 protected:
  FaultTest() : base_(leveldb::NewMemEnv(leveldb::Env::Default())), env_(base_.get()) {}

  std::unique_ptr<RaftLogStore> MustOpen(const std::string& dir = "/db") {
    absl::StatusOr<std::unique_ptr<RaftLogStore>> s =
        OpenStore(dir, &env_, 16 << 20, catch_up_entries_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // A bootstrapped store with `saves` acknowledged, synced Saves of 4 entries.
  std::unique_ptr<RaftLogStore> Populated(const std::string& dir, int saves) {
    std::unique_ptr<RaftLogStore> s = MustOpen(dir);
    ConfState cs;
    cs.add_voters(1);
    EXPECT_TRUE(s->Bootstrap(cs).ok());
    for (int i = 0; i < saves; ++i) {
      EXPECT_TRUE(AppendSome(s.get(), 4, 100, /*sync=*/true, static_cast<char>('a' + i % 26)).ok());
    }
    return s;
  }

  std::unique_ptr<leveldb::Env> base_;
  FaultEnv env_;
  // RaftLogStore::Options::catch_up_entries of the stores MustOpen opens.
  uint64_t catch_up_entries_ = 0;
};

// ---------------------------------------------------------------------------
// (a) Power loss drops what was not synced.

TEST_F(FaultTest, SyncedSavesSurviveCrash) {
  std::unique_ptr<RaftLogStore> s = Populated("/db", 10);
  const std::string acked = Digest(*s);
  s.reset();
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Digest(*MustOpen()), acked);
}

// Control for the test above: the crash simulation really drops data, so a
// store that acknowledged before fsync would be caught.
TEST_F(FaultTest, ControlUnsyncedSavesVanishInCrash) {
  std::unique_ptr<RaftLogStore> s = Populated("/db", 3);
  const std::string synced = Digest(*s);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(AppendSome(s.get(), 4, 100, /*sync=*/false).ok());
  const std::string unsynced = Digest(*s);
  ASSERT_NE(unsynced, synced);
  s.reset();
  // Without a crash, unsynced writes are there after a clean reopen...
  EXPECT_EQ(Digest(*MustOpen()), unsynced);
  // ...but a copy of the files as of the last sync does not have them.
  std::unique_ptr<RaftLogStore> s2 = Populated("/db2", 3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(AppendSome(s2.get(), 4, 100, /*sync=*/false).ok());
  s2.reset();
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Digest(*MustOpen("/db2")), synced);
}

// Random Saves with random sync flags, crashing at random points: the store
// always reopens, with every synced Save and some prefix of the unsynced
// ones after it (LevelDB replays its log in order), with or without entries
// kept behind the snapshots.
TEST_F(FaultTest, CrashRecoversAPrefixIncludingEverySyncedSave) {
  std::mt19937_64 rng(7);
  std::unique_ptr<RaftLogStore> s = Populated("/db", 1);
  for (int round = 0; round < 40; ++round) {
    SCOPED_TRACE(round);
    if (round == 20) {
      catch_up_entries_ = 3;
      s = MustOpen();
    }
    std::vector<std::string> digests = {Digest(*s)};
    size_t last_synced = 0;
    const int ops = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < ops; ++i) {
      const bool sync = rng() % 3 == 0;
      if (rng() % 5 == 0 && *s->LastIndex() > *s->FirstIndex()) {
        const uint64_t commit = s->InitialState()->hard_state.commit();
        if (commit > s->Snapshot()->metadata().index()) {
          ASSERT_TRUE(s->CreateSnapshot(commit, ConfState(), "snap").ok());
          digests.push_back(Digest(*s));
          last_synced = digests.size() - 1;  // snapshots are always synced
          continue;
        }
      }
      ASSERT_TRUE(AppendSome(s.get(), 1 + rng() % 5, rng() % 500, sync).ok());
      digests.push_back(Digest(*s));
      if (sync) last_synced = digests.size() - 1;
    }
    s.reset();
    ASSERT_TRUE(env_.DropUnsyncedData().ok());
    s = MustOpen();
    ASSERT_NE(s, nullptr);
    const std::string got = Digest(*s);
    auto it = std::find(digests.begin() + static_cast<ptrdiff_t>(last_synced), digests.end(), got);
    ASSERT_NE(it, digests.end()) << "recovered a state that is not a prefix: " << got;
  }
}

// The same on the real disk through the default Env.
TEST(FaultRealDiskTest, SyncedSurvivesUnsyncedVanishes) {
  char tmpl[] = "/tmp/raft_log_store_fault_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  FaultEnv env(leveldb::Env::Default());
  {
    absl::StatusOr<std::unique_ptr<RaftLogStore>> s = OpenStore(dir, &env);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->Save(MakeHardState(1, 1, 0), Ents(1, {1, 1}, "d"), Snapshot(), true).ok());
    const std::string synced = Digest(**s);
    ASSERT_TRUE(AppendSome(s->get(), 3, 50, /*sync=*/false).ok());
    s->reset();
    ASSERT_TRUE(env.DropUnsyncedData().ok());
    absl::StatusOr<std::unique_ptr<RaftLogStore>> again = OpenStore(dir, &env);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(Digest(**again), synced);
  }
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------
// (b) A torn last write: recovery keeps exactly the acknowledged data.

TEST_F(FaultTest, TornWriteKeepsExactlyTheAcknowledgedData) {
  std::unique_ptr<RaftLogStore> s = Populated("/db", 5);
  const std::string acked = Digest(*s);
  const std::string log = FilesWithSuffix(base_.get(), "/db", ".log").back();
  uint64_t size_before = 0, size_after = 0;
  ASSERT_TRUE(base_->GetFileSize(log, &size_before).ok());
  env_.set_tear_next_write(true);
  EXPECT_FALSE(AppendSome(s.get(), 4, 100, true).ok());
  // Control: the torn write did leave bytes in the log for recovery to face.
  ASSERT_TRUE(base_->GetFileSize(log, &size_after).ok());
  EXPECT_GT(size_after, size_before);
  // Fail-stop: the store refuses more writes even though the disk is fine now.
  EXPECT_FALSE(AppendSome(s.get(), 1, 10, true).ok());
  EXPECT_EQ(Digest(*s), acked);
  s.reset();
  EXPECT_EQ(Digest(*MustOpen()), acked);
}

// A crash in the middle of writing one large batch (several log blocks),
// cut at many offsets: reopening always yields the state before the batch
// (never part of it); cut at the very end (the control), all of it.
TEST_F(FaultTest, TornTailOfLargeBatchIsDroppedWhole) {
  std::unique_ptr<RaftLogStore> s = Populated("/db", 2);
  const std::string before = Digest(*s);
  const std::string log = FilesWithSuffix(base_.get(), "/db", ".log").back();
  uint64_t start = 0, end = 0;
  ASSERT_TRUE(base_->GetFileSize(log, &start).ok());
  ASSERT_TRUE(AppendSome(s.get(), 64, 1024, true, 'z').ok());  // ~70 KiB: 3 blocks
  const std::string after = Digest(*s);
  ASSERT_TRUE(base_->GetFileSize(log, &end).ok());
  ASSERT_GT(end - start, 2u * 32768);
  s.reset();
  std::string full;
  ASSERT_TRUE(leveldb::ReadFileToString(base_.get(), log, &full).ok());

  std::vector<uint64_t> cuts = {start + 1, start + 6, start + 7, start + 8, end - 1};
  for (uint64_t c = start + 1000; c < end; c += 4999) cuts.push_back(c);
  cuts.push_back(end);  // control: nothing torn
  for (size_t k = 0; k < cuts.size(); ++k) {
    SCOPED_TRACE(::testing::Message() << "cut at " << cuts[k] << " of " << start << ".." << end);
    const std::string dir = "/cut" + std::to_string(k);
    CopyDir(base_.get(), "/db", dir);
    const std::string copy = dir + log.substr(log.rfind('/'));
    ASSERT_TRUE(
        leveldb::WriteStringToFile(base_.get(), leveldb::Slice(full.data(), cuts[k]), copy).ok());
    absl::StatusOr<std::unique_ptr<RaftLogStore>> r = OpenStore(dir, base_.get());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(Digest(**r), cuts[k] == end ? after : before);
  }
}

// ---------------------------------------------------------------------------
// (c) Flipped bits in the middle of a file: Open refuses, naming the file.

// Rewrites the middle byte of fname through the base Env, xor-ed with mask
// (mask 0 rewrites it unchanged: the control).
void FlipMiddleByte(leveldb::Env* base, const std::string& fname, char mask) {
  std::string data;
  ASSERT_TRUE(leveldb::ReadFileToString(base, fname, &data).ok());
  ASSERT_GT(data.size(), 100u);
  data[data.size() / 2] ^= mask;
  ASSERT_TRUE(leveldb::WriteStringToFile(base, data, fname).ok());
}

TEST_F(FaultTest, FlippedBitInLogFileIsDataLossNamingTheFile) {
  for (char mask : {'\0', '\x10'}) {
    SCOPED_TRACE(static_cast<int>(mask));
    const std::string dir = mask == 0 ? "/control" : "/flipped";
    Populated(dir, 20);  // closed again: the data is in the write-ahead log
    const std::vector<std::string> logs = FilesWithSuffix(base_.get(), dir, ".log");
    ASSERT_EQ(logs.size(), 1u);
    FlipMiddleByte(base_.get(), logs[0], mask);
    absl::StatusOr<std::unique_ptr<RaftLogStore>> s = OpenStore(dir, &env_);
    if (mask == 0) {
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ(*(*s)->LastIndex(), 81u);
      continue;
    }
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
    EXPECT_TRUE(absl::StrContains(s.status().message(), logs[0])) << s.status();
  }
}

// Every byte of the log before its last record is covered by a checksum: a
// flip anywhere there is caught. (A flip in the last record can be
// indistinguishable from a torn tail, e.g. a length that runs past the end
// of the file; LevelDB, like etcd's WAL, then drops that record, which was
// the last write and so may never have been acknowledged.)
TEST_F(FaultTest, FlippedBitAnywhereBeforeTheLastRecordIsCaught) {
  std::unique_ptr<RaftLogStore> s = Populated("/db", 8);
  const std::string log = FilesWithSuffix(base_.get(), "/db", ".log").back();
  uint64_t last_record = 0;
  ASSERT_TRUE(base_->GetFileSize(log, &last_record).ok());
  ASSERT_TRUE(AppendSome(s.get(), 4, 100, true).ok());
  s.reset();
  int checked = 0;
  for (uint64_t pos = 0; pos < last_record; pos += 37) {
    SCOPED_TRACE(pos);
    const std::string dir = "/sweep" + std::to_string(pos);
    CopyDir(base_.get(), "/db", dir);
    const std::string copy = dir + log.substr(log.rfind('/'));
    std::string data;
    ASSERT_TRUE(leveldb::ReadFileToString(base_.get(), copy, &data).ok());
    data[pos] ^= 0x04;
    ASSERT_TRUE(leveldb::WriteStringToFile(base_.get(), data, copy).ok());
    absl::StatusOr<std::unique_ptr<RaftLogStore>> r = OpenStore(dir, &env_);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), copy)) << r.status();
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST_F(FaultTest, FlippedBitInTableFileIsDataLossNamingTheFile) {
  for (char mask : {'\0', '\x01'}) {
    SCOPED_TRACE(static_cast<int>(mask));
    const std::string dir = mask == 0 ? "/control" : "/flipped";
    Populated(dir, 20);
    MustOpen(dir);  // recovery moves the log into a table file
    const std::vector<std::string> tables = FilesWithSuffix(base_.get(), dir, ".ldb");
    ASSERT_EQ(tables.size(), 1u);
    FlipMiddleByte(base_.get(), tables[0], mask);
    absl::StatusOr<std::unique_ptr<RaftLogStore>> s = OpenStore(dir, &env_);
    if (mask == 0) {
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ(*(*s)->LastIndex(), 81u);
      continue;
    }
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
    EXPECT_TRUE(absl::StrContains(s.status().message(), tables[0])) << s.status();
  }
}

// ---------------------------------------------------------------------------
// (d) EIO on fsync: Save fails, and keeps failing; nothing is swallowed.

TEST_F(FaultTest, SyncErrorFailsSaveAndStaysFailed) {
  std::unique_ptr<RaftLogStore> s = Populated("/db", 3);
  const std::string acked = Digest(*s);
  const uint64_t last = *s->LastIndex();
  env_.set_sync_error(true);
  absl::Status st = AppendSome(s.get(), 2, 10, /*sync=*/true);
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "Input/output error")) << st;
  // The failed Save is not visible to the core.
  EXPECT_EQ(*s->LastIndex(), last);
  env_.set_sync_error(false);
  // Never retried, never forgotten: every later write reports the failure.
  EXPECT_EQ(AppendSome(s.get(), 1, 10, true).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s->CreateSnapshot(last - 1, ConfState(), "x").code(), absl::StatusCode::kInternal);
  // Reads are still served.
  EXPECT_TRUE(s->Entries(last, last + 1, raft::kNoLimit).ok());
  s.reset();
  // After a restart the failed write may or may not be there, but everything
  // acknowledged is.
  std::unique_ptr<RaftLogStore> again = MustOpen();
  const std::string got = Digest(*again);
  EXPECT_TRUE(got == acked || *again->LastIndex() == last + 2) << got;
  EXPECT_TRUE(AppendSome(again.get(), 1, 10, true).ok());
}

// Control: the same Save with the switch off succeeds, so the failure above
// comes from the injected EIO.
TEST_F(FaultTest, ControlSaveSucceedsWithoutSyncError) {
  std::unique_ptr<RaftLogStore> s = Populated("/db", 3);
  EXPECT_TRUE(AppendSome(s.get(), 2, 10, /*sync=*/true).ok());
}

// ---------------------------------------------------------------------------
// (e) ENOSPC: Save fails; once space is back, a reopen shows no partial batch.

TEST_F(FaultTest, NoSpaceFailsSaveWithoutPartialBatch) {
  for (bool full : {false, true}) {  // false: the control run
    SCOPED_TRACE(full);
    const std::string dir = full ? "/full" : "/control";
    std::unique_ptr<RaftLogStore> s = Populated(dir, 3);
    const std::string before = Digest(*s);
    const uint64_t last = *s->LastIndex();
    env_.set_no_space(full);
    absl::Status st = AppendSome(s.get(), 64, 1024, true);  // a multi-block batch
    env_.set_no_space(false);
    if (full) {
      EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
      EXPECT_TRUE(s->Term(last).ok());  // reads are still served
    } else {
      ASSERT_TRUE(st.ok()) << st;
    }
    s.reset();
    std::unique_ptr<RaftLogStore> again = MustOpen(dir);
    if (full) {
      EXPECT_EQ(Digest(*again), before);
    } else {
      EXPECT_EQ(*again->LastIndex(), last + 64);
    }
    EXPECT_TRUE(AppendSome(again.get(), 1, 10, true).ok());
  }
}

// ---------------------------------------------------------------------------
// (f) Inconsistent content written behind the store's back.

TEST_F(FaultTest, InconsistentContentIsDataLoss) {
  struct Case {
    const char* name;
    std::function<void(leveldb::WriteBatch*)> mutate;
    absl::StatusCode code;
    const char* message;
  };
  auto entry = [](uint64_t index, uint64_t term) {
    Entry e;
    e.set_index(index);
    e.set_term(term);
    return e.SerializeAsString();
  };
  const Case cases[] = {
      {"control: the same hard state rewritten",
       [](leveldb::WriteBatch* b) {
         b->Put(keys::kHardStateKey, MakeHardState(5, 0, 6).SerializeAsString());
       },
       absl::StatusCode::kOk, ""},
      {"commit beyond last index",
       [](leveldb::WriteBatch* b) {
         b->Put(keys::kHardStateKey, MakeHardState(5, 0, 12).SerializeAsString());
       },
       absl::StatusCode::kDataLoss, "hard state commit 12 is beyond the last index 8"},
      {"commit below snapshot",
       [](leveldb::WriteBatch* b) {
         b->Put(keys::kHardStateKey, MakeHardState(5, 0, 2).SerializeAsString());
       },
       absl::StatusCode::kDataLoss, "hard state commit 2 is below the snapshot index 3"},
      {"hard state term below last entry",
       [](leveldb::WriteBatch* b) {
         b->Put(keys::kHardStateKey, MakeHardState(3, 0, 6).SerializeAsString());
       },
       absl::StatusCode::kDataLoss, "hard state term 3 is below the term 4"},
      {"index gap", [](leveldb::WriteBatch* b) { b->Delete(keys::LogKey(6)); },
       absl::StatusCode::kDataLoss, "index gap: log/7 follows log/5"},
      {"entries before a missing snapshot",
       [](leveldb::WriteBatch* b) {
         b->Delete(keys::kSnapshotMetaKey);
         b->Delete(keys::kSnapshotDataKey);
       },
       absl::StatusCode::kDataLoss, "the first entry is log/4 but there is no snapshot"},
      {"first entry not after the snapshot",
       [](leveldb::WriteBatch* b) { b->Delete(keys::LogKey(4)); }, absl::StatusCode::kDataLoss,
       "the first entry is log/5 but the snapshot index is 3"},
      {"entry under the wrong key",
       [&](leveldb::WriteBatch* b) { b->Put(keys::LogKey(6), entry(9, 4)); },
       absl::StatusCode::kDataLoss, "key log/6 holds the entry of index 9"},
      {"term going down", [&](leveldb::WriteBatch* b) { b->Put(keys::LogKey(7), entry(7, 2)); },
       absl::StatusCode::kDataLoss, "the term 2 of log/7 is below the term 4"},
      {"garbage hard state",
       [](leveldb::WriteBatch* b) { b->Put(keys::kHardStateKey, "\xff\xff"); },
       absl::StatusCode::kDataLoss, "value is not a HardState"},
      {"garbage entry", [](leveldb::WriteBatch* b) { b->Put(keys::LogKey(5), "\xff"); },
       absl::StatusCode::kDataLoss, "log/5: value is not an Entry"},
      {"unknown key", [](leveldb::WriteBatch* b) { b->Put("zzz", "1"); },
       absl::StatusCode::kDataLoss, "unknown key \"zzz\""},
      {"missing format version", [](leveldb::WriteBatch* b) { b->Delete(keys::kFormatVersionKey); },
       absl::StatusCode::kDataLoss, "format version key"},
      {"snapshot data missing", [](leveldb::WriteBatch* b) { b->Delete(keys::kSnapshotDataKey); },
       absl::StatusCode::kDataLoss, "no snapshot data key"},
      {"newer format", [](leveldb::WriteBatch* b) { b->Put(keys::kFormatVersionKey, "3"); },
       absl::StatusCode::kFailedPrecondition, "unsupported format version"},
      {"control: entries kept behind the snapshot",
       [&](leveldb::WriteBatch* b) {
         b->Put(keys::kLogStartKey, entry(2, 2));
         b->Put(keys::LogKey(3), entry(3, 3));
       },
       absl::StatusCode::kOk, ""},
      {"a log start whose entries are gone",
       [&](leveldb::WriteBatch* b) { b->Put(keys::kLogStartKey, entry(1, 1)); },
       absl::StatusCode::kDataLoss, "the first entry is log/4 but the log starts after 1"},
      {"a log start past the snapshot",
       [&](leveldb::WriteBatch* b) { b->Put(keys::kLogStartKey, entry(5, 4)); },
       absl::StatusCode::kDataLoss, "before the snapshot's (3, term 3)"},
      {"a log start at the snapshot",
       [&](leveldb::WriteBatch* b) { b->Put(keys::kLogStartKey, entry(3, 2)); },
       absl::StatusCode::kDataLoss, "before the snapshot's (3, term 3)"},
      {"a log start at 0 with a term",
       [&](leveldb::WriteBatch* b) { b->Put(keys::kLogStartKey, entry(0, 1)); },
       absl::StatusCode::kDataLoss, "before the snapshot's (3, term 3)"},
      {"a log start without a snapshot",
       [&](leveldb::WriteBatch* b) {
         b->Put(keys::kLogStartKey, entry(2, 2));
         b->Delete(keys::kSnapshotMetaKey);
         b->Delete(keys::kSnapshotDataKey);
       },
       absl::StatusCode::kDataLoss, "before the snapshot's (0, term 0)"},
      {"control: the previous format version",
       [](leveldb::WriteBatch* b) { b->Put(keys::kFormatVersionKey, "1"); }, absl::StatusCode::kOk,
       ""},
      {"garbage log start", [](leveldb::WriteBatch* b) { b->Put(keys::kLogStartKey, "\xff\xff"); },
       absl::StatusCode::kDataLoss, "key \"meta/logstart\": value is not an entry's index"},
      {"kept entries that disagree with the snapshot",
       [&](leveldb::WriteBatch* b) {
         b->Put(keys::kLogStartKey, entry(2, 2));
         b->Put(keys::LogKey(3), entry(3, 2));
       },
       absl::StatusCode::kDataLoss, "does not reach it with its term: it ends at 8 and has term 2"},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = "/case" + std::to_string(n++);
    {
      // Snapshot at 3 (term 3), entries 4..8 in term 4, hard state 5/0/6.
      std::unique_ptr<RaftLogStore> s = MustOpen(dir);
      ASSERT_TRUE(
          s->Save(MakeHardState(5, 0, 6), Ents(4, {4, 4, 4, 4, 4}), MakeSnap(3, 3), true).ok());
    }
    MustOpen(dir);  // control: the untouched store opens
    leveldb::Options options;
    options.env = base_.get();
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(options, dir, &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    leveldb::WriteBatch batch;
    c.mutate(&batch);
    ASSERT_TRUE(db->Write(leveldb::WriteOptions(), &batch).ok());
    db.reset();
    absl::StatusOr<std::unique_ptr<RaftLogStore>> s = OpenStore(dir, &env_);
    EXPECT_EQ(s.status().code(), c.code) << s.status();
    EXPECT_TRUE(absl::StrContains(s.status().message(), c.message)) << s.status();
    if (c.code == absl::StatusCode::kDataLoss) {
      EXPECT_TRUE(absl::StrContains(s.status().message(), dir)) << s.status();
    }
  }
}

}  // namespace
}  // namespace arbiter::kv
