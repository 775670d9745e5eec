// etcdserverpb.Maintenance and etcdserverpb.Cluster on the client port, as
// far as they describe the member and the cluster: Status, HashKV, Hash
// (HashKV's digest at the current revision: etcd's digests its backend
// file, which has no counterpart here), MoveLeader, Alarm (no alarms are
// raised yet, so GET answers none), Defragment and MemberList.
//
// Defragment succeeds without doing anything: etcd rewrites its B+tree file
// to give back the pages of compacted revisions, while LevelDB drops deleted
// entries in its own background compactions. Membership changes are not
// served yet: MemberRemove, MemberUpdate and MemberPromote of an ID that is
// not a member fail as etcd's do ("etcdserver: member not found"), and
// otherwise, like MemberAdd and Snapshot, answer UNIMPLEMENTED naming
// the method, as methods of services not registered at all do.
//
// Thread safety: gRPC calls the handlers from many threads; they read the
// member's published status and the immutable identity only.
#ifndef ARBITER_SERVER_MAINTENANCE_SERVICE_H_
#define ARBITER_SERVER_MAINTENANCE_SERVICE_H_

#include <cstdint>
#include <map>

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
  grpc::Status Defragment(grpc::ServerContext* ctx, const etcdserverpb::DefragmentRequest* req,
                          etcdserverpb::DefragmentResponse* resp) override;
  grpc::Status Hash(grpc::ServerContext* ctx, const etcdserverpb::HashRequest* req,
                    etcdserverpb::HashResponse* resp) override;
  grpc::Status Snapshot(grpc::ServerContext* ctx, const etcdserverpb::SnapshotRequest* req,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override;

 private:
  ArbiterServer* const server_;
  const StoreInfo* const store_;
};

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  ClusterService(ArbiterServer* server, const StoreInfo* store) : server_(server), store_(store) {}

  grpc::Status MemberList(grpc::ServerContext* ctx, const etcdserverpb::MemberListRequest* req,
                          etcdserverpb::MemberListResponse* resp) override;
  grpc::Status MemberAdd(grpc::ServerContext* ctx, const etcdserverpb::MemberAddRequest* req,
                         etcdserverpb::MemberAddResponse* resp) override;
  grpc::Status MemberRemove(grpc::ServerContext* ctx, const etcdserverpb::MemberRemoveRequest* req,
                            etcdserverpb::MemberRemoveResponse* resp) override;
  grpc::Status MemberUpdate(grpc::ServerContext* ctx, const etcdserverpb::MemberUpdateRequest* req,
                            etcdserverpb::MemberUpdateResponse* resp) override;
  grpc::Status MemberPromote(grpc::ServerContext* ctx,
                             const etcdserverpb::MemberPromoteRequest* req,
                             etcdserverpb::MemberPromoteResponse* resp) override;

 private:
  // The members by ID: the bootstrap membership (names and peer URLs),
  // overlaid with what members published through the log.
  std::map<uint64_t, etcdserverpb::Member> Members() const;
  // NOT_FOUND "etcdserver: member not found" unless id is a member, else
  // UNIMPLEMENTED naming method.
  grpc::Status RefuseChange(uint64_t id, const char* method) const;

  ArbiterServer* const server_;
  const StoreInfo* const store_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_MAINTENANCE_SERVICE_H_
