// Planted bugs for testing the MVCC tests. A test build defines one of these
// to 1 (see tests/kvstore/CMakeLists.txt) and checks that the model test
// reports a difference; the product build leaves them all 0, and the
// compiler removes the dead branches.
#ifndef ARBITER_KVSTORE_MVCC_MUTANTS_H_
#define ARBITER_KVSTORE_MVCC_MUTANTS_H_

// Range's count honours the limit (etcd's count is every key in the range).
#ifndef ARBITER_MUTANT_COUNT_HONOURS_LIMIT
#define ARBITER_MUTANT_COUNT_HONOURS_LIMIT 0
#endif

#endif  // ARBITER_KVSTORE_MVCC_MUTANTS_H_
