// The C++ client of the etcd v3 API, for Arbiter and for etcd itself: the
// KV calls, the lease calls, the cluster's member list, and each member's
// status, hash and health. It holds one gRPC channel (HTTP/2 without TLS)
// per endpoint. Keeping leases alive in the background is lease.h's;
// elections and locks are concurrency.h's.
//
// Routing: writes (Put, DeleteRange, Txn, Compact) go to the leader, found
// by asking each endpoint's Maintenance/Status until one answers with
// header.member_id == leader, and remembered until a call to it fails with
// UNAVAILABLE. Reads (Range, Status, MemberList, HashKV, and the idempotent
// lease calls TimeToLive, Leases and KeepAliveOnce) go to the endpoint
// last found working, and on UNAVAILABLE are retried on the next endpoint
// with exponential backoff until the call's deadline. A write is sent at most
// once: when it fails after being sent, the error is returned, because it may
// have been applied. Before any call the chosen endpoint's channel must
// connect; an endpoint that refuses or does not connect within the dial
// timeout is skipped (the request has not left the process, so this is
// safe for writes too).
//
// Errors: a server error comes back as an absl::Status with the gRPC code and
// the server's message unchanged ("etcdserver: key is not provided" with
// INVALID_ARGUMENT). When the deadline passes first the code is
// DEADLINE_EXCEEDED.
//
// Thread safety: a Client is safe to use from many threads at once; calls
// block the calling thread only.
#ifndef ARBITER_CLIENT_CLIENT_H_
#define ARBITER_CLIENT_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/rpc.pb.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace arbiter::client {

struct ClientOptions {
  // "127.0.0.1:2379" or "http://127.0.0.1:2379"; at least one.
  std::vector<std::string> endpoints;
  // How long a channel may take to connect before its endpoint is skipped.
  absl::Duration dial_timeout = absl::Seconds(2);
  // The deadline of each call, retries included.
  absl::Duration call_timeout = absl::Seconds(5);
  // Backoff between read retries: doubles from initial up to max.
  absl::Duration initial_backoff = absl::Milliseconds(25);
  absl::Duration max_backoff = absl::Milliseconds(400);
  // Watch streams (client/watch.h) ping their member this often while
  // open (etcd's and Arbiter's servers refuse pings closer than 5 s; Go
  // clients ping every 10 s), and give up on it when a ping is not
  // answered in time.
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(5);
};

// "http://host:port" or "host:port" to "host:port". https and unix
// endpoints are refused: the client speaks only cleartext HTTP/2.
absl::StatusOr<std::string> EndpointTarget(absl::string_view endpoint);

class Client {
 public:
  // Checks the endpoints; connects lazily, on the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // KV. Range is a read; the others are writes.
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  absl::StatusOr<etcdserverpb::CompactionResponse> Compact(
      const etcdserverpb::CompactionRequest& request);

  // Leases. Grant and Revoke are writes. Grant with id 0 lets the server
  // choose the ID. KeepAliveOnce renews the lease once over a short-lived
  // LeaseKeepAlive stream; a lease that is gone (TTL 0 in the answer) is
  // NOT_FOUND "etcdserver: requested lease not found", as clientv3 reports
  // it. TimeToLive of an unknown lease is not an error: TTL -1.
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> Grant(int64_t ttl, int64_t id = 0);
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> Revoke(int64_t id);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(int64_t id, bool keys);
  absl::StatusOr<etcdserverpb::LeaseLeasesResponse> Leases();
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> KeepAliveOnce(int64_t id);

  // Cluster-wide reads, answered by any endpoint.
  absl::StatusOr<etcdserverpb::MemberListResponse> MemberList();
  absl::StatusOr<etcdserverpb::StatusResponse> Status();
  absl::StatusOr<etcdserverpb::HashKVResponse> HashKV(int64_t revision);

  // One endpoint's own answers, asked once: the endpoint may take until the
  // deadline to connect, and is never swapped for another. The endpoint
  // need not be one of the client's (etcdctl --cluster asks the members'
  // client URLs).
  absl::StatusOr<etcdserverpb::StatusResponse> EndpointStatus(absl::string_view endpoint);
  absl::StatusOr<etcdserverpb::HashKVResponse> EndpointHashKV(absl::string_view endpoint,
                                                              int64_t revision);
  // Healthy when a linearizable Range of the key "health" succeeds (or is
  // refused for permission, which also needs a quorum), as etcdctl 3.4
  // decides.
  absl::Status EndpointHealth(absl::string_view endpoint);

  // The endpoint of the leader, asking the endpoints if it is not known.
  // NOT_FOUND when no endpoint reports itself as the leader.
  absl::StatusOr<std::string> LeaderEndpoint();

  const std::vector<std::string>& endpoints() const;

  // For long-lived calls (lease keep-alive streams, campaigns, locks,
  // observations; see lease.h and concurrency.h): the channel of an
  // endpoint that connects, trying them in turn from the one after `after`
  // (or from the preferred one when `after` is negative). UNAVAILABLE when
  // none connects before the deadline.
  struct Connection {
    std::shared_ptr<grpc::Channel> channel;
    int index = 0;  // Into endpoints().
  };
  absl::StatusOr<Connection> Connect(absl::Time deadline, int after = -1);
  const ClientOptions& options() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace arbiter::client

#endif  // ARBITER_CLIENT_CLIENT_H_
