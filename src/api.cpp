// The C API: validation, device checks, configuration choice, dispatch to
// the kernel family. Each failure leaves a message for moegemm_last_error().
#include <mutex>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "config_select.h"
#include "kernels/wgrad_sm90.h"
#include "moegemm/moegemm.h"
#include "runtime.h"
#include "validate.h"

namespace moegemm::detail {

namespace {
thread_local std::string last_error;
}  // namespace

moegemm_status_t report(const Check& c) {
  last_error = c.ok() ? std::string() : c.message;
  return c.status;
}

// Current device's properties, queried once per device.
Check current_device(DeviceInfo* info) {
  int device = -1;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for the caller's next check
    return Check{MOEGEMM_STATUS_UNSUPPORTED_DEVICE,
                 std::string("no usable CUDA device: ") + cudaGetErrorString(err)};
  }
  static std::mutex mu;
  static std::vector<DeviceInfo> cache;
  std::lock_guard<std::mutex> lock(mu);
  for (const DeviceInfo& d : cache)
    if (d.device == device) { *info = d; return Check{}; }
  DeviceInfo d;
  d.device = device;
  if ((err = cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, device)) != cudaSuccess ||
      (err = cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, device)) != cudaSuccess ||
      (err = cudaDeviceGetAttribute(&d.sm_count, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess)
  {
    cudaGetLastError();  // leave no error behind for the caller's next check
    return Check{MOEGEMM_STATUS_CUDA_ERROR, std::string("cudaDeviceGetAttribute: ") + cudaGetErrorString(err)};
  }
  cache.push_back(d);
  *info = d;
  return Check{};
}

Check require_sm90(DeviceInfo* info) {
  if (Check c = current_device(info); !c.ok()) return c;
  if (info->major != 9 || info->minor != 0)
    return Check{MOEGEMM_STATUS_UNSUPPORTED_DEVICE,
                 "device " + std::to_string(info->device) + ": compute capability " +
                     std::to_string(info->major) + "." + std::to_string(info->minor) +
                     ", moegemm's kernels need SM90 (H100/H200)"};
  return Check{};
}

namespace {

// Asked on every call (the workspace check): the last answer is kept per
// thread, as working it out costs ~0.5 us of host time.
size_t workspace_bytes(int num_groups, int sm_count) {
  thread_local int last_groups = -1, last_sm_count = -1;
  thread_local size_t last_bytes = 0;
  if (num_groups != last_groups || sm_count != last_sm_count) {
    const size_t a = wgrad_sm90_workspace_size_fp32(num_groups, sm_count);
    const size_t b = wgrad_sm90_workspace_size_bf16(num_groups, sm_count);
    last_bytes = a > b ? a : b;
    last_groups = num_groups;
    last_sm_count = sm_count;
  }
  return last_bytes;
}

}  // namespace

size_t wgrad_workspace_bytes_on(int num_groups, int sm_count) { return workspace_bytes(num_groups, sm_count); }

}  // namespace moegemm::detail

using namespace moegemm::detail;

extern "C" {

moegemm_wgrad_problem_t moegemm_wgrad_problem_default(void) {
  moegemm_wgrad_problem_t p{};
  p.group_sizes_location = MOEGEMM_MEMORY_HOST;
  p.out_ptrs_location = MOEGEMM_MEMORY_HOST;
  p.out_dtype = MOEGEMM_DTYPE_FP32;
  p.accumulate = 0;
  p.config = MOEGEMM_WGRAD_CONFIG_AUTO;
  return p;
}

moegemm_status_t moegemm_wgrad_workspace_size(const moegemm_wgrad_problem_t* problem,
                                              size_t* workspace_bytes_out) {
  if (workspace_bytes_out == nullptr)
    return report({MOEGEMM_STATUS_INVALID_ARGUMENT, "workspace_bytes: must not be NULL"});
  if (problem == nullptr) return report({MOEGEMM_STATUS_INVALID_ARGUMENT, "problem: must not be NULL"});
  if (problem->num_groups <= 0)
    return report({MOEGEMM_STATUS_INVALID_ARGUMENT,
                   "num_groups: must be >= 1 (got " + std::to_string(problem->num_groups) + ")"});
  DeviceInfo dev;
  if (Check c = require_sm90(&dev); !c.ok()) return report(c);
  *workspace_bytes_out = workspace_bytes(problem->num_groups, dev.sm_count);
  return report(Check{});
}

moegemm_status_t moegemm_wgrad(const moegemm_wgrad_problem_t* problem, void* workspace,
                               size_t workspace_size, cudaStream_t stream) {
  if (Check c = validate_wgrad_problem(problem); !c.ok()) return report(c);
  DeviceInfo dev;
  if (Check c = require_sm90(&dev); !c.ok()) return report(c);
  const size_t need = workspace_bytes(problem->num_groups, dev.sm_count);
  if (Check c = validate_workspace(workspace, workspace_size, need); !c.ok()) return report(c);

  WgradLaunch launch{};
  launch.problem = problem;
  launch.config = moegemm_wgrad_choose_config(problem);
  launch.workspace = workspace;
  launch.stream = stream;
  launch.device = dev.device;
  launch.sm_count = dev.sm_count;
  const Check c = problem->out_dtype == MOEGEMM_DTYPE_FP32 ? wgrad_sm90_fp32(launch) : wgrad_sm90_bf16(launch);
  return report(c);
}

moegemm_wgrad_config_t moegemm_wgrad_choose_config(const moegemm_wgrad_problem_t* problem) {
  if (problem == nullptr) return MOEGEMM_WGRAD_CONFIG_AUTO;
  const WgradShape shape{problem->num_groups, problem->m,         problem->n,
                         problem->total_tokens, problem->out_dtype, problem->accumulate != 0,
                         problem->out_ptrs != nullptr};
  return choose_wgrad_config(shape, problem->config);
}

int moegemm_device_supported(void) {
  DeviceInfo dev;
  return require_sm90(&dev).ok() ? 1 : 0;
}

const char* moegemm_last_error(void) { return last_error.c_str(); }

const char* moegemm_status_string(moegemm_status_t status) {
  switch (status) {
    case MOEGEMM_STATUS_SUCCESS: return "MOEGEMM_STATUS_SUCCESS";
    case MOEGEMM_STATUS_INVALID_ARGUMENT: return "MOEGEMM_STATUS_INVALID_ARGUMENT";
    case MOEGEMM_STATUS_MISALIGNED: return "MOEGEMM_STATUS_MISALIGNED";
    case MOEGEMM_STATUS_WORKSPACE_TOO_SMALL: return "MOEGEMM_STATUS_WORKSPACE_TOO_SMALL";
    case MOEGEMM_STATUS_UNSUPPORTED_DEVICE: return "MOEGEMM_STATUS_UNSUPPORTED_DEVICE";
    case MOEGEMM_STATUS_CUDA_ERROR: return "MOEGEMM_STATUS_CUDA_ERROR";
    case MOEGEMM_STATUS_INTERNAL_ERROR: return "MOEGEMM_STATUS_INTERNAL_ERROR";
  }
  return "MOEGEMM_STATUS_UNKNOWN";
}

const char* moegemm_wgrad_config_name(moegemm_wgrad_config_t config) {
  switch (config) {
    case MOEGEMM_WGRAD_CONFIG_AUTO: return "auto";
    case MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1: return "pingpong_128x128x64_c2x1";
    case MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1: return "cooperative_256x128x64_c2x1";
    case MOEGEMM_WGRAD_CONFIG_COOPERATIVE_128x256x64_C2x1: return "cooperative_128x256x64_c2x1";
    case MOEGEMM_WGRAD_CONFIG_ONELAUNCH_128x128x64_C2x1: return "onelaunch_128x128x64_c2x1";
    default: return "unknown";
  }
}

}  // extern "C"
