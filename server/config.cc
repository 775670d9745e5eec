#include "server/config.h"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace arbiter::server {
namespace {

constexpr uint32_t kMaxElectionMs = 50000;

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

uint64_t FirstEightBytesBigEndian(const unsigned char* digest) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];
  return v;
}

std::string JoinUrls(const std::vector<Url>& urls) {
  return absl::StrJoin(urls, ",",
                       [](std::string* out, const Url& u) { out->append(u.ToString()); });
}

}  // namespace

std::string Url::ToString() const { return absl::StrCat(scheme, "://", HostPort()); }
std::string Url::HostPort() const { return absl::StrCat(host, ":", port); }

absl::StatusOr<Url> ParseUrl(absl::string_view in) {
  absl::string_view s = absl::StripAsciiWhitespace(in);
  size_t sep = s.find("://");
  Url u;
  u.scheme = std::string(sep == absl::string_view::npos ? "" : s.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https" && u.scheme != "unix" && u.scheme != "unixs") {
    return Invalid(absl::StrCat("URL scheme must be http, https, unix, or unixs: ", s));
  }
  if (u.scheme == "unix" || u.scheme == "unixs") {
    return Invalid(absl::StrCat("unix socket URLs are not supported: ", s));
  }
  absl::string_view rest = s.substr(sep + 3);
  size_t slash = rest.find('/');
  if (slash != absl::string_view::npos) {
    return Invalid(absl::StrCat("URL must not contain a path: ", s));
  }
  // host:port, host may be [v6].
  size_t colon;
  if (absl::StartsWith(rest, "[")) {
    size_t close = rest.find(']');
    colon = close == absl::string_view::npos ? absl::string_view::npos : close + 1;
    if (colon >= rest.size() || rest[colon] != ':') colon = absl::string_view::npos;
  } else {
    colon = rest.rfind(':');
    if (colon != absl::string_view::npos &&
        rest.substr(0, colon).find(':') != absl::string_view::npos) {
      colon = absl::string_view::npos;  // a bare IPv6 address needs brackets
    }
  }
  if (colon == absl::string_view::npos) {
    return Invalid(absl::StrCat("URL address does not have the form \"host:port\": ", s));
  }
  u.host = std::string(rest.substr(0, colon));
  absl::string_view port = rest.substr(colon + 1);
  int p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (u.host.empty() || port.empty() || ec != std::errc() || ptr != port.data() + port.size() ||
      p < 0 || p > 65535) {
    return Invalid(absl::StrCat("URL address does not have the form \"host:port\": ", s));
  }
  u.port = p;
  return u;
}

absl::StatusOr<std::vector<Url>> ParseUrls(absl::string_view s) {
  std::vector<Url> out;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    auto u = ParseUrl(part);
    if (!u.ok()) return u.status();
    out.push_back(*u);
  }
  if (out.empty()) return Invalid("no valid URLs given");
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::map<std::string, std::vector<Url>>> ParseInitialCluster(absl::string_view s) {
  std::map<std::string, std::vector<std::string>> raw;
  for (absl::string_view item : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    raw[kv.first].push_back(kv.second);
  }
  std::map<std::string, std::vector<Url>> out;
  for (const auto& [name, urls] : raw) {
    auto parsed = ParseUrls(absl::StrJoin(urls, ","));
    if (!parsed.ok()) return parsed.status();
    out[name] = *parsed;
  }
  return out;
}

std::string FormatInitialCluster(const std::map<std::string, std::vector<Url>>& cluster) {
  std::vector<std::string> pairs;
  for (const auto& [name, urls] : cluster) {
    for (const Url& u : urls) pairs.push_back(absl::StrCat(name, "=", u.ToString()));
  }
  return absl::StrJoin(pairs, ",");
}

ServerConfig ServerConfig::Defaults() {
  ServerConfig c;
  c.listen_client_urls = {*ParseUrl("http://localhost:2379")};
  c.advertise_client_urls = c.listen_client_urls;
  c.listen_peer_urls = {*ParseUrl("http://localhost:2380")};
  c.initial_advertise_peer_urls = c.listen_peer_urls;
  c.initial_cluster[c.name] = c.initial_advertise_peer_urls;
  return c;
}

absl::Status ServerConfig::Validate() const {
  if (heartbeat_interval_ms == 0) {
    return Invalid(
        absl::StrFormat("--heartbeat-interval must be >0 (set to %dms)", heartbeat_interval_ms));
  }
  if (election_timeout_ms == 0) {
    return Invalid(
        absl::StrFormat("--election-timeout must be >0 (set to %dms)", election_timeout_ms));
  }
  if (5 * static_cast<uint64_t>(heartbeat_interval_ms) > election_timeout_ms) {
    return Invalid(absl::StrFormat(
        "--election-timeout[%dms] should be at least as 5 times as --heartbeat-interval[%dms]",
        election_timeout_ms, heartbeat_interval_ms));
  }
  if (election_timeout_ms > kMaxElectionMs) {
    return Invalid(
        absl::StrFormat("--election-timeout[%dms] is too long, and should be set less than %dms",
                        election_timeout_ms, kMaxElectionMs));
  }
  if (snapshot_count == 0) return Invalid("--snapshot-count must be >0");
  if (name.empty()) return Invalid("--name must not be empty");
  if (listen_client_urls.empty() || listen_peer_urls.empty() || advertise_client_urls.empty() ||
      initial_advertise_peer_urls.empty()) {
    return Invalid("no valid URLs given");
  }
  if (initial_cluster_token.empty()) return Invalid("--initial-cluster-token must not be empty");

  auto self = initial_cluster.find(name);
  if (self == initial_cluster.end()) {
    return Invalid(absl::StrFormat(
        "couldn't find local name \"%s\" in the initial cluster configuration", name));
  }
  // This member's entry in --initial-cluster and its advertised peer URLs
  // must be the same set: other members will dial what the cluster lists.
  for (const Url& u : self->second) {
    if (std::find(initial_advertise_peer_urls.begin(), initial_advertise_peer_urls.end(), u) ==
        initial_advertise_peer_urls.end()) {
      return Invalid(absl::StrFormat(
          "--initial-cluster has %s=%s but missing from --initial-advertise-peer-urls=%s", name,
          u.ToString(), JoinUrls(initial_advertise_peer_urls)));
    }
  }
  for (const Url& u : initial_advertise_peer_urls) {
    if (std::find(self->second.begin(), self->second.end(), u) == self->second.end()) {
      return Invalid(absl::StrFormat(
          "--initial-advertise-peer-urls has %s=%s but missing from --initial-cluster=%s", name,
          u.ToString(), FormatInitialCluster(initial_cluster)));
    }
  }
  // Every member needs a distinct, non-zero ID (zero means "none" in raft).
  std::map<uint64_t, std::string> ids;
  for (const auto& [member, urls] : initial_cluster) {
    const uint64_t id = ComputeMemberId(urls, initial_cluster_token);
    if (id == 0) return Invalid(absl::StrFormat("cannot use %x as member id", id));
    auto [it, inserted] = ids.emplace(id, member);
    if (!inserted) {
      return Invalid(absl::StrFormat("member exists with identical ID %x (%s and %s)", id,
                                     it->second, member));
    }
  }
  return absl::OkStatus();
}

uint64_t ComputeMemberId(const std::vector<Url>& peer_urls, absl::string_view cluster_token) {
  std::vector<std::string> urls;
  for (const Url& u : peer_urls) urls.push_back(u.ToString());
  std::sort(urls.begin(), urls.end());
  std::string b = absl::StrCat(absl::StrJoin(urls, ""), cluster_token);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(b.data()), b.size(), digest);
  return FirstEightBytesBigEndian(digest);
}

uint64_t ComputeClusterId(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::string b;
  for (uint64_t id : member_ids) {
    for (int shift = 56; shift >= 0; shift -= 8) b.push_back(static_cast<char>(id >> shift));
  }
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(b.data()), b.size(), digest);
  return FirstEightBytesBigEndian(digest);
}

absl::Status ParseConfigFile(absl::string_view contents,
                             std::map<std::string, std::string>* flags) {
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_no;
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    size_t colon = l.find(':');
    if (colon == absl::string_view::npos) {
      return Invalid(
          absl::StrFormat("config file line %d: expected \"key: value\": %s", line_no, l));
    }
    std::string key(absl::StripAsciiWhitespace(l.substr(0, colon)));
    absl::string_view value = absl::StripAsciiWhitespace(l.substr(colon + 1));
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    (*flags)[key] = std::string(value);
  }
  return absl::OkStatus();
}

const std::vector<std::string>& ServerFlagNames() {
  static const std::vector<std::string>* const kNames =
      new std::vector<std::string>{"name",
                                   "data-dir",
                                   "listen-client-urls",
                                   "advertise-client-urls",
                                   "listen-peer-urls",
                                   "initial-advertise-peer-urls",
                                   "initial-cluster",
                                   "initial-cluster-state",
                                   "initial-cluster-token",
                                   "heartbeat-interval",
                                   "election-timeout",
                                   "snapshot-count",
                                   "experimental-snapshot-catchup-entries"};
  return *kNames;
}

absl::StatusOr<ServerConfig> ConfigFromFlags(const std::map<std::string, std::string>& flags) {
  const std::vector<std::string>& known = ServerFlagNames();
  for (const auto& [k, v] : flags) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      return Invalid(absl::StrCat("unknown flag: --", k));
    }
  }
  ServerConfig c = ServerConfig::Defaults();
  auto get = [&](const char* k) -> const std::string* {
    auto it = flags.find(k);
    return it == flags.end() ? nullptr : &it->second;
  };
  if (const std::string* v = get("name")) c.name = *v;
  if (const std::string* v = get("data-dir")) c.data_dir = *v;
  struct UrlFlag {
    const char* name;
    std::vector<Url>* field;
  };
  for (const UrlFlag& f :
       {UrlFlag{"listen-client-urls", &c.listen_client_urls},
        UrlFlag{"advertise-client-urls", &c.advertise_client_urls},
        UrlFlag{"listen-peer-urls", &c.listen_peer_urls},
        UrlFlag{"initial-advertise-peer-urls", &c.initial_advertise_peer_urls}}) {
    if (const std::string* v = get(f.name)) {
      auto urls = ParseUrls(*v);
      if (!urls.ok()) return Invalid(absl::StrCat("--", f.name, ": ", urls.status().message()));
      *f.field = *urls;
    }
  }
  if (const std::string* v = get("initial-cluster")) {
    auto cl = ParseInitialCluster(*v);
    if (!cl.ok()) return Invalid(absl::StrCat("--initial-cluster: ", cl.status().message()));
    c.initial_cluster = *cl;
  } else {
    // As etcd: the default cluster is this member alone, at its advertised
    // peer URLs.
    c.initial_cluster.clear();
    c.initial_cluster[c.name] = c.initial_advertise_peer_urls;
  }
  if (const std::string* v = get("initial-cluster-state")) {
    if (*v == "new") {
      c.initial_cluster_state = ClusterState::kNew;
    } else if (*v == "existing") {
      c.initial_cluster_state = ClusterState::kExisting;
    } else {
      return Invalid(absl::StrFormat(
          "invalid value \"%s\" for flag -initial-cluster-state: valid values are \"new\" or "
          "\"existing\"",
          *v));
    }
  }
  if (const std::string* v = get("initial-cluster-token")) c.initial_cluster_token = *v;
  struct NumFlag {
    const char* name;
    uint64_t* out;
    uint64_t max;
  };
  uint64_t hb = c.heartbeat_interval_ms, el = c.election_timeout_ms, sc = c.snapshot_count,
           ce = c.snapshot_catchup_entries;
  for (const NumFlag& f :
       {NumFlag{"heartbeat-interval", &hb, UINT32_MAX},
        NumFlag{"election-timeout", &el, UINT32_MAX}, NumFlag{"snapshot-count", &sc, UINT64_MAX},
        NumFlag{"experimental-snapshot-catchup-entries", &ce, UINT64_MAX}}) {
    if (const std::string* v = get(f.name)) {
      uint64_t n;
      if (!absl::SimpleAtoi(*v, &n) || n > f.max) {
        return Invalid(
            absl::StrFormat("invalid value \"%s\" for flag -%s: parse error", *v, f.name));
      }
      *f.out = n;
    }
  }
  c.heartbeat_interval_ms = static_cast<uint32_t>(hb);
  c.election_timeout_ms = static_cast<uint32_t>(el);
  c.snapshot_count = sc;
  c.snapshot_catchup_entries = ce;
  return c;
}

}  // namespace arbiter::server
