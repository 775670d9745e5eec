// A revision of the MVCC store: the pair (main, sub). Every write command
// that changes the key space (a Put, an effective DeleteRange, a Txn with
// writes, a lease revocation that deletes keys) takes the next main revision;
// the individual key changes within it are numbered by sub, from 0, in the
// order they were made. Revisions are totally ordered by (main, sub), and
// the on-disk key of a revision (kvstore/mvcc_keys.h) preserves that order
// under LevelDB's bytewise comparator.
//
// Thread safety: a plain value type.
#ifndef ARBITER_KVSTORE_REVISION_H_
#define ARBITER_KVSTORE_REVISION_H_

#include <compare>
#include <cstdint>
#include <ostream>
#include <utility>

namespace arbiter::kv {

struct Revision {
  // Invariant (for stored revisions): main >= 1 and sub >= 0.
  int64_t main = 0;
  int64_t sub = 0;

  friend constexpr auto operator<=>(const Revision&, const Revision&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const Revision& r) {
    return H::combine(std::move(h), r.main, r.sub);
  }
};

inline std::ostream& operator<<(std::ostream& os, const Revision& r) {
  return os << "{" << r.main << "," << r.sub << "}";
}

}  // namespace arbiter::kv

#endif  // ARBITER_KVSTORE_REVISION_H_
