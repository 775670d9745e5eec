// The randomized model test of KvStateMachine: seeded random sequences of
// Put, DeleteRange, Txn (nested), Compaction, lease and member commands,
// checked after every step against KvModel: every response, the events the
// listener hears, the revisions, Range with random options at random
// (including historical) revisions, history reads, and the lease and member
// tables. Steps also close and
// reopen the store, crash it (dropping everything LevelDB did not sync) and
// replay the commands above its applied index, and move to a fresh store
// restored from a snapshot (with an equal Hash).
//
// A failure names the seed and step; rerun one seed with
//   KV_MODEL_SEED=<seed> KV_MODEL_STEPS=<n> kv_model_test
// KV_MODEL_SEEDS=<n> runs more seeds than the default.
#include "tests/kvstore/kv_model.h"

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "kvstore/kv_state_machine.h"
#include "tests/kvstore/kv_test_util.h"

namespace arbiter::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using testing::KvHarness;
using testing::KvModel;

const std::vector<std::string> kKeys = {"a", "b", "c", "d", "e", "p/1", "p/2", "p/3", "q", "z"};
const std::vector<std::string> kValues = {"", "x", "y", "z", "v1", "v2", "v3"};

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoll(v, nullptr, 10) : fallback;
}

class Generator {
 public:
  Generator(uint64_t seed, const KvModel* model) : rng_(seed), model_(model) {}

  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  bool Chance(int percent) { return Pick(100) < percent; }
  std::string Key() { return Chance(1) ? "" : kKeys[Pick(kKeys.size())]; }
  std::string Value() { return kValues[Pick(kValues.size())]; }

  std::string RangeEnd(const std::string& key) {
    const int p = Pick(100);
    if (p < 50) return "";
    if (p < 62) return std::string(1, '\0');
    if (p < 72) return key == "p/" ? "p0" : "p0";
    return kKeys[Pick(kKeys.size())];  // may sort before key: an empty range
  }

  int64_t Revision() {
    const int64_t lo = std::max<int64_t>(model_->compact() - 1, 0);
    return lo + Pick(static_cast<int>(model_->rev() + 2 - lo));
  }

  int64_t Lease() {
    if (Chance(70)) return 0;
    std::vector<LeaseInfo> leases = model_->Leases();
    if (leases.empty() || Chance(15)) return 1000 + Pick(3);
    return leases[Pick(leases.size())].id;
  }

  etcdserverpb::PutRequest Put() {
    etcdserverpb::PutRequest p;
    p.set_key(Key());
    p.set_value(Value());
    p.set_lease(Lease());
    p.set_prev_kv(Chance(30));
    if (Chance(8)) {
      p.set_ignore_value(true);
      if (Chance(70)) p.clear_value();
    }
    if (Chance(8)) {
      p.set_ignore_lease(true);
      if (Chance(70)) p.set_lease(0);
    }
    return p;
  }

  etcdserverpb::DeleteRangeRequest Delete() {
    etcdserverpb::DeleteRangeRequest d;
    d.set_key(Key());
    d.set_range_end(RangeEnd(d.key()));
    d.set_prev_kv(Chance(40));
    return d;
  }

  RangeRequest Range() {
    RangeRequest r;
    r.set_key(Chance(10) ? std::string(1, '\0') : kKeys[Pick(kKeys.size())]);
    r.set_range_end(Chance(25) ? std::string(1, '\0') : RangeEnd(r.key()));
    if (Chance(40)) r.set_limit(Pick(4));
    if (Chance(50)) r.set_revision(Revision());
    if (Chance(40)) r.set_sort_order(static_cast<RangeRequest::SortOrder>(Pick(3)));
    if (Chance(40)) r.set_sort_target(static_cast<RangeRequest::SortTarget>(Pick(5)));
    r.set_keys_only(Chance(15));
    r.set_count_only(Chance(10));
    if (Chance(15)) r.set_min_mod_revision(Revision());
    if (Chance(15)) r.set_max_mod_revision(Revision());
    if (Chance(15)) r.set_min_create_revision(Revision());
    if (Chance(15)) r.set_max_create_revision(Revision());
    return r;
  }

  Compare Cmp() {
    Compare c;
    c.set_key(Key());
    if (Chance(15)) c.set_range_end(RangeEnd(c.key()));
    c.set_result(static_cast<Compare::CompareResult>(Pick(4)));
    c.set_target(static_cast<Compare::CompareTarget>(Pick(5)));
    switch (Pick(6)) {
      case 0:
        c.set_version(Pick(4));
        break;
      case 1:
        c.set_create_revision(Revision());
        break;
      case 2:
        c.set_mod_revision(Revision());
        break;
      case 3:
        c.set_value(Value());
        break;
      case 4:
        c.set_lease(Lease());
        break;
      default:
        break;  // no operand: compares with 0 / empty
    }
    return c;
  }

  etcdserverpb::TxnRequest Txn(int depth) {
    etcdserverpb::TxnRequest t;
    for (int n = Pick(3); n > 0; --n) *t.add_compare() = Cmp();
    for (auto* branch : {t.mutable_success(), t.mutable_failure()}) {
      for (int n = Pick(4); n > 0; --n) {
        etcdserverpb::RequestOp* op = branch->Add();
        const int kind = Pick(depth < 2 ? 10 : 9);
        if (kind < 3) {
          *op->mutable_request_put() = Put();
        } else if (kind < 5) {
          *op->mutable_request_delete_range() = Delete();
        } else if (kind < 9) {
          *op->mutable_request_range() = Range();
        } else {
          *op->mutable_request_txn() = Txn(depth + 1);
        }
      }
    }
    return t;
  }

  internalpb::Request Command() {
    internalpb::Request r;
    const int p = Pick(100);
    if (p < 35) {
      *r.mutable_put() = Put();
    } else if (p < 47) {
      *r.mutable_delete_range() = Delete();
    } else if (p < 72) {
      *r.mutable_txn() = Txn(0);
    } else if (p < 77) {
      r.mutable_compaction()->set_revision(Revision());
    } else if (p < 85) {
      r.mutable_lease_grant()->set_ttl(Chance(5) ? 9000000001 : Pick(20));
      if (Chance(60)) r.mutable_lease_grant()->set_id(1000 + Pick(4));
    } else if (p < 93) {
      std::vector<LeaseInfo> leases = model_->Leases();
      r.mutable_lease_revoke()->set_id(
          leases.empty() || Chance(20) ? 1003 : leases[Pick(leases.size())].id);
    } else if (p < 97) {
      etcdserverpb::LeaseCheckpoint* cp = r.mutable_lease_checkpoint()->add_checkpoints();
      cp->set_id(1000 + Pick(4));
      cp->set_remaining_ttl(Pick(30));
    } else {
      internalpb::MemberAttributes* m = r.mutable_member_attributes();
      m->set_id(1 + Pick(3));
      m->set_name(Value());
      m->add_peer_urls("http://127.0.0.1:" + std::to_string(2380 + Pick(3)));
      m->set_removed(Chance(20));
    }
    return r;
  }

 private:
  std::mt19937_64 rng_;
  const KvModel* model_;
};

bool SameMessage(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// Records what the store tells its event listener.
class Recorder : public EventListener {
 public:
  explicit Recorder(bool prev) : prev_(prev) {}
  bool WantsPrevKv() const override { return prev_; }
  void OnRevision(int64_t revision, std::vector<mvccpb::Event> events) override {
    revisions.push_back(revision);
    this->events = std::move(events);
  }
  void Clear() {
    revisions.clear();
    events.clear();
  }
  bool prev() const { return prev_; }

  std::vector<int64_t> revisions;
  std::vector<mvccpb::Event> events;

 private:
  const bool prev_;
};

// Runs one seed; returns a description of the first difference, or "".
class ModelRun {
 public:
  ModelRun(uint64_t seed, int steps)
      : seed_(seed), steps_(steps), gen_(seed, &model_), recorder_(seed % 2 == 0) {}

  std::string Run() {
    h_ = std::make_unique<KvHarness>(Options());
    h_->sm()->SetEventListener(&recorder_);
    for (step_ = 0; step_ < steps_; ++step_) {
      const int p = gen_.Pick(100);
      if (p < 2) {
        h_->Reopen();
        h_->sm()->SetEventListener(&recorder_);
      } else if (p < 4) {
        Crash();
      } else if (p < 6) {
        if (std::string err = MoveToRestoredStore(); !err.empty()) return err;
      } else if (std::string err = ApplyOne(); !err.empty()) {
        return err;
      }
      if (std::string err = Verify(); !err.empty()) return err;
    }
    return "";
  }

 private:
  static KvStateMachine::Options Options() {
    KvStateMachine::Options o;
    o.min_lease_ttl = 2;
    o.write_buffer_bytes = 64 << 10;  // small: memtables reach table files
    return o;
  }

  std::string Where() const { return absl::StrCat("seed ", seed_, " step ", step_, ": "); }

  std::string ApplyOne() {
    internalpb::Request req = gen_.Command();
    log_.push_back(req.SerializeAsString());
    recorder_.Clear();
    const int64_t before = model_.rev();
    internalpb::Response got = h_->Apply(req);
    if (req.has_lease_grant() && req.lease_grant().id() == 0 && got.error_code() == 0) {
      const int64_t id = got.lease_grant().id();
      for (const LeaseInfo& l : model_.Leases()) {
        if (l.id == id || id <= 0) return Where() + "store chose a bad lease ID";
      }
    }
    internalpb::Response want = model_.Apply(req, got);
    if (!SameMessage(want, got)) {
      return Where() + "response differs for\n" + req.DebugString() + "want:\n" +
             want.DebugString() + "got:\n" + got.DebugString();
    }
    return CheckListener(before);
  }

  // The listener heard of exactly the new revision, with its events.
  std::string CheckListener(int64_t before) {
    std::vector<int64_t> want_revs;
    std::vector<mvccpb::Event> want;
    if (model_.rev() != before) {
      want_revs.push_back(model_.rev());
      const std::string all(1, '\0');
      (void)model_.Events(all, all, model_.rev(), model_.rev(), recorder_.prev(), &want);
    }
    bool same = recorder_.revisions == want_revs && recorder_.events.size() == want.size();
    for (size_t i = 0; same && i < want.size(); ++i) {
      same = SameMessage(want[i], recorder_.events[i]);
    }
    if (same) return "";
    std::string out = Where() + "listener events differ\nwant:\n";
    for (const auto& e : want) out += e.ShortDebugString() + "\n";
    out += "got:\n";
    for (const auto& e : recorder_.events) out += e.ShortDebugString() + "\n";
    return out;
  }

  void Crash() {
    h_->Crash();
    h_->sm()->SetEventListener(&recorder_);
    const uint64_t applied = h_->sm()->AppliedIndex();
    h_->set_index(applied);
    for (uint64_t i = applied; i < log_.size(); ++i) {
      std::string out;
      absl::Status s = h_->sm()->Apply(i + 1, log_[i], &out);
      EXPECT_TRUE(s.ok()) << s;
    }
    h_->set_index(log_.size());
  }

  std::string MoveToRestoredStore() {
    absl::StatusOr<std::string> snap = h_->sm()->Snapshot();
    if (!snap.ok()) return Where() + snap.status().ToString();
    auto fresh = std::make_unique<KvHarness>(Options());
    if (absl::Status s = fresh->sm()->Restore(log_.size(), *snap); !s.ok()) {
      return Where() + s.ToString();
    }
    if (fresh->sm()->Hash() != h_->sm()->Hash()) return Where() + "restored store hashes differ";
    absl::StatusOr<HashKvResult> a = h_->sm()->HashKv(0), b = fresh->sm()->HashKv(0);
    if (!a.ok() || !b.ok() || a->hash != b->hash) return Where() + "restored HashKV differs";
    fresh->set_index(log_.size());
    fresh->sm()->SetEventListener(&recorder_);
    h_ = std::move(fresh);
    return "";
  }

  std::string CheckRange(const RangeRequest& r) {
    etcdserverpb::RangeResponse want, got;
    absl::Status ws = model_.Range(r, &want);
    absl::Status gs = h_->sm()->Range(r, &got);
    if (ws.code() != gs.code() || ws.message() != gs.message() ||
        (ws.ok() && !SameMessage(want, got))) {
      return Where() + "range differs for\n" + r.DebugString() + "want: " + ws.ToString() + "\n" +
             want.DebugString() + "got: " + gs.ToString() + "\n" + got.DebugString();
    }
    return "";
  }

  std::string CheckEvents() {
    const std::string key = gen_.Chance(30) ? std::string(1, '\0') : kKeys[gen_.Pick(kKeys.size())];
    const std::string end = gen_.Chance(40) ? std::string(1, '\0') : gen_.RangeEnd(key);
    const int64_t start = gen_.Revision();
    const bool prev = gen_.Chance(50);
    std::vector<mvccpb::Event> want;
    absl::Status ws = model_.Events(key, end, start, 0, prev, &want);
    absl::StatusOr<EventBatch> got = h_->sm()->ReadEvents(key, end, start, 0, prev, 0);
    bool same = ws.code() == got.status().code();
    if (same && ws.ok()) {
      same = want.size() == got->events.size();
      for (size_t i = 0; same && i < want.size(); ++i) same = SameMessage(want[i], got->events[i]);
    }
    if (!same) {
      std::string out = Where() + absl::StrCat("events differ from ", start, " for [", key, ", ",
                                               end, ") prev=", prev, "\nwant:\n");
      for (const auto& e : want) out += e.ShortDebugString() + "\n";
      out += "got: " + got.status().ToString() + "\n";
      if (got.ok()) {
        for (const auto& e : got->events) out += e.ShortDebugString() + "\n";
      }
      return out;
    }
    return "";
  }

  std::string CheckTables() {
    std::vector<LeaseInfo> want = model_.Leases();
    std::vector<LeaseInfo> got = h_->sm()->Leases();
    if (want.size() != got.size()) return Where() + "lease count differs";
    for (size_t i = 0; i < want.size(); ++i) {
      std::optional<LeaseInfo> full = h_->sm()->GetLease(got[i].id, true);
      if (!full.has_value() || full->id != want[i].id || full->ttl != want[i].ttl ||
          full->remaining_ttl != want[i].remaining_ttl || full->keys != want[i].keys) {
        return Where() + absl::StrCat("lease ", want[i].id, " differs");
      }
    }
    std::vector<internalpb::MemberAttributes> wm = model_.Members(), gm = h_->sm()->Members();
    if (wm.size() != gm.size()) return Where() + "member count differs";
    for (size_t i = 0; i < wm.size(); ++i) {
      if (!SameMessage(wm[i], gm[i])) return Where() + "member differs";
    }
    return "";
  }

  std::string Verify() {
    if (h_->sm()->CurrentRevision() != model_.rev() ||
        h_->sm()->CompactRevision() != model_.compact()) {
      return Where() + absl::StrCat("revisions differ: store ", h_->sm()->CurrentRevision(), "/",
                                    h_->sm()->CompactRevision(), " model ", model_.rev(), "/",
                                    model_.compact());
    }
    if (h_->sm()->AppliedIndex() != log_.size()) return Where() + "applied index differs";
    for (int i = 0; i < 3; ++i) {
      if (std::string err = CheckRange(gen_.Range()); !err.empty()) return err;
    }
    if (step_ % 10 == 0) {
      // Everything, at every readable revision.
      for (int64_t rev = std::max<int64_t>(model_.compact(), 1); rev <= model_.rev(); ++rev) {
        RangeRequest all;
        all.set_key(std::string(1, '\0'));
        all.set_range_end(std::string(1, '\0'));
        all.set_revision(rev);
        if (std::string err = CheckRange(all); !err.empty()) return err;
      }
    }
    if (std::string err = CheckEvents(); !err.empty()) return err;
    return CheckTables();
  }

  const uint64_t seed_;
  const int steps_;
  KvModel model_{2};
  Generator gen_;
  Recorder recorder_;
  std::unique_ptr<KvHarness> h_;
  std::vector<std::string> log_;
  int step_ = 0;
};

TEST(KvModelTest, RandomCommandsMatchTheModel) {
  const int64_t only = EnvInt("KV_MODEL_SEED", 0);
  const int64_t seeds = only != 0 ? 1 : EnvInt("KV_MODEL_SEEDS", 60);
  const int steps = static_cast<int>(EnvInt("KV_MODEL_STEPS", 500));
  for (int64_t i = 0; i < seeds; ++i) {
    const uint64_t seed = only != 0 ? static_cast<uint64_t>(only) : static_cast<uint64_t>(i + 1);
    ModelRun run(seed, steps);
    const std::string err = run.Run();
    ASSERT_EQ(err, "") << "rerun with KV_MODEL_SEED=" << seed;
  }
}

}  // namespace
}  // namespace arbiter::kv
