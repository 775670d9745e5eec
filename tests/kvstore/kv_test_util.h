// Helpers for the KvStateMachine tests: a store over an in-memory FaultEnv,
// request builders, and applying commands at consecutive log indexes.
//
// Thread safety: use from the test thread (reader tests start their own
// threads on the store itself).
#ifndef ARBITER_TESTS_KVSTORE_KV_TEST_UTIL_H_
#define ARBITER_TESTS_KVSTORE_KV_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "kvstore/fault_env.h"
#include "kvstore/kv_state_machine.h"
#include "leveldb/env.h"
#include "leveldb/helpers/memenv.h"
#include "proto/internal.pb.h"
#include "proto/rpc.pb.h"

namespace arbiter::kv::testing {

inline internalpb::Request PutReq(const std::string& key, const std::string& value,
                                  int64_t lease = 0) {
  internalpb::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  r.mutable_put()->set_lease(lease);
  return r;
}

inline internalpb::Request DelReq(const std::string& key, const std::string& end = "",
                                  bool prev_kv = false) {
  internalpb::Request r;
  r.mutable_delete_range()->set_key(key);
  r.mutable_delete_range()->set_range_end(end);
  r.mutable_delete_range()->set_prev_kv(prev_kv);
  return r;
}

inline internalpb::Request CompactReq(int64_t rev) {
  internalpb::Request r;
  r.mutable_compaction()->set_revision(rev);
  return r;
}

inline internalpb::Request GrantReq(int64_t ttl, int64_t id = 0) {
  internalpb::Request r;
  r.mutable_lease_grant()->set_ttl(ttl);
  r.mutable_lease_grant()->set_id(id);
  return r;
}

inline internalpb::Request RevokeReq(int64_t id) {
  internalpb::Request r;
  r.mutable_lease_revoke()->set_id(id);
  return r;
}

inline etcdserverpb::RequestOp PutOp(const std::string& key, const std::string& value,
                                     int64_t lease = 0) {
  etcdserverpb::RequestOp op;
  op.mutable_request_put()->set_key(key);
  op.mutable_request_put()->set_value(value);
  op.mutable_request_put()->set_lease(lease);
  return op;
}

inline etcdserverpb::RequestOp DelOp(const std::string& key, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_delete_range()->set_key(key);
  op.mutable_request_delete_range()->set_range_end(end);
  return op;
}

inline etcdserverpb::RequestOp RangeOp(const std::string& key, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_range()->set_key(key);
  op.mutable_request_range()->set_range_end(end);
  return op;
}

inline etcdserverpb::Compare Cmp(const std::string& key, etcdserverpb::Compare::CompareTarget t,
                                 etcdserverpb::Compare::CompareResult result, int64_t operand) {
  etcdserverpb::Compare c;
  c.set_key(key);
  c.set_target(t);
  c.set_result(result);
  switch (t) {
    case etcdserverpb::Compare::VERSION:
      c.set_version(operand);
      break;
    case etcdserverpb::Compare::CREATE:
      c.set_create_revision(operand);
      break;
    case etcdserverpb::Compare::MOD:
      c.set_mod_revision(operand);
      break;
    case etcdserverpb::Compare::LEASE:
      c.set_lease(operand);
      break;
    default:
      break;
  }
  return c;
}

inline etcdserverpb::Compare CmpValue(const std::string& key,
                                      etcdserverpb::Compare::CompareResult result,
                                      const std::string& value) {
  etcdserverpb::Compare c;
  c.set_key(key);
  c.set_target(etcdserverpb::Compare::VALUE);
  c.set_result(result);
  c.set_value(value);
  return c;
}

inline etcdserverpb::RangeRequest RangeReq(const std::string& key, const std::string& end = "") {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_range_end(end);
  return r;
}

// A store in an in-memory file system (behind a FaultEnv), with a log index
// that advances by one per command.
class KvHarness {
 public:
  explicit KvHarness(KvStateMachine::Options options = {})
      : mem_(leveldb::NewMemEnv(leveldb::Env::Default())),
        fault_(std::make_unique<FaultEnv>(mem_.get())),
        options_(options) {
    options_.env = fault_.get();
    Reopen();
  }

  // Closes and opens the store again (nothing is lost: no crash).
  void Reopen() {
    sm_.reset();
    absl::StatusOr<std::unique_ptr<KvStateMachine>> sm = KvStateMachine::Open(dir_, options_);
    ASSERT_TRUE(sm.ok()) << sm.status();
    sm_ = std::move(*sm);
    index_ = sm_->AppliedIndex();
  }

  // Closes the store (Reopen opens it again).
  void Close() { sm_.reset(); }
  const std::string& dir() const { return dir_; }

  // Closes the store, drops what LevelDB wrote but never synced (power
  // loss), and opens it again.
  void Crash() {
    sm_.reset();
    ASSERT_TRUE(fault_->DropUnsyncedData().ok());
    Reopen();
  }

  // Applies r at the next index; fails the test on a storage error.
  internalpb::Response Apply(internalpb::Request r) {
    internalpb::Response resp;
    std::string out;
    absl::Status s = sm_->Apply(++index_, r.SerializeAsString(), &out);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(resp.ParseFromString(out));
    return resp;
  }

  internalpb::Response Txn(etcdserverpb::TxnRequest t) {
    internalpb::Request r;
    *r.mutable_txn() = std::move(t);
    return Apply(std::move(r));
  }

  etcdserverpb::RangeResponse Get(const etcdserverpb::RangeRequest& r) {
    etcdserverpb::RangeResponse resp;
    absl::Status s = sm_->Range(r, &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }
  etcdserverpb::RangeResponse Get(const std::string& key, const std::string& end = "") {
    return Get(RangeReq(key, end));
  }

  KvStateMachine* sm() { return sm_.get(); }
  FaultEnv* fault_env() { return fault_.get(); }
  leveldb::Env* mem_env() { return mem_.get(); }
  uint64_t index() const { return index_; }
  void set_index(uint64_t index) { index_ = index; }
  const KvStateMachine::Options& options() const { return options_; }

 private:
  std::unique_ptr<leveldb::Env> mem_;
  std::unique_ptr<FaultEnv> fault_;
  KvStateMachine::Options options_;
  const std::string dir_ = "/mvcc";
  std::unique_ptr<KvStateMachine> sm_;
  uint64_t index_ = 0;
};

// The etcd error a response carries, as a Status (OK if none).
inline absl::Status ResponseError(const internalpb::Response& r) {
  if (r.error_code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(r.error_code()), r.error_message());
}

}  // namespace arbiter::kv::testing

#endif  // ARBITER_TESTS_KVSTORE_KV_TEST_UTIL_H_
