#include "server/embedded_cluster.h"

#include <stdlib.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "leveldb/helpers/memenv.h"
#include "server/test_state_machine.h"

namespace arbiter::server {

EmbeddedCluster::EmbeddedCluster(const EmbeddedClusterOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<EmbeddedCluster>> EmbeddedCluster::Start(
    const EmbeddedClusterOptions& options) {
  if (options.size < 1) return absl::InvalidArgumentError("cluster size must be >= 1");
  std::unique_ptr<EmbeddedCluster> c(new EmbeddedCluster(options));
  if (absl::Status s = c->Init(); !s.ok()) return s;
  return c;
}

absl::Status EmbeddedCluster::Init() {
  if (options_.storage == EmbeddedClusterOptions::Storage::kMemEnv) {
    mem_env_.reset(leveldb::NewMemEnv(leveldb::Env::Default()));
    base_env_ = mem_env_.get();
    base_dir_ = "/arbiter-embedded";
  } else {
    base_env_ = leveldb::Env::Default();
    base_dir_ = options_.base_dir;
    if (base_dir_.empty()) {
      const char* tmp = getenv("TMPDIR");
      std::string tmpl = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/arbiter-cluster-XXXXXX");
      if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
      base_dir_ = tmpl;
      remove_base_dir_ = true;
    }
  }
  absl::MutexLock l(&mu_);
  for (int i = 1; i <= options_.size; ++i) AddNodeLocked(static_cast<uint64_t>(i), false);
  for (auto& [id, n] : nodes_) {
    (void)n;
    if (absl::Status s = StartMember(id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

EmbeddedCluster::~EmbeddedCluster() {
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, n] : nodes_) {
      if (n.member == nullptr) continue;
      n.member->Kill();
      network_.Detach(id);
      n.member.reset();
    }
  }
  if (remove_base_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(base_dir_, ec);
  }
}

void EmbeddedCluster::AddNodeLocked(uint64_t id, bool joined) {
  Node& n = nodes_[id];
  n.env = std::make_unique<kv::FaultEnv>(base_env_);
  n.transport = network_.Endpoint(id);
  n.dir = absl::StrCat(base_dir_, "/member-", id);
  n.joined = joined;
}

absl::Status EmbeddedCluster::StartMember(uint64_t id) {
  Node& n = nodes_.at(id);
  if (n.member != nullptr) return absl::FailedPreconditionError("member is running");
  MemberOptions o;
  o.id = id;
  for (const auto& [peer, other] : nodes_) {
    if (!other.joined) o.initial_members.push_back(peer);
  }
  o.join_existing = n.joined;
  o.data_dir = n.dir;
  o.env = n.env.get();
  o.tick_interval = options_.tick_interval;
  o.election_tick = options_.election_tick;
  o.heartbeat_tick = options_.heartbeat_tick;
  o.snapshot_count = options_.snapshot_count;
  o.snapshot_catchup_entries = options_.snapshot_catchup_entries;
  o.seed = options_.seed * 1000 + id;
  o.logger = options_.logger;
  o.on_status_change = [this] { OnStatusChange(); };
  auto m = Member::Start(o, std::make_unique<TestStateMachine>(), n.transport.get());
  if (!m.ok()) return m.status();
  n.member = std::move(*m);
  network_.Attach(id, n.member.get());
  OnStatusChange();
  return absl::OkStatus();
}

std::vector<uint64_t> EmbeddedCluster::ids() const {
  absl::MutexLock l(&mu_);
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

Member* EmbeddedCluster::member(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.member.get();
}

kv::FaultEnv* EmbeddedCluster::fault_env(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.env.get();
}

absl::Status EmbeddedCluster::Kill(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return absl::NotFoundError(absl::StrCat("no member ", id));
  Node& n = it->second;
  if (n.member == nullptr) return absl::FailedPreconditionError("member is down");
  n.member->Kill();
  network_.Detach(id);
  // Closes the store: DropUnsyncedData needs no database open on the Env.
  n.member.reset();
  leveldb::Status s = n.env->DropUnsyncedData();
  if (!s.ok()) return absl::InternalError(absl::StrCat("drop unsynced data: ", s.ToString()));
  OnStatusChange();
  return absl::OkStatus();
}

absl::Status EmbeddedCluster::Stop(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return absl::NotFoundError(absl::StrCat("no member ", id));
  Node& n = it->second;
  if (n.member == nullptr) return absl::FailedPreconditionError("member is down");
  n.member->Stop();
  network_.Detach(id);
  n.member.reset();
  OnStatusChange();
  return absl::OkStatus();
}

absl::Status EmbeddedCluster::Restart(uint64_t id) {
  absl::MutexLock l(&mu_);
  if (nodes_.count(id) == 0) return absl::NotFoundError(absl::StrCat("no member ", id));
  return StartMember(id);
}

absl::Status EmbeddedCluster::AddMember(uint64_t id) {
  absl::MutexLock l(&mu_);
  if (id == 0 || nodes_.count(id) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("member ", id, " exists (or is 0)"));
  }
  AddNodeLocked(id, true);
  return StartMember(id);
}

uint64_t EmbeddedCluster::Leader() const {
  std::map<uint64_t, MemberStatus> st;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, n] : nodes_) {
      if (n.member != nullptr) st[id] = n.member->Status();
    }
  }
  for (const auto& [id, s] : st) {
    if (!s.running || s.state != raft::StateType::kLeader) continue;
    // A majority of the voters the leader knows must follow it in its term.
    int followers = 0;
    for (uint64_t voter : s.conf_state.voters()) {
      auto it = st.find(voter);
      if (it != st.end() && it->second.running && it->second.leader == id &&
          it->second.term == s.term) {
        ++followers;
      }
    }
    if (followers > s.conf_state.voters_size() / 2) return id;
  }
  return 0;
}

absl::StatusOr<uint64_t> EmbeddedCluster::WaitForLeader(absl::Time deadline) const {
  uint64_t leader = 0;
  if (!WaitFor([&] { return (leader = Leader()) != 0; }, deadline)) {
    return absl::DeadlineExceededError("no leader elected before the deadline");
  }
  return leader;
}

bool EmbeddedCluster::WaitFor(const std::function<bool()>& pred, absl::Time deadline) const {
  while (true) {
    const uint64_t seen = Version();
    if (pred()) return true;
    const absl::Time now = absl::Now();
    if (now >= deadline) return false;
    absl::MutexLock l(&change_mu_);
    auto changed = [this, seen]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(change_mu_) { return version_ != seen; };
    change_mu_.AwaitWithDeadline(absl::Condition(&changed),
                                 std::min(deadline, now + absl::Milliseconds(50)));
  }
}

void EmbeddedCluster::OnStatusChange() {
  absl::MutexLock l(&change_mu_);
  ++version_;
}

uint64_t EmbeddedCluster::Version() const {
  absl::MutexLock l(&change_mu_);
  return version_;
}

}  // namespace arbiter::server
