// A small in-memory state machine for tests and the embedded cluster: an
// ordered map driven by "key=value" commands.
//
// It is not durable. On restart a Member restores it from the raft log
// store's snapshot and replays the log after it, which is exactly the path
// a durable state machine takes after losing its unsynced tail.
//
// Thread safety: not thread-safe; the owning Member's loop thread calls it.
// Read it from other threads only through Member::QueryStateMachine.
#ifndef ARBITER_SERVER_TEST_STATE_MACHINE_H_
#define ARBITER_SERVER_TEST_STATE_MACHINE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "server/state_machine.h"

namespace arbiter::server {

class TestStateMachine final : public StateMachine {
 public:
  // "key=value" sets key; the result is the previous value ("" if none).
  // Anything else (no '=', empty key) changes nothing and yields a result
  // starting with "error:".
  absl::Status Apply(uint64_t index, absl::string_view command, std::string* result) override;
  uint64_t AppliedIndex() const override { return applied_; }
  absl::StatusOr<std::string> Snapshot() const override;
  absl::Status Restore(uint64_t index, std::string data) override;
  // FNV-1a over the serialized map: deterministic across processes.
  uint64_t Hash() const override;

  std::optional<std::string> Get(const std::string& key) const;
  size_t size() const { return kv_.size(); }

 private:
  std::map<std::string, std::string> kv_;
  // Invariant: the index of the last command applied or snapshot restored.
  uint64_t applied_ = 0;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_TEST_STATE_MACHINE_H_
