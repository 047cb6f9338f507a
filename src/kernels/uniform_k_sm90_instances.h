// The instantiations of the SM90 uniform-K kernel family, one per
// (A/B type, D type, op_b). Declared here without CUTLASS so that the
// dispatcher (uniform_k_sm90.cu) stays light; defined in uniform_k_sm90.cuh and
// explicitly instantiated in uniform_k_sm90_{bf16,fp16}_{t,n}.cu.
#ifndef MOEGEMM_SRC_KERNELS_UNIFORM_K_SM90_INSTANCES_H_
#define MOEGEMM_SRC_KERNELS_UNIFORM_K_SM90_INSTANCES_H_

#include <cstddef>

#include "kernels/uniform_k_sm90.h"
#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm::detail {

template <moegemm_dtype_t AB, moegemm_dtype_t D, moegemm_op_t OpB>
struct UniformKInstance {
  // Workspace bytes for g groups, for every tile configuration of this instance.
  static size_t workspace_size(int num_groups, int sm_count);
  // Enqueues the call; `launch` matches (AB, D, OpB).
  static Check run(const UniformKLaunch& launch);
  // Clusters of the one-launch kernel (1x2 or 1x4) resident at once.
  static Check onelaunch_clusters(const UniformKLaunch& launch, int cluster_n, int* clusters);
};

#define MOEGEMM_UNIFORM_K_INSTANCES(X)                      \
  X(MOEGEMM_DTYPE_BF16, MOEGEMM_DTYPE_FP32, MOEGEMM_OP_T)   \
  X(MOEGEMM_DTYPE_BF16, MOEGEMM_DTYPE_BF16, MOEGEMM_OP_T)   \
  X(MOEGEMM_DTYPE_BF16, MOEGEMM_DTYPE_FP32, MOEGEMM_OP_N)   \
  X(MOEGEMM_DTYPE_BF16, MOEGEMM_DTYPE_BF16, MOEGEMM_OP_N)   \
  X(MOEGEMM_DTYPE_FP16, MOEGEMM_DTYPE_FP32, MOEGEMM_OP_T)   \
  X(MOEGEMM_DTYPE_FP16, MOEGEMM_DTYPE_FP16, MOEGEMM_OP_T)   \
  X(MOEGEMM_DTYPE_FP16, MOEGEMM_DTYPE_FP32, MOEGEMM_OP_N)   \
  X(MOEGEMM_DTYPE_FP16, MOEGEMM_DTYPE_FP16, MOEGEMM_OP_N)

#define MOEGEMM_UNIFORM_K_EXTERN(AB, D, OPB) extern template struct UniformKInstance<AB, D, OPB>;
MOEGEMM_UNIFORM_K_INSTANCES(MOEGEMM_UNIFORM_K_EXTERN)
#undef MOEGEMM_UNIFORM_K_EXTERN

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_KERNELS_UNIFORM_K_SM90_INSTANCES_H_
