#include "kvstore/leveldb_check.h"

#include <algorithm>
#include <array>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "leveldb/env.h"
#include "leveldb/iterator.h"
#include "leveldb/options.h"
#include "leveldb/table.h"

namespace arbiter::kv {
namespace {

// doc/log_format.md.
constexpr size_t kBlockSize = 32768;
constexpr size_t kHeaderSize = 7;
constexpr uint8_t kZeroType = 0;
constexpr uint8_t kMaxRecordType = 4;  // kLastType

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

uint32_t DecodeFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) |
         (static_cast<uint32_t>(u[2]) << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

// Checks a file in log format; returns "" if sound (a torn tail is sound).
std::string CheckLogFormat(absl::string_view data) {
  size_t block_start = 0;
  while (block_start < data.size()) {
    const size_t block_end = std::min(block_start + kBlockSize, data.size());
    const bool last_block = block_end == data.size();
    size_t pos = block_start;
    // Fewer than kHeaderSize bytes left in a block are zero padding.
    while (block_end - pos >= kHeaderSize) {
      const char* header = data.data() + pos;
      const size_t length = static_cast<unsigned char>(header[4]) |
                            (static_cast<size_t>(static_cast<unsigned char>(header[5])) << 8);
      const uint8_t type = static_cast<uint8_t>(header[6]);
      if (type == kZeroType && length == 0) break;  // preallocated space: skip the block
      if (kHeaderSize + length > block_end - pos) {
        if (last_block) return "";  // torn tail: the record was never fully written
        return absl::StrCat("bad record length at offset ", pos);
      }
      const uint32_t want = DecodeFixed32(header);
      const uint32_t got = MaskCrc(Crc32c(0, absl::string_view(header + 6, 1 + length)));
      if (want != got) return absl::StrCat("checksum mismatch in the record at offset ", pos);
      if (type > kMaxRecordType) {
        return absl::StrCat("unknown record type ", type, " at offset ", pos);
      }
      pos += kHeaderSize + length;
    }
    block_start = block_end;
  }
  return "";
}

std::string CheckTable(leveldb::Env* env, const std::string& path) {
  uint64_t size = 0;
  leveldb::Status s = env->GetFileSize(path, &size);
  if (!s.ok()) return s.ToString();
  leveldb::RandomAccessFile* raw_file = nullptr;
  s = env->NewRandomAccessFile(path, &raw_file);
  if (!s.ok()) return s.ToString();
  std::unique_ptr<leveldb::RandomAccessFile> file(raw_file);
  leveldb::Options options;
  options.env = env;
  options.paranoid_checks = true;
  leveldb::Table* raw_table = nullptr;
  s = leveldb::Table::Open(options, file.get(), size, &raw_table);
  if (!s.ok()) return s.ToString();
  std::unique_ptr<leveldb::Table> table(raw_table);
  leveldb::ReadOptions read_options;
  read_options.verify_checksums = true;
  read_options.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(read_options));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
  }
  return it->status().ok() ? "" : it->status().ToString();
}

}  // namespace

uint32_t Crc32c(uint32_t crc, absl::string_view data) {
  crc = ~crc;
  for (unsigned char c : data) crc = kCrcTable[(crc ^ c) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::vector<std::string> CheckLevelDbFiles(leveldb::Env* env, const std::string& dir) {
  std::vector<std::string> problems;
  std::vector<std::string> children;
  if (!env->GetChildren(dir, &children).ok()) return problems;
  for (const std::string& name : children) {
    const std::string path = dir + "/" + name;
    std::string problem;
    if (absl::EndsWith(name, ".log") || absl::StartsWith(name, "MANIFEST-")) {
      std::string data;
      leveldb::Status s = leveldb::ReadFileToString(env, path, &data);
      problem = s.ok() ? CheckLogFormat(data) : s.ToString();
    } else if (absl::EndsWith(name, ".ldb") || absl::EndsWith(name, ".sst")) {
      problem = CheckTable(env, path);
    }
    if (!problem.empty()) problems.push_back(absl::StrCat(path, ": ", problem));
  }
  return problems;
}

}  // namespace arbiter::kv
