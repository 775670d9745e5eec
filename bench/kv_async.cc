// arbiter-bench: the closed-loop key-value workloads (put, range, txn-put,
// mixed) driven through gRPC's callback API.
//
// Each of the --clients logical clients keeps exactly one operation in
// flight, as a thread making blocking calls would, but no thread waits per
// client: the completion of one call starts the client's next one on
// gRPC's own threads. A blocking client spends a thread wake-up and a
// context switch on every call, which on a small machine costs the load
// generator more CPU than a lean server spends answering, and that CPU is
// taken from the servers being measured.
//
// Thread safety: a client's state is touched by one callback at a time (its
// next call starts only after the previous one completed); the shared
// counters are atomics and the totals are merged under a mutex at the end.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_common.h"
#include "grpcpp/grpcpp.h"
#include "proto/rpc.grpc.pb.h"

namespace arbiter::bench {
namespace {

std::string KeyOf(const Options& o, int64_t i) {
  std::string k = absl::StrFormat("%0*d", o.key_size, i % o.key_space);
  if (static_cast<int>(k.size()) > o.key_size) k = k.substr(k.size() - o.key_size);
  return k;
}

// What every client shares: the workload, when to stop, and the totals.
struct Run {
  const Options* o = nullptr;
  std::string value;
  std::atomic<int64_t> next{0};
  absl::Time end;

  absl::Mutex mu;
  int active ABSL_GUARDED_BY(mu) = 0;
  int64_t ok ABSL_GUARDED_BY(mu) = 0;
  arbiter::server::Histogram micros ABSL_GUARDED_BY(mu);
  std::map<std::string, int64_t> errors ABSL_GUARDED_BY(mu);
};

// One operation's calls: gRPC needs the context, request and response to
// live until the call completes.
struct Op {
  grpc::ClientContext ctx;
  grpc::ClientContext ctx2;  // txn-put's second call
  etcdserverpb::PutRequest put;
  etcdserverpb::PutResponse put_resp;
  etcdserverpb::RangeRequest range;
  etcdserverpb::RangeResponse range_resp;
  etcdserverpb::TxnRequest txn;
  etcdserverpb::TxnResponse txn_resp;
  absl::Time t0;
};

class Client {
 public:
  Client(Run* run, etcdserverpb::KV::Stub* kv) : run_(run), kv_(kv) {}

  // Starts the next operation, or reports this client finished.
  void Next() {
    const Options& o = *run_->o;
    const int64_t n = run_->next.fetch_add(1);
    if (n >= o.total || absl::Now() >= run_->end) {
      Finish();
      return;
    }
    op_ = std::make_unique<Op>();
    op_->t0 = absl::Now();
    const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
    op_->ctx.set_deadline(deadline);
    op_->ctx2.set_deadline(deadline);
    const int64_t idx = o.sequential ? n : absl::Uniform<int64_t>(rng_, 0, o.key_space);
    std::string workload = o.workload;
    if (workload == "mixed") workload = absl::Bernoulli(rng_, o.read_ratio) ? "range" : "put";
    auto done = [this](grpc::Status s) { Done(s); };
    if (workload == "put") {
      op_->put.set_key(KeyOf(o, idx));
      op_->put.set_value(run_->value);
      kv_->async()->Put(&op_->ctx, &op_->put, &op_->put_resp, done);
    } else if (workload == "range") {
      op_->range.set_key(KeyOf(o, idx));
      op_->range.set_serializable(o.consistency == "s");
      kv_->async()->Range(&op_->ctx, &op_->range, &op_->range_resp, done);
    } else {
      // txn-put: a serializable read, then a put only if the key's mod
      // revision is still what the read saw (a compare-and-swap).
      op_->range.set_key(KeyOf(o, idx));
      op_->range.set_serializable(true);
      kv_->async()->Range(&op_->ctx, &op_->range, &op_->range_resp,
                          [this](grpc::Status s) { ReadDone(s); });
    }
  }

 private:
  void ReadDone(const grpc::Status& s) {
    if (!s.ok()) {
      Done(s);
      return;
    }
    etcdserverpb::Compare* c = op_->txn.add_compare();
    c->set_key(op_->range.key());
    c->set_target(etcdserverpb::Compare::MOD);
    c->set_result(etcdserverpb::Compare::EQUAL);
    c->set_mod_revision(op_->range_resp.kvs_size() > 0 ? op_->range_resp.kvs(0).mod_revision() : 0);
    etcdserverpb::PutRequest* p = op_->txn.add_success()->mutable_request_put();
    p->set_key(op_->range.key());
    p->set_value(run_->value);
    kv_->async()->Txn(&op_->ctx2, &op_->txn, &op_->txn_resp, [this](grpc::Status s) { Done(s); });
  }

  void Done(const grpc::Status& s) {
    if (s.ok()) {
      ++ok_;
      micros_.Record(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - op_->t0)));
    } else {
      ++errors_[CodeName(s.error_code())];
    }
    Next();
  }

  void Finish() {
    op_.reset();
    absl::MutexLock l(&run_->mu);
    run_->ok += ok_;
    run_->micros.Merge(micros_);
    for (const auto& [k, v] : errors_) run_->errors[k] += v;
    --run_->active;
  }

  Run* const run_;
  etcdserverpb::KV::Stub* const kv_;
  absl::BitGen rng_;
  std::unique_ptr<Op> op_;
  int64_t ok_ = 0;
  arbiter::server::Histogram micros_;
  std::map<std::string, int64_t> errors_;
};

}  // namespace

int RunKvAsync(const Options& o) {
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (const auto& ch : MakeChannels(o)) stubs.push_back(etcdserverpb::KV::NewStub(ch));
  Run run;
  run.o = &o;
  run.value.assign(o.val_size, 'v');
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < o.clients; ++c) {
    clients.push_back(std::make_unique<Client>(&run, stubs[c % stubs.size()].get()));
  }
  const ServerUsage usage0 = SampleServers(o.server_pids);
  const absl::Time start = absl::Now();
  run.end = start + absl::Seconds(o.max_time_s);
  {
    absl::MutexLock l(&run.mu);
    run.active = o.clients;
  }
  for (auto& c : clients) c->Next();
  // Every call has a 5 s deadline, so the clients finish by then.
  run.mu.LockWhen(absl::Condition(
      +[](int* active) { return *active == 0; }, &run.active));
  Report r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  r.ops = run.ok;
  r.micros = run.micros;
  r.errors = run.errors;
  run.mu.Unlock();
  RecordServerUsage(o, usage0, &r);
  PrintReport(o, r);
  return r.ops > 0 ? 0 : 1;
}

}  // namespace arbiter::bench
