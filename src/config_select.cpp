#include "config_select.h"

#include <algorithm>

namespace moegemm::detail {

bool onelaunch_serves(const WgradShape& s) {
  return s.num_groups <= kOneLaunchMaxGroups && s.total_tokens <= kOneLaunchMaxTokens &&
         !(s.accumulate && s.out_dtype != MOEGEMM_DTYPE_FP32);
}

moegemm_wgrad_config_t choose_wgrad_config(const WgradShape& s, moegemm_wgrad_config_t requested) {
  if (requested != MOEGEMM_WGRAD_CONFIG_AUTO) return requested;
  // The one-launch kernel (no setup kernel, both consumers' epilogues in
  // flight, clusters balanced by k), measured on an H100 (docs/perf-notes.md
  // #19, #22, #23):
  //  - overwriting: outputs below 1536 x 2048 at any K, larger outputs up to
  //    1024 tokens per group. Contiguous D, seed grid FP32: geomean 0.531 ->
  //    0.62 eager, 0.578 -> 0.66 graph against the CUTLASS kernels, 10-20%
  //    ahead of ping-pong with 65536 tokens or more; large outputs: 5-12%
  //    ahead of the cooperative 128x256 tile at 1024 tokens per group, 1.5x
  //    behind at 4096 (its 128x128 tile, one warp group per tile). Pointer
  //    list: 0.586 / 0.632 against ping-pong's 0.524 / 0.571.
  //  - accumulating (FP32): outputs below 1536 x 2048 at any K. Seed grid:
  //    contiguous D 0.652 / 0.729 against ping-pong's 0.560 / 0.658, pointer
  //    list 0.659 / 0.713 against 0.581 / 0.646, ahead on all 28 rows in
  //    both. Large outputs stay with the cooperative 128x256 tile.
  const int64_t avg_k = s.num_groups > 0 ? s.total_tokens / s.num_groups : 0;
  if (onelaunch_serves(s)) {
    const bool large = s.m * s.n >= kCooperativeMinLargeOutput;
    if (!large || (!s.accumulate && avg_k <= kOneLaunchMaxAvgK))
      return MOEGEMM_WGRAD_CONFIG_ONELAUNCH_128x128x64_C2x1;
  }
  // From the benchmark on an H100 (docs/gpu-results.md, docs/perf-notes.md):
  //  - large outputs (>= 1536 x 2048): the cooperative 128x256 tile, 3-8%
  //    faster than 256x128 there and level with or ahead of ping-pong at
  //    every K measured (256-4096 tokens per group), FP32 and BF16.
  //  - BF16 output with <= 128 tokens per group: the output store is
  //    everything; cooperative 256x128 is 5-15% faster than ping-pong (with
  //    FP32 output the two tie within a few percent, ping-pong mostly ahead).
  //  - everything else (and when accumulating or writing through a pointer
  //    list): ping-pong 128x128, whose epilogue overlaps the other
  //    warp group's mainloop (up to 25% faster at 512-4096 tokens).
  if (s.m * s.n >= kCooperativeMinLargeOutput) return MOEGEMM_WGRAD_CONFIG_COOPERATIVE_128x256x64_C2x1;
  if (s.out_dtype == MOEGEMM_DTYPE_BF16 && avg_k <= kCooperativeMaxSmallK)
    return MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
  return MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1;
}

bool ragged_m_onelaunch_serves(const RaggedOneLaunchInputs& in) {
  constexpr int64_t kInt32Max = 2147483647;
  if (in.num_groups < 1 || in.num_groups > kRaggedOneLaunchMaxGroups || in.total_rows < 0 ||
      in.total_rows > kInt32Max || in.n < 1 || in.n > kInt32Max || in.k < 1 || in.k > kInt32Max)
    return false;
  if (in.accumulate || in.zero_rows_on_device || in.b_list) return false;
  // Work units (row tiles x column-tile pairs) of any sizes fit in int32.
  const int64_t units = (in.total_rows / 128 + 1 + in.num_groups) * ((in.n + 255) / 256);
  return units <= kInt32Max;
}

namespace {

// Row tiles of 128 rows: exact with host sizes; with device sizes estimated
// (a ragged group's last row tile is half empty on average).
int64_t estimated_row_tiles(const UniformKTileInputs& in) {
  if (in.row_tiles >= 0) return in.row_tiles;
  if (in.num_groups <= 0) return 0;
  const int64_t rows_per_group = in.total_rows / in.num_groups;
  return int64_t{in.num_groups} * ((rows_per_group + 127) / 128) + in.num_groups / 2;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Step 0 of the rule (config_select.h): the one-launch tile, or kAuto for
// none.
UniformKTile onelaunch_choice(const UniformKTileInputs& in) {
  constexpr UniformKTile kNone = UniformKTile::kAuto;
  if (!in.onelaunch_serves || in.num_groups <= 0 || in.total_rows <= 0 || in.n <= 0) return kNone;
  const bool short_k = in.k <= kOneLaunchStoreBoundMaxK;
  if (in.sm_count <= 0) return short_k ? UniformKTile::kOneLaunch128x128 : kNone;  // no rounds to count
  const int64_t sms = in.sm_count;
  const int64_t row_tiles = estimated_row_tiles(in);
  const int64_t tiles = row_tiles * ceil_div(in.n, 128);
  if (in.n % 512 != 0) {
    const bool fits = short_k || tiles <= sms || (in.k <= kOneLaunchMaxK && tiles <= kOneLaunchMaxWaves * sms);
    return fits ? UniformKTile::kOneLaunch128x128 : kNone;
  }
  const int64_t clusters_1x2 = in.onelaunch_clusters_1x2 > 0 ? in.onelaunch_clusters_1x2 : std::max<int64_t>(1, sms / 2);
  const int64_t clusters_1x4 = in.onelaunch_clusters_1x4 > 0 ? in.onelaunch_clusters_1x4 : std::max<int64_t>(1, sms / 4);
  const int64_t rounds_1x2 = ceil_div(row_tiles * (in.n / 256), clusters_1x2);
  const int64_t rounds_1x4 = ceil_div(row_tiles * (in.n / 512), clusters_1x4);
  // At most two row tiles per group on average: the weights are streamed
  // about once, and a part-empty last round of the fewer 1x4 clusters (30
  // on an H100, against 66 of 1x2) leaves bandwidth unused.
  const bool streams_weights = row_tiles <= 2 * int64_t{in.num_groups};
  if (short_k || (in.k <= kOneLaunchMaxK && streams_weights))
    return rounds_1x4 <= rounds_1x2 ? UniformKTile::kOneLaunch128x128Cluster1x4 : UniformKTile::kOneLaunch128x128;
  if (in.k <= kOneLaunchMaxK) return UniformKTile::kOneLaunch128x128Cluster1x4;
  const int64_t cooperative_waves = ceil_div(row_tiles * (in.n / 256), sms);
  return tiles <= sms || rounds_1x4 < 2 * cooperative_waves ? UniformKTile::kOneLaunch128x128Cluster1x4 : kNone;
}

}  // namespace

UniformKTile choose_uniform_k_tile(const UniformKTileInputs& in, UniformKTile requested) {
  const bool onelaunch_requested = requested == UniformKTile::kOneLaunch128x128 ||
                                  requested == UniformKTile::kOneLaunch128x128Cluster1x4;
  if (onelaunch_requested && !in.onelaunch_serves) requested = UniformKTile::kAuto;
  if (requested == UniformKTile::kAuto) {
    if (const UniformKTile onelaunch = onelaunch_choice(in); onelaunch != UniformKTile::kAuto) return onelaunch;
  }
  if (requested != UniformKTile::kAuto && requested != UniformKTile::kAutoCutlass) return requested;
  const int64_t n = in.n;
  if (in.num_groups <= 0 || in.total_rows <= 0 || n <= 0 || n % 512 != 0) return UniformKTile::kPingpong128x128;
  if (in.sm_count <= 0) return UniformKTile::kPingpong128x128Cluster1x4;  // no waves to count
  const bool exact = in.row_tiles >= 0;
  const int64_t row_tiles = estimated_row_tiles(in);
  if (row_tiles <= 0) return UniformKTile::kPingpong128x128Cluster1x4;
  const int64_t sms = in.sm_count;
  const int64_t pingpong_tiles = row_tiles * (n / 128), cooperative_tiles = row_tiles * (n / 256);
  if (in.op_b == MOEGEMM_OP_T && pingpong_tiles > sms) {
    const int64_t row_tiles_64 =
        in.row_tiles_64 >= 0 ? in.row_tiles_64 : in.total_rows / 64 + int64_t{in.num_groups};  // an upper bound
    if (row_tiles_64 * (n / 256) <= sms) return UniformKTile::kPingpong64x256;
  }
  if (exact && pingpong_tiles > sms && cooperative_tiles <= sms) return UniformKTile::kCooperative128x256NoCluster;
  if (cooperative_tiles >= kUniformKCooperativeMinWaves * sms) return UniformKTile::kCooperative128x256;
  const auto waves = [sms](int64_t tiles) { return (tiles + sms - 1) / sms; };
  if (waves(pingpong_tiles) < 2 * waves(cooperative_tiles)) return UniformKTile::kPingpong128x128Cluster1x4;
  return UniformKTile::kCooperative128x256;
}

bool uniform_k_group_prefers_cublas(int64_t rows, int64_t n, int64_t k) {
  if (rows <= 0 || n <= 0 || k <= 0) return false;
  const int64_t output = rows * n;  // both <= INT32_MAX (validated): no overflow
  if (output >= kCublasGroupMinOutput) return true;
  return k >= kCublasGroupLongK && n >= kCublasGroupLongKMinN && output >= kCublasGroupLongKMinOutput;
}

bool uniform_k_keeps_large_groups(const UniformKTileInputs& whole, UniformKTile requested) {
  if (requested != UniformKTile::kAuto && requested != UniformKTile::kAutoCutlass) return false;
  if (whole.k < kCublasGroupLongK || whole.n <= 0 || whole.n % 512 != 0) return false;
  if (whole.num_groups < kUniformKKeepMinGroups) return false;
  if (whole.row_tiles < 0 || whole.sm_count <= 0) return false;  // estimated tiles or no SM count
  const int64_t cooperative_tiles = whole.row_tiles * (whole.n / 256);
  return cooperative_tiles >= kUniformKCooperativeMinWaves * int64_t{whole.sm_count};
}

int64_t uniform_k_cublas_min_rows(int64_t n, int64_t k) {
  const int64_t min_output =
      (k >= kCublasGroupLongK && n >= kCublasGroupLongKMinN) ? kCublasGroupLongKMinOutput : kCublasGroupMinOutput;
  return (min_output + n - 1) / n;
}

}  // namespace moegemm::detail
