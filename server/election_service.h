// v3electionpb.Election and v3lockpb.Lock on the client port, built on the
// recipes of server/concurrency.h so that they and etcdctl's client-side
// `elect` and `lock` agree on holders. Lock and Campaign check that the
// lease is still alive before they answer. LockResponse.header.revision and
// LeaderKey.rev are the fencing token (the holder key's create revision);
// docs/api.md shows how a resource uses it.
//
// Errors as etcd's: "election: no leader", "election: not leader" and
// "\"leader\" field must be provided" with code UNKNOWN; lease and key
// errors with etcd's codes and strings.
//
// Thread safety: gRPC calls the handlers from many threads.
#ifndef ARBITER_SERVER_ELECTION_SERVICE_H_
#define ARBITER_SERVER_ELECTION_SERVICE_H_

#include "absl/time/time.h"
#include "kvstore/kv_state_machine.h"
#include "kvstore/watch_hub.h"
#include "proto/v3election.grpc.pb.h"
#include "proto/v3lock.grpc.pb.h"
#include "server/kv_service.h"

namespace arbiter::server {

class ElectionService final : public v3electionpb::Election::Service {
 public:
  // None is owned; all must outlive the service.
  ElectionService(KvService* kv, const kv::KvStateMachine* store, kv::WatchHub* hub,
                  absl::Duration request_timeout)
      : kv_(kv), store_(store), hub_(hub), timeout_(request_timeout) {}

  grpc::Status Campaign(grpc::ServerContext* ctx, const v3electionpb::CampaignRequest* req,
                        v3electionpb::CampaignResponse* resp) override;
  grpc::Status Proclaim(grpc::ServerContext* ctx, const v3electionpb::ProclaimRequest* req,
                        v3electionpb::ProclaimResponse* resp) override;
  grpc::Status Leader(grpc::ServerContext* ctx, const v3electionpb::LeaderRequest* req,
                      v3electionpb::LeaderResponse* resp) override;
  grpc::Status Observe(grpc::ServerContext* ctx, const v3electionpb::LeaderRequest* req,
                       grpc::ServerWriter<v3electionpb::LeaderResponse>* writer) override;
  grpc::Status Resign(grpc::ServerContext* ctx, const v3electionpb::ResignRequest* req,
                      v3electionpb::ResignResponse* resp) override;

 private:
  KvService* const kv_;
  const kv::KvStateMachine* const store_;
  kv::WatchHub* const hub_;
  const absl::Duration timeout_;
};

class LockService final : public v3lockpb::Lock::Service {
 public:
  LockService(KvService* kv, const kv::KvStateMachine* store, kv::WatchHub* hub,
              absl::Duration request_timeout)
      : kv_(kv), store_(store), hub_(hub), timeout_(request_timeout) {}

  grpc::Status Lock(grpc::ServerContext* ctx, const v3lockpb::LockRequest* req,
                    v3lockpb::LockResponse* resp) override;
  grpc::Status Unlock(grpc::ServerContext* ctx, const v3lockpb::UnlockRequest* req,
                      v3lockpb::UnlockResponse* resp) override;

 private:
  KvService* const kv_;
  const kv::KvStateMachine* const store_;
  kv::WatchHub* const hub_;
  const absl::Duration timeout_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_ELECTION_SERVICE_H_
