// A simple in-memory model of the key-value state machine for the
// randomized model test: the whole key space is copied at every revision,
// and every command is evaluated the obvious way, with etcd 3.4's rules.
// It shares no code with KvStateMachine except the request validation
// (ValidateRequest, tested on its own in kv_errors_test), which it uses to
// decide whether a command is rejected before it runs.
//
// Thread safety: none; the test thread only.
#ifndef ARBITER_TESTS_KVSTORE_KV_MODEL_H_
#define ARBITER_TESTS_KVSTORE_KV_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kvstore/kv_state_machine.h"
#include "proto/internal.pb.h"
#include "proto/kv.pb.h"
#include "proto/rpc.pb.h"

namespace arbiter::kv::testing {

class KvModel {
 public:
  using State = std::map<std::string, mvccpb::KeyValue>;

  explicit KvModel(int64_t min_lease_ttl) : min_lease_ttl_(min_lease_ttl) { states_[1]; }

  // The response the store must give to r. store_response is consulted only
  // for the ID of a lease granted with ID 0 (the store derives it).
  internalpb::Response Apply(const internalpb::Request& r,
                             const internalpb::Response& store_response);

  absl::Status Range(const etcdserverpb::RangeRequest& r, etcdserverpb::RangeResponse* resp) const;
  // What ReadEvents must return (no batching: all events).
  absl::Status Events(const std::string& key, const std::string& end, int64_t start,
                      int64_t end_rev, bool prev_kv, std::vector<mvccpb::Event>* out) const;

  int64_t rev() const { return rev_; }
  int64_t compact() const { return compact_; }
  // Leases by ID, with their keys.
  std::vector<LeaseInfo> Leases() const;
  std::vector<internalpb::MemberAttributes> Members() const;
  // Keys that exist now, for the request generator.
  const State& current() const { return states_.at(rev_); }

 private:
  struct TxnContext;

  absl::Status Put(const etcdserverpb::PutRequest& r, bool top_level, TxnContext* ctx,
                   etcdserverpb::PutResponse* resp);
  void DeleteRange(const etcdserverpb::DeleteRangeRequest& r, TxnContext* ctx,
                   etcdserverpb::DeleteRangeResponse* resp);
  absl::Status Txn(const etcdserverpb::TxnRequest& r, etcdserverpb::TxnResponse* resp);
  // The put checks (puts) or the range checks of the chosen ops; deletes
  // collects the deletes met so far.
  absl::Status CheckTxn(const etcdserverpb::TxnRequest& r, const State& pre, bool puts,
                        std::vector<std::pair<std::string, std::string>>* deletes) const;
  void RunTxn(const etcdserverpb::TxnRequest& r, const State& pre, TxnContext* ctx,
              etcdserverpb::TxnResponse* resp);
  bool Compares(const etcdserverpb::TxnRequest& r, const State& pre) const;
  // Range over an explicit state, with header revision header_rev.
  absl::Status RangeIn(const etcdserverpb::RangeRequest& r, int64_t cur, const State* current,
                       etcdserverpb::RangeResponse* resp) const;
  void Commit(TxnContext* ctx);
  absl::Status LeaseGrant(const etcdserverpb::LeaseGrantRequest& r,
                          const internalpb::Response& store_response, internalpb::Response* resp);
  absl::Status LeaseRevoke(int64_t id, internalpb::Response* resp);
  // Sorts as etcd (a target other than KEY with NONE sorts ascending; ties
  // keep key order).
  static void Sort(const etcdserverpb::RangeRequest& r, std::vector<const mvccpb::KeyValue*>* kvs);

  const int64_t min_lease_ttl_;
  int64_t rev_ = 1;
  int64_t compact_ = -1;
  // The key space at each revision still readable.
  std::map<int64_t, State> states_;
  // The changes of each revision, in order (a DELETE event has key and
  // mod_revision only).
  std::map<int64_t, std::vector<mvccpb::Event>> changes_;
  struct Lease {
    int64_t ttl = 0;
    int64_t remaining = 0;
  };
  std::map<int64_t, Lease> leases_;
  std::map<uint64_t, internalpb::MemberAttributes> members_;
};

}  // namespace arbiter::kv::testing

#endif  // ARBITER_TESTS_KVSTORE_KV_MODEL_H_
