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
};

// Thresholds of the AUTO rule (see config_select.cpp).
constexpr int64_t kCooperativeMaxSmallK = 128;               // tokens per group (BF16 output)
constexpr int64_t kCooperativeMinLargeOutput = 1536 * 2048;  // m * n

// AUTO resolved to a concrete configuration; an explicit request is returned as is.
moegemm_wgrad_config_t choose_wgrad_config(const WgradShape& shape, moegemm_wgrad_config_t requested);

// Tile configurations of the uniform-K (ragged-M) kernel family.
enum class UniformKTile {
  kAuto,
  kPingpong128x128,    // ping-pong 128x128x64, cluster 1x2 (the CTA pair splits N)
  kCooperative128x256  // cooperative 128x256x64, cluster 1x2
};

// From this many rows per group on (and n a multiple of 512, so that the
// cluster's 2 x 256 columns tile it), the cooperative 128x256 tile serves.
// Measured (H200, issue 3's grid, docs/perf-notes.md): at 1024 rows ping-pong
// is ahead on most shapes, from 2048 rows the two are level or cooperative
// ahead (up to 1.25x at n = 7168, k = 512).
constexpr int64_t kUniformKCooperativeMinRows = 2048;

// AUTO resolved from the average rows per group (total_rows / num_groups) and
// n; an explicit request (MOEGEMM_UNIFORM_K_TILE) is returned as is.
UniformKTile choose_uniform_k_tile(int64_t total_rows, int num_groups, int64_t n, UniformKTile requested);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_CONFIG_SELECT_H_
