#include "server/identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace arbiter::server {
namespace {

constexpr char kFileName[] = "identity";

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

absl::Status WriteAndSync(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("open ", path));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = Errno(absl::StrCat("write ", path));
      close(fd);
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    absl::Status s = Errno(absl::StrCat("fsync ", path));
    close(fd);
    return s;
  }
  if (close(fd) != 0) return Errno(absl::StrCat("close ", path));
  return absl::OkStatus();
}

bool ParseHex(absl::string_view s, uint64_t* out) { return absl::SimpleHexAtoi(s, out); }

}  // namespace

MemberIdentity IdentityFromConfig(const ServerConfig& config) {
  MemberIdentity id;
  std::vector<uint64_t> ids;
  for (const auto& [name, urls] : config.initial_cluster) {
    const uint64_t mid = ComputeMemberId(urls, config.initial_cluster_token);
    id.peers[mid] = PeerInfo{name, urls};
    ids.push_back(mid);
    if (name == config.name) id.member_id = mid;
  }
  id.cluster_id = ComputeClusterId(ids);
  return id;
}

absl::StatusOr<std::optional<MemberIdentity>> LoadIdentity(const std::string& member_dir) {
  const std::string path = absl::StrCat(member_dir, "/", kFileName);
  std::ifstream in(path);
  if (!in) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return std::nullopt;
    return Errno(absl::StrCat("open ", path));
  }
  MemberIdentity id;
  std::string line;
  int line_no = 0;
  bool format_seen = false;
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrFormat("%s line %d: %s: %s", path, line_no, why, line));
  };
  while (std::getline(in, line)) {
    ++line_no;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.empty()) continue;
    if (f[0] == "format") {
      if (f.size() != 2 || f[1] != "1") return bad("unknown format");
      format_seen = true;
    } else if (f[0] == "cluster" && f.size() == 2) {
      if (!ParseHex(f[1], &id.cluster_id)) return bad("bad cluster id");
    } else if (f[0] == "member" && f.size() == 2) {
      if (!ParseHex(f[1], &id.member_id)) return bad("bad member id");
    } else if (f[0] == "peer" && f.size() == 4) {
      uint64_t pid;
      if (!ParseHex(f[1], &pid)) return bad("bad peer id");
      auto urls = ParseUrls(f[3]);
      if (!urls.ok()) return bad(urls.status().message());
      id.peers[pid] = PeerInfo{f[2], *urls};
    } else {
      return bad("unknown record");
    }
  }
  if (!format_seen || id.cluster_id == 0 || id.member_id == 0 ||
      id.peers.count(id.member_id) == 0) {
    return absl::DataLossError(absl::StrCat(path, ": incomplete identity file"));
  }
  return id;
}

absl::Status SaveIdentity(const std::string& member_dir, const MemberIdentity& id) {
  std::ostringstream out;
  out << "format 1\n";
  out << absl::StrFormat("cluster %x\nmember %x\n", id.cluster_id, id.member_id);
  for (const auto& [pid, p] : id.peers) {
    std::vector<std::string> urls;
    for (const Url& u : p.peer_urls) urls.push_back(u.ToString());
    out << absl::StrFormat("peer %x %s %s\n", pid, p.name, absl::StrJoin(urls, ","));
  }
  const std::string path = absl::StrCat(member_dir, "/", kFileName);
  const std::string tmp = path + ".tmp";
  if (absl::Status s = WriteAndSync(tmp, out.str()); !s.ok()) return s;
  if (rename(tmp.c_str(), path.c_str()) != 0) return Errno(absl::StrCat("rename ", tmp));
  int dfd = open(member_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno(absl::StrCat("open ", member_dir));
  const int rc = fsync(dfd);
  close(dfd);
  if (rc != 0) return Errno(absl::StrCat("fsync ", member_dir));
  return absl::OkStatus();
}

}  // namespace arbiter::server
