// Host-side interface of the SM90 uniform-K grouped kernel family (path 1 of
// moegemm.h): for every group i, D_i[m_i, n_i] (+)= A_i[m_i, k] · op_b(B_i),
// ragged m_i, one k, in one launch (implemented in uniform_k_sm90.cuh,
// instantiated per (A/B type, D type, op_b) in uniform_k_sm90_*.cu).
#ifndef MOEGEMM_SRC_KERNELS_UNIFORM_K_SM90_H_
#define MOEGEMM_SRC_KERNELS_UNIFORM_K_SM90_H_

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "config_select.h"
#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm::detail {

// One call of the kernel family. Exactly one of `ragged` and `list` is set;
// the dispatcher has already checked every rule of path 1 and the workspace.
struct UniformKLaunch {
  // Ragged-M form (moegemm_ragged_m): A [T, k], D [T, n], group sizes on the
  // host or the device (device sizes are clamped as documented in moegemm.h).
  const moegemm_ragged_m_problem_t* ragged = nullptr;
  // List form (moegemm_gemm_list) with op_a == N and one k for all groups:
  // host arrays of sizes and device pointers.
  const moegemm_gemm_list_t* list = nullptr;

  moegemm_dtype_t ab_dtype;  // BF16 or FP16
  moegemm_dtype_t d_dtype;   // FP32 or ab_dtype
  moegemm_op_t op_b;         // T: B_i is [n, k]; N: B_i is [k, n]
  bool accumulate;
  UniformKTile tile = UniformKTile::kPingpong128x128;
  // Ragged form with device sizes: rows of D past the groups written as zeros
  // (moegemm_ragged_m_problem_t::zero_unused_rows), by the setup kernel.
  bool zero_rows_past_groups = false;
  // Ragged form with host sizes, one-launch kernel only: groups (g entries)
  // whose rows it leaves alone, because they run as cuBLAS GEMMs beside it.
  const bool* skip_groups = nullptr;
  void* workspace;           // >= uniform_k_sm90_workspace_size(g, sm_count), 256-byte aligned
  cudaStream_t stream;
  int device;
  int sm_count;
};

// Workspace bytes for g groups, for every instantiation of the family.
size_t uniform_k_sm90_workspace_size(int num_groups, int sm_count);

// Enqueues the call (no host synchronisation, no allocation).
Check uniform_k_sm90(const UniformKLaunch& launch);

// Clusters of the ragged-M one-launch kernel with `cluster_n` (2 or 4) CTAs
// that the device holds at once, for the tile choice (launch: its dtypes,
// op_b, device and sm_count). Queried once per device and kernel, then cached.
Check uniform_k_sm90_onelaunch_clusters(const UniformKLaunch& launch, int cluster_n, int* clusters);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_KERNELS_UNIFORM_K_SM90_H_
