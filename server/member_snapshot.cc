// Member: raft snapshots. Taking one (on the loop), and building the ones
// that leave for followers, which a builder thread serializes from a frozen
// state while the loop goes on.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/check.h"
#include "raft/errors.h"
#include "server/member.h"
#include "server/member_internal.h"
#include "server/thread_name.h"

namespace arbiter::server {

absl::Status Member::TakeSnapshot(uint64_t index) {
  if (index <= snapshot_index_) return absl::OkStatus();
  std::string data;
  if (sm_->Durable()) {
    // The state machine keeps the state: once it is synced, the entries up
    // to index are not needed to rebuild it, and the snapshot records only
    // that. Serializing the whole state here instead would stall the loop
    // and hold several copies of it in memory, at every snapshot.
    if (absl::Status s = sm_->Sync(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("state machine sync: ", s.message()));
    }
    data = HeldStateMarker(sm_->AppliedIndex());
  } else {
    auto full = sm_->Snapshot();
    if (!full.ok()) return full.status();
    data = std::move(*full);
  }
  absl::Status s = store_->CreateSnapshot(index, conf_state_, std::move(data));
  if (raft::IsSnapOutOfDate(s)) return absl::OkStatus();
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat("create snapshot: ", s.message()));
  snapshot_index_ = index;
  return absl::OkStatus();
}

absl::Status Member::FillSnapshots(std::vector<raft::Message>& msgs) {
  uint64_t held = 0;
  auto needs_state = [&](const raft::Message& m) {
    return m.type() == raftpb::MSG_SNAP && ParseHeldStateMarker(m.snapshot().data(), &held);
  };
  if (std::none_of(msgs.begin(), msgs.end(), needs_state)) return absl::OkStatus();
  std::vector<raft::Message> keep;
  keep.reserve(msgs.size());
  std::optional<std::string> inline_data;
  for (raft::Message& m : msgs) {
    if (!needs_state(m)) {
      keep.push_back(std::move(m));
      continue;
    }
    if (sm_->AppliedIndex() > applied_) {
      // After a restart the state machine may hold commands past what Raft
      // has applied again (its database reached the disk further than the
      // commit index did): a state labelled applied_ would then be ahead of
      // its label, and the follower would apply those commands twice. Raft
      // retries once this member has replayed past them.
      DeferSnapshotFailure(m.to());
      continue;
    }
    // The state now is the state at applied_ (this Ready's entries are
    // applied after its messages leave), which is at or past the stored
    // snapshot's index and committed: the follower gets that instead, as
    // etcd sends its database as it is at the time of sending. Its
    // acknowledgement of the later index satisfies the leader's wait for
    // the snapshot.
    auto term = node_->raft().log().Term(applied_);
    RAFT_CHECK(term.ok()) << "no term for applied index " << applied_ << ": " << term.status()
                          << "; " << DescribeState();
    raft::SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
    md->set_index(applied_);
    md->set_term(*term);
    *md->mutable_conf_state() = conf_state_;
    m.mutable_snapshot()->clear_data();
    if (std::unique_ptr<FrozenState> frozen = sm_->Freeze(); frozen != nullptr) {
      // Serialized by the builder thread; the message leaves from the loop
      // when it is done (HandleInbox).
      QueueSnapshotBuild(std::move(m), std::move(frozen));
      continue;
    }
    if (!inline_data.has_value()) {
      auto data = sm_->Snapshot();
      if (!data.ok()) {
        return absl::Status(data.status().code(),
                            absl::StrCat("snapshot for a follower: ", data.status().message()));
      }
      inline_data = std::move(*data);
    }
    m.mutable_snapshot()->set_data(*inline_data);
    keep.push_back(std::move(m));
  }
  msgs = std::move(keep);
  return absl::OkStatus();
}

void Member::DeferSnapshotFailure(uint64_t to) {
  // Stepped in with the next inbox, not in the middle of this Ready.
  absl::MutexLock l(&inbox_mu_);
  if (closed_) return;
  inbox_->snapshot_status.emplace_back(to, raft::SnapshotStatus::kFailure);
  WakeLoop();
}

void Member::QueueSnapshotBuild(raft::Message m, std::unique_ptr<FrozenState> frozen) {
  absl::MutexLock l(&build_mu_);
  // Raft sends one snapshot per follower at a time: a queued one for the
  // same follower is superseded (its wait ended, or this would not exist).
  std::erase_if(build_jobs_, [&](const SnapshotBuild& j) { return j.msg.to() == m.to(); });
  if (!builder_.joinable()) {
    builder_ = std::thread([this] {
      SetThreadName("snapshot-build");
      RunSnapshotBuilder();
    });
  }
  build_jobs_.push_back({std::move(m), std::move(frozen)});
}

void Member::RunSnapshotBuilder() {
  while (true) {
    SnapshotBuild job;
    {
      absl::MutexLock l(&build_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(build_mu_) {
        return build_stop_ || !build_jobs_.empty();
      };
      build_mu_.Await(absl::Condition(&ready));
      if (build_stop_) return;
      job = std::move(build_jobs_.front());
      build_jobs_.pop_front();
    }
    absl::StatusOr<std::string> data = job.frozen->Serialize(build_cancel_);
    job.frozen.reset();  // lets LevelDB drop what only the frozen view needed
    const uint64_t to = job.msg.to();
    if (!data.ok()) {
      logger_->Log(raft::LogLevel::kWarning,
                   absl::StrCat("member ", options_.id, ": snapshot for ", to,
                                " not built: ", data.status().ToString()));
    } else {
      job.msg.mutable_snapshot()->set_data(std::move(*data));
    }
    absl::MutexLock l(&inbox_mu_);
    if (closed_) continue;
    if (data.ok()) {
      inbox_->built_snapshots.push_back(std::move(job.msg));
    } else {
      // The leader tries again later, as after a failed transfer.
      inbox_->snapshot_status.emplace_back(to, raft::SnapshotStatus::kFailure);
    }
    WakeLoop();
  }
}

void Member::StopSnapshotBuilder() {
  std::thread t;
  {
    absl::MutexLock l(&build_mu_);
    build_stop_ = true;
    build_cancel_.store(true);
    build_jobs_.clear();  // frozen states go before the state machine
    t = std::move(builder_);
  }
  if (t.joinable()) t.join();
}

}  // namespace arbiter::server
