#include "server/etcd_errors.h"

#include "server/errors.h"

namespace arbiter::server::etcd {

grpc::Status FromMemberError(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  if (IsNoLeader(s)) return ErrNoLeader();
  if (IsLeadershipChanged(s)) return ErrLeaderChanged();
  if (IsStopped(s)) return ErrStopped();
  if (IsInboxFull(s)) return ErrTooManyRequests();
  if (IsTimeout(s)) return ErrTimeout();
  return grpc::Status(grpc::StatusCode::UNKNOWN, std::string(s.message()));
}

}  // namespace arbiter::server::etcd
