#include "kvstore/buffered_log_env.h"

#include <memory>
#include <utility>

namespace arbiter::kv {
namespace {

class BufferedLogFile final : public leveldb::WritableFile {
 public:
  BufferedLogFile(BufferedLogEnv* env, leveldb::WritableFile* base, bool gather)
      : env_(env), base_(base), gather_(gather) {}
  ~BufferedLogFile() override {
    // LevelDB deletes its current log without closing it when the database
    // closes: what was gathered goes to the base file, which writes it out
    // as it is deleted.
    if (!closed_) (void)Spill();
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    if (!gather_) return base_->Append(data);
    buf_.append(data.data(), data.size());
    if (buf_.size() >= BufferedLogEnv::kPieceBytes) return Spill();
    return leveldb::Status::OK();
  }

  // LevelDB flushes after every record; that is what is saved here.
  leveldb::Status Flush() override { return gather_ ? leveldb::Status::OK() : base_->Flush(); }

  leveldb::Status Sync() override {
    if (leveldb::Status s = Spill(); !s.ok()) return s;
    if (leveldb::Status s = base_->Flush(); !s.ok()) return s;
    return base_->Sync();
  }

  // LevelDB closes a log when it moves to a new one; the records in it stay
  // only there until their memtable reaches a table file, so the file is
  // handed to the Env, open, to be synced (see the header).
  leveldb::Status Close() override {
    leveldb::Status s = Spill();
    if (s.ok()) s = base_->Flush();
    closed_ = true;
    if (!s.ok()) {
      (void)base_->Close();
      return s;
    }
    env_->AddClosedLog(std::move(base_));
    return leveldb::Status::OK();
  }

 private:
  leveldb::Status Spill() {
    if (buf_.empty()) return leveldb::Status::OK();
    leveldb::Status s = base_->Append(buf_);
    buf_.clear();
    return s;
  }

  BufferedLogEnv* const env_;
  std::unique_ptr<leveldb::WritableFile> base_;
  const bool gather_;
  std::string buf_;
  bool closed_ = false;
};

}  // namespace

BufferedLogEnv::~BufferedLogEnv() {
  absl::MutexLock l(&mu_);
  for (auto& f : closed_) (void)f->Close();
}

void BufferedLogEnv::AddClosedLog(std::unique_ptr<leveldb::WritableFile> file) {
  std::unique_ptr<leveldb::WritableFile> oldest;
  {
    absl::MutexLock l(&mu_);
    closed_.push_back(std::move(file));
    if (closed_.size() <= kMaxClosedLogs) return;
    oldest = std::move(closed_.front());
    closed_.pop_front();
  }
  // A failure here is not reported to anyone; it reappears as data that a
  // power loss took, which the member's startup check refuses.
  if (oldest->Sync().ok()) (void)oldest->Close();
}

leveldb::Status BufferedLogEnv::SyncClosedLogs() {
  absl::MutexLock l(&mu_);
  while (!closed_.empty()) {
    if (leveldb::Status s = closed_.front()->Sync(); !s.ok()) return s;
    (void)closed_.front()->Close();
    closed_.pop_front();
  }
  return leveldb::Status::OK();
}

size_t BufferedLogEnv::closed_logs() const {
  absl::MutexLock l(&mu_);
  return closed_.size();
}

bool BufferedLogEnv::IsLogFileName(const std::string& fname) {
  const size_t slash = fname.rfind('/');
  const size_t begin = slash == std::string::npos ? 0 : slash + 1;
  if (fname.size() <= begin + 4 || fname.compare(fname.size() - 4, 4, ".log") != 0) return false;
  for (size_t i = begin; i + 4 < fname.size(); ++i) {
    if (fname[i] < '0' || fname[i] > '9') return false;
  }
  return true;
}

leveldb::Status BufferedLogEnv::NewWritableFile(const std::string& fname,
                                                leveldb::WritableFile** result) {
  leveldb::Status s = target()->NewWritableFile(fname, result);
  if (s.ok() && IsLogFileName(fname)) *result = new BufferedLogFile(this, *result, gather_);
  return s;
}

}  // namespace arbiter::kv
