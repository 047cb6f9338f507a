#include "validate.h"

#include <cstdint>
#include <limits>
#include <sstream>

namespace moegemm::detail {
namespace {

Check fail(moegemm_status_t status, const std::string& message) { return Check{status, message}; }

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) % 16) == 0; }

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

Check validate_wgrad_problem(const moegemm_wgrad_problem_t* p) {
  const auto invalid = MOEGEMM_STATUS_INVALID_ARGUMENT;
  if (p == nullptr) return fail(invalid, "problem: must not be NULL");
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

  if (p->num_groups <= 0)
    return fail(invalid, "num_groups: must be >= 1 (got " + str(p->num_groups) + ")");
  if (p->m <= 0 || p->m > kIntMax)
    return fail(invalid, "m: must be in [1, 2^31) (got " + str(p->m) + ")");
  if (p->n <= 0 || p->n > kIntMax)
    return fail(invalid, "n: must be in [1, 2^31) (got " + str(p->n) + ")");
  if (p->m % 8 != 0)
    return fail(MOEGEMM_STATUS_MISALIGNED,
                "m: must be a multiple of 8 so that rows of dY are 16-byte aligned for TMA (got " +
                    str(p->m) + ")");
  if (p->n % 8 != 0)
    return fail(MOEGEMM_STATUS_MISALIGNED,
                "n: must be a multiple of 8 so that rows of X and D are 16-byte aligned for TMA (got " +
                    str(p->n) + ")");
  if (p->total_tokens < 0 || p->total_tokens > kIntMax)
    return fail(invalid, "total_tokens: must be in [0, 2^31) (got " + str(p->total_tokens) + ")");
  if (p->out_dtype != MOEGEMM_DTYPE_FP32 && p->out_dtype != MOEGEMM_DTYPE_BF16)
    return fail(invalid, "out_dtype: must be MOEGEMM_DTYPE_FP32 or MOEGEMM_DTYPE_BF16 (got " +
                             str(static_cast<int64_t>(p->out_dtype)) + ")");
  if (p->config < MOEGEMM_WGRAD_CONFIG_AUTO || p->config >= MOEGEMM_WGRAD_CONFIG_COUNT_)
    return fail(invalid, "config: unknown tile configuration " + str(static_cast<int64_t>(p->config)));
  if (p->group_sizes_location != MOEGEMM_MEMORY_HOST && p->group_sizes_location != MOEGEMM_MEMORY_DEVICE)
    return fail(invalid, "group_sizes_location: must be MOEGEMM_MEMORY_HOST or _DEVICE");

  if (p->total_tokens > 0) {
    if (p->x == nullptr) return fail(invalid, "x: must not be NULL when total_tokens > 0");
    if (p->dy == nullptr) return fail(invalid, "dy: must not be NULL when total_tokens > 0");
    if (!aligned16(p->x)) return fail(MOEGEMM_STATUS_MISALIGNED, "x: must be 16-byte aligned");
    if (!aligned16(p->dy)) return fail(MOEGEMM_STATUS_MISALIGNED, "dy: must be 16-byte aligned");
  }

  if (p->group_sizes == nullptr) return fail(invalid, "group_sizes: must not be NULL");
  if (p->group_sizes_location == MOEGEMM_MEMORY_DEVICE &&
      reinterpret_cast<std::uintptr_t>(p->group_sizes) % alignof(int64_t) != 0)
    return fail(MOEGEMM_STATUS_MISALIGNED, "group_sizes: the device array must be 8-byte aligned (int64)");
  if (p->group_sizes_location == MOEGEMM_MEMORY_HOST) {
    if (p->num_groups > MOEGEMM_MAX_HOST_GROUPS)
      return fail(invalid, "group_sizes: host split sizes allow at most " +
                               str(MOEGEMM_MAX_HOST_GROUPS) + " groups (got " + str(p->num_groups) +
                               "); pass them on the device");
    int64_t sum = 0;
    for (int i = 0; i < p->num_groups; ++i) {
      const int64_t k = p->group_sizes[i];
      if (k < 0)
        return fail(invalid, "group_sizes[" + str(i) + "]: must be >= 0 (got " + str(k) + ")");
      // Compared before adding: huge sizes must not wrap the running sum.
      if (k > p->total_tokens - sum)
        return fail(invalid, "group_sizes: sum must be <= total_tokens (" + str(p->total_tokens) +
                                 "), exceeded at group " + str(i) + " (running sum " + str(sum) +
                                 " + " + str(k) + ")");
      sum += k;
    }
  }

  const bool has_out = p->out != nullptr, has_list = p->out_ptrs != nullptr;
  if (has_out == has_list)
    return fail(invalid, "out/out_ptrs: exactly one must be non-NULL (got " +
                             std::string(has_out ? "both" : "neither") + ")");
  if (has_out && !aligned16(p->out)) return fail(MOEGEMM_STATUS_MISALIGNED, "out: must be 16-byte aligned");
  if (has_list) {
    if (p->out_ptrs_location != MOEGEMM_MEMORY_HOST && p->out_ptrs_location != MOEGEMM_MEMORY_DEVICE)
      return fail(invalid, "out_ptrs_location: must be MOEGEMM_MEMORY_HOST or _DEVICE");
    if (p->out_ptrs_location == MOEGEMM_MEMORY_HOST) {
      if (p->num_groups > MOEGEMM_MAX_HOST_GROUPS)
        return fail(invalid, "out_ptrs: a host pointer list allows at most " +
                                 str(MOEGEMM_MAX_HOST_GROUPS) + " groups (got " +
                                 str(p->num_groups) + "); pass it on the device");
      for (int i = 0; i < p->num_groups; ++i) {
        if (p->out_ptrs[i] == nullptr)
          return fail(invalid, "out_ptrs[" + str(i) + "]: must not be NULL");
        if (!aligned16(p->out_ptrs[i]))
          return fail(MOEGEMM_STATUS_MISALIGNED, "out_ptrs[" + str(i) + "]: must be 16-byte aligned");
      }
    } else if (reinterpret_cast<std::uintptr_t>(p->out_ptrs) % alignof(void*) != 0) {
      return fail(MOEGEMM_STATUS_MISALIGNED, "out_ptrs: the device pointer array must be 8-byte aligned");
    }
  }
  return Check{};
}

Check validate_workspace(const void* workspace, size_t have_bytes, size_t need_bytes, const char* size_query) {
  if (have_bytes < need_bytes)
    return fail(MOEGEMM_STATUS_WORKSPACE_TOO_SMALL,
                "workspace_bytes: " + std::to_string(have_bytes) + " given, " +
                    std::to_string(need_bytes) + " needed (" + size_query + ")");
  if (need_bytes > 0 && workspace == nullptr)
    return fail(MOEGEMM_STATUS_INVALID_ARGUMENT, "workspace: must not be NULL");
  if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0)
    return fail(MOEGEMM_STATUS_MISALIGNED, "workspace: must be 256-byte aligned");
  return Check{};
}

}  // namespace moegemm::detail
