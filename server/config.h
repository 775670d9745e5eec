// The configuration of an arbiterd member, named and formatted like etcd's
// flags where they mean the same (--name, --data-dir, --initial-cluster,
// URLs such as http://127.0.0.1:2380, milliseconds), and its validation.
// Member and cluster IDs are derived from the peer URLs and the cluster
// token exactly as etcd derives them, so the same flags give the same IDs.
//
// Thread safety: values and pure functions.
#ifndef ARBITER_SERVER_CONFIG_H_
#define ARBITER_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace arbiter::server {

// A URL of the form scheme://host:port (no path), as etcd accepts them.
struct Url {
  std::string scheme;  // http or https (unix and unixs are refused: not supported)
  std::string host;    // a name, an IPv4 address, or [an IPv6 address]
  int port = 0;

  std::string ToString() const;  // "http://127.0.0.1:2380"
  std::string HostPort() const;  // "127.0.0.1:2380"
  bool operator==(const Url& o) const = default;
  bool operator<(const Url& o) const { return ToString() < o.ToString(); }
};

// Errors use etcd's wording, e.g. `URL address does not have the form
// "host:port": http://x`.
absl::StatusOr<Url> ParseUrl(absl::string_view s);
// A comma-separated list; at least one. Returned sorted.
absl::StatusOr<std::vector<Url>> ParseUrls(absl::string_view s);
// "name1=url1,name2=url2,name1=url3": each member's peer URLs, sorted.
absl::StatusOr<std::map<std::string, std::vector<Url>>> ParseInitialCluster(absl::string_view s);
std::string FormatInitialCluster(const std::map<std::string, std::vector<Url>>& cluster);

enum class ClusterState { kNew, kExisting };

struct ServerConfig {
  std::string name = "default";
  // Empty means "<name>.etcd", as etcd does.
  std::string data_dir;
  std::vector<Url> listen_client_urls;
  std::vector<Url> advertise_client_urls;
  std::vector<Url> listen_peer_urls;
  std::vector<Url> initial_advertise_peer_urls;
  std::map<std::string, std::vector<Url>> initial_cluster;
  ClusterState initial_cluster_state = ClusterState::kNew;
  std::string initial_cluster_token = "etcd-cluster";
  uint32_t heartbeat_interval_ms = 100;
  uint32_t election_timeout_ms = 1000;
  uint64_t snapshot_count = 100000;
  // Entries kept in the raft log behind each snapshot, so that a follower
  // lagging by fewer catches up without a snapshot (etcd 3.5's
  // --experimental-snapshot-catchup-entries; 3.4 keeps the same 5,000).
  uint64_t snapshot_catchup_entries = 5000;

  // etcd's defaults: localhost:2379 for clients, localhost:2380 for peers,
  // initial cluster "<name>=<initial advertise peer urls>".
  static ServerConfig Defaults();

  std::string DataDir() const { return data_dir.empty() ? name + ".etcd" : data_dir; }
  int ElectionTicks() const {
    return static_cast<int>(election_timeout_ms / heartbeat_interval_ms);
  }

  // Checks the values and that the initial cluster is consistent with this
  // member's name and advertised peer URLs. Errors are InvalidArgument with
  // etcd's messages (e.g. "--election-timeout[400ms] should be at least as 5
  // times as --heartbeat-interval[100ms]").
  absl::Status Validate() const;
};

// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the sorted
// peer URLs concatenated, followed by the cluster token.
uint64_t ComputeMemberId(const std::vector<Url>& peer_urls, absl::string_view cluster_token);
// etcd's cluster ID: SHA-1 over the sorted member IDs (8 bytes big-endian
// each), first 8 bytes.
uint64_t ComputeClusterId(std::vector<uint64_t> member_ids);

// Applies a flat YAML config file (etcd's format: "key: value" lines whose
// keys are the flag names, e.g. "initial-cluster: a=http://...") onto
// flags, a map from flag name to value. Comments (#) and blank lines are
// skipped; quotes around values are removed.
// Errors: InvalidArgument naming the line.
absl::Status ParseConfigFile(absl::string_view contents, std::map<std::string, std::string>* flags);

// The flag names ConfigFromFlags knows (without dashes), in help order.
const std::vector<std::string>& ServerFlagNames();

// Builds a config from flag values (flag name without dashes -> value);
// unset flags keep their defaults.
absl::StatusOr<ServerConfig> ConfigFromFlags(const std::map<std::string, std::string>& flags);

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_CONFIG_H_
