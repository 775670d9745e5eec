// The get, put and del commands' flags and how they become requests, as
// etcdctl 3.4 builds them (getGetOp, getPutOp, getDelOp). Shared by the
// commands themselves and by txn, whose operation lines use the same syntax
// and flags.
//
// Integer and boolean flags are kept as the text the user typed and parsed
// here, so errors carry the Go wording etcdctl prints.
//
// Thread safety: functions of their arguments.
#ifndef ARBITER_CLI_KV_OPS_H_
#define ARBITER_CLI_KV_OPS_H_

#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cli/exit.h"
#include "proto/rpc.pb.h"

namespace arbiter::cli {

struct GetFlags {
  std::string consistency = "l";
  std::string order;
  std::string sort_by;
  std::string limit = "0";
  std::string rev = "0";
  std::string prefix = "false";
  std::string from_key = "false";
  std::string keys_only = "false";
  std::string count_only = "false";
  std::string print_value_only = "false";
  std::vector<std::string> args;
};

struct PutFlags {
  std::string lease = "0";
  std::string prev_kv = "false";
  std::string ignore_value = "false";
  std::string ignore_lease = "false";
  std::vector<std::string> args;
};

struct DelFlags {
  std::string prefix = "false";
  std::string prev_kv = "false";
  std::string from_key = "false";
  std::vector<std::string> args;
};

void AddGetFlags(CLI::App* command, GetFlags* flags);
void AddPutFlags(CLI::App* command, PutFlags* flags);
void AddDelFlags(CLI::App* command, DelFlags* flags);

// The pflag-style message for a flag value that does not parse, e.g.
// `invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x":
// invalid syntax`; nullopt when all flags parse.
std::optional<std::string> CheckGetFlags(const GetFlags& flags);
std::optional<std::string> CheckPutFlags(const PutFlags& flags);
std::optional<std::string> CheckDelFlags(const DelFlags& flags);

// The request, or how the command ends. REQUIRES: the flags passed Check*.
struct GetOp {
  etcdserverpb::RangeRequest request;
  bool print_value_only = false;
};
std::optional<Exit> BuildGet(const GetFlags& flags, GetOp* op);
// Reads the value from `in` when it is not an argument, as etcdctl does.
std::optional<Exit> BuildPut(const PutFlags& flags, std::istream& in,
                             etcdserverpb::PutRequest* request);
std::optional<Exit> BuildDel(const DelFlags& flags, etcdserverpb::DeleteRangeRequest* request);

// Flag values as Go's strconv reads them; REQUIRES: checked.
bool FlagBool(const std::string& value);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_KV_OPS_H_
