#include "cli/printer.h"

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

}  // namespace

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
