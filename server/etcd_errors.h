// etcd's client-visible errors: the gRPC code and the exact message of each,
// since clients (clientv3, python-etcd3, the gateway) match on the message
// string. Also the mapping from the member's errors (server/errors.h) onto
// etcd's.
//
// Thread safety: plain functions; safe from any thread.
#ifndef ARBITER_SERVER_ETCD_ERRORS_H_
#define ARBITER_SERVER_ETCD_ERRORS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace arbiter::server::etcd {

inline grpc::Status Err(grpc::StatusCode code, const char* msg) { return grpc::Status(code, msg); }

inline grpc::Status ErrNoLeader() {
  return Err(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader");
}
inline grpc::Status ErrLeaderChanged() {
  return Err(grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed");
}
inline grpc::Status ErrStopped() {
  return Err(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped");
}
inline grpc::Status ErrTimeout() {
  return Err(grpc::StatusCode::UNAVAILABLE, "etcdserver: request timed out");
}
inline grpc::Status ErrTooManyRequests() {
  return Err(grpc::StatusCode::RESOURCE_EXHAUSTED, "etcdserver: too many requests");
}
inline grpc::Status ErrRequestTooLarge() {
  return Err(grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large");
}
inline grpc::Status ErrNotLeader() {
  return Err(grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: not leader");
}
inline grpc::Status ErrBadLeaderTransferee() {
  return Err(grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: bad leader transferee");
}
inline grpc::Status ErrMemberNotFound() {
  return Err(grpc::StatusCode::NOT_FOUND, "etcdserver: member not found");
}

// A member error (ErrNoLeader, ErrTimeout, ...) as etcd reports it.
grpc::Status FromMemberError(const absl::Status& s);

// An absl::Status whose code and message already are etcd's.
inline grpc::Status FromStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace arbiter::server::etcd

#endif  // ARBITER_SERVER_ETCD_ERRORS_H_
