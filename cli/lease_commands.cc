#include "cli/lease_commands.h"

#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cli/command_util.h"
#include "cli/go_format.h"
#include "client/lease.h"

namespace arbiter::cli {
namespace {

using client::Client;

Exit BadArgs(std::string message) { return Exit{kExitBadArgs, std::move(message)}; }

// A lease ID argument: hexadecimal, as etcdctl reads it.
std::optional<Exit> ParseLeaseId(const std::string& arg, int64_t* id) {
  absl::StatusOr<int64_t> parsed = GoParseInt(arg, 16);
  if (!parsed.ok()) {
    return BadArgs(
        absl::StrCat("bad lease ID arg (", parsed.status().message(), "), expecting ID in Hex"));
  }
  *id = *parsed;
  return std::nullopt;
}

// What a background keep-alive reports to the waiting command.
struct KeepAliveState {
  absl::Mutex mu;
  bool ended ABSL_GUARDED_BY(mu) = false;
  std::optional<Exit> exit ABSL_GUARDED_BY(mu);
};

// clientv3 waits this long for the first answer before it gives a lease
// up, when it does not yet know the lease's TTL.
constexpr int64_t kFirstTtl = 5;

}  // namespace

int RunLeaseGrant(const GlobalFlags& global, const std::vector<std::string>& args, Io io) {
  if (args.size() != 1) return Done(BadArgs("lease grant command needs TTL argument"), io);
  absl::StatusOr<int64_t> ttl = GoParseInt(args[0], 10);
  if (!ttl.ok()) return Done(BadArgs(absl::StrCat("bad TTL (", ttl.status().message(), ")")), io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> response = client->Grant(*ttl);
  if (!response.ok()) {
    return Done(Exit{kExitError, absl::StrCat("failed to grant lease (",
                                              ClientErrorText(response.status()), ")")},
                io);
  }
  return Done(printer->LeaseGrant(*response), io);
}

int RunLeaseRevoke(const GlobalFlags& global, const std::vector<std::string>& args, Io io) {
  if (args.size() != 1) return Done(BadArgs("lease revoke command needs 1 argument"), io);
  int64_t id = 0;
  if (auto exit = ParseLeaseId(args[0], &id)) return Done(exit, io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> response = client->Revoke(id);
  if (!response.ok()) {
    return Done(Exit{kExitError, absl::StrCat("failed to revoke lease (",
                                              ClientErrorText(response.status()), ")")},
                io);
  }
  return Done(printer->LeaseRevoke(id, *response), io);
}

int RunLeaseTimeToLive(const GlobalFlags& global, bool keys, const std::vector<std::string>& args,
                       Io io) {
  if (args.size() != 1) {
    return Done(BadArgs("lease timetolive command needs lease ID as argument"), io);
  }
  // etcdctl makes its client before it reads the ID here.
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  int64_t id = 0;
  if (auto exit = ParseLeaseId(args[0], &id)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> response = client->TimeToLive(id, keys);
  if (!response.ok()) {
    return Done(Exit{kExitBadConnection, ClientErrorText(response.status())}, io);
  }
  return Done(printer->LeaseTimeToLive(*response, keys), io);
}

int RunLeaseList(const GlobalFlags& global, Io io) {
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  absl::StatusOr<etcdserverpb::LeaseLeasesResponse> response = client->Leases();
  if (!response.ok()) {
    return Done(Exit{kExitBadConnection, ClientErrorText(response.status())}, io);
  }
  return Done(printer->LeaseList(*response), io);
}

int RunLeaseKeepAlive(const GlobalFlags& global, bool once, const std::vector<std::string>& args,
                      Io io) {
  if (args.size() != 1) {
    return Done(BadArgs("lease keep-alive command needs lease ID as argument"), io);
  }
  int64_t id = 0;
  if (auto exit = ParseLeaseId(args[0], &id)) return Done(exit, io);
  std::unique_ptr<Printer> printer;
  std::unique_ptr<Client> client;
  if (auto exit = Connect(global, io, &printer, &client)) return Done(exit, io);
  if (once) {
    absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> response = client->KeepAliveOnce(id);
    if (!response.ok()) {
      return Done(Exit{kExitBadConnection, ClientErrorText(response.status())}, io);
    }
    return Done(printer->LeaseKeepAlive(*response), io);
  }
  KeepAliveState state;
  {
    client::LeaseKeeper keeper(client.get());
    keeper.Add(id, kFirstTtl, [&](const client::LeaseEvent& event) {
      absl::MutexLock lock(&state.mu);
      if (state.ended) return;
      if (!event.status.ok()) {
        state.ended = true;
        return;
      }
      etcdserverpb::LeaseKeepAliveResponse response;
      response.set_id(event.id);
      response.set_ttl(event.ttl);
      *response.mutable_header() = event.header;
      state.exit = printer->LeaseKeepAlive(response);
      io.out.flush();
      if (state.exit.has_value()) state.ended = true;
    });
    absl::MutexLock lock(&state.mu);
    state.mu.Await(absl::Condition(&state.ended));
  }
  absl::MutexLock lock(&state.mu);
  if (state.exit.has_value()) return Done(state.exit, io);
  if (printer->format() == Format::kSimple) {
    io.out << "lease " << LeaseIdText(id) << " expired or revoked.\n";
  }
  return kExitSuccess;
}

}  // namespace arbiter::cli
