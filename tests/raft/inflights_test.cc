#include "raft/inflights.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <utility>

namespace arbiter::raft {
namespace {

// Adds index i with 100 + i bytes for i in [begin, end).
void AddRange(Inflights* in, uint64_t begin, uint64_t end) {
  for (uint64_t i = begin; i < end; ++i) {
    ASSERT_FALSE(in->Full()) << "full before adding " << i;
    in->Add(i, 100 + i);
  }
}

TEST(InflightsTest, AddCountsMessagesAndBytes) {
  Inflights in(10, 0);
  EXPECT_EQ(in.Count(), 0u);
  EXPECT_EQ(in.Bytes(), 0u);
  EXPECT_EQ(in.max_count(), 10u);
  AddRange(&in, 0, 5);
  EXPECT_EQ(in.Count(), 5u);
  EXPECT_EQ(in.Bytes(), 510u);
  EXPECT_FALSE(in.Full());
  AddRange(&in, 5, 10);
  EXPECT_EQ(in.Count(), 10u);
  EXPECT_EQ(in.Bytes(), 1045u);
  EXPECT_TRUE(in.Full());
}

TEST(InflightsTest, FreeLEWrapsAroundTheRing) {
  Inflights in(10, 0);
  AddRange(&in, 0, 10);

  struct Step {
    uint64_t free_to;
    size_t want_count;
    uint64_t want_bytes;
  };
  const Step steps[] = {
      {0, 9, 945},  // frees index 0 (100 bytes)
      {4, 5, 535},  // frees 1..4
      {4, 5, 535},  // again: nothing left to free there
      {8, 1, 109},  // frees 5..8; only 9 remains, in the last slot
  };
  for (size_t i = 0; i < std::size(steps); ++i) {
    SCOPED_TRACE(i);
    in.FreeLE(steps[i].free_to);
    EXPECT_EQ(in.Count(), steps[i].want_count);
    EXPECT_EQ(in.Bytes(), steps[i].want_bytes);
  }

  // These go into slots 0..4: the window now wraps past the end.
  AddRange(&in, 10, 15);
  EXPECT_EQ(in.Count(), 6u);
  EXPECT_EQ(in.Bytes(), 109u + 110 + 111 + 112 + 113 + 114);
  // And fill the rest of the ring.
  AddRange(&in, 15, 19);
  EXPECT_TRUE(in.Full());
  EXPECT_EQ(in.Count(), 10u);

  in.FreeLE(12);  // frees 9 (at the end) and 10..12 (at the start)
  EXPECT_EQ(in.Count(), 6u);
  EXPECT_EQ(in.Bytes(), 113u + 114 + 115 + 116 + 117 + 118);
  EXPECT_FALSE(in.Full());

  in.FreeLE(18);
  EXPECT_EQ(in.Count(), 0u);
  EXPECT_EQ(in.Bytes(), 0u);
}

TEST(InflightsTest, FreeLEBelowAndBeyondTheWindow) {
  Inflights in(10, 0);
  in.FreeLE(100);  // empty: nothing happens
  EXPECT_EQ(in.Count(), 0u);

  in.Add(5, 10);
  in.Add(7, 20);
  in.Add(9, 30);
  in.FreeLE(4);  // left of the window
  EXPECT_EQ(in.Count(), 3u);
  EXPECT_EQ(in.Bytes(), 60u);
  in.FreeLE(6);  // between recorded indexes: frees only 5
  EXPECT_EQ(in.Count(), 2u);
  EXPECT_EQ(in.Bytes(), 50u);
  in.FreeLE(1000);  // beyond everything: frees all
  EXPECT_EQ(in.Count(), 0u);
  EXPECT_EQ(in.Bytes(), 0u);
  // Usable again afterwards.
  in.Add(1001, 1);
  EXPECT_EQ(in.Count(), 1u);
  EXPECT_EQ(in.Bytes(), 1u);
}

TEST(InflightsTest, FullByCountAndByBytes) {
  struct Case {
    const char* name;
    size_t max_count;
    uint64_t max_bytes;
    uint64_t full_at;  // Add() 0..full_at-1 (100+i bytes each) fills it
    uint64_t free_le;
    uint64_t again_at;  // after FreeLE(free_le), full_at..again_at-1 fills it again
  };
  const Case cases[] = {
      {"single-entry", 1, 0, 1, 1, 2},
      {"single-entry-byte-overflow", 1, 10, 1, 1, 2},
      {"multi-entry", 15, 0, 15, 6, 22},
      // 100+101+102+103 = 406 >= 400: the byte limit is soft, so the
      // message that crosses it is accepted.
      {"slight-byte-overflow", 8, 400, 4, 2, 7},
      {"exact-max-bytes", 8, 406, 4, 3, 8},
      {"larger-byte-overflow", 15, 408, 5, 1, 6},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    Inflights in(c.max_count, c.max_bytes);
    AddRange(&in, 0, c.full_at);
    EXPECT_TRUE(in.Full());
    in.FreeLE(c.free_le);
    EXPECT_FALSE(in.Full());
    AddRange(&in, c.full_at, c.again_at);
    EXPECT_TRUE(in.Full());
  }
}

TEST(InflightsTest, ResetForgetsEverything) {
  Inflights in(10, 1000);
  uint64_t index = 0;
  // Bytes must not leak across resets.
  for (int epoch = 0; epoch < 100; ++epoch) {
    SCOPED_TRACE(epoch);
    in.Reset();
    EXPECT_EQ(in.Count(), 0u);
    EXPECT_EQ(in.Bytes(), 0u);
    for (int i = 0; i < 5; ++i) {
      ASSERT_FALSE(in.Full());
      in.Add(++index, 16);
    }
    in.FreeLE(index - 2);
    EXPECT_FALSE(in.Full());
    EXPECT_EQ(in.Count(), 2u);
    EXPECT_EQ(in.Bytes(), 32u);
  }
  in.FreeLE(index);
  EXPECT_EQ(in.Count(), 0u);
}

// Random adds and frees against a plain deque, with a small window so the
// ring wraps and grows often.
TEST(InflightsTest, MatchesSimpleModel) {
  std::mt19937_64 rng(7);
  for (size_t max_count : {1, 2, 3, 5, 8}) {
    SCOPED_TRACE(max_count);
    const uint64_t max_bytes = (max_count % 2 == 0) ? 0 : 40;
    Inflights in(max_count, max_bytes);
    std::deque<std::pair<uint64_t, uint64_t>> model;
    uint64_t next_index = 1;
    for (int step = 0; step < 5000; ++step) {
      uint64_t model_bytes = 0;
      for (const auto& [idx, b] : model) model_bytes += b;
      const bool model_full =
          model.size() == max_count || (max_bytes != 0 && model_bytes >= max_bytes);
      ASSERT_EQ(in.Full(), model_full) << "step " << step;
      ASSERT_EQ(in.Count(), model.size()) << "step " << step;
      ASSERT_EQ(in.Bytes(), model_bytes) << "step " << step;

      if (!model_full && rng() % 2 == 0) {
        next_index += 1 + rng() % 3;
        const uint64_t bytes = rng() % 20;
        in.Add(next_index, bytes);
        model.emplace_back(next_index, bytes);
      } else if (rng() % 50 == 0) {
        in.Reset();
        model.clear();
      } else {
        // Free up to somewhere around the window.
        const uint64_t to = next_index >= 6 ? next_index - 6 + rng() % 8 : rng() % 8;
        in.FreeLE(to);
        while (!model.empty() && model.front().first <= to) model.pop_front();
      }
    }
  }
}

TEST(InflightsDeathTest, AddWhenFullAborts) {
  Inflights in(2, 0);
  in.Add(1, 1);
  in.Add(2, 1);
  EXPECT_DEATH(in.Add(3, 1), "full");
}

TEST(InflightsDeathTest, AddOutOfOrderAborts) {
  Inflights in(4, 0);
  in.Add(5, 1);
  EXPECT_DEATH(in.Add(5, 1), "not above");
}

}  // namespace
}  // namespace arbiter::raft
