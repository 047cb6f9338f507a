// Host-side interface of the SM90 variable-K wgrad kernel family
// (implemented in wgrad_sm90.cuh, instantiated per output type in
// wgrad_sm90_fp32.cu / wgrad_sm90_bf16.cu).
#ifndef MOEGEMM_SRC_KERNELS_WGRAD_SM90_H_
#define MOEGEMM_SRC_KERNELS_WGRAD_SM90_H_

#include <cstddef>

#include <cuda_runtime_api.h>

#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm::detail {

struct WgradLaunch {
  const moegemm_wgrad_problem_t* problem;  // already validated
  moegemm_wgrad_config_t config;           // concrete (not AUTO)
  void* workspace;                         // already checked against the size query
  cudaStream_t stream;
  int device;
  int sm_count;
};

// Workspace bytes for g groups, for every configuration of that output type.
size_t wgrad_sm90_workspace_size_fp32(int num_groups, int sm_count);
size_t wgrad_sm90_workspace_size_bf16(int num_groups, int sm_count);

// Enqueue the setup kernel and the grouped GEMM.
Check wgrad_sm90_fp32(const WgradLaunch& launch);
Check wgrad_sm90_bf16(const WgradLaunch& launch);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_KERNELS_WGRAD_SM90_H_
