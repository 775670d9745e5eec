// arbiter-grpc-floor: an etcd KV service that does no work. Range, Put,
// DeleteRange and Txn answer at once with a fixed response of the usual
// shape (Range: one 256-byte value under the requested key), with no
// consensus, storage or locking behind them. It runs on the same gRPC
// library, API (callback) and server options as arbiterd's KV service, so
// driving three of these with arbiter-bench measures what gRPC and the
// kernel alone cost per call on this machine: the most that any server
// built on them could reach here. scripts/bench-vs-etcd.sh --floor runs it.
//
//   arbiter-grpc-floor --listen 127.0.0.1:23790
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/rpc.grpc.pb.h"

namespace arbiter::bench {
namespace {

void FillHeader(etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(0x1000);
  h->set_member_id(0x2000);
  h->set_revision(50000);
  h->set_raft_term(2);
}

class FloorKv final : public etcdserverpb::KV::CallbackService {
 public:
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override {
    FillHeader(resp->mutable_header());
    mvccpb::KeyValue* kv = resp->add_kvs();
    kv->set_key(req->key());
    kv->set_value(value_);
    kv->set_create_revision(100);
    kv->set_mod_revision(40000);
    kv->set_version(3);
    resp->set_count(1);
    return Done(ctx);
  }

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const etcdserverpb::PutRequest*,
                                etcdserverpb::PutResponse* resp) override {
    FillHeader(resp->mutable_header());
    return Done(ctx);
  }

  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::DeleteRangeRequest*,
                                        etcdserverpb::DeleteRangeResponse* resp) override {
    FillHeader(resp->mutable_header());
    return Done(ctx);
  }

  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override {
    FillHeader(resp->mutable_header());
    resp->set_succeeded(true);
    for (int i = 0; i < req->success_size(); ++i) {
      FillHeader(resp->add_responses()->mutable_response_put()->mutable_header());
    }
    return Done(ctx);
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx) {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

  const std::string value_ = std::string(256, 'v');
};

}  // namespace
}  // namespace arbiter::bench

int main(int argc, char** argv) {
  // As in arbiterd: no deadlock bookkeeping on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"arbiter-grpc-floor: an etcd KV service that answers at once (gRPC's own cost)"};
  std::string listen = "127.0.0.1:23790";
  app.add_option("--listen", listen, "host:port to serve on");
  CLI11_PARSE(app, argc, argv);

  arbiter::bench::FloorKv kv;
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  b.SetMaxReceiveMessageSize(2 * 1024 * 1024);
  b.SetMaxSendMessageSize(-1);
  b.RegisterService(&kv);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "arbiter-grpc-floor: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  server->Wait();
  return 0;
}
