// The output of arbiterctl's commands in etcdctl's three formats: simple
// (etcdctl's default, line oriented), json (Go's encoding of etcd's structs,
// see go_json.h) and table (see table.h). As in etcdctl, the table format
// prints only member and endpoint lists; for anything else the printer
// answers with etcdctl's error ("table not supported as output format",
// exit code 4), after the request was made.
//
// Thread safety: a Printer writes to the streams it was given; use one per
// thread.
#ifndef ARBITER_CLI_PRINTER_H_
#define ARBITER_CLI_PRINTER_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/exit.h"
#include "proto/rpc.pb.h"

namespace arbiter::cli {

enum class Format { kSimple, kJson, kTable };

// nullopt for a name etcdctl does not know (or that arbiterctl does not
// print: fields, protobuf).
std::optional<Format> ParseFormat(const std::string& name);

// A lease ID as etcdctl prints it: Go's %016x of an int64.
std::string LeaseIdText(int64_t id);

struct EndpointStatusRow {
  std::string endpoint;
  etcdserverpb::StatusResponse status;
};

struct EndpointHealthRow {
  std::string endpoint;
  bool health = false;
  std::string took;   // A Go duration ("10.6ms").
  std::string error;  // Empty when healthy.
};

class Printer {
 public:
  Printer(Format format, bool hex, std::ostream& out, std::ostream& err)
      : format_(format), hex_(hex), out_(out), err_(err) {}

  // get --print-value-only: values without keys (simple format only).
  void set_value_only(bool value_only) { value_only_ = value_only; }
  Format format() const { return format_; }

  std::optional<Exit> Get(const etcdserverpb::RangeResponse& response);
  std::optional<Exit> Put(const etcdserverpb::PutResponse& response);
  std::optional<Exit> Del(const etcdserverpb::DeleteRangeResponse& response);
  std::optional<Exit> Txn(const etcdserverpb::TxnResponse& response);
  std::optional<Exit> MemberList(const etcdserverpb::MemberListResponse& response);
  std::optional<Exit> EndpointStatus(const std::vector<EndpointStatusRow>& rows);
  std::optional<Exit> EndpointHealth(const std::vector<EndpointHealthRow>& rows);

  // Leases. In JSON etcdctl prints clientv3's structs, whose header fields
  // sit at the top level next to "ID"/"TTL" (grant, keep-alive) or "id",
  // "ttl", "granted-ttl", "keys" (timetolive) and "leases" (list); revoke
  // prints the protobuf response.
  std::optional<Exit> LeaseGrant(const etcdserverpb::LeaseGrantResponse& response);
  std::optional<Exit> LeaseRevoke(int64_t id, const etcdserverpb::LeaseRevokeResponse& response);
  std::optional<Exit> LeaseKeepAlive(const etcdserverpb::LeaseKeepAliveResponse& response);
  std::optional<Exit> LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& response,
                                      bool keys);
  std::optional<Exit> LeaseList(const etcdserverpb::LeaseLeasesResponse& response);

 private:
  void PrintKv(const mvccpb::KeyValue& kv);
  std::optional<Exit> Unsupported() const;

  const Format format_;
  const bool hex_;
  bool value_only_ = false;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_PRINTER_H_
