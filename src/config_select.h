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
  kPingpong128x128,             // ping-pong 128x128x64, cluster 1x2 (the CTA pair splits N)
  kCooperative128x256,          // cooperative 128x256x64, cluster 1x2
  kCooperative128x256NoCluster  // cooperative 128x256x64, no cluster (1x1)
};

// What the tile choice looks at.
struct UniformKTileInputs {
  int64_t total_rows = 0;  // rows of all groups
  int num_groups = 0;
  // Sum over the non-empty groups of ceil(m_i / 128): the row tiles of every
  // configuration (all are 128 rows high). -1 when the group sizes are on the
  // device (then only an estimate from total_rows / num_groups exists).
  int64_t row_tiles = -1;
  int64_t n = 0;  // the groups' common n; 0 when they differ (keeps the default tile)
  moegemm_op_t op_b = MOEGEMM_OP_T;
  int sm_count = 0;
};

// The cooperative 128x256 tile serves when the call has at least this many of
// its tiles (g x ceil(rows per group / 128) x n / 256, about 3 waves on 132
// SMs) and n is a multiple of 512 (the cluster's 2 x 256 columns tile it);
// with fewer, the 128x128 ping-pong tile keeps more SMs busy. Measured on
// issue 3's grid (H100, docs/perf-notes.md U3): the 128x256 tile is ahead from
// ~512 rows per group at n = 2048 and ~128 at n = 7168, behind at n = 512
// below 2048 rows; this count puts the switch there (graph geomean vs
// multi-stream cuBLAS 1.13x -> 1.19x, worst shape 0.70x -> 0.86x).
constexpr int64_t kUniformKCooperativeMinTiles = 384;

// With B N-major (op_b N: B_i is [k, n], the dgrad layout) and n at least
// this, the cooperative 128x256 tile at any tile count: each k row of its B
// tile is 512 contiguous bytes (256 for the 128x128 tile), and these calls
// stream their weights from DRAM. Measured on issue 3's grid (H100,
// docs/perf-notes.md U11): level with or ahead of ping-pong on 20 of the 24
// dgrad rows with n = 7168 below 1024 rows per group (up to 16% ahead, at most
// 4% behind).
constexpr int64_t kUniformKWideNMajorMinN = 4096;

// AUTO, in this order (an explicit request, MOEGEMM_UNIFORM_K_TILE, is
// returned as is):
//   1. n not a multiple of 512 (or unknown): ping-pong 128x128.
//   2. >= kUniformKCooperativeMinTiles cooperative tiles, estimated from the
//      rows per group: cooperative 128x256.
//   3. op_b N and n >= kUniformKWideNMajorMinN: cooperative 128x256.
//   4. With exact row tiles (host sizes): the 128x128 tiles need more than
//      one wave (> sm_count) while the 128x256 tiles fit in one (<= sm_count):
//      cooperative 128x256 without a cluster. Ping-pong would put a second
//      tile on some SMs and the whole call waits for them; the unclustered
//      128x256 tiles run in one wave, each CTA placed freely. Measured on
//      issue 3's grid (H100, U11): -1% to +22% against ping-pong on the 16
//      rows where it applies (geomean 1.10x); against the clustered 128x256
//      tile up to 12% ahead on 10 of their 12 fprop rows, 1-4% behind on the
//      4 dgrad rows; with more tiles the cluster's multicast wins.
//   5. otherwise ping-pong 128x128.
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

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_CONFIG_SELECT_H_
