// BF16-output instantiations of the SM90 wgrad kernel family.
#include "kernels/wgrad_sm90.cuh"

namespace moegemm::detail {

size_t wgrad_sm90_workspace_size_bf16(int num_groups, int sm_count) {
  return wgrad_workspace_size_for<cutlass::bfloat16_t>(num_groups, sm_count);
}

Check wgrad_sm90_bf16(const WgradLaunch& launch) { return run_wgrad_for<cutlass::bfloat16_t>(launch); }

}  // namespace moegemm::detail
