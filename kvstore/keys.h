// The on-disk layout of the raft log database (RaftLogStore, one LevelDB
// database per member), in one place, in the manner of LogCabin's
// SegmentedLog.h. Anything that reads or writes that database goes through
// these helpers, so the format is defined here and nowhere else.
//
// Keys (all ASCII prefixes, so `ldb dump` output is readable):
//
//   "meta/format"      -> ASCII decimal format version: "2" since entries
//                         may be kept behind the snapshot ("meta/logstart");
//                         "1" before, which reads the same (it never has
//                         that key). Written, synced, when the database is
//                         created, and set to "2" in the batch that first
//                         writes "meta/logstart" (so a binary that knows only
//                         "1" refuses the database instead of calling the
//                         key damage). Open() refuses a database without it
//                         (unless the database is completely empty) or with
//                         another version.
//   "meta/hardstate"   -> raftpb::HardState, protobuf-serialized. Absent until
//                         the first non-empty hard state is saved.
//   "meta/snapshot"    -> raftpb::SnapshotMetadata, protobuf-serialized: the
//                         index, term and membership of the latest snapshot.
//                         Absent until the first snapshot (or Bootstrap).
//   "meta/logstart"    -> raftpb::Entry with only an index and a term: the
//                         last entry discarded from the log, when entries
//                         at or before the snapshot's index are kept behind
//                         it (so a follower that lags a little catches up
//                         from the log instead of needing the snapshot).
//                         Absent when the log starts right after the
//                         snapshot.
//   "snap/data"        -> the latest snapshot's data (the application's
//                         bytes, verbatim). Present exactly when
//                         "meta/snapshot" is; kept under its own key so reading
//                         the metadata never loads the (possibly large) data.
//   "log/" + BE64(i)   -> raftpb::Entry with index i, protobuf-serialized.
//                         BE64 is the 8-byte big-endian encoding of i, so
//                         LevelDB's bytewise order is index order and an
//                         iterator walks the log from first to last entry.
//
// Invariants (checked by RaftLogStore::Open; any violation is DataLoss):
//   - log keys are contiguous, and the first is log start index + 1, where
//     the log start is "meta/logstart" if present, else the snapshot (index
//     0 when there is none); every entry's own index equals its key's;
//   - a log start before the snapshot has a snapshot, and the log holds the
//     snapshot's index with the snapshot's term;
//   - entry terms never decrease, and none is below the log start's term
//     (so none after the snapshot is below the snapshot's);
//   - snapshot index <= hard state commit <= last index (when a hard state
//     is present), and hard state term >= last entry term.
//
// Atomicity: every mutation of the log, hard state and snapshot is a single
// LevelDB WriteBatch, so after a crash either all of a Save is visible or
// none of it (LevelDB replays its write-ahead log batch by batch).
//
// Thread safety: constants and pure functions; safe from any thread.
#ifndef ARBITER_KVSTORE_KEYS_H_
#define ARBITER_KVSTORE_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace arbiter::kv::keys {

inline constexpr char kFormatVersionKey[] = "meta/format";
inline constexpr char kFormatVersion[] = "2";
// Still read: the same layout without "meta/logstart".
inline constexpr char kFormatVersionWithoutLogStart[] = "1";
inline constexpr char kHardStateKey[] = "meta/hardstate";
inline constexpr char kSnapshotMetaKey[] = "meta/snapshot";
inline constexpr char kLogStartKey[] = "meta/logstart";
inline constexpr char kSnapshotDataKey[] = "snap/data";
inline constexpr char kLogPrefix[] = "log/";
inline constexpr size_t kLogPrefixLen = sizeof(kLogPrefix) - 1;
inline constexpr size_t kLogKeyLen = kLogPrefixLen + 8;

// "log/" + big-endian index.
inline std::string LogKey(uint64_t index) {
  std::string key(kLogPrefix, kLogPrefixLen);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((index >> shift) & 0xff));
  }
  return key;
}

inline bool IsLogKey(absl::string_view key) {
  return key.size() >= kLogPrefixLen && key.substr(0, kLogPrefixLen) == kLogPrefix;
}

// The index a log key names, or nullopt if key is not a well-formed log key.
inline std::optional<uint64_t> DecodeLogKey(absl::string_view key) {
  if (key.size() != kLogKeyLen || !IsLogKey(key)) return std::nullopt;
  uint64_t index = 0;
  for (size_t i = kLogPrefixLen; i < kLogKeyLen; ++i) {
    index = (index << 8) | static_cast<unsigned char>(key[i]);
  }
  return index;
}

// A key as it should appear in error messages: log keys as "log/<index>",
// anything else C-escaped.
inline std::string DescribeKey(absl::string_view key) {
  if (std::optional<uint64_t> index = DecodeLogKey(key)) {
    return std::string(kLogPrefix) + std::to_string(*index);
  }
  return "\"" + absl::CEscape(key) + "\"";
}

}  // namespace arbiter::kv::keys

#endif  // ARBITER_KVSTORE_KEYS_H_
