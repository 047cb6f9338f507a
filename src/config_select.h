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

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_CONFIG_SELECT_H_
