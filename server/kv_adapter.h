// Plugs the key-value state machine (kvstore/kv_state_machine.h) into a
// Member (server/state_machine.h), and tells the etcd services about it
// (StoreInfo: ArbiterServer finds it on the state machine).
// kvstore/ knows nothing of server/, so this thin adapter is the bridge.
//
// Thread safety: the StateMachine methods are called from the member's loop
// thread only; the StoreInfo methods from any thread (KvStateMachine's
// reads are thread-safe).
#ifndef ARBITER_SERVER_KV_ADAPTER_H_
#define ARBITER_SERVER_KV_ADAPTER_H_

#include <memory>
#include <string>
#include <utility>

#include "kvstore/kv_state_machine.h"
#include "server/state_machine.h"
#include "server/store_info.h"

namespace arbiter::server {

class KvAdapter final : public StateMachine, public StoreInfo {
 public:
  explicit KvAdapter(std::unique_ptr<kv::KvStateMachine> kv) : kv_(std::move(kv)) {}

  absl::Status Apply(uint64_t index, absl::string_view command, std::string* result) override {
    return kv_->Apply(index, command, result);
  }
  uint64_t AppliedIndex() const override { return kv_->AppliedIndex(); }
  absl::StatusOr<std::string> Snapshot() const override { return kv_->Snapshot(); }
  absl::Status Restore(uint64_t index, std::string data) override {
    // A bootstrapped cluster starts from a snapshot with no data: the empty
    // state. The member restores only snapshots past what the store applied,
    // and every applied command records its index, so an empty snapshot only
    // ever meets a store that never applied anything, which is that state.
    if (data.empty() && kv_->AppliedIndex() == 0) return absl::OkStatus();
    return kv_->Restore(index, std::move(data));
  }
  uint64_t Hash() const override { return kv_->Hash(); }
  std::unique_ptr<FrozenState> Freeze() const override {
    return std::make_unique<Frozen>(kv_->Freeze());
  }
  bool Durable() const override { return true; }
  absl::Status Sync() override { return kv_->Sync(); }

  int64_t CurrentRevision() const override { return kv_->CurrentRevision(); }
  int64_t DbSize() const override { return kv_->DbSize(); }
  absl::Status HashKv(int64_t rev, uint32_t* hash, int64_t* compact_revision) const override {
    auto r = kv_->HashKv(rev);
    if (!r.ok()) return r.status();
    *hash = r->hash;
    *compact_revision = r->compact_revision;
    return absl::OkStatus();
  }
  std::vector<internalpb::MemberAttributes> Members() const override { return kv_->Members(); }

  kv::KvStateMachine* kv() { return kv_.get(); }

 private:
  class Frozen final : public FrozenState {
   public:
    explicit Frozen(std::unique_ptr<kv::KvStateMachine::FrozenState> f) : f_(std::move(f)) {}
    absl::StatusOr<std::string> Serialize(const std::atomic<bool>& cancel) const override {
      return f_->Serialize(&cancel);
    }

   private:
    std::unique_ptr<kv::KvStateMachine::FrozenState> f_;
  };

  std::unique_ptr<kv::KvStateMachine> kv_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_KV_ADAPTER_H_
