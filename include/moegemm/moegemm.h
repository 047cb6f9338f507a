/*
 * moegemm — grouped GEMMs for Mixture-of-Experts training on NVIDIA Hopper (SM90).
 *
 * Stable C API. Every entry point returns a moegemm_status_t; on failure
 * moegemm_last_error() returns a message (thread-local) that names the
 * argument and the rule it broke, and nothing has been written to any output.
 *
 * Variable-K weight gradient ("wgrad", ragged K):
 *
 *   for every group (expert) i in [0, g):
 *       D_i[m, n]  (+)=  dY_i^T · X_i
 *   where X_i = rows [off_i, off_i + k_i) of X  (BF16, row-major [T, n])
 *         dY_i = the same rows of dY            (BF16, row-major [T, m])
 *         off_i = k_0 + ... + k_{i-1}
 *
 * Split sizes are given as g token counts k_i (int64), on the host or on the
 * device. Device split sizes are never read by the host: the call does no
 * host synchronisation and can be captured in a CUDA graph.
 *
 * Rules for split sizes:
 *   host:   every k_i >= 0 and sum(k_i) <= T, otherwise MOEGEMM_STATUS_INVALID_ARGUMENT.
 *   device: they cannot be checked without a sync, so they are clamped:
 *           k_i < 0 counts as 0; off_i is capped at T and k_i at T - off_i.
 *           Groups pushed past row T are therefore empty. Nothing is ever
 *           read or written out of bounds.
 *   Rows past sum(k_i) are ignored (padded token buffers are fine).
 *
 * Empty groups (k_i = 0) are written as zeros, or left untouched when
 * accumulating.
 */
#ifndef MOEGEMM_MOEGEMM_H_
#define MOEGEMM_MOEGEMM_H_

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOEGEMM_VERSION_MAJOR 0
#define MOEGEMM_VERSION_MINOR 1
#define MOEGEMM_VERSION_PATCH 0

/* Host-resident split sizes and output-pointer lists are passed to the GPU
 * inside the kernel's parameters (no copy, graph-safe); above this many
 * groups they must live on the device. */
#define MOEGEMM_MAX_HOST_GROUPS 1024

typedef enum moegemm_status {
  MOEGEMM_STATUS_SUCCESS = 0,
  MOEGEMM_STATUS_INVALID_ARGUMENT = 1,    /* null pointer, bad size, bad split sizes */
  MOEGEMM_STATUS_MISALIGNED = 2,          /* a pointer or a row is not 16-byte aligned */
  MOEGEMM_STATUS_WORKSPACE_TOO_SMALL = 3, /* see moegemm_wgrad_workspace_size() */
  MOEGEMM_STATUS_UNSUPPORTED_DEVICE = 4,  /* no SM90 (Hopper) device current */
  MOEGEMM_STATUS_CUDA_ERROR = 5,          /* a CUDA runtime call or launch failed */
  MOEGEMM_STATUS_INTERNAL_ERROR = 6
} moegemm_status_t;

typedef enum moegemm_dtype {
  MOEGEMM_DTYPE_FP32 = 0,
  MOEGEMM_DTYPE_BF16 = 1
} moegemm_dtype_t;

typedef enum moegemm_memory {
  MOEGEMM_MEMORY_HOST = 0,
  MOEGEMM_MEMORY_DEVICE = 1
} moegemm_memory_t;

/* Tile configuration of the wgrad kernel. AUTO picks one from the shape;
 * the others exist for benchmarking and tuning. */
typedef enum moegemm_wgrad_config {
  MOEGEMM_WGRAD_CONFIG_AUTO = 0,
  MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1 = 1,
  MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1 = 2,
  MOEGEMM_WGRAD_CONFIG_COOPERATIVE_128x256x64_C2x1 = 3,
  MOEGEMM_WGRAD_CONFIG_COUNT_ = 4
} moegemm_wgrad_config_t;

typedef struct moegemm_wgrad_problem {
  int num_groups;        /* g >= 1 */
  int64_t m;             /* rows of each D_i = columns of dY; multiple of 8 */
  int64_t n;             /* columns of each D_i = columns of X; multiple of 8 */
  int64_t total_tokens;  /* T: rows of X and of dY; >= 0 */

  const void* x;         /* BF16 [T, n] row-major, 16-byte aligned (may be NULL if T == 0) */
  const void* dy;        /* BF16 [T, m] row-major, 16-byte aligned (may be NULL if T == 0) */

  const int64_t* group_sizes;       /* g token counts k_i (a device array: 8-byte aligned) */
  moegemm_memory_t group_sizes_location;

  /* Output: exactly one of `out` and `out_ptrs` is non-NULL. */
  void* out;                        /* contiguous [g, m, n] of out_dtype */
  void* const* out_ptrs;            /* g pointers, each to a row-major [m, n] of out_dtype, 16-byte
                                       aligned. On the host they are checked; a device list cannot be:
                                       a NULL or misaligned entry there makes its group a no-op. */
  moegemm_memory_t out_ptrs_location;

  moegemm_dtype_t out_dtype;        /* MOEGEMM_DTYPE_FP32 (default, 0) or MOEGEMM_DTYPE_BF16 */
  int accumulate;                   /* nonzero: D_i += ...; zero: D_i = ... */
  moegemm_wgrad_config_t config;    /* MOEGEMM_WGRAD_CONFIG_AUTO (0) unless tuning */
} moegemm_wgrad_problem_t;

/* Returns a problem with every field zeroed/defaulted (FP32 out, overwrite,
 * host split sizes, AUTO config). */
moegemm_wgrad_problem_t moegemm_wgrad_problem_default(void);

/* Bytes of device workspace moegemm_wgrad() needs for this problem on the
 * current device. Depends only on num_groups and the device, so one
 * allocation serves every call with at most that many groups. */
moegemm_status_t moegemm_wgrad_workspace_size(const moegemm_wgrad_problem_t* problem,
                                              size_t* workspace_bytes);

/* Enqueues the weight-gradient computation on `stream`. No allocation and no
 * host synchronisation. `workspace` is device memory, 256-byte aligned, of at
 * least moegemm_wgrad_workspace_size() bytes; it must not be used by another
 * call until this one has finished on `stream`. */
moegemm_status_t moegemm_wgrad(const moegemm_wgrad_problem_t* problem, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream);

/* Which tile configuration AUTO picks for this problem (host-only; no GPU needed). */
moegemm_wgrad_config_t moegemm_wgrad_choose_config(const moegemm_wgrad_problem_t* problem);

/* Nonzero when the current CUDA device can run moegemm's SM90 kernels. */
int moegemm_device_supported(void);

/* Message of the last failed call on this thread ("" if none). */
const char* moegemm_last_error(void);

const char* moegemm_status_string(moegemm_status_t status);
const char* moegemm_wgrad_config_name(moegemm_wgrad_config_t config);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MOEGEMM_MOEGEMM_H_ */
