#include "cli/commands.h"

#include <memory>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/command_util.h"
#include "cli/go_format.h"
#include "cli/printer.h"
#include "cli/txn_input.h"
#include "client/client.h"

namespace arbiter::cli {
namespace {

using client::Client;

// The messages clientv3 recognises as etcd's own and shows without the
// gRPC status around them (rpctypes.errStringToError).
const absl::flat_hash_set<std::string>& EtcdMessages() {
  static const auto* const kMessages = new absl::flat_hash_set<std::string>{
      "etcdserver: key is not provided",
      "etcdserver: key not found",
      "etcdserver: value is provided",
      "etcdserver: lease is provided",
      "etcdserver: too many operations in txn request",
      "etcdserver: duplicate key given in txn request",
      "etcdserver: mvcc: required revision has been compacted",
      "etcdserver: mvcc: required revision is a future revision",
      "etcdserver: mvcc: database space exceeded",
      "etcdserver: requested lease not found",
      "etcdserver: lease already exists",
      "etcdserver: too large lease TTL",
      "etcdserver: member ID already exist",
      "etcdserver: Peer URLs already exists",
      "etcdserver: re-configuration failed due to not enough started members",
      "etcdserver: given member URLs are invalid",
      "etcdserver: member not found",
      "etcdserver: can only promote a learner member",
      "etcdserver: can only promote a learner member which is in sync with leader",
      "etcdserver: too many learner members in cluster",
      "etcdserver: request is too large",
      "etcdserver: too many requests",
      "etcdserver: root user does not exist",
      "etcdserver: root user does not have root role",
      "etcdserver: user name already exists",
      "etcdserver: user name is empty",
      "etcdserver: user name not found",
      "etcdserver: role name already exists",
      "etcdserver: role name not found",
      "etcdserver: role name is empty",
      "etcdserver: authentication failed, invalid user ID or password",
      "etcdserver: permission denied",
      "etcdserver: role is not granted to the user",
      "etcdserver: permission is not granted to the role",
      "etcdserver: authentication is not enabled",
      "etcdserver: invalid auth token",
      "etcdserver: invalid auth management",
      "etcdserver: revision of auth store is old",
      "etcdserver: no leader",
      "etcdserver: not leader",
      "etcdserver: leader changed",
      "etcdserver: not capable",
      "etcdserver: server stopped",
      "etcdserver: request timed out",
      "etcdserver: request timed out, possibly due to previous leader failure",
      "etcdserver: request timed out, possibly due to connection lost",
      "etcdserver: request timed out, waiting for the applied index took too long",
      "etcdserver: unhealthy cluster",
      "etcdserver: corrupt cluster",
      "etcdserver: rpc not supported for learner",
      "etcdserver: bad leader transferee",
  };
  return *kMessages;
}

// The endpoints a command addresses: --endpoints, or with --cluster every
// member's client URLs.
std::optional<Exit> Endpoints(const GlobalFlags& global, bool cluster,
                              std::vector<std::string>* endpoints) {
  if (!cluster) {
    *endpoints = global.endpoints;
    return std::nullopt;
  }
  std::unique_ptr<Client> client;
  if (auto exit = MakeClient(global, &client)) return Exit{kExitError, exit->message};
  absl::StatusOr<etcdserverpb::MemberListResponse> members = client->MemberList();
  if (!members.ok()) {
    return Exit{kExitError,
                absl::StrCat("failed to fetch endpoints from etcd cluster member list: ",
                             ClientErrorText(members.status()))};
  }
  endpoints->clear();
  for (const etcdserverpb::Member& m : members->members()) {
    endpoints->insert(endpoints->end(), m.clienturls().begin(), m.clienturls().end());
  }
  return std::nullopt;
}

}  // namespace

Exit ClientError(const absl::Status& status) { return Exit{kExitError, ClientErrorText(status)}; }

// The output format, checked when etcdctl checks it: as the client is
// made, after the arguments.
std::optional<Exit> MakePrinter(const GlobalFlags& global, Io io, std::unique_ptr<Printer>* out) {
  std::optional<Format> format = ParseFormat(global.write_out);
  if (!format.has_value()) return Exit{kExitBadFeature, "unsupported output format"};
  *out = std::make_unique<Printer>(*format, FlagBool(global.hex), io.out, io.err);
  return std::nullopt;
}

std::optional<Exit> MakeClient(const GlobalFlags& global, std::unique_ptr<Client>* out) {
  client::ClientOptions options;
  options.endpoints = global.endpoints;
  options.dial_timeout = GoParseDuration(global.dial_timeout).value_or(absl::Seconds(2));
  options.call_timeout = GoParseDuration(global.command_timeout).value_or(absl::Seconds(5));
  absl::StatusOr<std::unique_ptr<Client>> made = Client::Create(std::move(options));
  if (!made.ok()) return Exit{kExitBadConnection, std::string(made.status().message())};
  *out = *std::move(made);
  return std::nullopt;
}

// Both, in etcdctl's order.
std::optional<Exit> Connect(const GlobalFlags& global, Io io, std::unique_ptr<Printer>* printer,
                            std::unique_ptr<Client>* client) {
  if (auto exit = MakePrinter(global, io, printer)) return exit;
  return MakeClient(global, client);
}

int Done(const std::optional<Exit>& exit, Io io) {
  return exit.has_value() ? Finish(*exit, io.err) : kExitSuccess;
}

std::optional<std::string> CheckGlobalFlags(const GlobalFlags& flags) {
  for (const auto& [value, name] : {std::pair{&flags.dial_timeout, "--dial-timeout"},
                                    {&flags.command_timeout, "--command-timeout"}}) {
    absl::StatusOr<absl::Duration> d = GoParseDuration(*value);
    if (!d.ok()) {
      return absl::StrCat("invalid argument ", GoQuote(*value), " for \"", name,
                          "\" flag: ", d.status().message());
    }
  }
  absl::StatusOr<bool> hex = GoParseBool(flags.hex);
  if (!hex.ok()) {
    return absl::StrCat("invalid argument ", GoQuote(flags.hex),
                        " for \"--hex\" flag: ", hex.status().message());
  }
  return std::nullopt;
}

int Finish(const Exit& exit, std::ostream& err) {
  err << exit.preface;
  if (exit.panic) {
    err << "panic: " << exit.message << "\n\ngoroutine 1 [running]:\n";
  } else if (!exit.message.empty()) {
    err << "Error: " << exit.message << "\n";
  }
  err.flush();
  return exit.code;
}

std::string ClientErrorText(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded ||
      status.code() == absl::StatusCode::kCancelled) {
    return "context deadline exceeded";
  }
  const std::string message(status.message());
  if (EtcdMessages().contains(message)) return message;
  return absl::StrCat("rpc error: code = ", GoCodeName(static_cast<int>(status.code())),
                      " desc = ", message);
}

int RunGet(const GlobalFlags& global, const GetFlags& flags, Io io) {
  GetOp op;
  if (auto exit = BuildGet(flags, &op)) return Done(exit, io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::RangeResponse> response = client->Range(op.request);
  if (!response.ok()) return Done(ClientError(response.status()), io);
  if (op.print_value_only) {
    if (printer->format() != Format::kSimple) {
      return Done(Exit{kExitBadArgs, "print-value-only is only for `--write-out=simple`"}, io);
    }
    printer->set_value_only(true);
  }
  // --count-only is not in etcdctl 3.4; the simple format prints the count.
  if (op.request.count_only() && printer->format() == Format::kSimple) {
    io.out << response->count() << "\n";
    return kExitSuccess;
  }
  return Done(printer->Get(*response), io);
}

int RunPut(const GlobalFlags& global, const PutFlags& flags, Io io) {
  etcdserverpb::PutRequest request;
  if (auto exit = BuildPut(flags, io.in, &request)) return Done(exit, io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::PutResponse> response = client->Put(request);
  if (!response.ok()) return Done(ClientError(response.status()), io);
  return Done(printer->Put(*response), io);
}

int RunDel(const GlobalFlags& global, const DelFlags& flags, Io io) {
  etcdserverpb::DeleteRangeRequest request;
  if (auto exit = BuildDel(flags, &request)) return Done(exit, io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> response = client->DeleteRange(request);
  if (!response.ok()) return Done(ClientError(response.status()), io);
  return Done(printer->Del(*response), io);
}

int RunTxn(const GlobalFlags& global, bool interactive, const std::vector<std::string>& args,
           Io io) {
  if (!args.empty()) return Done(Exit{kExitBadArgs, "txn command does not accept argument"}, io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  etcdserverpb::TxnRequest request;
  if (auto exit = ReadTxn(io.in, interactive, io.out, &request)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::TxnResponse> response = client->Txn(request);
  if (!response.ok()) return Done(ClientError(response.status()), io);
  return Done(printer->Txn(*response), io);
}

int RunCompaction(const GlobalFlags& global, bool physical, const std::vector<std::string>& args,
                  Io io) {
  if (args.size() != 1) return Done(Exit{kExitBadArgs, "compaction command needs 1 argument"}, io);
  absl::StatusOr<int64_t> revision = GoParseInt(args[0], 10);
  if (!revision.ok()) return Done(Exit{kExitError, std::string(revision.status().message())}, io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  etcdserverpb::CompactionRequest request;
  request.set_revision(*revision);
  request.set_physical(physical);
  absl::StatusOr<etcdserverpb::CompactionResponse> response = client->Compact(request);
  if (!response.ok()) return Done(ClientError(response.status()), io);
  // In every output format.
  io.out << "compacted revision " << *revision << "\n";
  return kExitSuccess;
}

int RunMemberList(const GlobalFlags& global, Io io) {
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::MemberListResponse> response = client->MemberList();
  if (!response.ok()) return Done(ClientError(response.status()), io);
  return Done(printer->MemberList(*response), io);
}

int RunEndpointStatus(const GlobalFlags& global, bool cluster, Io io) {
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  std::vector<std::string> endpoints;
  if (auto exit = Endpoints(global, cluster, &endpoints)) return Done(exit, io);
  std::vector<EndpointStatusRow> rows;
  bool failed = false;
  for (const std::string& endpoint : endpoints) {
    absl::StatusOr<etcdserverpb::StatusResponse> status = client->EndpointStatus(endpoint);
    if (!status.ok()) {
      failed = true;
      io.err << "Failed to get the status of endpoint " << endpoint << " ("
             << ClientErrorText(status.status()) << ")\n";
      continue;
    }
    rows.push_back({endpoint, *std::move(status)});
  }
  if (auto exit = printer->EndpointStatus(rows)) return Done(exit, io);
  return failed ? kExitError : kExitSuccess;
}

int RunEndpointHealth(const GlobalFlags& global, bool cluster, Io io) {
  std::unique_ptr<Printer> printer;
  if (auto exit = MakePrinter(global, io, &printer)) return Done(exit, io);
  std::vector<std::string> endpoints;
  if (auto exit = Endpoints(global, cluster, &endpoints)) return Done(exit, io);
  std::unique_ptr<Client> client;
  if (auto exit = MakeClient(global, &client)) return Done(exit, io);
  // Every endpoint at once, as etcdctl asks them.
  std::vector<EndpointHealthRow> rows(endpoints.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    threads.emplace_back([&, i] {
      const absl::Time start = absl::Now();
      const absl::Status health = client->EndpointHealth(endpoints[i]);
      rows[i].endpoint = endpoints[i];
      rows[i].took = GoDurationString(absl::Now() - start);
      rows[i].health = health.ok();
      if (!health.ok()) rows[i].error = ClientErrorText(health);
    });
  }
  for (std::thread& t : threads) t.join();
  bool failed = false;
  for (const EndpointHealthRow& row : rows) failed = failed || !row.error.empty();
  if (auto exit = printer->EndpointHealth(rows)) return Done(exit, io);
  if (failed) return Done(Exit{kExitError, "unhealthy cluster"}, io);
  return kExitSuccess;
}

}  // namespace arbiter::cli
