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
  MOEGEMM_DTYPE_BF16 = 1,
  MOEGEMM_DTYPE_FP16 = 2
} moegemm_dtype_t;

typedef enum moegemm_memory {
  MOEGEMM_MEMORY_HOST = 0,
  MOEGEMM_MEMORY_DEVICE = 1
} moegemm_memory_t;

/* Tile configuration of the wgrad kernel. AUTO picks one from the shape
 * (the one-launch kernel for at most 256 groups, except BF16 accumulation and
 * large outputs that are accumulated into or have many tokens per group; the
 * CUTLASS kernels otherwise); the others exist for benchmarking and tuning. */
typedef enum moegemm_wgrad_config {
  MOEGEMM_WGRAD_CONFIG_AUTO = 0,
  MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1 = 1,
  MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1 = 2,
  MOEGEMM_WGRAD_CONFIG_COOPERATIVE_128x256x64_C2x1 = 3,
  /* One launch, no setup kernel: each CTA derives the group offsets from the
   * split sizes itself (ping-pong-style 128x128x64 tiles, cluster 2x1). For
   * more than 256 groups, 2^31 or more tokens, or BF16 accumulation the
   * ping-pong kernel serves a request for it. */
  MOEGEMM_WGRAD_CONFIG_ONELAUNCH_128x128x64_C2x1 = 4,
  MOEGEMM_WGRAD_CONFIG_COUNT_ = 5
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

/* ===========================================================================
 * General grouped GEMM: the three GEMMs of an MoE expert layer
 * ===========================================================================
 *
 * Everything below is row-major. For every group i:
 *
 *     D_i[m_i, n_i]  (+)=  op_a(A_i) · op_b(B_i)          (then + bias_i, GELU)
 *
 *   op_a == MOEGEMM_OP_N: A_i is [m_i, k_i];  MOEGEMM_OP_T: A_i is [k_i, m_i]
 *   op_b == MOEGEMM_OP_N: B_i is [k_i, n_i];  MOEGEMM_OP_T: B_i is [n_i, k_i]
 *   (every matrix dense: leading dimension = its number of columns)
 *
 * The three GEMMs of an expert layer with weight W_i [out, in] (PyTorch's
 * nn.Linear layout), tokens X_i [t_i, in], output gradient dY_i [t_i, out]:
 *
 *   forward  Y_i  = X_i · W_i^T     A = X_i,  op_a = N; B = W_i, op_b = T   m_i = t_i, n = out, k = in
 *   dgrad    dX_i = dY_i · W_i      A = dY_i, op_a = N; B = W_i, op_b = N   m_i = t_i, n = in,  k = out
 *   wgrad    dW_i = dY_i^T · X_i    A = dY_i, op_a = T; B = X_i, op_b = N   m = out, n = in,    k_i = t_i
 *
 * (TransformerEngine names these layouts in cuBLAS's column-major terms,
 * "TN", "NN" and "NT": the same strings with A and B swapped.)
 *
 * Which implementation serves a call ("path") is decided on the host, in
 * this order (moegemm_gemm_list_path() tells which one and why):
 *   1. MOEGEMM_PATH_UNIFORM_K: SM90 device, MOEGEMM_USE_CUTLASS not 0, no bias
 *      or GELU, A and B both BF16 or both FP16, D of that type or FP32,
 *      op_a == N, the same k for every group with k >= 1 and k % 8 == 0, every
 *      n_i % 8 == 0, 16-byte aligned pointers. One kernel launch, ragged m_i.
 *      Large groups, when the group sizes are on the host: groups with
 *      m_i * n_i >= 6 Mi elements (>= 1 Mi when k >= 4096 and n_i >= 1024), where
 *      cuBLAS's own GEMM kernels measured faster than the grouped kernel, run
 *      as cuBLASLt matmuls on side streams beside it (the path's reason then
 *      says so; it is "" otherwise); the workspace then includes the cuBLAS
 *      path's (for ragged M whenever total_rows could hold such a group).
 *      Except with k >= 4096, n_i % 512 == 0, at least 16 groups and at
 *      least 6 waves of 128x256 tiles on the GPU's SMs over the whole call,
 *      where the grouped kernel measured faster on every group and keeps them
 *      (the reason says so).
 *   2. MOEGEMM_PATH_VARIABLE_K: SM90, MOEGEMM_USE_CUTLASS not 0, no bias or
 *      GELU, BF16 A and B, FP32 or BF16 D, the wgrad layout (op_a = T,
 *      op_b = N) with the same m and n for every group (multiples of 8), and
 *      the A_i (and B_i) consecutive slices of one token buffer
 *      (A_{i+1} == A_i + k_i * m elements): moegemm_wgrad() over that buffer.
 *   3. MOEGEMM_PATH_CUBLAS: everything else (any GPU, any layout, FP32/BF16/
 *      FP16, bias, GELU, k_i = 0, m_i = 0): one cuBLASLt matmul per group over
 *      several streams that join the caller's stream again with events.
 *
 * Environment (read once per process):
 *   MOEGEMM_USE_CUTLASS=0       always take the cuBLAS path (for comparison).
 *   MOEGEMM_WARN_FALLBACK=1     print one line on stderr per distinct reason a
 *                               call falls back to cuBLAS, naming the rule.
 *   MOEGEMM_NUM_STREAMS=N       streams of the cuBLAS path (default 4, 1..16).
 *   MOEGEMM_UNIFORM_K_TILE=auto|cutlass|onelaunch|onelaunch-1x4|pingpong|pingpong-1x4|
 *                          pingpong-64x256|cooperative|cooperative-nocluster
 *                               kernel / tile of the uniform-K path (tuning; default
 *                               auto: for the ragged form, overwriting, contiguous B,
 *                               at most 256 groups, no zero_unused_rows with device
 *                               sizes, moegemm's one-launch kernel (no setup kernel).
 *                               With n % 512 == 0: when k <= 4096 (cluster 1x4, or
 *                               1x2 where that needs fewer rounds of its resident
 *                               clusters and k <= 1024 or the groups average at
 *                               most 256 rows), or with longer k when the 128x128
 *                               tiles fit in one wave on the GPU's SMs or the 1x4
 *                               rounds are fewer than twice the waves of 128x256
 *                               tiles. Otherwise (cluster 1x2) when k <= 1024, or
 *                               the 128x128 tiles fit in one wave, or k <= 4096 and
 *                               they fit in 9;
 *                               otherwise ("cutlass" starts here) a CUTLASS kernel:
 *                               n % 512 != 0: ping-pong 128x128, cluster 1x2;
 *                               else by waves of tiles on the GPU's SMs: with
 *                               op_b T, ping-pong 64x256 without a cluster when
 *                               the 128x128 tiles need more than one wave and
 *                               the 64x256 tiles surely fit in one (few rows per
 *                               group; with device sizes counted as if every
 *                               group had a part-filled tile); with host
 *                               group sizes, cooperative 128x256 without a cluster
 *                               when the 128x128 tiles need more than one wave and
 *                               the 128x256 tiles fit in one; cooperative 128x256
 *                               (cluster 1x2) from 6 waves of its tiles, or when
 *                               its last wave is more than half full; else
 *                               ping-pong 128x128 with a 1x4 cluster).
 *   MOEGEMM_LARGE_GROUPS_CUBLAS=0
 *                               keep the large groups of path 1 in the grouped
 *                               kernel (default 1: cuBLAS beside it, see above).
 */

typedef enum moegemm_op {
  MOEGEMM_OP_N = 0,  /* the matrix as stored */
  MOEGEMM_OP_T = 1   /* its transpose */
} moegemm_op_t;

typedef enum moegemm_path {
  MOEGEMM_PATH_UNIFORM_K = 0,   /* SM90 grouped kernel, ragged m, one k */
  MOEGEMM_PATH_VARIABLE_K = 1,  /* SM90 wgrad kernel, ragged k (moegemm_wgrad) */
  MOEGEMM_PATH_CUBLAS = 2       /* multi-stream cuBLASLt */
} moegemm_path_t;

/* List form: one entry per group in host arrays (of device pointers). */
typedef struct moegemm_gemm_list {
  int num_groups;                 /* g >= 1 */
  moegemm_op_t op_a, op_b;
  moegemm_dtype_t ab_dtype;       /* A and B: BF16, FP16 or FP32 */
  moegemm_dtype_t d_dtype;        /* D: FP32, or ab_dtype */
  const int64_t* m;               /* g sizes each (host arrays); any may be 0 */
  const int64_t* n;
  const int64_t* k;
  const void* const* a;           /* g device pointers (may be NULL where that matrix is empty) */
  const void* const* b;
  void* const* d;
  /* Optional epilogue (NULL: none). bias: g device pointers to n_i values of
   * d_dtype (16-byte aligned), added to every row. gelu_input: g device pointers to [m_i, n_i]
   * of d_dtype (16-byte aligned, n_i % 8 == 0: cuBLASLt's auxiliary output);
   * when given, it receives the pre-activation op_a(A)op_b(B) + bias and D
   * receives GELU(pre-activation) (tanh approximation). Neither may be
   * combined with accumulate. Pointers must be aligned to their element size
   * (MOEGEMM_STATUS_MISALIGNED otherwise). */
  const void* const* bias;
  void* const* gelu_input;
  int accumulate;                 /* nonzero: D_i += ... (beta = 1) */
  int num_streams;                /* cuBLAS path: 0 = MOEGEMM_NUM_STREAMS or 4 */
} moegemm_gemm_list_t;

moegemm_gemm_list_t moegemm_gemm_list_default(void);

/* Which path moegemm_gemm_list() takes for this call on the current device,
 * and why (a static, thread-local string naming the rule that sent it away
 * from the faster paths; "" for the uniform-K path). Validates the problem
 * first: an invalid problem returns its error status. */
moegemm_status_t moegemm_gemm_list_path(const moegemm_gemm_list_t* problem, moegemm_path_t* path,
                                        const char** reason);

/* Device workspace bytes for this problem (whatever its path); 256-byte aligned. */
moegemm_status_t moegemm_gemm_list_workspace_size(const moegemm_gemm_list_t* problem,
                                                  size_t* workspace_bytes);

/* Enqueues all g GEMMs on `stream`. No allocation; no host synchronisation.
 * Groups with m_i = 0 or n_i = 0 are skipped; k_i = 0 gives D_i = 0 (+ bias,
 * GELU), or leaves D_i untouched when accumulating. */
moegemm_status_t moegemm_gemm_list(const moegemm_gemm_list_t* problem, void* workspace,
                                   size_t workspace_bytes, cudaStream_t stream);

/* Ragged-M form for forward and dgrad: one token buffer, per-group weights.
 *
 *   for every group i:  D[rows_i, :]  (+)=  A[rows_i, :] · op_b(B_i)
 *   rows_i = [off_i, off_i + m_i),  off_i = m_0 + ... + m_{i-1}
 *   A: [T, k] row-major; D: [T, n] row-major
 *   B_i: op_b == T: [n, k] (forward, B_i = W_i); op_b == N: [k, n] (dgrad)
 *   B: one contiguous [g, ...] buffer (b) or a list of g pointers (b_ptrs).
 *
 * Group sizes m_i on the host or the device, with the rules and clamping of
 * moegemm_wgrad's split sizes. Rows of D past sum(m_i) (after clamping) are
 * not touched, unless zero_unused_rows = 1: then they are written as zeros on
 * every path, with device sizes too without a host synchronisation on the
 * uniform-K path (so a caller need not clear all of D first to get zeros
 * there; with sum(m_i) = T nothing extra is written).
 * The uniform-K kernel serves it when the rules of path 1 hold (k % 8 == 0,
 * n % 8 == 0, ...); otherwise the cuBLAS path does, which must know the sizes
 * on the host: with device sizes it copies them and synchronises `stream`
 * (and fails with MOEGEMM_STATUS_INVALID_ARGUMENT while the stream is being
 * captured into a CUDA graph). */
typedef struct moegemm_ragged_m_problem {
  int num_groups;                 /* g >= 1 */
  int64_t total_rows;             /* T >= 0 */
  int64_t n, k;                   /* >= 1 */
  moegemm_dtype_t ab_dtype;       /* BF16 or FP16 (FP32 on the cuBLAS path) */
  moegemm_dtype_t d_dtype;        /* FP32 or ab_dtype */
  const void* a;                  /* [T, k] */
  moegemm_op_t op_b;
  const void* b;                  /* contiguous [g, n, k] (op_b T) or [g, k, n] (op_b N) ... */
  const void* const* b_ptrs;      /* ... or g pointers (exactly one of b, b_ptrs). A host list is
                                     checked; a device list cannot be: on the uniform-K path a NULL or
                                     misaligned entry there makes its group a no-op (rows untouched);
                                     the cuBLAS path, which copies the list, returns an error. */
  moegemm_memory_t b_ptrs_location;
  void* d;                        /* [T, n] */
  const int64_t* group_sizes;     /* g row counts m_i */
  moegemm_memory_t group_sizes_location;
  int accumulate;
  int zero_unused_rows;           /* 1: rows of D past sum(m_i) written as zeros (needs accumulate = 0) */
} moegemm_ragged_m_problem_t;

moegemm_ragged_m_problem_t moegemm_ragged_m_problem_default(void);
moegemm_status_t moegemm_ragged_m_path(const moegemm_ragged_m_problem_t* problem, moegemm_path_t* path,
                                       const char** reason);
moegemm_status_t moegemm_ragged_m_workspace_size(const moegemm_ragged_m_problem_t* problem,
                                                 size_t* workspace_bytes);
moegemm_status_t moegemm_ragged_m(const moegemm_ragged_m_problem_t* problem, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream);

const char* moegemm_path_name(moegemm_path_t path);

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
