// Dispatch of the SM90 uniform-K kernel family over its instantiations
// (uniform_k_sm90_instances.h). No CUTLASS here: the kernels are compiled in
// uniform_k_sm90_{bf16,fp16}_{t,n}.cu.
#include <algorithm>
#include <string>

#include "kernels/uniform_k_sm90.h"
#include "kernels/uniform_k_sm90_instances.h"

namespace moegemm::detail {

size_t uniform_k_sm90_workspace_size(int num_groups, int sm_count) {
  size_t bytes = 0;
#define MOEGEMM_UNIFORM_K_WORKSPACE(AB, D, OPB) \
  bytes = std::max(bytes, UniformKInstance<AB, D, OPB>::workspace_size(num_groups, sm_count));
  MOEGEMM_UNIFORM_K_INSTANCES(MOEGEMM_UNIFORM_K_WORKSPACE)
#undef MOEGEMM_UNIFORM_K_WORKSPACE
  return bytes;
}

namespace {
Check no_instance(const UniformKLaunch& launch) {
  return Check{MOEGEMM_STATUS_INTERNAL_ERROR,
               "uniform-K: no kernel for ab_dtype " + std::to_string(launch.ab_dtype) + ", d_dtype " +
                   std::to_string(launch.d_dtype) + ", op_b " + std::to_string(launch.op_b)};
}
}  // namespace

Check uniform_k_sm90(const UniformKLaunch& launch) {
  if ((launch.ragged == nullptr) == (launch.list == nullptr))
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "uniform-K: exactly one of ragged and list must be set"};
  if (launch.workspace == nullptr)
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "uniform-K: no workspace"};
#define MOEGEMM_UNIFORM_K_DISPATCH(AB, D, OPB)                                        \
  if (launch.ab_dtype == (AB) && launch.d_dtype == (D) && launch.op_b == (OPB)) \
    return UniformKInstance<AB, D, OPB>::run(launch);
  MOEGEMM_UNIFORM_K_INSTANCES(MOEGEMM_UNIFORM_K_DISPATCH)
#undef MOEGEMM_UNIFORM_K_DISPATCH
  return no_instance(launch);
}

Check uniform_k_sm90_onelaunch_clusters(const UniformKLaunch& launch, int cluster_n, int* clusters) {
#define MOEGEMM_UNIFORM_K_CLUSTERS(AB, D, OPB)                                  \
  if (launch.ab_dtype == (AB) && launch.d_dtype == (D) && launch.op_b == (OPB)) \
    return UniformKInstance<AB, D, OPB>::onelaunch_clusters(launch, cluster_n, clusters);
  MOEGEMM_UNIFORM_K_INSTANCES(MOEGEMM_UNIFORM_K_CLUSTERS)
#undef MOEGEMM_UNIFORM_K_CLUSTERS
  return no_instance(launch);
}

}  // namespace moegemm::detail
