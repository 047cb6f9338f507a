// FP32-output instantiations of the SM90 wgrad kernel family.
#include "kernels/wgrad_sm90.cuh"

namespace moegemm::detail {

size_t wgrad_sm90_workspace_size_fp32(int num_groups, int sm_count) {
  return wgrad_workspace_size_for<float>(num_groups, sm_count);
}

Check wgrad_sm90_fp32(const WgradLaunch& launch) { return run_wgrad_for<float>(launch); }

}  // namespace moegemm::detail
