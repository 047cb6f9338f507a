// Shared by the host-only tests: a valid wgrad problem whose arrays live in
// host memory, and assertions on a validation result (moegemm::detail::Check).
// Validation never dereferences x, dy, out or the outputs (only host split
// sizes and host pointer lists), so nothing here touches a GPU.
#ifndef MOEGEMM_TESTS_HOST_TEST_UTIL_H_
#define MOEGEMM_TESTS_HOST_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm_test {

// g = 4, m = 64, n = 136, T = 230, host split sizes {50, 0, 120, 30},
// contiguous FP32 output, overwrite, AUTO. Not copyable: `p` points into it.
struct ValidProblem {
  static constexpr int kGroups = 4;
  static constexpr int64_t kM = 64, kN = 136, kT = 230;

  alignas(256) unsigned char x[256];
  alignas(256) unsigned char dy[256];
  alignas(256) unsigned char out[256];
  alignas(256) unsigned char group_out[kGroups][256];
  std::vector<int64_t> sizes{50, 0, 120, 30};
  std::vector<void*> ptrs;
  moegemm_wgrad_problem_t p;

  ValidProblem() {
    p = moegemm_wgrad_problem_default();
    p.num_groups = kGroups;
    p.m = kM;
    p.n = kN;
    p.total_tokens = kT;
    p.x = x;
    p.dy = dy;
    p.group_sizes = sizes.data();
    p.group_sizes_location = MOEGEMM_MEMORY_HOST;
    p.out = out;
  }
  ValidProblem(const ValidProblem&) = delete;
  ValidProblem& operator=(const ValidProblem&) = delete;

  // Host split sizes; num_groups follows their count.
  void set_sizes(std::vector<int64_t> k) {
    sizes = std::move(k);
    p.group_sizes = sizes.data();
    p.num_groups = static_cast<int>(sizes.size());
  }

  // A list of num_groups output pointers (all 16-byte aligned) instead of `out`.
  void use_out_list(moegemm_memory_t location) {
    ptrs.assign(static_cast<size_t>(p.num_groups), nullptr);
    for (size_t i = 0; i < ptrs.size(); ++i) ptrs[i] = group_out[i % kGroups];
    p.out = nullptr;
    p.out_ptrs = ptrs.data();
    p.out_ptrs_location = location;
  }
};

inline const unsigned char* plus_bytes(const void* p, size_t bytes) {
  return static_cast<const unsigned char*>(p) + bytes;
}

inline ::testing::AssertionResult names(const std::string& message, const std::string& what) {
  if (message.find(what) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << message << "\" does not name \"" << what << "\"";
}

// A failed check with this status whose message names `what`.
inline ::testing::AssertionResult fails_with(const moegemm::detail::Check& c, moegemm_status_t status,
                                             const std::string& what) {
  if (c.status != status)
    return ::testing::AssertionFailure() << "status " << moegemm_status_string(c.status) << " (expected "
                                         << moegemm_status_string(status) << "), message \"" << c.message << "\"";
  return names(c.message, what);
}

// A successful check, with no message.
inline ::testing::AssertionResult passes(const moegemm::detail::Check& c) {
  if (c.ok() && c.message.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << moegemm_status_string(c.status) << ": \"" << c.message << "\"";
}

}  // namespace moegemm_test

#endif  // MOEGEMM_TESTS_HOST_TEST_UTIL_H_
