// Validation and path choice of the general grouped GEMM (moegemm_gemm_list,
// moegemm_ragged_m). Plain C++, no CUDA calls: every rule and every message is
// unit-tested without a GPU. The order of the rules is documented in moegemm.h.
#ifndef MOEGEMM_SRC_DISPATCH_H_
#define MOEGEMM_SRC_DISPATCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm::detail {

// Whatever the path: sizes, dtypes, NULL entries, element alignment, host split sizes.
Check validate_gemm_list(const moegemm_gemm_list_t* problem);
Check validate_ragged_m(const moegemm_ragged_m_problem_t* problem);

// What the path choice needs to know besides the problem.
struct DispatchFacts {
  bool sm90 = false;        // the current device is SM90
  bool use_cutlass = true;  // MOEGEMM_USE_CUTLASS
};

struct PathChoice {
  moegemm_path_t path = MOEGEMM_PATH_CUBLAS;
  std::string reason;  // why the faster paths were not taken ("" for the uniform-K path)
};

// For a validated problem.
PathChoice choose_list_path(const moegemm_gemm_list_t& problem, const DispatchFacts& facts);
PathChoice choose_ragged_m_path(const moegemm_ragged_m_problem_t& problem, const DispatchFacts& facts);

// Path 2 takes a list whose A_i and B_i are consecutive slices of one buffer
// each: the buffers' starts (NULL when every k_i is 0). Valid only when
// choose_list_path() returned MOEGEMM_PATH_VARIABLE_K.
struct WgradBuffers {
  const void* dy;  // A: [sum k_i, m]
  const void* x;   // B: [sum k_i, n]
  int64_t total_tokens;
};
WgradBuffers wgrad_buffers_of_list(const moegemm_gemm_list_t& problem);

// The ragged-M problem as a list (path 3), for host group sizes and host B
// pointers already clamped/copied by the caller. `sizes` and `b_list` have g
// entries; the returned list points into `storage`.
struct ListStorage {
  std::vector<int64_t> m, n, k;
  std::vector<const void*> a, b;
  std::vector<void*> d;
};
moegemm_gemm_list_t ragged_m_as_list(const moegemm_ragged_m_problem_t& problem, const int64_t* sizes,
                                     const void* const* b_list, ListStorage* storage);

// Splits a uniform-K list (path 1) for the large-group rule
// (uniform_k_group_prefers_cublas, config_select.h): `large` gets the groups
// that are faster as their own cuBLAS GEMMs, `rest` the others. Both keep all
// g slots, the other part's groups with m = 0 (so the grouped kernel's cached
// parameters, keyed on g, are reused from call to call). Returns the number of
// large groups; the lists point into their storage.
int split_large_groups(const moegemm_gemm_list_t& problem, ListStorage* large_storage, moegemm_gemm_list_t* large,
                       ListStorage* rest_storage, moegemm_gemm_list_t* rest);

// Device-side clamping rule of split sizes, applied on the host (for the
// cuBLAS path of device sizes): k < 0 -> 0, offsets capped at `total`.
std::vector<int64_t> clamp_group_sizes(const int64_t* sizes, int g, int64_t total);

size_t dtype_size(moegemm_dtype_t dtype);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_DISPATCH_H_
