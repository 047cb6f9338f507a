// Tile-configuration choice for the wgrad kernel. Plain C++ (unit-tested
// without a GPU); the numbers behind it are in docs/gpu-results.md.
#ifndef MOEGEMM_SRC_CONFIG_SELECT_H_
#define MOEGEMM_SRC_CONFIG_SELECT_H_

#include <cstdint>

#include "moegemm/moegemm.h"

namespace moegemm::detail {

struct WgradShape {
  int num_groups;
  int64_t m, n;
  int64_t total_tokens;
  moegemm_dtype_t out_dtype;
  bool accumulate = false;
  bool pointer_list = false;  // D given as a list of pointers (out_ptrs)
};

// Thresholds of the AUTO rule (see config_select.cpp).
constexpr int64_t kCooperativeMaxSmallK = 128;               // tokens per group (BF16 output)
constexpr int64_t kCooperativeMinLargeOutput = 1536 * 2048;  // m * n
// The one-launch kernel: what it serves (its group tables live in shared
// memory; its TMA coordinates are 32-bit) and where AUTO takes it.
constexpr int kOneLaunchMaxGroups = 256;
constexpr int64_t kOneLaunchMaxTokens = 2147483647;
constexpr int64_t kOneLaunchMaxAvgK = 1024;  // large outputs, tokens per group

// Whether the one-launch kernel can serve the call: it accumulates into FP32
// only (BF16 accumulation is left to the CUTLASS kernels: through its
// registers it measured 1.6x slower, docs/perf-notes.md #24).
bool onelaunch_serves(const WgradShape& shape);

// AUTO resolved to a concrete configuration; an explicit request is returned as is.
moegemm_wgrad_config_t choose_wgrad_config(const WgradShape& shape, moegemm_wgrad_config_t requested);

// Tile configurations of the uniform-K (ragged-M) kernel family.
enum class UniformKTile {
  kAuto,
  kAutoCutlass,                  // AUTO among the CUTLASS tiles only (never the one-launch kernel)
  kPingpong128x128,              // ping-pong 128x128x64, cluster 1x2 (the CTA pair splits N)
  kPingpong128x128Cluster1x4,    // ping-pong 128x128x64, cluster 1x4 (4 CTAs split 512 columns)
  kCooperative128x256,           // cooperative 128x256x64, cluster 1x2
  kCooperative128x256NoCluster,  // cooperative 128x256x64, no cluster (1x1)
  kPingpong64x256,               // ping-pong 64x256x64, no cluster: 64-row token tiles
  kOneLaunch128x128,             // moegemm's own ragged-M kernel: no setup kernel (ragged form only), cluster 1x2
  kOneLaunch128x128Cluster1x4,   // the same with a 1x4 cluster (4 CTAs share the token tile)
};

// The ragged-M one-launch kernel (ragged_m_onelaunch_sm90.cuh): what it
// serves. Its group tables live in shared memory and its TMA coordinates and
// work-unit numbers are 32-bit; it overwrites D (no accumulation, and rows
// past the groups are cleared by the caller's memset only when the sizes are
// on the host) and reads B as one contiguous [g, n, k] / [g, k, n] tensor.
constexpr int kRaggedOneLaunchMaxGroups = 256;
struct RaggedOneLaunchInputs {
  int num_groups = 0;
  int64_t total_rows = 0, n = 0, k = 0;
  bool accumulate = false;
  bool zero_rows_on_device = false;  // zero_unused_rows with device sizes
  bool b_list = false;               // B given as a pointer list
};
bool ragged_m_onelaunch_serves(const RaggedOneLaunchInputs& in);

// What the tile choice looks at.
struct UniformKTileInputs {
  int64_t total_rows = 0;  // rows of all groups
  int num_groups = 0;
  // Sum over the non-empty groups of ceil(m_i / 128): the row tiles of every
  // configuration (all are 128 rows high). -1 when the group sizes are on the
  // device (then only an estimate from total_rows / num_groups exists).
  int64_t row_tiles = -1;
  // The same for 64-row tiles (the ping-pong 64x256 tile); -1 when the sizes
  // are on the device (then bounded by total_rows / 64 + num_groups).
  int64_t row_tiles_64 = -1;
  int64_t n = 0;  // the groups' common n; 0 when they differ (keeps the default tile)
  moegemm_op_t op_b = MOEGEMM_OP_T;
  int sm_count = 0;
  int64_t k = 0;                  // the common contraction length
  bool onelaunch_serves = false;  // ragged_m_onelaunch_serves() of the call
  // Clusters of the one-launch kernel resident at once, per cluster shape
  // (cudaOccupancyMaxActiveClusters: one CTA per SM, and a cluster must fit in
  // one GPC; on an H100's 132 SMs 66 of 1x2 but only 30 of 1x4, 120 SMs).
  // 0: not known, taken as sm_count / cluster size.
  int onelaunch_clusters_1x2 = 0;
  int onelaunch_clusters_1x4 = 0;
};

// Where AUTO takes the ragged-M one-launch kernel (when it serves the call;
// step 0 below). First measured on issue 3's grid in U16 (docs/perf-notes.md):
// 7-27% faster than the CUTLASS tiles with k = 512 at every size (the output
// store dominates; its two consumers' epilogues overlap the mainloops).
// Since U22 the 1x4 kernel is also ahead at k = 2048 on all but 2 of the
// sizes measured, and at k = 7168 while its rounds stay below twice the
// cooperative tile's waves (U23).
constexpr int64_t kOneLaunchStoreBoundMaxK = 1024;
constexpr int64_t kOneLaunchMaxK = 4096;
// The 1x2 kernel (n not a multiple of 512) with kOneLaunchStoreBoundMaxK <
// k <= kOneLaunchMaxK: up to this many waves of 128x128 tiles (U16).
constexpr int64_t kOneLaunchMaxWaves = 9;

// With at least this many waves of 128x256 tiles (tiles / SMs) the
// cooperative tile at any wave count: its larger tile reads less per output
// and a part-filled last wave costs little against the whole.
constexpr int64_t kUniformKCooperativeMinWaves = 6;

// AUTO, in this order (an explicit request, MOEGEMM_UNIFORM_K_TILE, is
// returned as is, except a one-launch request for a call that kernel does
// not serve, which is AUTO). Row tiles: exact with host sizes, else estimated as
// g x ceil(rows per group / 128) + g / 2 (a ragged group's last row tile is
// half empty on average; over issue 3's grid this estimate picks within 0.6%
// of the faster tile, the same without the g / 2 term within 3.5%).
//   0. The one-launch kernel (no setup kernel) where it serves the call.
//      Its work is static rounds of one unit per resident cluster (a 128-row
//      tile by 256 or 512 columns), so the rules count rounds: R2 and R4 for
//      the 1x2 and 1x4 clusters (row tiles x column sets / resident
//      clusters, rounded up), W for the cooperative 128x256 tile (its tiles
//      / sm_count, rounded up; each of its tiles is two 128x128 tiles).
//      With n % 512 == 0 (the 1x4 cluster fits):
//        - k <= kOneLaunchStoreBoundMaxK, or k <= kOneLaunchMaxK with at
//          most 2 row tiles per group on average (the weights streamed about
//          once): 1x4 when R4 <= R2, else 1x2;
//        - k <= kOneLaunchMaxK: 1x4;
//        - longer k: 1x4 when the 128x128 tiles fit in one wave or R4 < 2 W,
//          else the CUTLASS rule below.
//      Otherwise the 1x2 kernel when k <= kOneLaunchStoreBoundMaxK, or the
//      128x128 tiles fit in one wave, or k <= kOneLaunchMaxK and they fit in
//      kOneLaunchMaxWaves waves.
//      Measured on an H100 (docs/perf-notes.md U23; issue 3's grid with
//      host sizes, 1x2, 1x4 and the CUTLASS rule each forced in one run): a
//      1x4 cluster leaves 12 of the 132 SMs idle, yet at equal rounds it
//      wins (its 4 CTAs share the token tile: up to 7% with k = 512); with
//      more rounds it loses 3-6% at k = 512 and, on calls that stream their
//      weights (2048 x 7168, 32-192 tokens per group, 30 shapes), 1-6% on 13
//      of 15 rows at k = 2048, where at equal rounds it won on all 14. With
//      more row tiles per group at k = 2048 it was ahead of the cooperative
//      tile on 30 of 32 rows up to 38 rounds; at k = 7168 the cooperative
//      tile wins from R4 = 2 W on (4-11%). Against the previous rule (1x2 up
//      to k = 1024; 1x4 up to 9 waves at k <= 4096 and one wave beyond) the
//      full check at 167866d measured graph geomeans over multi-stream
//      cuBLAS of fprop 1.347x -> 1.363x and dgrad 1.299x -> 1.307x.
//      kAutoCutlass (MOEGEMM_UNIFORM_K_TILE=cutlass) skips this step.
//   1. n not a multiple of 512 (or unknown), or no rows: ping-pong 128x128
//      with the 1x2 cluster. The other tiles' clusters span 512 columns.
//   2a. K-major B (op_b T: the forward's weights) whose 128x128 tiles need
//      more than one wave, and whose 64x256 tiles surely fit in one (exact
//      with host sizes; with device sizes their bound total_rows / 64 + g
//      row tiles): ping-pong 64x256 without a cluster. With a few rows per
//      group the 128-row tiles' token stage is mostly empty; the 64-row one
//      leaves more shared memory for the weight stages, and a small group is
//      one row tile of 64 instead of one of 128 or two. Measured on issue 3's
//      grid (H100, docs/perf-notes.md U27): fprop 8 x 2048x7168 and 32 x
//      512x7168 at 64 tokens per group, 109 -> 97 and 120 -> 109 us (graph);
//      with more than one wave of its tiles it is 5-45% slower.
//   2. With exact row tiles (host sizes): the 128x128 tiles need more than
//      one wave (> sm_count) while the 128x256 tiles fit in one (<= sm_count):
//      cooperative 128x256 without a cluster. Ping-pong would put a second
//      tile on some SMs and the whole call waits for them; the unclustered
//      128x256 tiles run in one wave, each CTA placed freely. Measured on
//      issue 3's grid (H100, docs/perf-notes.md U11): -1% to +22% against
//      ping-pong on the 16 rows where it applies (geomean 1.10x); against the
//      clustered 128x256 tile up to 12% ahead on 10 of their 12 fprop rows,
//      1-4% behind on the 4 dgrad rows.
//   3. At least kUniformKCooperativeMinWaves waves of 128x256 tiles:
//      cooperative 128x256 (cluster 1x2).
//   4. Ping-pong 128x128 (cluster 1x4) when its waves, rounded up, are fewer
//      than twice the cooperative tile's (each of its tiles is half as
//      large), i.e. when the cooperative tile's last wave is at most half
//      full; otherwise cooperative 128x256. Measured on issue 3's grid (H100,
//      U12, each tile forced in one run): the 1x4 cluster (its 4 CTAs read
//      1 KB-wide slices of the same weight rows and share the token tile) is
//      ahead of the 1x2 ping-pong on 98 of 168 rows by more than 2% (geomean
//      0.967x the time, at most 8% behind); this rule is within 0.24% of the
//      faster of it and the cooperative tile over the grid (at most 6.5% off
//      on one row), against 0.67% for the previous rule by tile count and
//      B's layout (dgrad 16x2048x7168 at 64 tokens: 195 -> 180 us).
UniformKTile choose_uniform_k_tile(const UniformKTileInputs& in, UniformKTile requested);

// Large groups of the uniform-K path run as their own cuBLAS GEMMs (on side
// streams, beside the grouped kernel that takes the other groups) when the
// group sizes are on the host. Measured on an H100 with equal groups
// (docs/perf-notes.md U7): multi-stream cuBLAS is ahead of the grouped kernel
// from ~6M output elements per group (rows x n: 3072 rows at n = 2048, 878 at
// n = 7168; 2-13% ahead there), and with long K (>= 4096) from ~1M at
// n >= 1024 (512 rows at n = 2048, k = 7168: 6% ahead); below, the grouped
// kernel is ahead (up to 2x at small groups).
constexpr int64_t kCublasGroupMinOutput = int64_t{6} << 20;
constexpr int64_t kCublasGroupLongK = 4096;
constexpr int64_t kCublasGroupLongKMinN = 1024;
constexpr int64_t kCublasGroupLongKMinOutput = int64_t{1} << 20;

// Whether a group of `rows` x n (contraction k) is faster as its own cuBLAS GEMM.
bool uniform_k_group_prefers_cublas(int64_t rows, int64_t n, int64_t k);

// The fewest rows for which uniform_k_group_prefers_cublas(rows, n, k) holds
// (n > 0, k > 0).
int64_t uniform_k_cublas_min_rows(int64_t n, int64_t k);

// Except that with long k the grouped kernel keeps the large groups too when
// the call has many groups and fills many waves of its cooperative 128x256
// tile: k >= kCublasGroupLongK, n % 512 == 0, at least kUniformKKeepMinGroups
// groups, the row tiles exact (host sizes) and at least
// kUniformKCooperativeMinWaves waves of 128x256 tiles on the SMs, and the tile
// AUTO (kAuto or kAutoCutlass: what was measured). Measured on an H100
// (docs/perf-notes.md U25; split and no split alternated in one run): with 16
// or more groups the grouped kernel alone was level or ahead on 12 of the 13
// such rows (fprop 2048 x 7168 with 16-32 groups, 24 x 2048 x 7168, 16 x 1024
// x 4096, dgrad 16 x 4096 x 2048; up to 10%, 32 groups at 512 tokens): their
// many per-group GEMMs queue 4-8 deep on each of cuBLAS's streams. It was 1-5%
// behind on dgrad 16 x 4096 x 2048 at 2048 tokens (k = 4096, the threshold).
// With 8-12 groups it was ahead on one
// row (6%) and 3-6% behind on four (8 x 4096 x 8192, 12 x 2048 x 7168 at 1536
// tokens, dgrad 8 x 4096 x 2048), where cuBLAS's kernels on a few large GEMMs
// beat the cooperative tile; with fewer waves the split was ahead by up to 9%,
// and with k < 4096 level or ahead.
constexpr int kUniformKKeepMinGroups = 16;
bool uniform_k_keeps_large_groups(const UniformKTileInputs& whole, UniformKTile requested);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_CONFIG_SELECT_H_
