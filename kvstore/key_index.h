// The history of one key in the MVCC index, as in etcd's mvcc/key_index.go.
//
// A key's history is a list of generations. A generation runs from the put
// that creates the key to the tombstone that deletes it; the tombstone is the
// last revision of its generation and is followed by a new, empty
// generation. The last generation is empty exactly when the key is deleted
// (or was never written). For example, a key put at 1, 2 and 3, deleted at 4,
// and put again at 5 has
//
//   generations: {created 1, ver 3, revs [1 2 3 4(t)]}, {created 5, ver 1, revs [5]}
//
// `ver` counts the puts of a generation (and the tombstone, which etcd counts
// too); the version of the key at a revision is `ver` minus the number of the
// generation's revisions after it.
//
// Compaction at revision C drops, from every generation, the revisions below
// the newest revision <= C, and drops whole generations whose tombstone is
// <= C: after it the key's history still answers every read at or above C,
// and nothing older. Compact and Keep report the revisions the compaction
// keeps that are <= C (at most one per key: the value the key had at C, if
// it was live then), so the caller knows which stored records to delete.
//
// Thread safety: none; the owner (the MVCC store) serializes access.
#ifndef ARBITER_KVSTORE_KEY_INDEX_H_
#define ARBITER_KVSTORE_KEY_INDEX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "kvstore/revision.h"

namespace arbiter::kv {

struct Generation {
  // The number of revisions ever added to this generation (puts plus its
  // tombstone), including those removed by compaction.
  int64_t ver = 0;
  // The revision of the put that created the key in this generation.
  Revision created;
  // Ascending. Compaction may remove a prefix; never empty in a generation
  // that is not the last one.
  std::vector<Revision> revs;

  bool empty() const { return revs.empty(); }
  friend bool operator==(const Generation&, const Generation&) = default;
};

// What a key looked like at a revision.
struct KeyAt {
  Revision modified;
  Revision created;
  int64_t version = 0;
};

class KeyIndex {
 public:
  KeyIndex() : generations_(1) {}

  // Records a put of the key at rev.
  // Errors: Internal if rev is not above the key's last modification (the
  // store never does that; a caller bug must not corrupt the history).
  absl::Status Put(Revision rev);

  // Starts the history of a key rebuilt from a compacted store: its current
  // generation was created at `created`, last modified at `modified`, with
  // version `ver` there. REQUIRES: the index is empty.
  void Restore(Revision created, Revision modified, int64_t ver);

  // Records the deletion of the key at rev and starts a new generation.
  // Errors: NotFound if the key is not live (its last generation is empty);
  // Internal as for Put.
  absl::Status Tombstone(Revision rev);

  // The key as of revision at_rev: false if it did not exist then (never
  // created, deleted, or compacted away).
  bool Get(int64_t at_rev, KeyAt* out) const;

  // The revision of the key's value at at_rev, if it was live then. The hot
  // path of Range: no version arithmetic.
  bool GetModified(int64_t at_rev, Revision* out) const;

  // The revisions at or after main revision rev, at most one per main
  // revision (the last change of the key within it), oldest first. Starts
  // from the generation live at rev.
  std::vector<Revision> Since(int64_t rev) const;

  // Compacts the history at at_rev (see the file comment) and adds to
  // *available the revision <= at_rev that is still needed, if any.
  void Compact(int64_t at_rev, absl::flat_hash_set<Revision>* available);

  // What Compact(at_rev) would add to *available, without changing anything.
  void Keep(int64_t at_rev, absl::flat_hash_set<Revision>* available) const;

  // True if nothing is left: one empty generation.
  bool IsEmpty() const { return generations_.size() == 1 && generations_[0].empty(); }

  // True if the key exists now (the last generation holds revisions).
  bool IsLive() const { return !generations_.back().empty(); }

  // The generation holding the key's state at revision rev, or nullptr if the
  // key did not exist then.
  const Generation* FindGeneration(int64_t rev) const;

  Revision modified() const { return modified_; }
  const std::vector<Generation>& generations() const { return generations_; }

  // A readable dump, for test failures: "g{created ver [revs]} ...".
  std::string DebugString() const;

  friend bool operator==(const KeyIndex&, const KeyIndex&) = default;

 private:
  // The generation and the index in it of the newest revision <= at_rev that
  // compaction at at_rev must consider; adds it to *available. rev_index is
  // -1 if the generation has none.
  void DoCompact(int64_t at_rev, absl::flat_hash_set<Revision>* available, size_t* gen_index,
                 int* rev_index) const;

  // The last modification (put or tombstone).
  Revision modified_;
  // Invariant: never empty; only the last generation may be empty.
  std::vector<Generation> generations_;
};

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_KEY_INDEX_H_
