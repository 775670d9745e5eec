// etcdserverpb.Lease on the client port. Grant and Revoke go through the
// log; KeepAlive and TimeToLive are answered by the leader's lessor
// (server/lessor.h), so a follower forwards them to the leader's client URL
// (from the replicated member table), as etcd does; Leases lists the
// replicated table.
//
// etcd's semantics for unknown leases: KeepAlive answers TTL 0, TimeToLive
// TTL -1, Revoke NotFound "etcdserver: requested lease not found".
//
// Thread safety: gRPC calls the handlers from many threads.
#ifndef ARBITER_SERVER_LEASE_SERVICE_H_
#define ARBITER_SERVER_LEASE_SERVICE_H_

#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kvstore/kv_state_machine.h"
#include "proto/rpc.grpc.pb.h"
#include "server/arbiter_server.h"
#include "server/lessor.h"

namespace arbiter::server {

class LeaseService final : public etcdserverpb::Lease::Service {
 public:
  // None is owned; all must outlive the service.
  LeaseService(ArbiterServer* server, const kv::KvStateMachine* kv, Lessor* lessor,
               absl::Duration request_timeout)
      : server_(server), kv_(kv), lessor_(lessor), timeout_(request_timeout) {}

  grpc::Status LeaseGrant(grpc::ServerContext* ctx, const etcdserverpb::LeaseGrantRequest* req,
                          etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::Status LeaseRevoke(grpc::ServerContext* ctx, const etcdserverpb::LeaseRevokeRequest* req,
                           etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::Status LeaseKeepAlive(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse,
                               etcdserverpb::LeaseKeepAliveRequest>* stream) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* ctx,
                               const etcdserverpb::LeaseTimeToLiveRequest* req,
                               etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::Status LeaseLeases(grpc::ServerContext* ctx, const etcdserverpb::LeaseLeasesRequest* req,
                           etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  class KeepAliveForwarder;

  void FillHeader(etcdserverpb::ResponseHeader* h);
  // A stub for the current leader's client port; nullptr if no leader (or
  // its URL) is known.
  std::shared_ptr<etcdserverpb::Lease::Stub> LeaderStub();

  ArbiterServer* const server_;
  const kv::KvStateMachine* const kv_;
  Lessor* const lessor_;
  const absl::Duration timeout_;

  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<etcdserverpb::Lease::Stub>> stubs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_LEASE_SERVICE_H_
