#include "raft/progress.h"

#include <gtest/gtest.h>

namespace arbiter::raft {
namespace {

constexpr ProgressState kProbe = ProgressState::kProbe;
constexpr ProgressState kReplicate = ProgressState::kReplicate;
constexpr ProgressState kSnapshot = ProgressState::kSnapshot;

Progress Make(ProgressState state, uint64_t match, uint64_t next, size_t max_inflight = 256) {
  Progress pr(next, max_inflight, 0, /*is_learner=*/false);
  pr.state = state;
  pr.match = match;
  return pr;
}

TEST(ProgressTest, Constructor) {
  Progress pr(7, 16, 1024, /*is_learner=*/true);
  EXPECT_EQ(pr.next, 7u);
  EXPECT_EQ(pr.match, 0u);
  EXPECT_EQ(pr.state, kProbe);
  EXPECT_TRUE(pr.is_learner);
  EXPECT_FALSE(pr.recent_active);
  EXPECT_FALSE(pr.msg_app_flow_paused);
  EXPECT_EQ(pr.inflights.max_count(), 16u);
  EXPECT_EQ(pr.inflights.Count(), 0u);
}

TEST(ProgressTest, StateNames) {
  EXPECT_STREQ(ProgressStateName(kProbe), "StateProbe");
  EXPECT_STREQ(ProgressStateName(kReplicate), "StateReplicate");
  EXPECT_STREQ(ProgressStateName(kSnapshot), "StateSnapshot");
}

TEST(ProgressTest, Describe) {
  Progress pr(2, 1, 0, /*is_learner=*/true);
  pr.inflights.Add(123, 1);
  pr.match = 1;
  pr.state = kSnapshot;
  pr.pending_snapshot = 123;
  pr.recent_active = false;
  EXPECT_EQ(
      pr.Describe(),
      "StateSnapshot match=1 next=2 learner paused pendingSnap=123 inactive inflight=1[full]");

  Progress plain = Make(kReplicate, 3, 4);
  plain.recent_active = true;
  EXPECT_EQ(plain.Describe(), "StateReplicate match=3 next=4");
}

TEST(ProgressTest, IsPaused) {
  struct Case {
    ProgressState state;
    bool paused;
    bool want;
  };
  const Case cases[] = {
      {kProbe, false, false},   {kProbe, true, true},     {kReplicate, false, false},
      {kReplicate, true, true}, {kSnapshot, false, true}, {kSnapshot, true, true},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    Progress pr = Make(cases[i].state, 0, 1);
    pr.msg_app_flow_paused = cases[i].paused;
    EXPECT_EQ(pr.IsPaused(), cases[i].want);
  }
}

TEST(ProgressTest, ResetStateClearsPauseSnapshotAndInflights) {
  Progress pr = Make(kReplicate, 1, 5);
  pr.inflights.Add(3, 10);
  pr.inflights.Add(4, 10);
  pr.msg_app_flow_paused = true;
  pr.pending_snapshot = 9;
  pr.ResetState(kProbe);
  EXPECT_EQ(pr.state, kProbe);
  EXPECT_FALSE(pr.msg_app_flow_paused);
  EXPECT_EQ(pr.pending_snapshot, 0u);
  EXPECT_EQ(pr.inflights.Count(), 0u);
  EXPECT_EQ(pr.inflights.Bytes(), 0u);
  // Match and next are left alone.
  EXPECT_EQ(pr.match, 1u);
  EXPECT_EQ(pr.next, 5u);
}

TEST(ProgressTest, BecomeProbe) {
  struct Case {
    ProgressState from;
    uint64_t match;
    uint64_t next;
    uint64_t pending_snapshot;
    uint64_t want_next;
  };
  const Case cases[] = {
      {kReplicate, 1, 5, 0, 2},
      {kProbe, 1, 5, 0, 2},
      // Leaving snapshot state after the snapshot at 10 was sent: probe past it.
      {kSnapshot, 1, 11, 10, 11},
      // The snapshot is older than what is already matched.
      {kSnapshot, 20, 21, 10, 21},
      // The snapshot failed (pending cleared): back to match + 1.
      {kSnapshot, 1, 5, 0, 2},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    Progress pr = Make(c.from, c.match, c.next);
    pr.pending_snapshot = c.pending_snapshot;
    pr.msg_app_flow_paused = true;
    pr.BecomeProbe();
    EXPECT_EQ(pr.state, kProbe);
    EXPECT_EQ(pr.match, c.match);
    EXPECT_EQ(pr.next, c.want_next);
    EXPECT_EQ(pr.pending_snapshot, 0u);
    EXPECT_FALSE(pr.IsPaused());
  }
}

TEST(ProgressTest, BecomeReplicate) {
  Progress pr = Make(kProbe, 1, 5);
  pr.msg_app_flow_paused = true;
  pr.BecomeReplicate();
  EXPECT_EQ(pr.state, kReplicate);
  EXPECT_EQ(pr.match, 1u);
  EXPECT_EQ(pr.next, 2u);
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, BecomeSnapshot) {
  Progress pr = Make(kReplicate, 1, 5);
  pr.inflights.Add(4, 1);
  pr.BecomeSnapshot(10);
  EXPECT_EQ(pr.state, kSnapshot);
  EXPECT_EQ(pr.match, 1u);
  EXPECT_EQ(pr.pending_snapshot, 10u);
  EXPECT_EQ(pr.next, 11u);
  EXPECT_EQ(pr.inflights.Count(), 0u);
  EXPECT_TRUE(pr.IsPaused());
  // Sending the snapshot's index as commit again would be redundant.
  EXPECT_FALSE(pr.CanBumpCommit(10));
}

TEST(ProgressTest, SnapshotAppliedThenProbe) {
  // Snapshot at 10 is sent; the follower applies it and the leader hears
  // about it through an append response at 10.
  Progress pr = Make(kProbe, 0, 1);
  pr.BecomeSnapshot(10);
  EXPECT_TRUE(pr.MaybeUpdate(10));
  EXPECT_EQ(pr.match, 10u);
  EXPECT_EQ(pr.next, 11u);
  pr.BecomeProbe();
  EXPECT_EQ(pr.next, 11u);
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, MaybeUpdate) {
  const uint64_t m = 3, n = 5;
  struct Case {
    uint64_t update;
    uint64_t want_match;
    uint64_t want_next;
    bool want_ok;
  };
  const Case cases[] = {
      {m - 1, m, n, false},         // stale: match does not go back
      {m, m, n, false},             // duplicate
      {m + 1, m + 1, n, true},      // match moves, next already ahead
      {m + 2, m + 2, n + 1, true},  // both move
      {m + 10, m + 10, m + 11, true},
  };
  for (ProgressState state : {kProbe, kReplicate}) {
    for (size_t i = 0; i < std::size(cases); ++i) {
      SCOPED_TRACE(testing::Message() << ProgressStateName(state) << " case " << i);
      const Case& c = cases[i];
      Progress pr = Make(state, m, n);
      pr.msg_app_flow_paused = true;
      EXPECT_EQ(pr.MaybeUpdate(c.update), c.want_ok);
      EXPECT_EQ(pr.match, c.want_match);
      EXPECT_EQ(pr.next, c.want_next);
      // Only a real update unpauses.
      EXPECT_EQ(pr.msg_app_flow_paused, !c.want_ok);
    }
  }
}

TEST(ProgressTest, MaybeDecrTo) {
  struct Case {
    ProgressState state;
    uint64_t match;
    uint64_t next;
    uint64_t rejected;
    uint64_t match_hint;
    bool want_ok;
    uint64_t want_next;
  };
  const Case cases[] = {
      // Replicate: a rejection at or below match is stale.
      {kReplicate, 5, 10, 5, 5, false, 10},
      {kReplicate, 5, 10, 4, 4, false, 10},
      // Replicate: otherwise next falls back to match + 1, whatever the hint.
      {kReplicate, 5, 10, 9, 9, true, 6},
      {kReplicate, 5, 10, 7, 1, true, 6},
      // Probe: only a rejection of next - 1 (the probe in flight) counts.
      {kProbe, 0, 10, 5, 5, false, 10},
      {kProbe, 0, 10, 10, 10, false, 10},
      {kProbe, 0, 10, 9, 9, true, 9},
      {kProbe, 0, 2, 1, 1, true, 1},
      {kProbe, 0, 1, 0, 0, true, 1},
      // The hint moves next further back, to hint + 1...
      {kProbe, 0, 10, 9, 2, true, 3},
      {kProbe, 0, 10, 9, 0, true, 1},
      // ...but never at or below match.
      {kProbe, 5, 10, 9, 2, true, 6},
      // A hint above the rejected index is ignored.
      {kProbe, 0, 10, 9, 20, true, 9},
      // Snapshot state behaves like probe here.
      {kSnapshot, 0, 11, 10, 3, true, 4},
      {kSnapshot, 0, 11, 7, 3, false, 11},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const Case& c = cases[i];
    Progress pr = Make(c.state, c.match, c.next);
    pr.msg_app_flow_paused = true;
    EXPECT_EQ(pr.MaybeDecrTo(c.rejected, c.match_hint), c.want_ok);
    EXPECT_EQ(pr.match, c.match);
    EXPECT_EQ(pr.next, c.want_next);
    EXPECT_EQ(pr.state, c.state);
    if (c.state == kProbe) {
      // A genuine rejection lets the next probe go out.
      EXPECT_EQ(pr.msg_app_flow_paused, !c.want_ok);
    }
  }
}

TEST(ProgressTest, SentEntriesInProbePauses) {
  for (size_t entries : {0, 1, 3}) {
    SCOPED_TRACE(entries);
    Progress pr = Make(kProbe, 2, 3);
    EXPECT_FALSE(pr.IsPaused());
    pr.SentEntries(entries, 100);
    EXPECT_TRUE(pr.IsPaused());
    // Probing does not move next or use the window.
    EXPECT_EQ(pr.next, 3u);
    EXPECT_EQ(pr.inflights.Count(), 0u);
    // The answer unpauses it.
    EXPECT_TRUE(pr.MaybeUpdate(3));
    EXPECT_FALSE(pr.IsPaused());
  }
}

TEST(ProgressTest, SentEntriesInReplicate) {
  Progress pr = Make(kReplicate, 5, 6, /*max_inflight=*/3);
  pr.SentEntries(2, 20);  // entries 6, 7
  EXPECT_EQ(pr.next, 8u);
  EXPECT_EQ(pr.inflights.Count(), 1u);
  EXPECT_EQ(pr.inflights.Bytes(), 20u);
  EXPECT_FALSE(pr.IsPaused());

  pr.SentEntries(0, 0);  // an empty append (commit only) uses no slot
  EXPECT_EQ(pr.next, 8u);
  EXPECT_EQ(pr.inflights.Count(), 1u);
  EXPECT_FALSE(pr.IsPaused());

  pr.SentEntries(1, 10);  // entry 8
  pr.SentEntries(3, 30);  // entries 9..11: the window (3) is full now
  EXPECT_EQ(pr.next, 12u);
  EXPECT_EQ(pr.inflights.Count(), 3u);
  EXPECT_TRUE(pr.IsPaused());

  // The acknowledgement of 7 frees the first message (whose last index is 7).
  EXPECT_TRUE(pr.MaybeUpdate(7));
  pr.inflights.FreeLE(7);
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_EQ(pr.inflights.Count(), 2u);

  // The window is keyed by last index: acking 10 frees only through 8.
  EXPECT_TRUE(pr.MaybeUpdate(10));
  pr.inflights.FreeLE(10);
  EXPECT_EQ(pr.inflights.Count(), 1u);
  EXPECT_EQ(pr.inflights.Bytes(), 30u);
}

TEST(ProgressTest, SentEntriesByteLimitPauses) {
  Progress pr(6, 100, 50, /*is_learner=*/false);
  pr.state = kReplicate;
  pr.match = 5;
  pr.SentEntries(1, 30);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(1, 30);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.next, 8u);
}

TEST(ProgressTest, Resume) {
  Progress pr = Make(kProbe, 0, 2);
  pr.msg_app_flow_paused = true;
  pr.MaybeDecrTo(1, 1);
  EXPECT_FALSE(pr.msg_app_flow_paused);
  pr.msg_app_flow_paused = true;
  pr.MaybeUpdate(2);
  EXPECT_FALSE(pr.msg_app_flow_paused);
}

TEST(ProgressTest, CommitTracking) {
  Progress pr = Make(kReplicate, 5, 11);
  // Nothing sent yet: any higher commit is worth sending.
  EXPECT_TRUE(pr.CanBumpCommit(3));
  EXPECT_FALSE(pr.CanBumpCommit(0));
  pr.SentCommit(7);
  EXPECT_FALSE(pr.CanBumpCommit(7));
  EXPECT_TRUE(pr.CanBumpCommit(8));
  // Once commit next - 1 is sent, the follower can commit all it has.
  pr.SentCommit(10);
  EXPECT_FALSE(pr.CanBumpCommit(12));

  // A rejection moves next back and regresses sent_commit with it, so the
  // commit is sent again along with the re-sent entries.
  EXPECT_TRUE(pr.MaybeDecrTo(8, 8));
  EXPECT_EQ(pr.next, 6u);
  EXPECT_EQ(pr.sent_commit, 5u);
  EXPECT_FALSE(pr.CanBumpCommit(5));
  EXPECT_FALSE(pr.CanBumpCommit(12));  // sent_commit == next - 1 already

  pr.BecomeProbe();
  EXPECT_EQ(pr.sent_commit, 5u);
  pr.SentCommit(9);
  pr.BecomeProbe();  // next = 6
  EXPECT_EQ(pr.sent_commit, 5u);

  pr.BecomeSnapshot(20);
  EXPECT_EQ(pr.sent_commit, 20u);
}

TEST(ProgressDeathTest, SentEntriesInSnapshotAborts) {
  Progress pr = Make(kProbe, 0, 1);
  pr.BecomeSnapshot(10);
  EXPECT_DEATH(pr.SentEntries(1, 1), "SentEntries");
}

}  // namespace
}  // namespace arbiter::raft
