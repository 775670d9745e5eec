#include "server/test_state_machine.h"

#include "absl/strings/str_cat.h"
#include "raft/check.h"

namespace arbiter::server {
namespace {

// Snapshot encoding: per pair, fixed32 key length, key, fixed32 value
// length, value (little-endian). Length-prefixed so any bytes round-trip.
void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetFixed32(absl::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i)
    *v |= static_cast<uint32_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  in->remove_prefix(4);
  return true;
}

bool GetLengthPrefixed(absl::string_view* in, std::string* out) {
  uint32_t n = 0;
  if (!GetFixed32(in, &n) || in->size() < n) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

absl::Status TestStateMachine::Apply(uint64_t index, absl::string_view command,
                                     std::string* result) {
  RAFT_CHECK(index > applied_) << "apply of index " << index << " at applied " << applied_;
  applied_ = index;
  const size_t eq = command.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    *result = absl::StrCat("error: malformed command (want key=value): ", command);
    return absl::OkStatus();
  }
  std::string& slot = kv_[std::string(command.substr(0, eq))];
  *result = std::move(slot);
  slot = std::string(command.substr(eq + 1));
  return absl::OkStatus();
}

absl::StatusOr<std::string> TestStateMachine::Snapshot() const {
  std::string out;
  for (const auto& [k, v] : kv_) {
    PutFixed32(&out, static_cast<uint32_t>(k.size()));
    out.append(k);
    PutFixed32(&out, static_cast<uint32_t>(v.size()));
    out.append(v);
  }
  return out;
}

absl::Status TestStateMachine::Restore(uint64_t index, std::string snapshot) {
  absl::string_view data = snapshot;
  std::map<std::string, std::string> kv;
  while (!data.empty()) {
    std::string k, v;
    if (!GetLengthPrefixed(&data, &k) || !GetLengthPrefixed(&data, &v)) {
      return absl::DataLossError(absl::StrCat("snapshot at index ", index, " is truncated"));
    }
    kv[std::move(k)] = std::move(v);
  }
  kv_ = std::move(kv);
  applied_ = index;
  return absl::OkStatus();
}

uint64_t TestStateMachine::Hash() const {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](absl::string_view s) {
    for (char c : s) {
      h ^= static_cast<uint8_t>(c);
      h *= 1099511628211ull;
    }
    h ^= 0xff;  // separator, so ("ab","c") and ("a","bc") differ
    h *= 1099511628211ull;
  };
  for (const auto& [k, v] : kv_) {
    mix(k);
    mix(v);
  }
  return h;
}

std::optional<std::string> TestStateMachine::Get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return std::nullopt;
  return it->second;
}

}  // namespace arbiter::server
