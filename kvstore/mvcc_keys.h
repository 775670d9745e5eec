// The on-disk layout of the MVCC state database (KvStateMachine, one LevelDB
// database per member, separate from the raft log database of keys.h), in
// one place. Anything that reads or writes that database goes through these
// helpers, so the format is defined here and nowhere else.
//
// Keys (ASCII prefixes, then big-endian numbers so that LevelDB's bytewise
// order is numeric order):
//
//   "m/format"             -> ASCII decimal format version; currently "1".
//                             Written with the first batch; Open() refuses a
//                             database with another version, or one that
//                             holds data but no version.
//   "m/applied"            -> BE64: the raft index of the last command
//                             applied. Written in the batch of every command.
//   "m/rev"                -> BE64: the current store revision (1 on an
//                             empty store). Written by every batch that
//                             creates a revision.
//   "m/compact"            -> BE64 of (compacted revision + 1): 0 means never
//                             compacted (etcd's -1). Written by the batch of
//                             a Compaction, together with the deletes of the
//                             records it removes.
//   "r/" + BE64(main) + BE64(sub)
//                          -> mvccpb.KeyValue, protobuf-serialized: the key
//                             as written at revision (main, sub). A put stores
//                             the whole KeyValue (create_revision >= 1,
//                             version >= 1). A delete stores a tombstone:
//                             only key and mod_revision set (version 0), so
//                             that history reads can produce DELETE events.
//                             Revisions are never negative, so the big-endian
//                             encoding sorts records in revision order.
//   "l/" + BE64(lease ID)  -> BE64(granted TTL) + BE64(remaining TTL from the
//                             last checkpoint, 0 if none): one record per
//                             live lease. The keys attached to a lease are not
//                             stored here; they are the live keys whose newest
//                             KeyValue names the lease.
//   "c/" + BE64(member ID) -> arbiter.internalpb.MemberAttributes,
//                             protobuf-serialized: the replicated member
//                             table (removed members stay, marked removed).
//
// Invariants (checked by Open; a violation is DataLoss naming the key):
//   - every "r/" record's mod_revision equals its key's main revision, and
//     its main revision is <= "m/rev";
//   - per key, the records form a valid history (a tombstone only after a
//     put, create/version consistent with the previous record);
//   - compacted revision <= current revision.
//
// Atomicity: the writes of one applied command and "m/applied" are ONE
// LevelDB WriteBatch (written without fsync: the raft log is synced, and
// after a crash the member replays the commands above "m/applied"). A
// Restore is one batch too (every old record deleted, the snapshot's written).
//
// Thread safety: constants and pure functions; safe from any thread.
#ifndef ARBITER_KVSTORE_MVCC_KEYS_H_
#define ARBITER_KVSTORE_MVCC_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "kvstore/revision.h"

namespace arbiter::kv::mvcc_keys {

inline constexpr char kFormatVersionKey[] = "m/format";
inline constexpr char kFormatVersion[] = "1";
inline constexpr char kAppliedKey[] = "m/applied";
inline constexpr char kRevisionKey[] = "m/rev";
inline constexpr char kCompactKey[] = "m/compact";
inline constexpr char kMetaPrefix[] = "m/";
inline constexpr char kRevisionPrefix[] = "r/";
inline constexpr char kLeasePrefix[] = "l/";
inline constexpr char kMemberPrefix[] = "c/";
inline constexpr size_t kPrefixLen = 2;
inline constexpr size_t kRevisionKeyLen = kPrefixLen + 16;
inline constexpr size_t kIdKeyLen = kPrefixLen + 8;

inline void AppendBE64(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 8);
}

// REQUIRES: in.size() >= 8.
inline uint64_t DecodeBE64(absl::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

inline std::string EncodeBE64(uint64_t v) {
  std::string out;
  AppendBE64(&out, v);
  return out;
}

// The 8-byte value of a meta key, or nullopt if it is not 8 bytes.
inline std::optional<uint64_t> DecodeMetaU64(absl::string_view value) {
  if (value.size() != 8) return std::nullopt;
  return DecodeBE64(value);
}

// "r/" + BE64(main) + BE64(sub). REQUIRES: rev.main >= 0, rev.sub >= 0.
inline std::string RevisionKey(Revision rev) {
  std::string key(kRevisionPrefix, kPrefixLen);
  key.reserve(kRevisionKeyLen);
  AppendBE64(&key, static_cast<uint64_t>(rev.main));
  AppendBE64(&key, static_cast<uint64_t>(rev.sub));
  return key;
}

// Writes the key of rev into a caller-owned buffer (the hot paths reuse one).
inline void RevisionKeyInto(Revision rev, std::string* key) {
  key->assign(kRevisionPrefix, kPrefixLen);
  AppendBE64(key, static_cast<uint64_t>(rev.main));
  AppendBE64(key, static_cast<uint64_t>(rev.sub));
}

inline bool IsRevisionKey(absl::string_view key) {
  return key.size() == kRevisionKeyLen && key.substr(0, kPrefixLen) == kRevisionPrefix;
}

// The revision a record key names, or nullopt if it is not one (or encodes
// a negative number).
inline std::optional<Revision> DecodeRevisionKey(absl::string_view key) {
  if (!IsRevisionKey(key)) return std::nullopt;
  const uint64_t main = DecodeBE64(key.substr(kPrefixLen));
  const uint64_t sub = DecodeBE64(key.substr(kPrefixLen + 8));
  if (main > static_cast<uint64_t>(INT64_MAX) || sub > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return Revision{static_cast<int64_t>(main), static_cast<int64_t>(sub)};
}

// "l/" + BE64(id), "c/" + BE64(id).
inline std::string LeaseKey(int64_t id) {
  std::string key(kLeasePrefix, kPrefixLen);
  AppendBE64(&key, static_cast<uint64_t>(id));
  return key;
}
inline std::string MemberKey(uint64_t id) {
  std::string key(kMemberPrefix, kPrefixLen);
  AppendBE64(&key, id);
  return key;
}

// The ID in a lease or member key with the given prefix, or nullopt.
inline std::optional<uint64_t> DecodeIdKey(absl::string_view key, absl::string_view prefix) {
  if (key.size() != kIdKeyLen || key.substr(0, kPrefixLen) != prefix) return std::nullopt;
  return DecodeBE64(key.substr(kPrefixLen));
}

// A lease record's value: granted TTL, then remaining TTL.
inline std::string EncodeLeaseValue(int64_t ttl, int64_t remaining_ttl) {
  std::string v;
  AppendBE64(&v, static_cast<uint64_t>(ttl));
  AppendBE64(&v, static_cast<uint64_t>(remaining_ttl));
  return v;
}
inline bool DecodeLeaseValue(absl::string_view v, int64_t* ttl, int64_t* remaining_ttl) {
  if (v.size() != 16) return false;
  *ttl = static_cast<int64_t>(DecodeBE64(v));
  *remaining_ttl = static_cast<int64_t>(DecodeBE64(v.substr(8)));
  return true;
}

// A key as it should appear in error messages: "r/<main>.<sub>",
// "l/<id>", "c/<id>", anything else C-escaped.
inline std::string DescribeKey(absl::string_view key) {
  if (std::optional<Revision> rev = DecodeRevisionKey(key)) {
    return absl::StrCat(kRevisionPrefix, rev->main, ".", rev->sub);
  }
  if (std::optional<uint64_t> id = DecodeIdKey(key, kLeasePrefix)) {
    return absl::StrCat(kLeasePrefix, *id);
  }
  if (std::optional<uint64_t> id = DecodeIdKey(key, kMemberPrefix)) {
    return absl::StrCat(kMemberPrefix, *id);
  }
  return absl::StrCat("\"", absl::CEscape(key), "\"");
}

}  // namespace arbiter::kv::mvcc_keys

#endif  // ARBITER_KVSTORE_MVCC_KEYS_H_
