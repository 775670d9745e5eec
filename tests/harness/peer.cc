#include "tests/harness/peer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "raft/check.h"
#include "raft/confchange.h"

namespace arbiter::raft::testing {

void KvStateMachine::Apply(const Entry& e) {
  applied_ = e.index();
  if (e.type() != raftpb::ENTRY_NORMAL) return;
  const std::string& d = e.data();
  size_t eq = d.find('=');
  if (eq == std::string::npos || eq == 0) return;
  std::string k = d.substr(0, eq);
  kv_[k] = d.substr(eq + 1);
  write_index_[k] = e.index();
}

uint64_t KvStateMachine::WriteIndex(const std::string& k) const {
  auto it = write_index_.find(k);
  return it == write_index_.end() ? 0 : it->second;
}

std::string KvStateMachine::Serialize() const {
  // "k\x01v\x01index\x02..." — test data never contains the separators.
  std::string out;
  for (const auto& [k, v] : kv_) {
    absl::StrAppend(&out, k, "\x01", v, "\x01", WriteIndex(k), "\x02");
  }
  return out;
}

bool KvStateMachine::Restore(const std::string& data, uint64_t index) {
  kv_.clear();
  write_index_.clear();
  for (absl::string_view rec : absl::StrSplit(data, '\x02', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(rec, '\x01');
    if (f.size() != 3) return false;
    kv_[f[0]] = f[1];
    write_index_[f[0]] = std::stoull(f[2]);
  }
  applied_ = index;
  return true;
}

Config TestConfig(bool pre_vote, bool check_quorum) {
  Config c;
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.pre_vote = pre_vote;
  c.check_quorum = check_quorum;
  c.max_size_per_msg = 1 << 16;
  c.max_inflight_msgs = 64;
  return c;
}

Peer::Peer(uint64_t id, const Config& cfg, uint64_t seed) : id_(id), cfg_(cfg), rand_(seed) {
  cfg_.id = id;
  cfg_.storage = &storage_;
  cfg_.rand = &rand_;
}

void Peer::Bootstrap(const std::vector<uint64_t>& voters, const std::vector<uint64_t>& learners) {
  ConfState cs;
  for (uint64_t v : voters) cs.add_voters(v);
  for (uint64_t l : learners) cs.add_learners(l);
  Snapshot snap;
  snap.mutable_metadata()->set_index(1);
  snap.mutable_metadata()->set_term(1);
  *snap.mutable_metadata()->mutable_conf_state() = cs;
  RAFT_CHECK(storage_.ApplySnapshot(snap).ok());
  HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  storage_.SetHardState(hs);
}

void Peer::Start() {
  RAFT_CHECK(node_ == nullptr) << "peer " << id_ << " already running";
  // The state machine comes back from the stored snapshot; the log replays
  // the rest.
  auto snap = storage_.Snapshot();
  RAFT_CHECK(snap.ok()) << snap.status();
  sm_ = KvStateMachine();
  RAFT_CHECK(sm_.Restore(snap->data(), snap->metadata().index()));
  conf_state_ = snap->metadata().conf_state();
  Config c = cfg_;
  c.applied = snap->metadata().index();
  auto node = RawNode::Create(c);
  RAFT_CHECK(node.ok()) << node.status();
  node_ = std::move(*node);
}

void Peer::Crash() {
  node_.reset();
  reads_.clear();
}

std::vector<Message> Peer::ProcessReady() {
  std::vector<Message> out;
  if (!node_->HasReady()) return out;
  Ready rd = node_->GetReady();
  // 1. Persist.
  if (!IsEmptySnapshot(rd.snapshot)) {
    RAFT_CHECK(storage_.ApplySnapshot(rd.snapshot).ok());
  }
  if (!rd.entries.empty()) RAFT_CHECK(storage_.Append(rd.entries).ok());
  if (!IsEmptyHardState(rd.hard_state)) storage_.SetHardState(rd.hard_state);
  // 2. Send (handed to the caller).
  out = std::move(rd.messages);
  // 3. Apply.
  if (!IsEmptySnapshot(rd.snapshot)) {
    RAFT_CHECK(sm_.Restore(rd.snapshot.data(), rd.snapshot.metadata().index()));
    conf_state_ = rd.snapshot.metadata().conf_state();
  }
  for (const Entry& e : rd.committed_entries) ApplyEntry(e);
  for (ReadState& rs : rd.read_states) {
    reads_.push_back(CompletedRead{std::move(rs), sm_.applied()});
  }
  // 4. Advance.
  node_->Advance();
  return out;
}

void Peer::ProcessReadyThenCrash() {
  if (node_->HasReady()) {
    Ready rd = node_->GetReady();
    if (!IsEmptySnapshot(rd.snapshot)) RAFT_CHECK(storage_.ApplySnapshot(rd.snapshot).ok());
    if (!rd.entries.empty()) RAFT_CHECK(storage_.Append(rd.entries).ok());
    if (!IsEmptyHardState(rd.hard_state)) storage_.SetHardState(rd.hard_state);
  }
  Crash();
}

std::vector<Message> Peer::SendReadyThenCrash() {
  std::vector<Message> out;
  if (node_->HasReady()) {
    Ready rd = node_->GetReady();
    // Only what the Ready allows out before its persist leaves; the rest
    // of it is lost with the crash.
    if (rd.send_before_persist) out = std::move(rd.messages);
  }
  Crash();
  return out;
}

void Peer::ApplyEntry(const Entry& e) {
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    ConfChange cc;
    RAFT_CHECK(cc.ParseFromString(e.data()));
    conf_state_ = node_->ApplyConfChange(cc);
  } else if (e.type() == raftpb::ENTRY_CONF_CHANGE_V2) {
    ConfChangeV2 cc;
    RAFT_CHECK(cc.ParseFromString(e.data()));
    conf_state_ = node_->ApplyConfChange(cc);
  }
  sm_.Apply(e);
  if (record_applied_) applied_entries_.push_back(e);
  if (observer_) observer_(id_, e);
  if (e.type() != raftpb::ENTRY_NORMAL) {
    // Per ready.h: snapshot after a membership change so that a node it adds
    // can be caught up. The entry is already persisted (same Ready).
    (void)storage_.CreateSnapshot(e.index(), &conf_state_, sm_.Serialize());
  }
}

void Peer::CompactLog() {
  const uint64_t index = sm_.applied();
  auto first = storage_.FirstIndex();
  if (index == 0 || index < *first) return;
  auto snap = storage_.CreateSnapshot(index, &conf_state_, sm_.Serialize());
  if (!snap.ok()) return;  // not newer than the current snapshot
  RAFT_CHECK(storage_.Compact(index).ok());
}

}  // namespace arbiter::raft::testing
