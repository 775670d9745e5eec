#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "proto/rpc.grpc.pb.h"

namespace arbiter::client {
namespace {

using etcdserverpb::CompactionRequest;
using etcdserverpb::CompactionResponse;
using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::DeleteRangeResponse;
using etcdserverpb::HashKVRequest;
using etcdserverpb::HashKVResponse;
using etcdserverpb::LeaseGrantRequest;
using etcdserverpb::LeaseGrantResponse;
using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;
using etcdserverpb::LeaseLeasesRequest;
using etcdserverpb::LeaseLeasesResponse;
using etcdserverpb::LeaseRevokeRequest;
using etcdserverpb::LeaseRevokeResponse;
using etcdserverpb::LeaseTimeToLiveRequest;
using etcdserverpb::LeaseTimeToLiveResponse;
using etcdserverpb::MemberListRequest;
using etcdserverpb::MemberListResponse;
using etcdserverpb::PutRequest;
using etcdserverpb::PutResponse;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::StatusRequest;
using etcdserverpb::StatusResponse;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

absl::Status FromGrpc(const grpc::Status& status) {
  // The numbering of absl::StatusCode is gRPC's.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// One endpoint: its channel and the stubs on it. Stubs are thread-safe.
struct Endpoint {
  std::string name;  // As the caller spelled it.
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
};

absl::StatusOr<std::unique_ptr<Endpoint>> Dial(absl::string_view name) {
  absl::StatusOr<std::string> target = EndpointTarget(name);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  // Servers may answer with large ranges; etcd's clients accept any size.
  args.SetMaxReceiveMessageSize(INT_MAX);
  // Reconnect soon after a member comes back, so retries find it.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A private subchannel per client, so one client's backoff state does not
  // leak into another's in the same process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto endpoint = std::make_unique<Endpoint>();
  endpoint->name = std::string(name);
  endpoint->channel = grpc::CreateCustomChannel(*target, grpc::InsecureChannelCredentials(), args);
  endpoint->kv = etcdserverpb::KV::NewStub(endpoint->channel);
  endpoint->cluster = etcdserverpb::Cluster::NewStub(endpoint->channel);
  endpoint->maintenance = etcdserverpb::Maintenance::NewStub(endpoint->channel);
  endpoint->lease = etcdserverpb::Lease::NewStub(endpoint->channel);
  return endpoint;
}

// Waits until the channel is connected. False when it fails to connect or
// the deadline passes first; no request has been sent then. A channel that
// failed to connect is given a short while to start its next attempt: gRPC
// reconnects (after its backoff) only while someone watches the channel.
bool WaitConnected(grpc::Channel& channel, absl::Time deadline) {
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_SHUTDOWN) return false;
    absl::Time until = deadline;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      until = std::min(deadline, absl::Now() + absl::Milliseconds(50));
    }
    if (!channel.WaitForStateChange(state, absl::ToChronoTime(until))) return false;
    state = channel.GetState(/*try_to_connect=*/true);
  }
  return true;
}

absl::Status NotConnected(const Endpoint& endpoint) {
  return absl::UnavailableError(absl::StrCat("failed to connect to endpoint ", endpoint.name));
}

absl::Status DeadlinePassed(const absl::Status& last) {
  std::string message = "context deadline exceeded";
  if (!last.ok()) absl::StrAppend(&message, " (last error: ", last.message(), ")");
  return absl::DeadlineExceededError(message);
}

// One RPC on one endpoint: a function of the endpoint, a prepared context
// and the response to fill.
template <typename Response>
using Rpc = std::function<grpc::Status(Endpoint&, grpc::ClientContext*, Response*)>;

// Sends once on a connected endpoint. `sent` tells whether the request
// left the process.
template <typename Response>
absl::StatusOr<Response> Attempt(Endpoint& endpoint, const Rpc<Response>& rpc,
                                 absl::Time dial_deadline, absl::Time deadline, bool* sent) {
  *sent = false;
  if (!WaitConnected(*endpoint.channel, std::min(dial_deadline, deadline))) {
    return NotConnected(endpoint);
  }
  *sent = true;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  Response response;
  grpc::Status status = rpc(endpoint, &context, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

}  // namespace

absl::StatusOr<std::string> EndpointTarget(absl::string_view endpoint) {
  absl::string_view rest = endpoint;
  if (absl::ConsumePrefix(&rest, "http://")) {
  } else if (absl::StartsWith(rest, "https://") || absl::StartsWith(rest, "unix")) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", endpoint, ": only http:// endpoints are supported"));
  }
  while (absl::ConsumeSuffix(&rest, "/")) {
  }
  if (rest.empty() || rest.find('/') != absl::string_view::npos ||
      rest.find(':') == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", endpoint, ": expected host:port or http://host:port"));
  }
  return std::string(rest);
}

class Client::Impl {
 public:
  explicit Impl(ClientOptions options) : options_(std::move(options)) {}

  absl::Status Init() {
    if (options_.endpoints.empty()) return absl::InvalidArgumentError("no endpoints");
    for (const std::string& name : options_.endpoints) {
      absl::StatusOr<std::unique_ptr<Endpoint>> endpoint = Dial(name);
      if (!endpoint.ok()) return endpoint.status();
      endpoints_.push_back(*std::move(endpoint));
    }
    return absl::OkStatus();
  }

  const ClientOptions& options() const { return options_; }

  // A read: on UNAVAILABLE, retried on the next endpoint after a backoff,
  // until the deadline.
  template <typename Response>
  absl::StatusOr<Response> Read(const Rpc<Response>& rpc) {
    const absl::Time deadline = absl::Now() + options_.call_timeout;
    absl::Duration backoff = options_.initial_backoff;
    absl::Status last;
    size_t index = Preferred();
    for (size_t tries = 0;; ++tries) {
      Endpoint& endpoint = *endpoints_[index];
      bool sent = false;
      absl::StatusOr<Response> response =
          Attempt(endpoint, rpc, absl::Now() + options_.dial_timeout, deadline, &sent);
      if (response.ok()) {
        SetPreferred(index);
        return response;
      }
      if (response.status().code() != absl::StatusCode::kUnavailable) return response.status();
      last = response.status();
      index = (index + 1) % endpoints_.size();
      // A full round of endpoints failed: wait before the next round.
      if ((tries + 1) % endpoints_.size() == 0 || sent) {
        if (absl::Now() + backoff >= deadline) return DeadlinePassed(last);
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
      if (absl::Now() >= deadline) return DeadlinePassed(last);
    }
  }

  // A write: to the leader if known, else to the endpoints in turn; moves
  // on only while the request has not been sent.
  template <typename Response>
  absl::StatusOr<Response> Write(const Rpc<Response>& rpc) {
    const absl::Time deadline = absl::Now() + options_.call_timeout;
    absl::Duration backoff = options_.initial_backoff;
    absl::Status last;
    for (;;) {
      absl::StatusOr<size_t> leader = FindLeader(deadline);
      const size_t first = leader.ok() ? *leader : Preferred();
      for (size_t i = 0; i < endpoints_.size(); ++i) {
        const size_t index = (first + i) % endpoints_.size();
        bool sent = false;
        absl::StatusOr<Response> response =
            Attempt(*endpoints_[index], rpc, absl::Now() + options_.dial_timeout, deadline, &sent);
        if (response.ok()) return response;
        if (response.status().code() == absl::StatusCode::kUnavailable) ForgetLeader(index);
        if (sent) return response.status();
        last = response.status();
        if (absl::Now() >= deadline) return DeadlinePassed(last);
      }
      if (absl::Now() + backoff >= deadline) return DeadlinePassed(last);
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  // One attempt on a named endpoint, which may take until the deadline to
  // connect (it may be restarting); an endpoint that never connects ends in
  // DEADLINE_EXCEEDED, as etcdctl reports it.
  template <typename Response>
  absl::StatusOr<Response> Once(absl::string_view name, const Rpc<Response>& rpc) {
    absl::StatusOr<Endpoint*> endpoint = Named(name);
    if (!endpoint.ok()) return endpoint.status();
    const absl::Time deadline = absl::Now() + options_.call_timeout;
    for (;;) {
      bool sent = false;
      absl::StatusOr<Response> response = Attempt(**endpoint, rpc, deadline, deadline, &sent);
      if (sent) return response;
      if (absl::Now() >= deadline) return DeadlinePassed(response.status());
    }
  }

  // The index of the endpoint whose member leads, asking each endpoint's
  // Status if not remembered.
  absl::StatusOr<size_t> FindLeader(absl::Time deadline) {
    {
      absl::MutexLock lock(&mu_);
      if (leader_.has_value()) return *leader_;
    }
    const Rpc<StatusResponse> status = [](Endpoint& e, grpc::ClientContext* c, StatusResponse* r) {
      return e.maintenance->Status(c, StatusRequest(), r);
    };
    for (size_t i = 0; i < endpoints_.size() && absl::Now() < deadline; ++i) {
      bool sent = false;
      absl::StatusOr<StatusResponse> response =
          Attempt(*endpoints_[i], status, absl::Now() + options_.dial_timeout, deadline, &sent);
      if (response.ok() && response->leader() != 0 &&
          response->leader() == response->header().member_id()) {
        absl::MutexLock lock(&mu_);
        leader_ = i;
        return i;
      }
    }
    return absl::NotFoundError("no endpoint is the leader");
  }

  // The first endpoint, in turn from `first`, whose channel connects.
  absl::StatusOr<Client::Connection> Connect(absl::Time deadline, int after) {
    const size_t n = endpoints_.size();
    size_t index = after < 0 ? Preferred() : (static_cast<size_t>(after) + 1) % n;
    absl::Duration backoff = options_.initial_backoff;
    for (size_t tries = 1;; ++tries) {
      Endpoint& endpoint = *endpoints_[index];
      if (WaitConnected(*endpoint.channel,
                        std::min(deadline, absl::Now() + options_.dial_timeout))) {
        return Client::Connection{endpoint.channel, static_cast<int>(index)};
      }
      index = (index + 1) % n;
      if (tries % n == 0) {
        if (absl::Now() + backoff >= deadline) return NotConnected(endpoint);
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
      if (absl::Now() >= deadline) return NotConnected(endpoint);
    }
  }

  std::string EndpointName(size_t index) const { return endpoints_[index]->name; }
  const std::vector<std::string>& endpoint_names() const { return options_.endpoints; }

 private:
  size_t Preferred() {
    absl::MutexLock lock(&mu_);
    return preferred_;
  }
  void SetPreferred(size_t index) {
    absl::MutexLock lock(&mu_);
    preferred_ = index;
  }
  void ForgetLeader(size_t index) {
    absl::MutexLock lock(&mu_);
    if (leader_ == index) leader_.reset();
  }

  // A configured endpoint by name, or a channel made for the name on first
  // use and kept for the client's life.
  absl::StatusOr<Endpoint*> Named(absl::string_view name) {
    for (const auto& endpoint : endpoints_) {
      if (endpoint->name == name) return endpoint.get();
    }
    absl::MutexLock lock(&mu_);
    auto it = others_.find(std::string(name));
    if (it != others_.end()) return it->second.get();
    absl::StatusOr<std::unique_ptr<Endpoint>> endpoint = Dial(name);
    if (!endpoint.ok()) return endpoint.status();
    Endpoint* raw = endpoint->get();
    others_.emplace(std::string(name), *std::move(endpoint));
    return raw;
  }

  const ClientOptions options_;
  // Fixed after Init.
  std::vector<std::unique_ptr<Endpoint>> endpoints_;

  absl::Mutex mu_;
  // Invariant: < endpoints_.size().
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<size_t> leader_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Endpoint>> others_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status status = impl->Init(); !status.ok()) return status;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

const std::vector<std::string>& Client::endpoints() const { return impl_->endpoint_names(); }

absl::StatusOr<RangeResponse> Client::Range(const RangeRequest& request) {
  return impl_->Read<RangeResponse>([&](Endpoint& e, grpc::ClientContext* c, RangeResponse* r) {
    return e.kv->Range(c, request, r);
  });
}

absl::StatusOr<PutResponse> Client::Put(const PutRequest& request) {
  return impl_->Write<PutResponse>([&](Endpoint& e, grpc::ClientContext* c, PutResponse* r) {
    return e.kv->Put(c, request, r);
  });
}

absl::StatusOr<DeleteRangeResponse> Client::DeleteRange(const DeleteRangeRequest& request) {
  return impl_->Write<DeleteRangeResponse>(
      [&](Endpoint& e, grpc::ClientContext* c, DeleteRangeResponse* r) {
        return e.kv->DeleteRange(c, request, r);
      });
}

absl::StatusOr<TxnResponse> Client::Txn(const TxnRequest& request) {
  return impl_->Write<TxnResponse>([&](Endpoint& e, grpc::ClientContext* c, TxnResponse* r) {
    return e.kv->Txn(c, request, r);
  });
}

absl::StatusOr<CompactionResponse> Client::Compact(const CompactionRequest& request) {
  return impl_->Write<CompactionResponse>(
      [&](Endpoint& e, grpc::ClientContext* c, CompactionResponse* r) {
        return e.kv->Compact(c, request, r);
      });
}

absl::StatusOr<LeaseGrantResponse> Client::Grant(int64_t ttl, int64_t id) {
  LeaseGrantRequest request;
  request.set_ttl(ttl);
  request.set_id(id);
  return impl_->Write<LeaseGrantResponse>(
      [&](Endpoint& e, grpc::ClientContext* c, LeaseGrantResponse* r) {
        return e.lease->LeaseGrant(c, request, r);
      });
}

absl::StatusOr<LeaseRevokeResponse> Client::Revoke(int64_t id) {
  LeaseRevokeRequest request;
  request.set_id(id);
  return impl_->Write<LeaseRevokeResponse>(
      [&](Endpoint& e, grpc::ClientContext* c, LeaseRevokeResponse* r) {
        return e.lease->LeaseRevoke(c, request, r);
      });
}

absl::StatusOr<LeaseTimeToLiveResponse> Client::TimeToLive(int64_t id, bool keys) {
  LeaseTimeToLiveRequest request;
  request.set_id(id);
  request.set_keys(keys);
  return impl_->Read<LeaseTimeToLiveResponse>(
      [&](Endpoint& e, grpc::ClientContext* c, LeaseTimeToLiveResponse* r) {
        return e.lease->LeaseTimeToLive(c, request, r);
      });
}

absl::StatusOr<LeaseLeasesResponse> Client::Leases() {
  return impl_->Read<LeaseLeasesResponse>(
      [](Endpoint& e, grpc::ClientContext* c, LeaseLeasesResponse* r) {
        return e.lease->LeaseLeases(c, LeaseLeasesRequest(), r);
      });
}

absl::StatusOr<LeaseKeepAliveResponse> Client::KeepAliveOnce(int64_t id) {
  // One request on a stream of its own, closed after the answer; renewing
  // twice is harmless, so it is retried as a read.
  absl::StatusOr<LeaseKeepAliveResponse> response = impl_->Read<LeaseKeepAliveResponse>(
      [id](Endpoint& e, grpc::ClientContext* c, LeaseKeepAliveResponse* r) {
        auto stream = e.lease->LeaseKeepAlive(c);
        LeaseKeepAliveRequest request;
        request.set_id(id);
        if (!stream->Write(request)) return stream->Finish();
        stream->WritesDone();
        if (!stream->Read(r)) {
          grpc::Status status = stream->Finish();
          if (status.ok()) {
            return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "keep-alive stream closed without an answer");
          }
          return status;
        }
        return stream->Finish();
      });
  if (response.ok() && response->ttl() <= 0) {
    return absl::NotFoundError("etcdserver: requested lease not found");
  }
  return response;
}

absl::StatusOr<Client::Connection> Client::Connect(absl::Time deadline, int after) {
  return impl_->Connect(deadline, after);
}

const ClientOptions& Client::options() const { return impl_->options(); }

absl::StatusOr<MemberListResponse> Client::MemberList() {
  return impl_->Read<MemberListResponse>(
      [](Endpoint& e, grpc::ClientContext* c, MemberListResponse* r) {
        return e.cluster->MemberList(c, MemberListRequest(), r);
      });
}

absl::StatusOr<StatusResponse> Client::Status() {
  return impl_->Read<StatusResponse>([](Endpoint& e, grpc::ClientContext* c, StatusResponse* r) {
    return e.maintenance->Status(c, StatusRequest(), r);
  });
}

absl::StatusOr<HashKVResponse> Client::HashKV(int64_t revision) {
  HashKVRequest request;
  request.set_revision(revision);
  return impl_->Read<HashKVResponse>([&](Endpoint& e, grpc::ClientContext* c, HashKVResponse* r) {
    return e.maintenance->HashKV(c, request, r);
  });
}

absl::StatusOr<StatusResponse> Client::EndpointStatus(absl::string_view endpoint) {
  return impl_->Once<StatusResponse>(endpoint,
                                     [](Endpoint& e, grpc::ClientContext* c, StatusResponse* r) {
                                       return e.maintenance->Status(c, StatusRequest(), r);
                                     });
}

absl::StatusOr<HashKVResponse> Client::EndpointHashKV(absl::string_view endpoint,
                                                      int64_t revision) {
  HashKVRequest request;
  request.set_revision(revision);
  return impl_->Once<HashKVResponse>(endpoint,
                                     [&](Endpoint& e, grpc::ClientContext* c, HashKVResponse* r) {
                                       return e.maintenance->HashKV(c, request, r);
                                     });
}

absl::Status Client::EndpointHealth(absl::string_view endpoint) {
  RangeRequest request;
  request.set_key("health");
  absl::StatusOr<RangeResponse> response = impl_->Once<RangeResponse>(
      endpoint, [&](Endpoint& e, grpc::ClientContext* c, RangeResponse* r) {
        return e.kv->Range(c, request, r);
      });
  // A refusal for permission also went through a quorum read.
  if (!response.ok() && response.status().code() != absl::StatusCode::kPermissionDenied) {
    return response.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Client::LeaderEndpoint() {
  absl::StatusOr<size_t> leader = impl_->FindLeader(absl::Now() + impl_->options().call_timeout);
  if (!leader.ok()) return leader.status();
  return impl_->EndpointName(*leader);
}

}  // namespace arbiter::client
