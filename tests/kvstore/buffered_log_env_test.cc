// BufferedLogEnv: LevelDB log writes reach the file in pieces, at Sync and
// at Close (or when the file is dropped unclosed, as LevelDB drops its log
// when the database closes); other files are written as they come.
#include "kvstore/buffered_log_env.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "kvstore/fault_env.h"
#include "leveldb/db.h"
#include "leveldb/env.h"
#include "leveldb/helpers/memenv.h"
#include "leveldb/options.h"

namespace arbiter::kv {
namespace {

class BufferedLogEnvTest : public ::testing::Test {
 protected:
  BufferedLogEnvTest() : base_(leveldb::NewMemEnv(leveldb::Env::Default())), env_(base_.get()) {
    EXPECT_TRUE(base_->CreateDir("db").ok());
  }

  // What the base Env holds of fname.
  uint64_t Size(const std::string& fname) {
    uint64_t n = 0;
    EXPECT_TRUE(base_->GetFileSize(fname, &n).ok());
    return n;
  }

  std::unique_ptr<leveldb::WritableFile> Open(const std::string& fname) {
    leveldb::WritableFile* f = nullptr;
    EXPECT_TRUE(env_.NewWritableFile(fname, &f).ok());
    return std::unique_ptr<leveldb::WritableFile>(f);
  }

  std::unique_ptr<leveldb::Env> base_;
  BufferedLogEnv env_;
};

TEST_F(BufferedLogEnvTest, NamesLogFilesOnly) {
  EXPECT_TRUE(BufferedLogEnv::IsLogFileName("db/000003.log"));
  EXPECT_TRUE(BufferedLogEnv::IsLogFileName("000012.log"));
  EXPECT_FALSE(BufferedLogEnv::IsLogFileName("db/LOG"));
  EXPECT_FALSE(BufferedLogEnv::IsLogFileName("db/LOG.old"));
  EXPECT_FALSE(BufferedLogEnv::IsLogFileName("db/MANIFEST-000001"));
  EXPECT_FALSE(BufferedLogEnv::IsLogFileName("db/000005.ldb"));
  EXPECT_FALSE(BufferedLogEnv::IsLogFileName("db/.log"));
  EXPECT_FALSE(BufferedLogEnv::IsLogFileName("db/x1.log"));
}

TEST_F(BufferedLogEnvTest, LogWritesWaitForAPieceOrSync) {
  auto f = Open("db/000003.log");
  const std::string record(1000, 'r');
  ASSERT_TRUE(f->Append(record).ok());
  ASSERT_TRUE(f->Flush().ok());
  EXPECT_EQ(Size("db/000003.log"), 0u) << "a flushed record was written on its own";
  uint64_t appended = record.size();
  while (appended < BufferedLogEnv::kPieceBytes) {
    ASSERT_TRUE(f->Append(record).ok());
    ASSERT_TRUE(f->Flush().ok());
    appended += record.size();
  }
  EXPECT_EQ(Size("db/000003.log"), appended) << "a whole piece is written at once";
  ASSERT_TRUE(f->Append("tail").ok());
  ASSERT_TRUE(f->Sync().ok());
  EXPECT_EQ(Size("db/000003.log"), appended + 4) << "Sync writes what was gathered";
  ASSERT_TRUE(f->Close().ok());
}

TEST_F(BufferedLogEnvTest, CloseAndDropWriteWhatWasGathered) {
  auto closed = Open("db/000004.log");
  ASSERT_TRUE(closed->Append(std::string(100, 'c')).ok());
  ASSERT_TRUE(closed->Close().ok());
  EXPECT_EQ(Size("db/000004.log"), 100u);

  auto dropped = Open("db/000005.log");
  ASSERT_TRUE(dropped->Append(std::string(50, 'd')).ok());
  ASSERT_TRUE(dropped->Flush().ok());
  dropped.reset();
  EXPECT_EQ(Size("db/000005.log"), 50u);
}

// LevelDB closes a full log without syncing it, and its records live only
// there until their memtable reaches a table file: a closed log waits, open,
// for SyncClosedLogs. A power loss keeps a synced one whole and empties one
// that was not (so the power loss is real), as it does an unsynced file of
// another kind.
TEST_F(BufferedLogEnvTest, ClosedLogsWaitForSyncClosedLogs) {
  FaultEnv fault(base_.get());
  for (bool gather : {true, false}) {
    BufferedLogEnv env(&fault, gather);
    auto open = [&](const std::string& fname) {
      leveldb::WritableFile* f = nullptr;
      EXPECT_TRUE(env.NewWritableFile(fname, &f).ok());
      return std::unique_ptr<leveldb::WritableFile>(f);
    };
    const std::string n = gather ? "1" : "2";
    auto synced = open("db/00000" + n + "6.log");
    ASSERT_TRUE(synced->Append(std::string(300, 'l')).ok());
    ASSERT_TRUE(synced->Flush().ok());
    EXPECT_EQ(Size("db/00000" + n + "6.log"), gather ? 0u : 300u) << "gather " << gather;
    ASSERT_TRUE(synced->Close().ok());
    EXPECT_EQ(env.closed_logs(), 1u);
    ASSERT_TRUE(env.SyncClosedLogs().ok());
    EXPECT_EQ(env.closed_logs(), 0u);

    auto unsynced = open("db/00000" + n + "7.log");
    ASSERT_TRUE(unsynced->Append(std::string(200, 'u')).ok());
    ASSERT_TRUE(unsynced->Close().ok());
    auto other = open("db/MANIFEST-00000" + n);
    ASSERT_TRUE(other->Append(std::string(10, 'm')).ok());
    ASSERT_TRUE(other->Close().ok());

    ASSERT_TRUE(fault.DropUnsyncedData().ok());
    EXPECT_EQ(Size("db/00000" + n + "6.log"), 300u) << "gather " << gather;
    EXPECT_EQ(Size("db/00000" + n + "7.log"), 0u) << "gather " << gather;
    EXPECT_EQ(Size("db/MANIFEST-00000" + n), 0u) << "gather " << gather;
  }
}

// Past kMaxClosedLogs, the oldest waiting log is synced as another closes.
TEST_F(BufferedLogEnvTest, TooManyClosedLogsSyncTheOldest) {
  FaultEnv fault(base_.get());
  BufferedLogEnv env(&fault);
  for (size_t i = 0; i <= BufferedLogEnv::kMaxClosedLogs; ++i) {
    leveldb::WritableFile* f = nullptr;
    ASSERT_TRUE(env.NewWritableFile("db/1" + std::to_string(100 + i) + ".log", &f).ok());
    std::unique_ptr<leveldb::WritableFile> log(f);
    ASSERT_TRUE(log->Append(std::string(10, 'x')).ok());
    ASSERT_TRUE(log->Close().ok());
  }
  EXPECT_EQ(env.closed_logs(), BufferedLogEnv::kMaxClosedLogs);
  ASSERT_TRUE(fault.DropUnsyncedData().ok());
  EXPECT_EQ(Size("db/1100.log"), 10u) << "the oldest was synced";
  EXPECT_EQ(Size("db/1101.log"), 0u);
}

TEST_F(BufferedLogEnvTest, OtherFilesAreWrittenAsTheyCome) {
  auto f = Open("db/MANIFEST-000001");
  ASSERT_TRUE(f->Append(std::string(10, 'm')).ok());
  ASSERT_TRUE(f->Flush().ok());
  EXPECT_EQ(Size("db/MANIFEST-000001"), 10u);
  ASSERT_TRUE(f->Close().ok());
}

TEST_F(BufferedLogEnvTest, DatabaseReopensWithEveryWrite) {
  leveldb::Options o;
  o.env = &env_;
  o.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(o, "db", &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), "k" + std::to_string(i), "v").ok());
  }
  db.reset();  // closes without syncing, as the state database always does
  ASSERT_TRUE(leveldb::DB::Open(o, "db", &raw).ok());
  db.reset(raw);
  std::string v;
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(db->Get(leveldb::ReadOptions(), "k" + std::to_string(i), &v).ok()) << i;
  }
}

}  // namespace
}  // namespace arbiter::kv
