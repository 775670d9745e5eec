// etcdctl's txn input: three blocks of lines, each ended by an empty line:
// the compares (`value("k") = "v"`, `mod("k") > "3"`, targets ver|version,
// c|create, m|mod, val|value, lease; ops = != > <), then the operations on
// success and on failure, each a get, put or del command line with the same
// flags as the commands. The parsing follows etcdctl 3.4 (txn_command.go,
// util.go argify) including its messages and exit codes.
//
// One deliberate difference: etcdctl 3.4 panics on every lease compare (it
// passes the value as a string); arbiterctl compares the key's lease with
// the decimal value given.
//
// Thread safety: functions of their arguments.
#ifndef ARBITER_CLI_TXN_INPUT_H_
#define ARBITER_CLI_TXN_INPUT_H_

#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "cli/exit.h"
#include "proto/rpc.pb.h"

namespace arbiter::cli {

// Splits a line into words as etcdctl's argify does: runs of non-blanks,
// "double-quoted" strings with Go escapes, and 'single-quoted' ones.
// etcdctl cuts a single-quoted word by the number of words on the line
// rather than its own length; that is kept, so the same line means the same
// thing to both tools.
std::optional<Exit> Argify(absl::string_view line, std::vector<std::string>* words);

std::optional<Exit> ParseCompare(const std::string& line, etcdserverpb::Compare* compare);
// A get, put or del line as a request operation.
std::optional<Exit> ParseOp(const std::string& line, etcdserverpb::RequestOp* op);

// Reads the whole txn from `in`; with `interactive` prints etcdctl's
// prompts to `out` before each block.
std::optional<Exit> ReadTxn(std::istream& in, bool interactive, std::ostream& out,
                            etcdserverpb::TxnRequest* txn);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_TXN_INPUT_H_
