// etcdserverpb.Watch on the client port: one bidirectional stream carries
// many watchers (kvstore/watch_hub.h does the routing and the guarantees).
// The handler thread reads the client's requests; a writer thread per
// stream sends what the hub queues, so a slow client only slows itself.
//
// hasleader: a stream opened with "hasleader: true" is refused at once
// with "etcdserver: no leader" when no leader is known, and is canceled if
// the member goes without a leader for three election timeouts.
//
// Thread safety: gRPC runs handlers on many threads; the hub is thread-safe.
#ifndef ARBITER_SERVER_WATCH_SERVICE_H_
#define ARBITER_SERVER_WATCH_SERVICE_H_

#include "absl/time/time.h"
#include "kvstore/watch_hub.h"
#include "proto/rpc.grpc.pb.h"
#include "server/arbiter_server.h"

namespace arbiter::server {

class WatchService final : public etcdserverpb::Watch::Service {
 public:
  // Neither is owned; both must outlive the service.
  WatchService(ArbiterServer* server, kv::WatchHub* hub, absl::Duration leader_loss_timeout)
      : server_(server), hub_(hub), leader_loss_timeout_(leader_loss_timeout) {}

  grpc::Status Watch(grpc::ServerContext* ctx,
                     grpc::ServerReaderWriter<etcdserverpb::WatchResponse,
                                              etcdserverpb::WatchRequest>* stream) override;

 private:
  ArbiterServer* const server_;
  kv::WatchHub* const hub_;
  const absl::Duration leader_loss_timeout_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_WATCH_SERVICE_H_
