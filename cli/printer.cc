#include "cli/printer.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/go_format.h"
#include "cli/go_json.h"
#include "cli/table.h"

namespace arbiter::cli {
namespace {

// "\x66\x6f\x6f": etcdctl's --hex form of a byte string.
std::string HexBytes(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) absl::StrAppendFormat(&out, "\\x%02x", c);
  return out;
}

std::vector<std::string> MemberHeader() {
  return {"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"};
}

std::vector<std::vector<std::string>> MemberRows(const etcdserverpb::MemberListResponse& r) {
  std::vector<std::vector<std::string>> rows;
  for (const etcdserverpb::Member& m : r.members()) {
    // A member that has not started yet has not published its name.
    rows.push_back({absl::StrFormat("%x", m.id()), m.name().empty() ? "unstarted" : "started",
                    m.name(), absl::StrJoin(m.peerurls(), ","), absl::StrJoin(m.clienturls(), ","),
                    m.islearner() ? "true" : "false"});
  }
  return rows;
}

std::vector<std::string> StatusHeader() {
  return {"endpoint",           "ID",         "version",   "db size",
          "is leader",          "is learner", "raft term", "raft index",
          "raft applied index", "errors"};
}

std::vector<std::vector<std::string>> StatusRows(const std::vector<EndpointStatusRow>& list) {
  std::vector<std::vector<std::string>> rows;
  for (const EndpointStatusRow& row : list) {
    const etcdserverpb::StatusResponse& s = row.status;
    rows.push_back({row.endpoint, absl::StrFormat("%x", s.header().member_id()), s.version(),
                    HumanizeBytes(static_cast<uint64_t>(s.dbsize())),
                    s.leader() == s.header().member_id() ? "true" : "false",
                    s.islearner() ? "true" : "false", absl::StrCat(s.raftterm()),
                    absl::StrCat(s.raftindex()), absl::StrCat(s.raftappliedindex()),
                    absl::StrJoin(s.errors(), ", ")});
  }
  return rows;
}

std::vector<std::string> HealthHeader() { return {"endpoint", "health", "took", "error"}; }

std::vector<std::vector<std::string>> HealthRows(const std::vector<EndpointHealthRow>& list) {
  std::vector<std::vector<std::string>> rows;
  for (const EndpointHealthRow& h : list) {
    rows.push_back({h.endpoint, h.health ? "true" : "false", h.took, h.error});
  }
  return rows;
}

void PrintRows(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  for (const auto& row : rows) out << absl::StrJoin(row, ", ") << "\n";
}

// The header's fields as members of the enclosing object (Go embeds
// *pb.ResponseHeader in clientv3's lease responses), or nothing.
std::vector<std::string> FlatHeader(bool present, const etcdserverpb::ResponseHeader& header) {
  if (!present) return {};
  std::string json = GoJson(header);
  json = json.substr(1, json.size() - 2);
  if (json.empty()) return {};
  return {json};
}

std::string JsonObject(std::vector<std::string> fields) {
  return absl::StrCat("{", absl::StrJoin(fields, ","), "}");
}

}  // namespace

std::string LeaseIdText(int64_t id) {
  if (id >= 0) return absl::StrFormat("%016x", id);
  // Go keeps the sign and pads the digits to the width with it.
  return absl::StrFormat("-%015x", -static_cast<uint64_t>(id));
}

std::optional<Format> ParseFormat(const std::string& name) {
  if (name == "simple") return Format::kSimple;
  if (name == "json") return Format::kJson;
  if (name == "table") return Format::kTable;
  return std::nullopt;
}

std::optional<Exit> Printer::Unsupported() const {
  return Exit{kExitBadFeature, "table not supported as output format"};
}

void Printer::PrintKv(const mvccpb::KeyValue& kv) {
  if (!value_only_) out_ << (hex_ ? HexBytes(kv.key()) : kv.key()) << "\n";
  out_ << (hex_ ? HexBytes(kv.value()) : kv.value()) << "\n";
}

std::optional<Exit> Printer::Get(const etcdserverpb::RangeResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    out_ << GoJson(response) << "\n";
    return std::nullopt;
  }
  for (const mvccpb::KeyValue& kv : response.kvs()) PrintKv(kv);
  return std::nullopt;
}

std::optional<Exit> Printer::Put(const etcdserverpb::PutResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    out_ << GoJson(response) << "\n";
    return std::nullopt;
  }
  out_ << "OK\n";
  if (response.has_prev_kv()) PrintKv(response.prev_kv());
  return std::nullopt;
}

std::optional<Exit> Printer::Del(const etcdserverpb::DeleteRangeResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    out_ << GoJson(response) << "\n";
    return std::nullopt;
  }
  out_ << response.deleted() << "\n";
  for (const mvccpb::KeyValue& kv : response.prev_kvs()) PrintKv(kv);
  return std::nullopt;
}

std::optional<Exit> Printer::Txn(const etcdserverpb::TxnResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    out_ << GoJson(response) << "\n";
    return std::nullopt;
  }
  out_ << (response.succeeded() ? "SUCCESS" : "FAILURE") << "\n";
  for (const etcdserverpb::ResponseOp& op : response.responses()) {
    out_ << "\n";
    switch (op.response_case()) {
      case etcdserverpb::ResponseOp::kResponseDeleteRange:
        Del(op.response_delete_range());
        break;
      case etcdserverpb::ResponseOp::kResponsePut:
        Put(op.response_put());
        break;
      case etcdserverpb::ResponseOp::kResponseRange:
        Get(op.response_range());
        break;
      default:
        // etcdctl prints the Go value; a nested txn cannot be written in
        // its txn syntax, so this is only reached by other clients' txns.
        out_ << "unexpected response " << op.ShortDebugString() << "\n";
    }
  }
  return std::nullopt;
}

std::optional<Exit> Printer::MemberList(const etcdserverpb::MemberListResponse& response) {
  switch (format_) {
    case Format::kJson:
      out_ << GoJson(response) << "\n";
      break;
    case Format::kTable:
      out_ << RenderTable(MemberHeader(), MemberRows(response));
      break;
    case Format::kSimple:
      PrintRows(MemberRows(response), out_);
  }
  return std::nullopt;
}

std::optional<Exit> Printer::EndpointStatus(const std::vector<EndpointStatusRow>& rows) {
  switch (format_) {
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointStatusRow& row : rows) {
        items.push_back(absl::StrCat("{\"Endpoint\":", GoJsonString(row.endpoint),
                                     ",\"Status\":", GoJson(row.status), "}"));
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable:
      out_ << RenderTable(StatusHeader(), StatusRows(rows));
      break;
    case Format::kSimple:
      PrintRows(StatusRows(rows), out_);
  }
  return std::nullopt;
}

std::optional<Exit> Printer::EndpointHealth(const std::vector<EndpointHealthRow>& rows) {
  switch (format_) {
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointHealthRow& h : rows) {
        std::string item = absl::StrCat("{\"endpoint\":", GoJsonString(h.endpoint),
                                        ",\"health\":", h.health ? "true" : "false",
                                        ",\"took\":", GoJsonString(h.took));
        if (!h.error.empty()) absl::StrAppend(&item, ",\"error\":", GoJsonString(h.error));
        items.push_back(item + "}");
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable:
      out_ << RenderTable(HealthHeader(), HealthRows(rows));
      break;
    case Format::kSimple:
      // etcdctl writes these lines to standard error.
      for (const EndpointHealthRow& h : rows) {
        if (h.error.empty()) {
          err_ << h.endpoint << " is healthy: successfully committed proposal: took = " << h.took
               << "\n";
        } else {
          err_ << h.endpoint << " is unhealthy: failed to commit proposal: " << h.error << "\n";
        }
      }
  }
  return std::nullopt;
}

}  // namespace arbiter::cli

namespace arbiter::cli {

std::optional<Exit> Printer::LeaseGrant(const etcdserverpb::LeaseGrantResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    std::vector<std::string> fields = FlatHeader(response.has_header(), response.header());
    fields.push_back(absl::StrCat("\"ID\":", response.id()));
    fields.push_back(absl::StrCat("\"TTL\":", response.ttl()));
    fields.push_back(absl::StrCat("\"Error\":", GoJsonString(response.error())));
    out_ << JsonObject(fields) << "\n";
    return std::nullopt;
  }
  out_ << "lease " << LeaseIdText(response.id()) << " granted with TTL(" << response.ttl()
       << "s)\n";
  return std::nullopt;
}

std::optional<Exit> Printer::LeaseRevoke(int64_t id,
                                         const etcdserverpb::LeaseRevokeResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    out_ << GoJson(response) << "\n";
    return std::nullopt;
  }
  out_ << "lease " << LeaseIdText(id) << " revoked\n";
  return std::nullopt;
}

std::optional<Exit> Printer::LeaseKeepAlive(const etcdserverpb::LeaseKeepAliveResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    std::vector<std::string> fields = FlatHeader(response.has_header(), response.header());
    fields.push_back(absl::StrCat("\"ID\":", response.id()));
    fields.push_back(absl::StrCat("\"TTL\":", response.ttl()));
    out_ << JsonObject(fields) << "\n";
    return std::nullopt;
  }
  out_ << "lease " << LeaseIdText(response.id()) << " keepalived with TTL(" << response.ttl()
       << ")\n";
  return std::nullopt;
}

std::optional<Exit> Printer::LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& response,
                                             bool keys) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    std::vector<std::string> fields = FlatHeader(response.has_header(), response.header());
    fields.push_back(absl::StrCat("\"id\":", response.id()));
    fields.push_back(absl::StrCat("\"ttl\":", response.ttl()));
    fields.push_back(absl::StrCat("\"granted-ttl\":", response.grantedttl()));
    std::string list = "null";
    if (!response.keys().empty()) {
      std::vector<std::string> encoded;
      for (const std::string& key : response.keys()) {
        encoded.push_back(GoJsonString(absl::Base64Escape(key)));
      }
      list = absl::StrCat("[", absl::StrJoin(encoded, ","), "]");
    }
    fields.push_back(absl::StrCat("\"keys\":", list));
    out_ << JsonObject(fields) << "\n";
    return std::nullopt;
  }
  if (response.grantedttl() == 0 && response.ttl() == -1) {
    out_ << "lease " << LeaseIdText(response.id()) << " already expired\n";
    return std::nullopt;
  }
  out_ << "lease " << LeaseIdText(response.id()) << " granted with TTL(" << response.grantedttl()
       << "s), remaining(" << response.ttl() << "s)";
  // Go's %v of a []string: the keys' bytes, space separated, in brackets.
  if (keys) out_ << ", attached keys([" << absl::StrJoin(response.keys(), " ") << "])";
  out_ << "\n";
  return std::nullopt;
}

std::optional<Exit> Printer::LeaseList(const etcdserverpb::LeaseLeasesResponse& response) {
  if (format_ == Format::kTable) return Unsupported();
  if (format_ == Format::kJson) {
    std::vector<std::string> fields = FlatHeader(response.has_header(), response.header());
    std::vector<std::string> items;
    for (const etcdserverpb::LeaseStatus& lease : response.leases()) {
      items.push_back(absl::StrCat("{\"id\":", lease.id(), "}"));
    }
    fields.push_back(absl::StrCat("\"leases\":[", absl::StrJoin(items, ","), "]"));
    out_ << JsonObject(fields) << "\n";
    return std::nullopt;
  }
  out_ << "found " << response.leases_size() << " leases\n";
  for (const etcdserverpb::LeaseStatus& lease : response.leases()) {
    out_ << LeaseIdText(lease.id()) << "\n";
  }
  return std::nullopt;
}

}  // namespace arbiter::cli
