#include "kvstore/key_index.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace arbiter::kv {
namespace {

// The index of the newest revision in g for which keep_walking is false,
// walking from the newest; -1 if keep_walking holds for all.
template <typename F>
int WalkBack(const Generation& g, F keep_walking) {
  for (int i = static_cast<int>(g.revs.size()) - 1; i >= 0; --i) {
    if (!keep_walking(g.revs[i])) return i;
  }
  return -1;
}

}  // namespace

absl::Status KeyIndex::Put(Revision rev) {
  if (rev <= modified_) {
    return absl::InternalError(absl::StrCat("mvcc: put at revision {", rev.main, ",", rev.sub,
                                            "} not after the last modification {", modified_.main,
                                            ",", modified_.sub, "}"));
  }
  Generation& g = generations_.back();
  if (g.revs.empty()) g.created = rev;
  g.revs.push_back(rev);
  ++g.ver;
  modified_ = rev;
  return absl::OkStatus();
}

void KeyIndex::Restore(Revision created, Revision modified, int64_t ver) {
  modified_ = modified;
  generations_.clear();
  generations_.push_back(Generation{ver, created, {modified}});
}

absl::Status KeyIndex::Tombstone(Revision rev) {
  if (generations_.back().empty()) return absl::NotFoundError("mvcc: key is not live");
  if (absl::Status s = Put(rev); !s.ok()) return s;
  generations_.emplace_back();
  return absl::OkStatus();
}

const Generation* KeyIndex::FindGeneration(int64_t rev) const {
  const int last = static_cast<int>(generations_.size()) - 1;
  for (int cg = last; cg >= 0; --cg) {
    const Generation& g = generations_[cg];
    if (g.revs.empty()) continue;
    // A generation that ended (by its tombstone) at or before rev: the key
    // was deleted at rev, and older generations are older still.
    if (cg != last && g.revs.back().main <= rev) return nullptr;
    if (g.revs.front().main <= rev) return &g;
  }
  return nullptr;
}

bool KeyIndex::Get(int64_t at_rev, KeyAt* out) const {
  const Generation* g = FindGeneration(at_rev);
  if (g == nullptr) return false;
  const int n = WalkBack(*g, [at_rev](Revision r) { return r.main > at_rev; });
  if (n == -1) return false;
  out->modified = g->revs[n];
  out->created = g->created;
  out->version = g->ver - static_cast<int64_t>(g->revs.size() - n - 1);
  return true;
}

bool KeyIndex::GetModified(int64_t at_rev, Revision* out) const {
  // Fast path: the key is live and its last change is visible at at_rev.
  const Generation& last = generations_.back();
  if (!last.revs.empty() && last.revs.back().main <= at_rev) {
    *out = last.revs.back();
    return true;
  }
  const Generation* g = FindGeneration(at_rev);
  if (g == nullptr) return false;
  const int n = WalkBack(*g, [at_rev](Revision r) { return r.main > at_rev; });
  if (n == -1) return false;
  *out = g->revs[n];
  return true;
}

std::vector<Revision> KeyIndex::Since(int64_t rev) const {
  const Revision since{rev, 0};
  size_t gi = generations_.size() - 1;
  for (; gi > 0; --gi) {
    const Generation& g = generations_[gi];
    if (g.revs.empty()) continue;
    if (since > g.created) break;
  }
  std::vector<Revision> revs;
  int64_t last = 0;
  for (; gi < generations_.size(); ++gi) {
    for (const Revision& r : generations_[gi].revs) {
      if (since > r) continue;
      if (!revs.empty() && r.main == last) {
        // Only the last change of the key within one main revision.
        revs.back() = r;
        continue;
      }
      revs.push_back(r);
      last = r.main;
    }
  }
  return revs;
}

void KeyIndex::DoCompact(int64_t at_rev, absl::flat_hash_set<Revision>* available,
                         size_t* gen_index, int* rev_index) const {
  size_t gi = 0;
  // Skip the generations that ended (tombstone) at or before at_rev.
  while (gi + 1 < generations_.size()) {
    if (generations_[gi].revs.back().main > at_rev) break;
    ++gi;
  }
  *gen_index = gi;
  *rev_index = WalkBack(generations_[gi], [at_rev, available](Revision r) {
    if (r.main <= at_rev) {
      available->insert(r);
      return false;
    }
    return true;
  });
}

void KeyIndex::Compact(int64_t at_rev, absl::flat_hash_set<Revision>* available) {
  if (IsEmpty()) return;
  size_t gi = 0;
  int ri = -1;
  DoCompact(at_rev, available, &gi, &ri);
  Generation& g = generations_[gi];
  if (!g.revs.empty()) {
    if (ri != -1) g.revs.erase(g.revs.begin(), g.revs.begin() + ri);
    if (g.revs.size() == 1 && gi + 1 != generations_.size()) {
      // Only a tombstone is left: the key was deleted at or before at_rev.
      available->erase(g.revs[0]);
      ++gi;
    }
  }
  generations_.erase(generations_.begin(), generations_.begin() + gi);
}

void KeyIndex::Keep(int64_t at_rev, absl::flat_hash_set<Revision>* available) const {
  if (IsEmpty()) return;
  size_t gi = 0;
  int ri = -1;
  DoCompact(at_rev, available, &gi, &ri);
  const Generation& g = generations_[gi];
  if (!g.revs.empty() && ri == static_cast<int>(g.revs.size()) - 1 &&
      gi + 1 != generations_.size()) {
    available->erase(g.revs[ri]);
  }
}

std::string KeyIndex::DebugString() const {
  std::string out;
  for (const Generation& g : generations_) {
    absl::StrAppend(&out, "g{created ", g.created.main, ".", g.created.sub, " ver ", g.ver, " [",
                    absl::StrJoin(g.revs, " ",
                                  [](std::string* o, const Revision& r) {
                                    absl::StrAppend(o, r.main, ".", r.sub);
                                  }),
                    "]} ");
  }
  return out;
}

}  // namespace arbiter::kv
