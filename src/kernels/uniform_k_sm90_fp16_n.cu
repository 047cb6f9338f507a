// FP16 A/B, op_b N instantiations of the SM90 uniform-K kernel family (FP32 and FP16 D).
#include "kernels/uniform_k_sm90.cuh"

namespace moegemm::detail {

template struct UniformKInstance<MOEGEMM_DTYPE_FP16, MOEGEMM_DTYPE_FP32, MOEGEMM_OP_N>;
template struct UniformKInstance<MOEGEMM_DTYPE_FP16, MOEGEMM_DTYPE_FP16, MOEGEMM_OP_N>;

}  // namespace moegemm::detail
