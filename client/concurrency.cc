#include "client/concurrency.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/v3election.grpc.pb.h"
#include "proto/v3lock.grpc.pb.h"

namespace arbiter::client {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::Status Cancelled() { return absl::CancelledError("context canceled"); }

// One call on a channel, with its context prepared.
template <typename Response>
using Call = std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&, grpc::ClientContext*,
                                        Response*)>;

// Sends `call` to an endpoint that connects, and again to the next one
// while the answer is UNAVAILABLE (every call here may be repeated), until
// the call timeout or, with a Canceller, until it is cancelled.
template <typename Response>
absl::StatusOr<Response> Retrying(Client* client, const Call<Response>& call, Canceller* cancel) {
  const ClientOptions& options = client->options();
  const absl::Time deadline =
      cancel == nullptr ? absl::Now() + options.call_timeout : absl::InfiniteFuture();
  absl::Duration backoff = options.initial_backoff;
  int after = -1;
  absl::Status last;
  for (;;) {
    if (cancel != nullptr && cancel->cancelled()) return Cancelled();
    absl::StatusOr<Client::Connection> connection =
        client->Connect(std::min(deadline, absl::Now() + options.dial_timeout), after);
    if (connection.ok()) {
      after = connection->index;
      grpc::ClientContext context;
      if (deadline != absl::InfiniteFuture()) context.set_deadline(absl::ToChronoTime(deadline));
      if (cancel != nullptr && !cancel->Register(&context)) return Cancelled();
      Response response;
      const grpc::Status status = call(connection->channel, &context, &response);
      if (cancel != nullptr) cancel->Unregister(&context);
      if (status.ok()) return response;
      if (cancel != nullptr && cancel->cancelled()) return Cancelled();
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return FromGrpc(status);
      last = FromGrpc(status);
    } else {
      last = connection.status();
    }
    if (absl::Now() + backoff >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("context deadline exceeded (last error: ", last.message(), ")"));
    }
    if (cancel != nullptr ? cancel->WaitCancelled(backoff) : (absl::SleepFor(backoff), false)) {
      return Cancelled();
    }
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

}  // namespace

void Canceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* context : contexts_) context->TryCancel();
}

bool Canceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Canceller::WaitCancelled(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&cancelled_), timeout);
}

bool Canceller::Register(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  contexts_.insert(context);
  return true;
}

void Canceller::Unregister(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  contexts_.erase(context);
}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(Client* client, int64_t ttl,
                                                         std::function<void()> on_lost) {
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> granted = client->Grant(ttl);
  if (!granted.ok()) return granted.status();
  std::unique_ptr<Session> session(new Session(client, granted->id(), granted->ttl()));
  session->keeper_.Add(granted->id(), granted->ttl(),
                       [on_lost = std::move(on_lost)](const LeaseEvent& event) {
                         if (!event.status.ok() && on_lost) on_lost();
                       });
  return session;
}

Session::~Session() = default;

absl::Status Session::Alive() {
  std::optional<absl::Status> ended = keeper_.Wait(lease_, absl::InfinitePast());
  return ended.value_or(absl::OkStatus());
}

absl::Status Session::Close() {
  keeper_.Remove(lease_);
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> revoked = client_->Revoke(lease_);
  return revoked.status();
}

absl::StatusOr<v3electionpb::LeaderKey> Coordinator::Campaign(const std::string& name,
                                                              int64_t lease,
                                                              const std::string& value,
                                                              Canceller* cancel) {
  v3electionpb::CampaignRequest request;
  request.set_name(name);
  request.set_lease(lease);
  request.set_value(value);
  absl::StatusOr<v3electionpb::CampaignResponse> response =
      Retrying<v3electionpb::CampaignResponse>(
          client_,
          [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
              v3electionpb::CampaignResponse* out) {
            return v3electionpb::Election::NewStub(channel)->Campaign(context, request, out);
          },
          cancel);
  if (!response.ok()) {
    if (cancel != nullptr && cancel->cancelled()) Withdraw(name, lease);
    return response.status();
  }
  return response->leader();
}

absl::Status Coordinator::Proclaim(const v3electionpb::LeaderKey& leader,
                                   const std::string& value) {
  v3electionpb::ProclaimRequest request;
  *request.mutable_leader() = leader;
  request.set_value(value);
  return Retrying<v3electionpb::ProclaimResponse>(
             client_,
             [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
                 v3electionpb::ProclaimResponse* out) {
               return v3electionpb::Election::NewStub(channel)->Proclaim(context, request, out);
             },
             nullptr)
      .status();
}

absl::StatusOr<v3electionpb::LeaderResponse> Coordinator::Leader(const std::string& name) {
  v3electionpb::LeaderRequest request;
  request.set_name(name);
  return Retrying<v3electionpb::LeaderResponse>(
      client_,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
          v3electionpb::LeaderResponse* out) {
        return v3electionpb::Election::NewStub(channel)->Leader(context, request, out);
      },
      nullptr);
}

absl::Status Coordinator::Observe(
    const std::string& name,
    const std::function<void(const v3electionpb::LeaderResponse&)>& on_leader, Canceller* cancel) {
  v3electionpb::LeaderRequest request;
  request.set_name(name);
  Canceller never;
  if (cancel == nullptr) cancel = &never;
  std::string last_key;
  int64_t last_mod = 0;
  // Each round is one stream; it ends OK only when the stream was closed,
  // which is reopened like a broken one.
  const Call<v3electionpb::LeaderResponse> observe =
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
          v3electionpb::LeaderResponse*) {
        auto stub = v3electionpb::Election::NewStub(channel);
        auto reader = stub->Observe(context, request);
        v3electionpb::LeaderResponse response;
        while (reader->Read(&response)) {
          if (response.kv().key() == last_key && response.kv().mod_revision() == last_mod) continue;
          last_key = response.kv().key();
          last_mod = response.kv().mod_revision();
          on_leader(response);
        }
        grpc::Status status = reader->Finish();
        if (status.ok()) {
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "observe stream closed");
        }
        return status;
      };
  for (;;) {
    absl::StatusOr<v3electionpb::LeaderResponse> ended =
        Retrying<v3electionpb::LeaderResponse>(client_, observe, cancel);
    if (cancel->cancelled()) return absl::OkStatus();
    if (!ended.ok()) return ended.status();
  }
}

absl::Status Coordinator::Resign(const v3electionpb::LeaderKey& leader) {
  v3electionpb::ResignRequest request;
  *request.mutable_leader() = leader;
  return Retrying<v3electionpb::ResignResponse>(
             client_,
             [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
                 v3electionpb::ResignResponse* out) {
               return v3electionpb::Election::NewStub(channel)->Resign(context, request, out);
             },
             nullptr)
      .status();
}

absl::StatusOr<LockHold> Coordinator::Lock(const std::string& name, int64_t lease,
                                           Canceller* cancel) {
  v3lockpb::LockRequest request;
  request.set_name(name);
  request.set_lease(lease);
  absl::StatusOr<v3lockpb::LockResponse> response = Retrying<v3lockpb::LockResponse>(
      client_,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
          v3lockpb::LockResponse* out) {
        return v3lockpb::Lock::NewStub(channel)->Lock(context, request, out);
      },
      cancel);
  if (!response.ok()) {
    if (cancel != nullptr && cancel->cancelled()) Withdraw(name, lease);
    return response.status();
  }
  LockHold hold;
  hold.key = response->key();
  hold.header_revision = response->header().revision();
  // The header's revision is not the key's creation when the lock was
  // waited for (etcd's server reports the revision it saw the lock free
  // at), so the fencing token is read from the key itself.
  etcdserverpb::RangeRequest range;
  range.set_key(hold.key);
  absl::StatusOr<etcdserverpb::RangeResponse> key = client_->Range(range);
  if (!key.ok()) return key.status();
  if (key->kvs().empty()) return absl::AbortedError("lock lost on init");
  hold.fencing_token = key->kvs(0).create_revision();
  return hold;
}

void Coordinator::Withdraw(const std::string& name, int64_t lease) {
  // The contender key of etcd's recipes: "<name>/<lease in hex>".
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(absl::StrCat(name, "/", absl::Hex(lease)));
  (void)client_->DeleteRange(request);
}

absl::Status Coordinator::Unlock(const std::string& key) {
  v3lockpb::UnlockRequest request;
  request.set_key(key);
  return Retrying<v3lockpb::UnlockResponse>(
             client_,
             [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
                 v3lockpb::UnlockResponse* out) {
               return v3lockpb::Lock::NewStub(channel)->Unlock(context, request, out);
             },
             nullptr)
      .status();
}

}  // namespace arbiter::client
