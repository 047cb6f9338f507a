// Tile-configuration choice (src/config_select.cpp) and its public face,
// moegemm_wgrad_choose_config(): host-only, no GPU.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "config_select.h"
#include "moegemm/moegemm.h"

namespace moegemm_test {
namespace {

using moegemm::detail::choose_wgrad_config;
using moegemm::detail::WgradShape;

constexpr auto kAuto = MOEGEMM_WGRAD_CONFIG_AUTO;
constexpr auto kPingpong = MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1;
constexpr auto kCooperative = MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
constexpr auto kCooperative128x256 = MOEGEMM_WGRAD_CONFIG_COOPERATIVE_128x256x64_C2x1;
constexpr auto kOneLaunch = MOEGEMM_WGRAD_CONFIG_ONELAUNCH_128x128x64_C2x1;
const moegemm_dtype_t kDtypes[] = {MOEGEMM_DTYPE_FP32, MOEGEMM_DTYPE_BF16};

bool is_concrete(moegemm_wgrad_config_t c) { return c > kAuto && c < MOEGEMM_WGRAD_CONFIG_COUNT_; }

// A spread of shapes: small and large g, tile multiples and not, few and
// many tokens per group.
std::vector<WgradShape> shapes() {
  std::vector<WgradShape> out;
  for (int g : {1, 2, 7, 16, 64, 128, 1024})
    for (int64_t m : {8, 136, 2048, 7168})
      for (int64_t n : {8, 512, 4096})
        for (int64_t per_group : {0, 1, 100, 4095, 4096, 65536})
          for (moegemm_dtype_t dt : kDtypes) out.push_back(WgradShape{g, m, n, per_group * g, dt});
  return out;
}

TEST(ConfigSelect, AutoResolvesToAConcreteConfig) {
  for (const WgradShape& s : shapes()) {
    const moegemm_wgrad_config_t c = choose_wgrad_config(s, kAuto);
    EXPECT_TRUE(is_concrete(c)) << "g=" << s.num_groups << " m=" << s.m << " n=" << s.n << " T=" << s.total_tokens
                                << " -> " << c;
  }
}

TEST(ConfigSelect, ExplicitRequestIsReturnedAsIs) {
  for (const WgradShape& s : shapes())
    for (moegemm_wgrad_config_t want : {kPingpong, kCooperative, kCooperative128x256, kOneLaunch})
      EXPECT_EQ(choose_wgrad_config(s, want), want)
          << "g=" << s.num_groups << " m=" << s.m << " n=" << s.n << " T=" << s.total_tokens;
}

// Where the one-launch kernel does not serve (here: more groups than its
// tables hold), the CUTLASS kernels: large outputs (>= 1536*2048 elements):
// cooperative 128x256 at any K and output type. Otherwise BF16 output with
// <= 128 tokens per group: cooperative 256x128. Ping-pong for everything else.
WgradShape listed(WgradShape s) {
  s.pointer_list = true;
  return s;
}
WgradShape accumulating_list(WgradShape s) {
  s.pointer_list = true;
  s.accumulate = true;
  return s;
}
WgradShape accumulating(WgradShape s) {
  s.accumulate = true;
  return s;
}

TEST(ConfigSelect, SmallAndLargeShapeRules) {
  using moegemm::detail::kCooperativeMaxSmallK;
  using moegemm::detail::kCooperativeMinLargeOutput;
  const auto F = MOEGEMM_DTYPE_FP32, B = MOEGEMM_DTYPE_BF16;
  ASSERT_LT(int64_t{1536} * 2040, kCooperativeMinLargeOutput);
  for (int g : {moegemm::detail::kOneLaunchMaxGroups + 1, 512}) {
    const int64_t small_t = kCooperativeMaxSmallK * g;
    for (moegemm_dtype_t dt : {F, B}) {
      for (int64_t per_group : {int64_t{1}, int64_t{256}, int64_t{4096}, int64_t{65536}}) {
        EXPECT_EQ(choose_wgrad_config(WgradShape{g, 1536, 2048, per_group * g, dt}, kAuto), kCooperative128x256)
            << "g=" << g;
        EXPECT_EQ(choose_wgrad_config(WgradShape{g, 7168, 4096, per_group * g, dt}, kAuto), kCooperative128x256)
            << "g=" << g;
      }
      // One row of 8 short of a large output, many tokens: ping-pong.
      EXPECT_EQ(choose_wgrad_config(WgradShape{g, 1536, 2040, 4096 * int64_t{g}, dt}, kAuto), kPingpong) << "g=" << g;
      // The seed grid's outputs (512 x 2048) above the small-K threshold: ping-pong.
      EXPECT_EQ(choose_wgrad_config(WgradShape{g, 512, 2048, small_t + g, dt}, kAuto), kPingpong) << "g=" << g;
      EXPECT_EQ(choose_wgrad_config(WgradShape{g, 512, 2048, 65536 * int64_t{g}, dt}, kAuto), kPingpong) << "g=" << g;
    }
    // Few tokens: cooperative 256x128 for BF16 up to and including the threshold; FP32 stays ping-pong.
    EXPECT_EQ(choose_wgrad_config(WgradShape{g, 512, 2048, small_t, B}, kAuto), kCooperative) << "g=" << g;
    EXPECT_EQ(choose_wgrad_config(WgradShape{g, 512, 2048, small_t, F}, kAuto), kPingpong) << "g=" << g;
    EXPECT_EQ(choose_wgrad_config(WgradShape{g, 8, 8, 1, B}, kAuto), kCooperative) << "g=" << g;
  }
}

// A contiguous D with at most kOneLaunchMaxGroups groups: the one-launch
// kernel, overwriting, for outputs below 1536*2048 at any K and for larger
// outputs up to kOneLaunchMaxAvgK tokens per group; accumulating, see below.
TEST(ConfigSelect, OneLaunchRule) {
  using moegemm::detail::kOneLaunchMaxAvgK;
  using moegemm::detail::kOneLaunchMaxGroups;
  using moegemm::detail::kOneLaunchMaxTokens;
  using moegemm::detail::onelaunch_serves;
  const auto F = MOEGEMM_DTYPE_FP32, B = MOEGEMM_DTYPE_BF16;
  for (moegemm_dtype_t dt : {F, B}) {
    for (int g : {1, 4, 32, kOneLaunchMaxGroups}) {
      EXPECT_EQ(choose_wgrad_config({g, 512, 2048, 0, dt}, kAuto), kOneLaunch) << "g=" << g;
      EXPECT_EQ(choose_wgrad_config({g, 512, 2048, 64 * int64_t{g}, dt}, kAuto), kOneLaunch) << "g=" << g;
      EXPECT_EQ(choose_wgrad_config({g, 136, 8, 65536 * int64_t{g}, dt}, kAuto), kOneLaunch) << "g=" << g;
      EXPECT_EQ(choose_wgrad_config({g, 1536, 2047, kOneLaunchMaxTokens, dt}, kAuto), kOneLaunch) << "g=" << g;
      // Past its 32-bit token count: the CUTLASS kernels.
      EXPECT_EQ(choose_wgrad_config({g, 512, 2048, kOneLaunchMaxTokens + 1, dt}, kAuto), kPingpong) << "g=" << g;
      // Large outputs: up to kOneLaunchMaxAvgK tokens per group.
      EXPECT_EQ(choose_wgrad_config({g, 2048, 7168, kOneLaunchMaxAvgK * g, dt}, kAuto), kOneLaunch) << "g=" << g;
      EXPECT_EQ(choose_wgrad_config({g, 2048, 7168, (kOneLaunchMaxAvgK + 1) * g, dt}, kAuto), kCooperative128x256)
          << "g=" << g;
    }
    // Too many groups for its tables: the CUTLASS kernels.
    EXPECT_EQ(choose_wgrad_config({kOneLaunchMaxGroups + 1, 512, 2048, 64, dt}, kAuto),
              dt == F ? kPingpong : kCooperative);
    // A pointer list: as a contiguous D.
    EXPECT_EQ(choose_wgrad_config(listed({8, 512, 2048, 8 * 256, dt}), kAuto), kOneLaunch);
    EXPECT_EQ(choose_wgrad_config(listed({8, 2048, 7168, (kOneLaunchMaxAvgK + 1) * 8, dt}), kAuto),
              kCooperative128x256);
  }
  // Accumulating (FP32 only; BF16 accumulation is not served): outputs below
  // 1536*2048 at any K, contiguous or listed; never large outputs.
  for (int g : {1, 8, 32, kOneLaunchMaxGroups}) {
    for (int64_t per_group : {int64_t{1}, int64_t{64}, int64_t{65536}}) {
      EXPECT_EQ(choose_wgrad_config(accumulating({g, 512, 2048, per_group * g, F}), kAuto), kOneLaunch) << "g=" << g;
      EXPECT_EQ(choose_wgrad_config(accumulating_list({g, 512, 2048, per_group * g, F}), kAuto), kOneLaunch)
          << "g=" << g;
      // BF16 accumulation: the CUTLASS kernels' rules.
      EXPECT_EQ(choose_wgrad_config(accumulating({g, 512, 2048, per_group * g, B}), kAuto),
                per_group <= moegemm::detail::kCooperativeMaxSmallK ? kCooperative : kPingpong)
          << "g=" << g;
    }
  }
  EXPECT_EQ(choose_wgrad_config(accumulating({1, 2048, 7168, 64, F}), kAuto), kCooperative128x256);
  // What it can serve at all (an explicit request beyond it is served by the
  // ping-pong kernel).
  EXPECT_TRUE(onelaunch_serves({kOneLaunchMaxGroups, 8, 8, 1, F}));
  EXPECT_FALSE(onelaunch_serves({kOneLaunchMaxGroups + 1, 8, 8, 1, F}));
  EXPECT_FALSE(onelaunch_serves({4, 8, 8, int64_t{1} << 31, F}));
  EXPECT_TRUE(onelaunch_serves(accumulating({4, 8, 8, 1, F})));
  EXPECT_FALSE(onelaunch_serves(accumulating({4, 8, 8, 1, B})));
  EXPECT_TRUE(onelaunch_serves({4, 8, 8, 1, B}));
}

TEST(ConfigSelect, NoGroupsOrNoTokensDoNotDivideByZero) {
  EXPECT_TRUE(is_concrete(choose_wgrad_config({0, 2048, 4096, 1 << 20, MOEGEMM_DTYPE_FP32}, kAuto)));
  EXPECT_TRUE(is_concrete(choose_wgrad_config({16, 2048, 4096, 0, MOEGEMM_DTYPE_FP32}, kAuto)));
}

TEST(ConfigSelect, PublicChooseConfigAgreesWithTheRule) {
  EXPECT_EQ(moegemm_wgrad_choose_config(nullptr), kAuto);
  for (const WgradShape& s : shapes()) {
    moegemm_wgrad_problem_t p = moegemm_wgrad_problem_default();
    p.num_groups = s.num_groups;
    p.m = s.m;
    p.n = s.n;
    p.total_tokens = s.total_tokens;
    p.out_dtype = s.out_dtype;
    EXPECT_EQ(moegemm_wgrad_choose_config(&p), choose_wgrad_config(s, kAuto));
    p.accumulate = 1;
    EXPECT_EQ(moegemm_wgrad_choose_config(&p), choose_wgrad_config(accumulating(s), kAuto));
    p.accumulate = 0;
    for (moegemm_wgrad_config_t want : {kPingpong, kCooperative}) {
      p.config = want;
      EXPECT_EQ(moegemm_wgrad_choose_config(&p), want);
    }
  }
  moegemm_wgrad_problem_t p = moegemm_wgrad_problem_default();
  p.num_groups = 4;
  p.m = 2048;
  p.n = 4096;
  p.total_tokens = 4 * 4096;
  EXPECT_EQ(moegemm_wgrad_choose_config(&p), kCooperative128x256);
  p.m = 512;
  p.n = 2048;
  EXPECT_EQ(moegemm_wgrad_choose_config(&p), kOneLaunch);
  void* list[4] = {};
  p.out_ptrs = list;  // a pointer list, overwritten or accumulated into: one launch
  EXPECT_EQ(moegemm_wgrad_choose_config(&p), kOneLaunch);
  p.accumulate = 1;
  EXPECT_EQ(moegemm_wgrad_choose_config(&p), kOneLaunch);
  p.out_ptrs = nullptr;  // FP32 accumulation into a contiguous D: one launch
  EXPECT_EQ(moegemm_wgrad_choose_config(&p), kOneLaunch);
  p.num_groups = 300;  // more groups than its tables hold: ping-pong
  p.total_tokens = 300 * 128;
  EXPECT_EQ(moegemm_wgrad_choose_config(&p), kPingpong);
  p.num_groups = 8;  // BF16 accumulation with 128 tokens per group: cooperative 256x128
  p.total_tokens = 8 * 128;
  p.out_dtype = MOEGEMM_DTYPE_BF16;
  EXPECT_EQ(moegemm_wgrad_choose_config(&p), kCooperative);
}

using moegemm::detail::kCublasGroupMinOutput;
using moegemm::detail::uniform_k_cublas_min_rows;
using moegemm::detail::uniform_k_group_prefers_cublas;

TEST(UniformKLargeGroups, FromSixMiOutputElements) {
  EXPECT_FALSE(uniform_k_group_prefers_cublas(3071, 2048, 512));  // 3071 x 2048 < 6 Mi
  EXPECT_TRUE(uniform_k_group_prefers_cublas(3072, 2048, 512));   // = 6 Mi
  EXPECT_FALSE(uniform_k_group_prefers_cublas(877, 7168, 512));
  EXPECT_TRUE(uniform_k_group_prefers_cublas(878, 7168, 2048));
  EXPECT_FALSE(uniform_k_group_prefers_cublas(12287, 512, 2048));  // n = 512: from 12288 rows
  EXPECT_TRUE(uniform_k_group_prefers_cublas(12288, 512, 7168));   // long k but n < 1024: the 6 Mi rule
}

TEST(UniformKLargeGroups, LongKFromOneMiWhenNIsWide) {
  EXPECT_TRUE(uniform_k_group_prefers_cublas(512, 2048, 7168));
  EXPECT_FALSE(uniform_k_group_prefers_cublas(511, 2048, 7168));
  EXPECT_FALSE(uniform_k_group_prefers_cublas(512, 2048, 4095));  // k below 4096
  EXPECT_TRUE(uniform_k_group_prefers_cublas(1024, 1024, 4096));
  EXPECT_FALSE(uniform_k_group_prefers_cublas(2048, 1016, 4096));  // n below 1024
}

TEST(UniformKLargeGroups, EmptyOrDegenerateGroupsStay) {
  EXPECT_FALSE(uniform_k_group_prefers_cublas(0, 2048, 7168));
  EXPECT_FALSE(uniform_k_group_prefers_cublas(1 << 20, 0, 64));
  EXPECT_FALSE(uniform_k_group_prefers_cublas(1 << 20, 64, 0));
}

// The fewest rows is where the rule switches, for both of its branches.
TEST(UniformKLargeGroups, MinRowsIsTheSwitchPoint) {
  for (int64_t n : {8, 136, 512, 1016, 1024, 2048, 7168})
    for (int64_t k : {8, 512, 4095, 4096, 7168}) {
      const int64_t r = uniform_k_cublas_min_rows(n, k);
      EXPECT_TRUE(uniform_k_group_prefers_cublas(r, n, k)) << n << " " << k;
      EXPECT_FALSE(uniform_k_group_prefers_cublas(r - 1, n, k)) << n << " " << k;
    }
  EXPECT_EQ(uniform_k_cublas_min_rows(2048, 512), kCublasGroupMinOutput / 2048);
}

}  // namespace
}  // namespace moegemm_test

// ---------------------------------------------------------------------------
// Uniform-K tile choice

namespace moegemm_test {
namespace {

using moegemm::detail::choose_uniform_k_tile;
using moegemm::detail::kUniformKCooperativeMinWaves;
using moegemm::detail::UniformKTile;
using moegemm::detail::UniformKTileInputs;

constexpr int kSms = 132;  // H100 SXM

// g groups of `rows` rows each; row tiles exact (host sizes) unless `device_sizes`.
UniformKTileInputs equal_groups(int g, int64_t rows, int64_t n, moegemm_op_t op_b = MOEGEMM_OP_T,
                                bool device_sizes = false) {
  UniformKTileInputs in;
  in.total_rows = g * rows;
  in.num_groups = g;
  in.row_tiles = device_sizes ? -1 : g * ((rows + 127) / 128);
  in.row_tiles_64 = device_sizes ? -1 : g * ((rows + 63) / 64);
  in.n = n;
  in.op_b = op_b;
  in.sm_count = kSms;
  return in;
}
// The same with `row_tiles` exact row tiles (ragged groups); their 64-row
// tiles not given (bounded by total_rows / 64 + g).
UniformKTileInputs ragged_groups(int g, int64_t total_rows, int64_t row_tiles, int64_t n, int sm_count = kSms) {
  UniformKTileInputs in = equal_groups(g, total_rows / g, n);
  in.total_rows = total_rows;
  in.row_tiles = row_tiles;
  in.row_tiles_64 = -1;
  in.sm_count = sm_count;
  return in;
}
UniformKTile choose(const UniformKTileInputs& in) { return choose_uniform_k_tile(in, UniformKTile::kAuto); }

constexpr UniformKTile kUkPingpong1x2 = UniformKTile::kPingpong128x128;
constexpr UniformKTile kUkPingpong1x4 = UniformKTile::kPingpong128x128Cluster1x4;
constexpr UniformKTile kUkCooperative = UniformKTile::kCooperative128x256;
constexpr UniformKTile kUkUnclustered = UniformKTile::kCooperative128x256NoCluster;

TEST(UniformKTileChoice, NNotAMultipleOf512TakesThePairCluster) {
  EXPECT_EQ(choose(equal_groups(8, 4096, 7168 + 256)), kUkPingpong1x2);
  EXPECT_EQ(choose(equal_groups(8, 64, 768)), kUkPingpong1x2);
  EXPECT_EQ(choose(equal_groups(8, 64, 100)), kUkPingpong1x2);
  // A multiple of 512 takes the 1x4 cluster's ping-pong when the rule says ping-pong.
  EXPECT_EQ(choose(equal_groups(8, 64, 512)), kUkPingpong1x4);
}

TEST(UniformKTileChoice, FewTilesTakePingpong) {
  // One wave of 128x128 tiles: 8 groups x 16 = 128 <= 132.
  EXPECT_EQ(choose(equal_groups(8, 64, 2048)), kUkPingpong1x4);
  EXPECT_EQ(choose(equal_groups(8, 64, 2048, MOEGEMM_OP_N)), kUkPingpong1x4);
  // Device sizes, 16 groups of 64 rows, n = 2048: 16 + 8 row tiles
  // estimated, 384 tiles of 128x128 (3 waves) against 192 of 128x256 (2).
  EXPECT_EQ(choose(equal_groups(16, 64, 2048, MOEGEMM_OP_T, true)), kUkPingpong1x4);
  // 8 groups: 8 + 4 row tiles, 192 (2 waves) against 96 (1): cooperative
  // (with op_b N; op_b T takes the 64x256 tile, below).
  EXPECT_EQ(choose(equal_groups(8, 64, 2048, MOEGEMM_OP_N, true)), kUkCooperative);
}

TEST(UniformKTileChoice, PingpongWhenTheCooperativeLastWaveIsAtMostHalfFull) {
  // Issue 3's dgrad 16 x 2048 x 7168 at 64 tokens per expert: 19 row tiles,
  // 1064 tiles of 128x128 (9 waves) and 532 of 128x256 (4.03 -> 5 waves):
  // 9 < 10, ping-pong (measured 180 us against 195 cooperative, H100).
  EXPECT_EQ(choose(ragged_groups(16, 1024, 19, 7168)), kUkPingpong1x4);
  // 8 x 2048 x 7168 at 64 tokens: 9 row tiles, 504 (4 waves) and 252 (2):
  // 4 < 4 fails, cooperative (93 us against 101 ping-pong).
  EXPECT_EQ(choose(ragged_groups(8, 512, 9, 7168)), kUkCooperative);
  // The boundary on 128 SMs, n = 2048 (16 and 8 tiles per row tile): 33 row
  // tiles are 528 (5 waves) against 264 (3): ping-pong; 32 row tiles are 512
  // (4) against 256 (2): cooperative.
  EXPECT_EQ(choose(ragged_groups(8, 33 * 100, 33, 2048, 128)), kUkPingpong1x4);
  EXPECT_EQ(choose(ragged_groups(8, 32 * 100, 32, 2048, 128)), kUkCooperative);
  // With device sizes the row tiles are estimated: 8 groups of 512 rows,
  // 8 x 4 + 4 = 36: 576 (5 waves) against 288 (3), ping-pong; of 384 rows,
  // 8 x 3 + 4 = 28: 448 (4) against 224 (2), cooperative.
  UniformKTileInputs in = ragged_groups(8, 8 * 512, -1, 2048, 128);
  EXPECT_EQ(choose(in), kUkPingpong1x4);
  in.total_rows = 8 * 384;
  EXPECT_EQ(choose(in), kUkCooperative);
}

TEST(UniformKTileChoice, ManyWavesTakeCooperative) {
  // n = 2048 on 132 SMs (8 tiles of 128x256 and 16 of 128x128 per row tile).
  // 6 waves of 128x256 tiles: 99 row tiles, 792 tiles.
  EXPECT_EQ(kUniformKCooperativeMinWaves * kSms / 8, 99);
  EXPECT_EQ(choose(ragged_groups(16, 99 * 100, 99, 2048)), kUkCooperative);
  // 100 row tiles: 800 tiles (7 waves) against 1600 (13); the wave
  // comparison alone would take ping-pong (13 < 14), but past 6 waves the
  // cooperative tile serves.
  EXPECT_EQ(choose(ragged_groups(16, 100 * 100, 100, 2048)), kUkCooperative);
  // 84 row tiles, under 6 waves: 672 (6 waves) against 1344 (11): ping-pong.
  EXPECT_EQ(choose(ragged_groups(16, 84 * 100, 84, 2048)), kUkPingpong1x4);
  EXPECT_EQ(choose(equal_groups(8, 4096, 7168)), kUkCooperative);
  EXPECT_EQ(choose(equal_groups(32, 4096, 2048, MOEGEMM_OP_N, true)), kUkCooperative);
}

TEST(UniformKTileChoice, OneWaveOfWideTilesTakesTheUnclusteredCooperativeTile) {
  // (op_b N: with op_b T and few rows per group the 64x256 tile comes first, below.)
  EXPECT_EQ(choose(equal_groups(16, 64, 2048, MOEGEMM_OP_N)), kUkUnclustered);
  EXPECT_EQ(choose(equal_groups(8, 1024, 512)), kUkUnclustered);
  // 8 groups, 10 row tiles (ragged: two groups above 128 rows), n = 2048:
  // 160 tiles of 128x128 (> 132 SMs), 80 of 128x256 (one wave).
  UniformKTileInputs in = equal_groups(8, 64, 2048, MOEGEMM_OP_N);
  in.row_tiles = 10;
  EXPECT_EQ(choose(in), kUkUnclustered);
  EXPECT_EQ(choose_uniform_k_tile(in, kUkPingpong1x2), kUkPingpong1x2);
  // The boundaries: 128x256 tiles exactly one wave (16 row tiles x 8 = 128,
  // and with 132 SMs, 16.5 would be the limit) ...
  in.row_tiles = 16;
  EXPECT_EQ(choose(in), kUkUnclustered);
  in.sm_count = 128;
  EXPECT_EQ(choose(in), kUkUnclustered);
  in.sm_count = 127;  // ... one more than a wave: 256 (3 waves) against 128 (2): ping-pong
  EXPECT_EQ(choose(in), kUkPingpong1x4);
  // 128x128 tiles exactly one wave (8 row tiles x 16 = 128 <= 128): ping-pong.
  in.sm_count = 128;
  in.row_tiles = 8;
  EXPECT_EQ(choose(in), kUkPingpong1x4);
  in.row_tiles = 9;  // 144 > 128 and 72 <= 128
  EXPECT_EQ(choose(in), kUkUnclustered);
  // Needs the exact count (host sizes). The estimate, 8 + 4 row tiles (192
  // tiles of 128x128 in 2 waves, 96 of 128x256 in 1), takes the clustered one.
  in.row_tiles = -1;
  EXPECT_EQ(choose(in), kUkCooperative);
  // Without the SM count there are no waves to count: ping-pong.
  in.row_tiles = 9;
  in.sm_count = 0;
  EXPECT_EQ(choose(in), kUkPingpong1x4);
}

constexpr UniformKTile kUkPingpong64x256 = UniformKTile::kPingpong64x256;

TEST(UniformKTileChoice, FewRowsPerGroupWithKMajorBTakeThePingpong64x256Tile) {
  // Issue 3's fprop 8 x 2048x7168 at 64 tokens per group (groups of 6-154
  // rows, n = 2048, op_b T): 10 row tiles of 128 (160 tiles of 128x128, more
  // than a wave), 12 of 64 (96 tiles of 64x256, one wave). Measured 97 us
  // against 109 for the unclustered 128x256 tile (H100, graph replay).
  UniformKTileInputs in = equal_groups(8, 64, 2048);
  in.row_tiles = 10;
  in.row_tiles_64 = 12;
  EXPECT_EQ(choose(in), kUkPingpong64x256);
  // Only for K-major B: op_b N keeps the unclustered cooperative tile.
  in.op_b = MOEGEMM_OP_N;
  EXPECT_EQ(choose(in), kUkUnclustered);
  in.op_b = MOEGEMM_OP_T;
  // The boundary on 128 SMs: 16 row tiles of 64 are 128 tiles (one wave) ...
  in.sm_count = 128;
  in.row_tiles_64 = 16;
  EXPECT_EQ(choose(in), kUkPingpong64x256);
  in.row_tiles_64 = 17;  // ... 17 are 136: the unclustered 128x256 tile (80 tiles)
  EXPECT_EQ(choose(in), kUkUnclustered);
  // When the 128x128 tiles fit in one wave, ping-pong 128x128 as before.
  in.row_tiles = 8;
  in.row_tiles_64 = 8;
  EXPECT_EQ(choose(in), kUkPingpong1x4);
  // Issue 3's fprop 32 x 512x7168 at 64 tokens (n = 512; 40 row tiles of 128
  // and 50 of 64 for its 1-212 rows a group): 160 tiles of 128x128, 100 of
  // 64x256. Measured 109 us against 120.
  in = ragged_groups(32, 2048, 40, 512);
  in.row_tiles_64 = 50;
  EXPECT_EQ(choose(in), kUkPingpong64x256);
  // Device sizes: the bound total_rows / 64 + g must fit in one wave. 8
  // groups of 64 rows: 16 row tiles of 64 at most, 128 tiles (and an estimate
  // of 12 row tiles of 128: 192 tiles of 128x128) ...
  EXPECT_EQ(choose(equal_groups(8, 64, 2048, MOEGEMM_OP_T, true)), kUkPingpong64x256);
  // ... of 72 rows: 9 + 8 = 17, 136 tiles: the clustered cooperative tile
  // (192 tiles of 128x128 in 2 waves against 96 of 128x256 in 1).
  EXPECT_EQ(choose(equal_groups(8, 72, 2048, MOEGEMM_OP_T, true)), kUkCooperative);
  // Without the SM count: ping-pong 128x128 (no waves to count).
  in.sm_count = 0;
  EXPECT_EQ(choose(in), kUkPingpong1x4);
}

TEST(UniformKTileChoice, ExplicitRequestWins) {
  EXPECT_EQ(choose_uniform_k_tile(equal_groups(1, 1 << 20, 2048), kUkPingpong64x256), kUkPingpong64x256);
  EXPECT_EQ(choose_uniform_k_tile(equal_groups(16, 4, 2048), UniformKTile::kCooperative128x256),
            UniformKTile::kCooperative128x256);
  EXPECT_EQ(choose_uniform_k_tile(equal_groups(1, 1 << 20, 2048), UniformKTile::kPingpong128x128),
            UniformKTile::kPingpong128x128);
  EXPECT_EQ(choose_uniform_k_tile(equal_groups(1, 64, 512), UniformKTile::kCooperative128x256NoCluster),
            UniformKTile::kCooperative128x256NoCluster);
  EXPECT_EQ(choose_uniform_k_tile(equal_groups(1, 64, 768), kUkPingpong1x4), kUkPingpong1x4);
}

// The ragged-M one-launch kernel: what it serves.
using moegemm::detail::ragged_m_onelaunch_serves;
using moegemm::detail::RaggedOneLaunchInputs;

RaggedOneLaunchInputs one_launch_call(int g, int64_t rows, int64_t n, int64_t k) {
  RaggedOneLaunchInputs in;
  in.num_groups = g;
  in.total_rows = rows;
  in.n = n;
  in.k = k;
  return in;
}

TEST(RaggedOneLaunch, ServesOverwritingCallsWithContiguousB) {
  EXPECT_TRUE(ragged_m_onelaunch_serves(one_launch_call(8, 8 * 64, 2048, 7168)));
  EXPECT_TRUE(ragged_m_onelaunch_serves(one_launch_call(1, 0, 8, 8)));  // no rows: nothing to do, still served
  EXPECT_TRUE(ragged_m_onelaunch_serves(one_launch_call(256, 1 << 20, 72, 40)));
  EXPECT_TRUE(ragged_m_onelaunch_serves(one_launch_call(32, 2147483647, 8, 8)));
}

TEST(RaggedOneLaunch, RejectsWhatItsTablesAndCoordinatesCannotHold) {
  EXPECT_FALSE(ragged_m_onelaunch_serves(one_launch_call(257, 1024, 2048, 64)));  // > 256 groups
  EXPECT_FALSE(ragged_m_onelaunch_serves(one_launch_call(0, 1024, 2048, 64)));
  EXPECT_FALSE(ragged_m_onelaunch_serves(one_launch_call(8, int64_t{1} << 31, 8, 8)));  // rows past int32
  EXPECT_FALSE(ragged_m_onelaunch_serves(one_launch_call(8, 64, int64_t{1} << 31, 8)));
  EXPECT_FALSE(ragged_m_onelaunch_serves(one_launch_call(8, 64, 8, int64_t{1} << 31)));
  // Work units past int32: 2^24 row tiles x 256 column pairs.
  EXPECT_FALSE(ragged_m_onelaunch_serves(one_launch_call(8, int64_t{1} << 31 >> 1, 65536, 8)));
}

TEST(RaggedOneLaunch, LeavesAccumulationDeviceZeroingAndBListsToCutlass) {
  RaggedOneLaunchInputs in = one_launch_call(8, 512, 2048, 2048);
  in.accumulate = true;
  EXPECT_FALSE(ragged_m_onelaunch_serves(in));
  in = one_launch_call(8, 512, 2048, 2048);
  in.zero_rows_on_device = true;
  EXPECT_FALSE(ragged_m_onelaunch_serves(in));
  in = one_launch_call(8, 512, 2048, 2048);
  in.b_list = true;
  EXPECT_FALSE(ragged_m_onelaunch_serves(in));
}

TEST(UniformKTileChoice, OneLaunchRequestFallsBackToAutoWhereNotServed) {
  UniformKTileInputs in = equal_groups(8, 64, 2048);
  in.onelaunch_serves = true;
  EXPECT_EQ(choose_uniform_k_tile(in, UniformKTile::kOneLaunch128x128), UniformKTile::kOneLaunch128x128);
  EXPECT_EQ(choose_uniform_k_tile(in, UniformKTile::kOneLaunch128x128Cluster1x4),
            UniformKTile::kOneLaunch128x128Cluster1x4);
  in.onelaunch_serves = false;
  EXPECT_EQ(choose_uniform_k_tile(in, UniformKTile::kOneLaunch128x128), choose(in));
  EXPECT_EQ(choose_uniform_k_tile(in, UniformKTile::kOneLaunch128x128Cluster1x4), choose(in));
  EXPECT_NE(choose(in), UniformKTile::kOneLaunch128x128);
}

// AUTO's one-launch step (config_select.h, step 0).
constexpr UniformKTile kUkOneLaunch = UniformKTile::kOneLaunch128x128;
constexpr UniformKTile kUkOneLaunch1x4 = UniformKTile::kOneLaunch128x128Cluster1x4;

// Served by the one-launch kernel with this k; its resident clusters those of
// an H100 (66 of 1x2, 30 of 1x4).
UniformKTileInputs served(UniformKTileInputs in, int64_t k) {
  in.k = k;
  in.onelaunch_serves = true;
  in.onelaunch_clusters_1x2 = 66;
  in.onelaunch_clusters_1x4 = 30;
  return in;
}

bool is_onelaunch(UniformKTile t) {
  return t == UniformKTile::kOneLaunch128x128 || t == UniformKTile::kOneLaunch128x128Cluster1x4;
}

TEST(UniformKTileChoice, OneLaunchForShortKAtAnySize) {
  EXPECT_TRUE(is_onelaunch(choose(served(equal_groups(8, 64, 2048), 512))));
  EXPECT_TRUE(is_onelaunch(choose(served(equal_groups(32, 4096, 7168), 512))));  // 434 waves
  EXPECT_TRUE(is_onelaunch(choose(served(equal_groups(32, 4096, 7168), 1024))));
  EXPECT_EQ(choose(served(equal_groups(8, 64, 100), 8)), kUkOneLaunch);  // n not a multiple of 512: 1x2
  // Not served: the CUTLASS rule.
  UniformKTileInputs in = served(equal_groups(8, 64, 2048), 512);
  in.onelaunch_serves = false;
  EXPECT_EQ(choose(in), kUkPingpong1x4);
}

TEST(UniformKTileChoice, OneLaunchShortKClusterByRounds) {
  // 7 row tiles x 4 column sets of 512 = 28 units of 1x4: one round on 30
  // clusters; of 1x2, 56 units on 66: one round too. Equal rounds: 1x4.
  EXPECT_EQ(choose(served(equal_groups(7, 64, 2048), 512)), kUkOneLaunch1x4);
  // 8 row tiles: 32 units of 1x4 need 2 rounds, 64 of 1x2 still one: 1x2.
  EXPECT_EQ(choose(served(equal_groups(8, 64, 2048), 512)), kUkOneLaunch);
  // 1024 row tiles at n = 7168: 478 rounds of 1x4 against 435 of 1x2.
  EXPECT_EQ(choose(served(equal_groups(32, 4096, 7168), 512)), kUkOneLaunch);
  // The resident clusters unknown: sm_count / 2 and / 4 (33 of 1x4: one round).
  UniformKTileInputs unknown = served(equal_groups(8, 64, 2048), 512);
  unknown.onelaunch_clusters_1x2 = unknown.onelaunch_clusters_1x4 = 0;
  EXPECT_EQ(choose(unknown), kUkOneLaunch1x4);
}

TEST(UniformKTileChoice, OneLaunchClusterByRoundsWhereWeightsStream) {
  // k = 2048, n = 7168 (14 column sets of 1x4, 28 of 1x2), 8 groups.
  // 9 row tiles: 126 units of 1x4 in 5 rounds, 252 of 1x2 in 4: 1x2.
  EXPECT_EQ(choose(served(ragged_groups(8, 512, 9, 7168), 2048)), kUkOneLaunch);
  // 12 row tiles: 6 rounds either way: 1x4.
  EXPECT_EQ(choose(served(ragged_groups(8, 1024, 12, 7168), 2048)), kUkOneLaunch1x4);
  // 18 row tiles (more than 2 per group): 1x4 although 9 rounds > 8.
  EXPECT_EQ(choose(served(ragged_groups(8, 2048, 18, 7168), 2048)), kUkOneLaunch1x4);
  // 16 row tiles (2 per group): 8 rounds of 1x4, 7 of 1x2: 1x2.
  EXPECT_EQ(choose(served(ragged_groups(8, 2048, 16, 7168), 2048)), kUkOneLaunch);
}

TEST(UniformKTileChoice, OneLaunchForLongerK) {
  // k up to 4096 with n % 512 == 0: the 1x4 kernel at any size.
  EXPECT_EQ(choose(served(equal_groups(8, 512, 2048), 2048)), kUkOneLaunch1x4);
  EXPECT_EQ(choose(served(equal_groups(32, 4096, 7168), 2048)), kUkOneLaunch1x4);  // 434 waves
  EXPECT_EQ(choose(served(equal_groups(32, 4096, 7168), 4096)), kUkOneLaunch1x4);
  // Longer k: the 128x128 tiles in one wave (8 x 16 = 128 of them) ...
  EXPECT_EQ(choose(served(equal_groups(8, 128, 2048), 7168)), kUkOneLaunch1x4);
  // ... or fewer rounds of 1x4 than twice the 128x256 tile's waves: 20 row
  // tiles, 80 units in 3 rounds against 2 waves of 160 128x256 tiles.
  EXPECT_EQ(choose(served(equal_groups(10, 256, 2048), 7168)), kUkOneLaunch1x4);
  // 18 row tiles: 72 units in 3 rounds, 144 128x256 tiles in 2 waves: 3 < 4.
  EXPECT_EQ(choose(served(equal_groups(9, 256, 2048), 4097)), kUkOneLaunch1x4);
  // 9 row tiles: 144 128x128 tiles (more than a wave), 36 units in 2 rounds,
  // 72 128x256 tiles in one wave: 2 = 2 x 1, the CUTLASS rule.
  EXPECT_FALSE(is_onelaunch(choose(served(equal_groups(9, 128, 2048), 7168))));
  // 32 row tiles: 128 units in 5 rounds, 256 128x256 tiles in 2 waves.
  EXPECT_FALSE(is_onelaunch(choose(served(equal_groups(16, 256, 2048), 7168))));
  // Device sizes: the row-tile estimate, g x ceil(rows / 128) + g / 2.
  UniformKTileInputs dev = served(equal_groups(8, 128, 512, MOEGEMM_OP_T, true), 7168);  // (8 + 4) x 4 = 48
  EXPECT_EQ(choose(dev), kUkOneLaunch1x4);
  dev = served(equal_groups(8, 128, 2048, MOEGEMM_OP_T, true), 7168);  // 12 row tiles: 2 rounds, 1 wave
  EXPECT_FALSE(is_onelaunch(choose(dev)));
  // n not a multiple of 512: the 1x2 kernel up to 9 waves of 128x128 tiles
  // (9 x 132 = 1188) with k <= 4096, one wave beyond.
  EXPECT_EQ(choose(served(equal_groups(8, 64, 768), 2048)), kUkOneLaunch);
  EXPECT_EQ(choose(served(equal_groups(49, 512, 768), 2048)), kUkOneLaunch);       // 49 x 4 x 6 = 1176
  EXPECT_FALSE(is_onelaunch(choose(served(equal_groups(50, 512, 768), 2048))));  // 1200
  EXPECT_EQ(choose(served(equal_groups(22, 128, 768), 7168)), kUkOneLaunch);      // 132
  EXPECT_FALSE(is_onelaunch(choose(served(equal_groups(23, 128, 768), 7168))));  // 138
  // Without the SM count: only the short-k step (1x2).
  UniformKTileInputs no_sms = served(equal_groups(8, 64, 2048), 2048);
  no_sms.sm_count = 0;
  EXPECT_FALSE(is_onelaunch(choose(no_sms)));
  no_sms.k = 512;
  EXPECT_EQ(choose(no_sms), kUkOneLaunch);
}

TEST(UniformKTileChoice, CutlassRequestSkipsTheOneLaunchStep) {
  const UniformKTileInputs in = served(equal_groups(8, 64, 2048), 512);
  ASSERT_EQ(choose(in), kUkOneLaunch);
  UniformKTileInputs unserved = in;
  unserved.onelaunch_serves = false;
  EXPECT_EQ(choose_uniform_k_tile(in, UniformKTile::kAutoCutlass), choose(unserved));
  EXPECT_EQ(choose_uniform_k_tile(served(equal_groups(8, 64, 100), 8), UniformKTile::kAutoCutlass), kUkPingpong1x2);
}

// The large-group split's exception: long k and many waves of 128x256 tiles
// keep every group in the grouped kernel.
using moegemm::detail::uniform_k_keeps_large_groups;

// k = 7168 by default, like issue 3's fprop with 2048 x 7168 weights.
UniformKTileInputs long_k(UniformKTileInputs in, int64_t k = 7168) {
  in.k = k;
  return in;
}
bool keeps(const UniformKTileInputs& in) { return uniform_k_keeps_large_groups(in, UniformKTile::kAuto); }

TEST(UniformKKeepsLargeGroups, FromSixWavesOfCooperativeTilesWithLongK) {
  // n = 2048: 8 tiles of 128x256 per row tile; 6 waves = 792 tiles = 99 row tiles.
  EXPECT_TRUE(keeps(long_k(ragged_groups(16, 16384, 99, 2048))));
  EXPECT_FALSE(keeps(long_k(ragged_groups(16, 16384, 98, 2048))));
  // Issue 3's fprop rows measured (U25): 16 groups at 1024 tokens (137 row
  // tiles, 8.3 waves) keep them, at 512 tokens (73, 4.4 waves) split.
  EXPECT_TRUE(keeps(long_k(ragged_groups(16, 16384, 137, 2048))));
  EXPECT_FALSE(keeps(long_k(ragged_groups(16, 8192, 73, 2048))));
  // The wave count follows the SM count.
  EXPECT_FALSE(keeps(long_k(ragged_groups(16, 16384, 99, 2048, 133))));
}

TEST(UniformKKeepsLargeGroups, FromSixteenGroups) {
  // Issue 3's 8 groups at 2048 tokens (132 row tiles, 8 waves) split, as 8
  // groups of 4096 x 8192 weights did better.
  EXPECT_FALSE(keeps(long_k(ragged_groups(8, 16384, 132, 2048))));
  EXPECT_FALSE(keeps(long_k(ragged_groups(15, 65536, 520, 2048))));
  EXPECT_TRUE(keeps(long_k(ragged_groups(16, 65536, 520, 2048))));
  EXPECT_TRUE(keeps(long_k(ragged_groups(32, 65536, 520, 2048))));
}

TEST(UniformKKeepsLargeGroups, OnlyWithLongKExactTilesAndAuto) {
  const UniformKTileInputs many = long_k(ragged_groups(16, 65536, 520, 2048));
  ASSERT_TRUE(keeps(many));
  EXPECT_FALSE(keeps(long_k(many, 4095)));  // below kCublasGroupLongK: the split stays
  EXPECT_TRUE(keeps(long_k(many, 4096)));
  UniformKTileInputs device_sizes = many;
  device_sizes.row_tiles = -1;  // an estimate only (and no split happens with device sizes)
  EXPECT_FALSE(keeps(device_sizes));
  UniformKTileInputs no_sms = many;
  no_sms.sm_count = 0;
  EXPECT_FALSE(keeps(no_sms));
  UniformKTileInputs odd_n = long_k(ragged_groups(16, 65536, 520, 2048 + 256));  // no 128x256 tile rule
  EXPECT_FALSE(keeps(odd_n));
  UniformKTileInputs mixed_n = many;
  mixed_n.n = 0;  // a list whose groups differ in n
  EXPECT_FALSE(keeps(mixed_n));
  EXPECT_TRUE(uniform_k_keeps_large_groups(many, UniformKTile::kAutoCutlass));
  for (UniformKTile forced : {kUkPingpong1x2, kUkPingpong1x4, kUkCooperative, kUkUnclustered,
                              UniformKTile::kOneLaunch128x128, UniformKTile::kOneLaunch128x128Cluster1x4})
    EXPECT_FALSE(uniform_k_keeps_large_groups(many, forced)) << static_cast<int>(forced);
}

// Where it keeps them, the grouped kernel's own rule takes the cooperative
// tile (the tile the rule was measured on), with and without the one-launch
// kernel serving the call.
TEST(UniformKKeepsLargeGroups, TheWholeCallThenTakesTheCooperativeTile) {
  for (int64_t row_tiles : {99, 132, 263, 1038}) {
    UniformKTileInputs in = long_k(ragged_groups(16, row_tiles * 128, row_tiles, 2048));
    ASSERT_TRUE(keeps(in)) << row_tiles;
    EXPECT_EQ(choose(in), kUkCooperative) << row_tiles;
    EXPECT_EQ(choose(served(in, 7168)), kUkCooperative) << row_tiles;
  }
}

TEST(UniformKTileChoice, NoGroupsNoRows) {
  EXPECT_EQ(choose(equal_groups(4, 0, 2048)), UniformKTile::kPingpong128x128);
  UniformKTileInputs in = equal_groups(4, 1 << 18, 2048);
  in.num_groups = 0;
  EXPECT_EQ(choose(in), UniformKTile::kPingpong128x128);
  // A list whose groups differ in n reports n = 0.
  EXPECT_EQ(choose(equal_groups(4, 1 << 18, 0)), UniformKTile::kPingpong128x128);
}

}  // namespace
}  // namespace moegemm_test
