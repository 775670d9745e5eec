// What every arbiterctl command does the same way: the printer for the
// output format and the client, made in etcdctl's order (the format is
// checked first, as etcdctl checks it while making its client), and the
// end of a command as an exit code with etcdctl's "Error: " line.
//
// Thread safety: functions of their arguments.
#ifndef ARBITER_CLI_COMMAND_UTIL_H_
#define ARBITER_CLI_COMMAND_UTIL_H_

#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "cli/printer.h"
#include "client/client.h"

namespace arbiter::cli {

// An error from the client library, exit code 1.
Exit ClientError(const absl::Status& status);

std::optional<Exit> MakePrinter(const GlobalFlags& global, Io io, std::unique_ptr<Printer>* out);
std::optional<Exit> MakeClient(const GlobalFlags& global, std::unique_ptr<client::Client>* out);
// Both, in etcdctl's order.
std::optional<Exit> Connect(const GlobalFlags& global, Io io, std::unique_ptr<Printer>* printer,
                            std::unique_ptr<client::Client>* client);

// Finish(*exit) when there is one, success otherwise.
int Done(const std::optional<Exit>& exit, Io io);

}  // namespace arbiter::cli

#endif  // ARBITER_CLI_COMMAND_UTIL_H_
