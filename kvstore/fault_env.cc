#include "kvstore/fault_env.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "leveldb/status.h"

namespace arbiter::kv {
namespace {

// A WritableFile that reports its synced size to the FaultEnv and applies
// its switches. pos_ counts the bytes handed to the base file.
class FaultWritableFile final : public leveldb::WritableFile {
 public:
  FaultWritableFile(FaultEnv* env, std::string fname, std::unique_ptr<leveldb::WritableFile> base,
                    uint64_t pos)
      : env_(env), fname_(std::move(fname)), base_(std::move(base)), pos_(pos) {}

  leveldb::Status Append(const leveldb::Slice& data) override {
    env_->WaitWhileHeld();
    if (env_->no_space()) return leveldb::Status::IOError(fname_, "No space left on device");
    if (env_->TakeTearNextWrite()) {
      // Half the bytes reach the file, as when power fails mid-write.
      const leveldb::Slice half(data.data(), data.size() / 2);
      leveldb::Status s = base_->Append(half);
      if (s.ok()) pos_ += half.size();
      return leveldb::Status::IOError(fname_, "torn write (injected)");
    }
    leveldb::Status s = base_->Append(data);
    if (s.ok()) pos_ += data.size();
    return s;
  }
  leveldb::Status Close() override { return base_->Close(); }
  leveldb::Status Flush() override { return base_->Flush(); }
  leveldb::Status Sync() override {
    if (env_->sync_error()) {
      return leveldb::Status::IOError(fname_, "Input/output error (injected EIO on fsync)");
    }
    leveldb::Status s = base_->Sync();
    if (s.ok()) env_->OnSynced(fname_, pos_);
    return s;
  }

 private:
  FaultEnv* const env_;
  const std::string fname_;
  const std::unique_ptr<leveldb::WritableFile> base_;
  uint64_t pos_;
};

}  // namespace

FaultEnv::FaultEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

void FaultEnv::set_hold_writes(bool on) {
  absl::MutexLock lock(&hold_mu_);
  hold_ = on;
}

int FaultEnv::held_writes() const {
  absl::MutexLock lock(&hold_mu_);
  return held_;
}

void FaultEnv::WaitWhileHeld() {
  absl::MutexLock lock(&hold_mu_);
  if (!hold_) return;
  ++held_;
  hold_mu_.Await(absl::Condition(
      +[](bool* hold) { return !*hold; }, &hold_));
  --held_;
}

leveldb::Status FaultEnv::NewWritableFile(const std::string& fname,
                                          leveldb::WritableFile** result) {
  leveldb::WritableFile* base = nullptr;
  leveldb::Status s = target()->NewWritableFile(fname, &base);
  if (!s.ok()) return s;
  {
    // A new (or truncated) file: nothing of it is durable yet.
    absl::MutexLock lock(&mu_);
    synced_size_[fname] = 0;
  }
  *result = new FaultWritableFile(this, fname, std::unique_ptr<leveldb::WritableFile>(base), 0);
  return s;
}

leveldb::Status FaultEnv::NewAppendableFile(const std::string& fname,
                                            leveldb::WritableFile** result) {
  uint64_t size = 0;
  if (!target()->GetFileSize(fname, &size).ok()) size = 0;
  leveldb::WritableFile* base = nullptr;
  leveldb::Status s = target()->NewAppendableFile(fname, &base);
  if (!s.ok()) return s;
  {
    // What the file held before is taken as durable.
    absl::MutexLock lock(&mu_);
    if (synced_size_.find(fname) == synced_size_.end()) synced_size_[fname] = size;
  }
  *result = new FaultWritableFile(this, fname, std::unique_ptr<leveldb::WritableFile>(base), size);
  return s;
}

leveldb::Status FaultEnv::RemoveFile(const std::string& fname) {
  leveldb::Status s = target()->RemoveFile(fname);
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    synced_size_.erase(fname);
  }
  return s;
}

leveldb::Status FaultEnv::RenameFile(const std::string& src, const std::string& target_name) {
  leveldb::Status s = target()->RenameFile(src, target_name);
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    auto it = synced_size_.find(src);
    if (it != synced_size_.end()) {
      const uint64_t size = it->second;
      synced_size_.erase(it);
      synced_size_[target_name] = size;
    } else {
      // Renamed over by a file we do not track: forget the old contents.
      synced_size_.erase(target_name);
    }
  }
  return s;
}

void FaultEnv::OnSynced(const std::string& fname, uint64_t size) {
  absl::MutexLock lock(&mu_);
  auto it = synced_size_.find(fname);
  // A file removed (or renamed away) while still open is no longer tracked.
  if (it != synced_size_.end()) it->second = size;
}

leveldb::Status FaultEnv::DropUnsyncedData() {
  std::vector<std::pair<std::string, uint64_t>> files;
  {
    absl::MutexLock lock(&mu_);
    files.assign(synced_size_.begin(), synced_size_.end());
  }
  for (const auto& [fname, synced] : files) {
    // Removed behind our back (through the base Env): nothing to drop.
    if (!target()->FileExists(fname)) continue;
    uint64_t size = 0;
    leveldb::Status s = target()->GetFileSize(fname, &size);
    if (!s.ok()) return s;
    if (size <= synced) continue;
    // Read the durable prefix, then rewrite the file with only that (works
    // on any base Env, including the in-memory one, which has no truncate).
    std::string prefix;
    leveldb::SequentialFile* raw_in = nullptr;
    s = target()->NewSequentialFile(fname, &raw_in);
    if (!s.ok()) return s;
    std::unique_ptr<leveldb::SequentialFile> in(raw_in);
    std::vector<char> scratch(64 << 10);
    while (prefix.size() < synced) {
      leveldb::Slice got;
      s = in->Read(std::min<uint64_t>(scratch.size(), synced - prefix.size()), &got,
                   scratch.data());
      if (!s.ok()) return s;
      if (got.empty()) return leveldb::Status::IOError(fname, "short read of synced data");
      prefix.append(got.data(), got.size());
    }
    in.reset();
    leveldb::WritableFile* raw_out = nullptr;
    s = target()->NewWritableFile(fname, &raw_out);
    if (!s.ok()) return s;
    std::unique_ptr<leveldb::WritableFile> out(raw_out);
    s = out->Append(prefix);
    if (s.ok()) s = out->Sync();
    if (s.ok()) s = out->Close();
    if (!s.ok()) return s;
  }
  return leveldb::Status::OK();
}

}  // namespace arbiter::kv
