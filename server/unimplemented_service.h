// Answers every gRPC method that no registered service implements with
// UNIMPLEMENTED and a message naming the method, instead of gRPC's bare
// "unknown method", so a client calling an etcd API this server does not
// serve yet learns which call it was.
//
// Thread safety: stateless; gRPC calls it from any thread.
#ifndef ARBITER_SERVER_UNIMPLEMENTED_SERVICE_H_
#define ARBITER_SERVER_UNIMPLEMENTED_SERVICE_H_

#include <string>

#include "grpcpp/generic/async_generic_service.h"

namespace arbiter::server {

class UnimplementedService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(const std::string& method) {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            method + " is not implemented by this Arbiter server"));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor(ctx->method());
  }
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_UNIMPLEMENTED_SERVICE_H_
