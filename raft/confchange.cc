#include "raft/confchange.h"

#include <algorithm>
#include <iterator>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace arbiter::raft {
namespace {

// Works on copies of the tracker's config and progress. Voter changes always
// go to the incoming half; the outgoing half is either empty or frozen as the
// configuration being left.
class Builder {
 public:
  Builder(const ProgressTracker& tracker, uint64_t last_index)
      : cfg_(tracker.config),
        prs_(tracker.progress),
        last_index_(last_index),
        max_inflight_(tracker.max_inflight),
        max_inflight_bytes_(tracker.max_inflight_bytes) {}

  TrackerConfig& cfg() { return cfg_; }
  ProgressMap& prs() { return prs_; }

  absl::Status Apply(const std::vector<ConfChangeSingle>& ccs) {
    for (const ConfChangeSingle& cc : ccs) {
      // The application may zero a change's node id to cancel it (etcd does
      // so for changes it decides not to apply); such changes are no-ops.
      if (cc.node_id() == kNone) continue;
      switch (cc.type()) {
        case raftpb::CONF_CHANGE_ADD_NODE:
          MakeVoter(cc.node_id());
          break;
        case raftpb::CONF_CHANGE_ADD_LEARNER_NODE:
          MakeLearner(cc.node_id());
          break;
        case raftpb::CONF_CHANGE_REMOVE_NODE:
          Remove(cc.node_id());
          break;
        case raftpb::CONF_CHANGE_UPDATE_NODE:
          break;  // carries application data only; membership is unchanged
        default:
          return absl::InvalidArgumentError(
              absl::StrCat("unexpected conf change type ", static_cast<int>(cc.type())));
      }
    }
    if (cfg_.voters.incoming.empty()) return absl::InvalidArgumentError("removed all voters");
    return absl::OkStatus();
  }

  ConfigAndProgress Take() { return {std::move(cfg_), std::move(prs_)}; }

 private:
  void MakeVoter(uint64_t id) {
    auto it = prs_.find(id);
    if (it == prs_.end()) {
      InitProgress(id, /*is_learner=*/false);
      return;
    }
    it->second.is_learner = false;
    cfg_.learners.erase(id);
    cfg_.learners_next.erase(id);
    cfg_.voters.incoming.Insert(id);
  }

  void MakeLearner(uint64_t id) {
    auto it = prs_.find(id);
    if (it == prs_.end()) {
      InitProgress(id, /*is_learner=*/true);
      return;
    }
    if (it->second.is_learner) return;
    // Demote: drop the voter from the incoming half but keep its Progress,
    // which still describes its log.
    Progress saved = it->second;
    Remove(id);
    auto pos = prs_.insert_or_assign(id, std::move(saved)).first;
    if (cfg_.voters.outgoing.Contains(id)) {
      // It still votes in the outgoing half, and a node cannot be a voter and
      // a learner at once: it becomes a learner when the joint config is left.
      cfg_.learners_next.insert(id);
    } else {
      pos->second.is_learner = true;
      cfg_.learners.insert(id);
    }
  }

  // Removes id from the incoming half and from the learner sets. Its
  // Progress stays while it is still a voter of the outgoing half.
  void Remove(uint64_t id) {
    if (prs_.find(id) == prs_.end()) return;
    cfg_.voters.incoming.Erase(id);
    cfg_.learners.erase(id);
    cfg_.learners_next.erase(id);
    if (!cfg_.voters.outgoing.Contains(id)) prs_.erase(id);
  }

  void InitProgress(uint64_t id, bool is_learner) {
    if (is_learner) {
      cfg_.learners.insert(id);
    } else {
      cfg_.voters.incoming.Insert(id);
    }
    // Probe from the leader's last index: optimistic (a new node usually has
    // an empty log and ends up with a snapshot) but the probe finds out.
    // next must stay above match (0), hence at least 1.
    Progress pr(std::max<uint64_t>(last_index_, 1), max_inflight_, max_inflight_bytes_, is_learner);
    // A new node has not had a chance to talk to the leader yet; counting it
    // inactive could make CheckQuorum depose a healthy leader.
    pr.recent_active = true;
    prs_.insert_or_assign(id, std::move(pr));
  }

  TrackerConfig cfg_;
  ProgressMap prs_;
  uint64_t last_index_;
  size_t max_inflight_;
  uint64_t max_inflight_bytes_;
};

bool IsJoint(const TrackerConfig& cfg) { return !cfg.voters.outgoing.empty(); }

// The invariants that tie a config to its progress map. Checked on what a
// Changer starts from and on everything it returns.
absl::Status CheckInvariants(const TrackerConfig& cfg, const ProgressMap& prs) {
  auto need_progress = [&](uint64_t id) -> absl::Status {
    if (prs.find(id) == prs.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no progress for ", id));
    }
    return absl::OkStatus();
  };
  for (uint64_t id : cfg.voters.Ids()) {
    if (absl::Status s = need_progress(id); !s.ok()) return s;
  }
  for (uint64_t id : cfg.learners) {
    if (absl::Status s = need_progress(id); !s.ok()) return s;
  }
  for (uint64_t id : cfg.learners_next) {
    if (absl::Status s = need_progress(id); !s.ok()) return s;
  }

  // A staged learner exists only because it still votes in the outgoing half.
  for (uint64_t id : cfg.learners_next) {
    if (!cfg.voters.outgoing.Contains(id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(id, " is in learners_next but not in the outgoing voters"));
    }
    if (prs.at(id).is_learner) {
      return absl::InvalidArgumentError(
          absl::StrCat(id, " is in learners_next but already marked as learner"));
    }
  }
  // Learners and voters never overlap.
  for (uint64_t id : cfg.learners) {
    if (cfg.voters.outgoing.Contains(id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(id, " is both a learner and an outgoing voter"));
    }
    if (cfg.voters.incoming.Contains(id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(id, " is both a learner and an incoming voter"));
    }
    if (!prs.at(id).is_learner) {
      return absl::InvalidArgumentError(
          absl::StrCat(id, " is a learner but its progress is not marked as learner"));
    }
  }

  if (!IsJoint(cfg)) {
    if (!cfg.learners_next.empty()) {
      return absl::InvalidArgumentError("learners_next must be empty outside a joint config");
    }
    if (cfg.auto_leave) {
      return absl::InvalidArgumentError("auto_leave must be false outside a joint config");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ConfigAndProgress> CheckAndReturn(ConfigAndProgress cp) {
  if (absl::Status s = CheckInvariants(cp.first, cp.second); !s.ok()) return s;
  return cp;
}

// The number of ids in exactly one of a and b.
size_t SymmetricDifference(const MajorityConfig& a, const MajorityConfig& b) {
  std::vector<uint64_t> diff;
  std::set_symmetric_difference(a.ids().begin(), a.ids().end(), b.ids().begin(), b.ids().end(),
                                std::back_inserter(diff));
  return diff.size();
}

ConfChangeSingle Single(raftpb::ConfChangeType type, uint64_t id) {
  ConfChangeSingle cc;
  cc.set_type(type);
  cc.set_node_id(id);
  return cc;
}

std::vector<uint64_t> Sorted(const google::protobuf::RepeatedField<uint64_t>& ids) {
  std::vector<uint64_t> v(ids.begin(), ids.end());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

absl::StatusOr<ConfigAndProgress> Changer::EnterJoint(
    bool auto_leave, const std::vector<ConfChangeSingle>& ccs) const {
  if (absl::Status s = CheckInvariants(tracker_.config, tracker_.progress); !s.ok()) return s;
  if (IsJoint(tracker_.config)) return absl::InvalidArgumentError("config is already joint");
  if (tracker_.config.voters.incoming.empty()) {
    // An empty config may be built up by simple changes (bootstrap, tests),
    // but there is nothing to be joint with.
    return absl::InvalidArgumentError("can't make a zero-voter config joint");
  }
  Builder b(tracker_, last_index_);
  // C_old becomes the outgoing half; the changes turn the incoming half into
  // C_new, giving C_old,new (Raft thesis §4.3).
  b.cfg().voters.outgoing = b.cfg().voters.incoming;
  if (absl::Status s = b.Apply(ccs); !s.ok()) return s;
  b.cfg().auto_leave = auto_leave;
  return CheckAndReturn(b.Take());
}

absl::StatusOr<ConfigAndProgress> Changer::LeaveJoint() const {
  if (absl::Status s = CheckInvariants(tracker_.config, tracker_.progress); !s.ok()) return s;
  if (!IsJoint(tracker_.config)) {
    return absl::InvalidArgumentError("can't leave a non-joint config");
  }
  Builder b(tracker_, last_index_);
  TrackerConfig& cfg = b.cfg();
  ProgressMap& prs = b.prs();
  // Demotions staged while the node still voted in C_old take effect now.
  for (uint64_t id : cfg.learners_next) {
    cfg.learners.insert(id);
    prs.at(id).is_learner = true;
  }
  cfg.learners_next.clear();
  // Voters of C_old that have no role in C_new are gone.
  for (uint64_t id : cfg.voters.outgoing.ids()) {
    if (!cfg.voters.incoming.Contains(id) && cfg.learners.count(id) == 0) prs.erase(id);
  }
  cfg.voters.outgoing = MajorityConfig();
  cfg.auto_leave = false;
  return CheckAndReturn(b.Take());
}

absl::StatusOr<ConfigAndProgress> Changer::Simple(const std::vector<ConfChangeSingle>& ccs) const {
  if (absl::Status s = CheckInvariants(tracker_.config, tracker_.progress); !s.ok()) return s;
  if (IsJoint(tracker_.config)) {
    return absl::InvalidArgumentError("can't apply simple config change in joint config");
  }
  Builder b(tracker_, last_index_);
  if (absl::Status s = b.Apply(ccs); !s.ok()) return s;
  // Raft §4.1: two majorities that differ by one voter always overlap; any
  // larger step needs joint consensus.
  if (SymmetricDifference(tracker_.config.voters.incoming, b.cfg().voters.incoming) > 1) {
    return absl::InvalidArgumentError("more than one voter changed without entering joint config");
  }
  return CheckAndReturn(b.Take());
}

absl::StatusOr<ConfigAndProgress> RestoreConfState(const ProgressTracker& empty_tracker,
                                                   uint64_t last_index, const ConfState& cs) {
  if (!empty_tracker.config.voters.Ids().empty() || !empty_tracker.config.learners.empty() ||
      !empty_tracker.config.learners_next.empty() || !empty_tracker.progress.empty()) {
    return absl::InvalidArgumentError("RestoreConfState needs an empty tracker");
  }

  // Replays cs as changes an empty config can take. For a joint cs the
  // outgoing voters are added one at a time first (so they form the current
  // config), and then a single EnterJoint removes them all, adds the
  // incoming voters and the learners, and demotes the learners_next (still
  // outgoing voters) into staged learners. Whether a learner already existed
  // before the joint config cannot be told, and does not matter.
  std::vector<ConfChangeSingle> outgoing;
  std::vector<ConfChangeSingle> incoming;
  for (uint64_t id : cs.voters_outgoing()) {
    outgoing.push_back(Single(raftpb::CONF_CHANGE_ADD_NODE, id));
    incoming.push_back(Single(raftpb::CONF_CHANGE_REMOVE_NODE, id));
  }
  for (uint64_t id : cs.voters()) incoming.push_back(Single(raftpb::CONF_CHANGE_ADD_NODE, id));
  for (uint64_t id : cs.learners()) {
    incoming.push_back(Single(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, id));
  }
  for (uint64_t id : cs.learners_next()) {
    incoming.push_back(Single(raftpb::CONF_CHANGE_ADD_LEARNER_NODE, id));
  }

  ProgressTracker trk(empty_tracker.max_inflight, empty_tracker.max_inflight_bytes);
  auto step = [&](const absl::StatusOr<ConfigAndProgress>& r) -> absl::Status {
    if (!r.ok()) return r.status();
    trk.config = r->first;
    trk.progress = r->second;
    return absl::OkStatus();
  };
  // Outside a joint config the incoming changes go one by one; inside one the
  // outgoing voters are built up one by one and the rest enters the joint
  // config at once.
  const std::vector<ConfChangeSingle>& one_by_one = outgoing.empty() ? incoming : outgoing;
  for (const ConfChangeSingle& cc : one_by_one) {
    if (absl::Status s = step(Changer(trk, last_index).Simple({cc})); !s.ok()) return s;
  }
  if (!outgoing.empty()) {
    absl::Status s = step(Changer(trk, last_index).EnterJoint(cs.auto_leave(), incoming));
    if (!s.ok()) return s;
  }

  // A malformed cs (say, a node that is both voter and learner) replays
  // without error but into something else; refuse it rather than run with a
  // configuration nobody asked for.
  ConfState got = trk.ConfState();
  if (!ConfStateEquivalent(cs, got)) {
    return absl::InvalidArgumentError(absl::StrCat("inconsistent ConfState {",
                                                   DescribeConfState(cs), "} restores as {",
                                                   DescribeConfState(got), "}"));
  }
  return ConfigAndProgress{std::move(trk.config), std::move(trk.progress)};
}

bool ConfStateEquivalent(const ConfState& a, const ConfState& b) {
  return Sorted(a.voters()) == Sorted(b.voters()) && Sorted(a.learners()) == Sorted(b.learners()) &&
         Sorted(a.voters_outgoing()) == Sorted(b.voters_outgoing()) &&
         Sorted(a.learners_next()) == Sorted(b.learners_next()) && a.auto_leave() == b.auto_leave();
}

ConfChangeV2 AsV2(const ConfChange& cc) {
  ConfChangeV2 v2;
  *v2.add_changes() = Single(cc.type(), cc.node_id());
  v2.set_context(cc.context());
  return v2;
}

bool EntersJoint(const ConfChangeV2& cc, bool* auto_leave) {
  // More changes could in principle go through the simple protocol, but
  // whether they may depends on the config they apply to; joint consensus is
  // always safe.
  if (cc.transition() == raftpb::CONF_CHANGE_TRANSITION_AUTO && cc.changes_size() <= 1) {
    if (auto_leave != nullptr) *auto_leave = false;
    return false;
  }
  if (auto_leave != nullptr) {
    *auto_leave = cc.transition() != raftpb::CONF_CHANGE_TRANSITION_JOINT_EXPLICIT;
  }
  return true;
}

bool LeavesJoint(const ConfChangeV2& cc) {
  return cc.transition() == raftpb::CONF_CHANGE_TRANSITION_AUTO && cc.changes_size() == 0;
}

}  // namespace arbiter::raft
