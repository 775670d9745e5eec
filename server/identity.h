// What a member remembers about the cluster it belongs to: the cluster ID,
// its own member ID, and every peer's name and peer URLs as of the
// bootstrap. Written once, when the member first starts on an empty data
// dir; read on every later start instead of the --initial-cluster flags, as
// etcd does, so a restarted member rejoins the cluster it was part of even
// if its flags changed.
//
// File: <data-dir>/member/identity, text, one record per line:
//   format 1
//   cluster <hex id>
//   member <hex id>
//   peer <hex id> <name> <url>[,<url>...]
// It is written to a temporary file, fsynced and renamed into place (and the
// directory fsynced), so a crash leaves either no file or a whole one.
//
// Thread safety: values and functions without shared state.
#ifndef ARBITER_SERVER_IDENTITY_H_
#define ARBITER_SERVER_IDENTITY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/config.h"

namespace arbiter::server {

struct PeerInfo {
  std::string name;
  std::vector<Url> peer_urls;
  bool operator==(const PeerInfo& o) const = default;
};

struct MemberIdentity {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  // Every member of the cluster at bootstrap, this one included.
  std::map<uint64_t, PeerInfo> peers;
  bool operator==(const MemberIdentity& o) const = default;
};

// The identity a new member derives from its flags.
// REQUIRES: config.Validate() is OK.
MemberIdentity IdentityFromConfig(const ServerConfig& config);

// nullopt if member_dir holds no identity file. Errors: DataLoss naming the
// file and line when it does not parse.
absl::StatusOr<std::optional<MemberIdentity>> LoadIdentity(const std::string& member_dir);
absl::Status SaveIdentity(const std::string& member_dir, const MemberIdentity& identity);

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_IDENTITY_H_
