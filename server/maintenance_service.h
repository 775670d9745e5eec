// etcdserverpb.Maintenance and etcdserverpb.Cluster on the client port, as
// far as they describe the member and the cluster: Status, HashKV,
// MoveLeader, Alarm (no alarms are raised yet, so GET answers none) and
// MemberList.
// Methods not served answer UNIMPLEMENTED naming the method.
//
// Thread safety: gRPC calls the handlers from many threads; they read the
// member's published status and the immutable identity only.
#ifndef ARBITER_SERVER_MAINTENANCE_SERVICE_H_
#define ARBITER_SERVER_MAINTENANCE_SERVICE_H_

#include <cstdint>

#include "proto/rpc.grpc.pb.h"
#include "server/arbiter_server.h"
#include "server/store_info.h"

namespace arbiter::server {

// The version reported by Status: clients check it parses as 3.4 or later.
// It names the etcd release whose behaviour Arbiter reproduces (and that the
// conformance tests in tests/client run against), so `etcdctl endpoint
// status` prints the same line for both servers.
inline constexpr char kEtcdApiVersion[] = "3.4.23";

// Fills the header every response carries.
void FillHeader(ArbiterServer* server, const StoreInfo* store, etcdserverpb::ResponseHeader* h);

class MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  // Neither is owned; both must outlive the service.
  MaintenanceService(ArbiterServer* server, const StoreInfo* store)
      : server_(server), store_(store) {}

  grpc::Status Status(grpc::ServerContext* ctx, const etcdserverpb::StatusRequest* req,
                      etcdserverpb::StatusResponse* resp) override;
  grpc::Status MoveLeader(grpc::ServerContext* ctx, const etcdserverpb::MoveLeaderRequest* req,
                          etcdserverpb::MoveLeaderResponse* resp) override;
  grpc::Status HashKV(grpc::ServerContext* ctx, const etcdserverpb::HashKVRequest* req,
                      etcdserverpb::HashKVResponse* resp) override;
  grpc::Status Alarm(grpc::ServerContext* ctx, const etcdserverpb::AlarmRequest* req,
                     etcdserverpb::AlarmResponse* resp) override;

 private:
  ArbiterServer* const server_;
  const StoreInfo* const store_;
};

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  ClusterService(ArbiterServer* server, const StoreInfo* store) : server_(server), store_(store) {}

  grpc::Status MemberList(grpc::ServerContext* ctx, const etcdserverpb::MemberListRequest* req,
                          etcdserverpb::MemberListResponse* resp) override;

 private:
  ArbiterServer* const server_;
  const StoreInfo* const store_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_MAINTENANCE_SERVICE_H_
