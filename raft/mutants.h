// Planted bugs for testing the tests. A test build defines one of these to 1
// (see tests/CMakeLists.txt) and checks that the cluster simulation reports a
// safety violation; a release build leaves them all 0, and the compiler
// removes the dead branches.
#ifndef ARBITER_RAFT_MUTANTS_H_
#define ARBITER_RAFT_MUTANTS_H_

// Grant votes without the §5.4.1 check that the candidate's log is at least
// as up-to-date as ours.
#ifndef ARBITER_MUTANT_VOTE_WITHOUT_LOG_CHECK
#define ARBITER_MUTANT_VOTE_WITHOUT_LOG_CHECK 0
#endif

// Commit by counting replicas of an entry from an earlier term (the error
// of Figure 8 that §5.4.2 forbids).
#ifndef ARBITER_MUTANT_COMMIT_PRIOR_TERM
#define ARBITER_MUTANT_COMMIT_PRIOR_TERM 0
#endif

// Answer ReadIndex at once, without confirming leadership with a quorum: a
// deposed leader serves stale reads.
#ifndef ARBITER_MUTANT_READ_WITHOUT_QUORUM
#define ARBITER_MUTANT_READ_WITHOUT_QUORUM 0
#endif

// Let every node, not only a leader, send a Ready's messages before
// persisting it: a follower acknowledges entries (and a candidate or voter
// sends votes) that a crash then forgets.
#ifndef ARBITER_MUTANT_SEND_BEFORE_PERSIST_ANY_ROLE
#define ARBITER_MUTANT_SEND_BEFORE_PERSIST_ANY_ROLE 0
#endif

#endif  // ARBITER_RAFT_MUTANTS_H_
