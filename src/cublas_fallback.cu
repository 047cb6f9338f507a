// Multi-stream cuBLASLt implementation of moegemm_gemm_list (path 3 of
// moegemm.h). See cublas_fallback.h for the interface.
//
// ---------------------------------------------------------------------------
// Row-major -> column-major
//
// moegemm is row-major, cuBLAS column-major. A row-major [R, C] matrix with
// leading dimension C is, read column-major, the [C, R] matrix with leading
// dimension C: its transpose. So row-major
//     D[m, n] = op_a(A) · op_b(B)
// is column-major
//     D^T[n, m] = op_b(B)^T · op_a(A)^T
// and cuBLASLt is called with
//     cuBLAS "A" = the stored B_i, transa = op_b   (op(cuBLAS A) is [n, k])
//     cuBLAS "B" = the stored A_i, transb = op_a   (op(cuBLAS B) is [k, m])
//     C = D: rows n, cols m, ld n                  (cuBLAS m = n_i, n = m_i, k = k_i)
// A cuBLASLt layout describes the matrix as stored (before its op): the
// stored row-major [R, C] becomes (rows C, cols R, ld C):
//     B_i: op_b N: stored [k, n] -> (n, k, ld n)   op_b T: stored [n, k] -> (k, n, ld k)
//     A_i: op_a N: stored [m, k] -> (k, m, ld k)   op_a T: stored [k, m] -> (m, k, ld m)
// Check for op_b = T: the stored [n, k] read column-major is B^T [k, n]
// (rows k); transa = T turns it into B [n, k] = op_b(B)^T. Right.
//
// Bias: cuBLASLt's BIAS epilogue adds a vector whose length is the number of
// rows of its (column-major) D, broadcast over the columns:
//     D^T[j, i] += bias[j],  j < n_i (rows of D^T), every column i < m_i,
// which is row-major D[i, j] += bias[j]: n_i values added to every row, as
// moegemm.h specifies. The GELU "aux" matrix (pre-activation) has D's layout:
// rows n_i, ld n_i, i.e. the row-major [m_i, n_i] gelu_input.
//
// Types: A and B of ab_dtype, C = D of d_dtype, compute CUBLAS_COMPUTE_32F
// (for FP32 inputs that is true FP32, not TF32), scale type FP32, alpha = 1,
// beta = 1 when accumulating (C = D), else 0. Bias and aux data types are
// left unset: cuBLASLt then takes D's type, which is what moegemm.h asks for
// (bias and gelu_input are of d_dtype).
//
// ---------------------------------------------------------------------------
// cuBLASLt restrictions and how they are handled
//
//  * Heuristics assume 256-byte aligned A/B/C/D unless told otherwise; an
//    algorithm chosen that way fails on less aligned pointers (slices of a
//    token buffer). The actual alignment of every pointer (up to 256 bytes)
//    is given through CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES and
//    is part of the plan-cache key.
//  * The bias and aux pointers have no such preference: cuBLASLt documents
//    that the heuristic reads their alignment from the descriptor's pointer
//    values (so the real pointers are set before the query and their
//    alignment is in the key), but this has been reported not to hold
//    everywhere (pytorch/pytorch PR 194497: a bias under 16-byte alignment
//    faulted with "misaligned address", a sticky error). So the fused
//    BIAS / GELU_AUX(_BIAS) epilogues are only tried with a 16-byte aligned
//    bias and aux; otherwise the unfused fallback below is planned directly.
//  * GELU aux leading dimension must be a multiple of 8 (and >= rows): here
//    ld = n_i, so the fused GELU_AUX(_BIAS) epilogue is only tried when
//    n_i % 8 == 0.
//  * Any epilogue the heuristic rejects (no algorithm for this dtype combo,
//    alignment, aux ld, ...) falls back step by step, never to an error:
//       GELU+bias: GELU_AUX_BIAS -> BIAS into gelu_input + GELU kernel
//                  -> plain GEMM into gelu_input + bias/GELU kernel
//       GELU:      GELU_AUX      -> plain GEMM into gelu_input + GELU kernel
//       bias:      BIAS          -> plain GEMM into D + bias kernel
//    The fallback kernel (pointwise_epilogue below) reads the stored
//    pre-activation, so with BF16/FP16 D its GELU sees the rounded value
//    (the fused epilogue sees the FP32 accumulator): differences of one
//    rounding step.
//  * Only when no algorithm exists for the plain GEMM either does the call
//    fail, with MOEGEMM_STATUS_CUDA_ERROR naming the group and the status.
//  * cuBLASLt's GELU is the tanh approximation; so is the fallback kernel.
//
// k_i == 0 groups never reach cuBLAS: D_i = 0 by cudaMemsetAsync, or, with a
// bias or GELU, by the pointwise kernel (D = GELU(bias or 0), gelu_input =
// bias or 0). When accumulating they are left untouched (bias and GELU cannot
// be combined with accumulate). m_i == 0 or n_i == 0 groups are skipped.
//
// The pointwise kernel is compiled with the project's flags (sm_90a only):
// on another GPU its launch fails with cudaErrorNoKernelImageForDevice, which
// is reported as such; plain GEMMs with k_i >= 1 need no kernel of ours.
//
// ---------------------------------------------------------------------------
// Streams, caching, threads
//
//  * Stream 0 is the caller's stream; streams 1..S-1 are side streams
//    (cudaStreamNonBlocking). Non-empty groups go round-robin over the S'
//    = min(S, #work items) streams. With S' > 1 an event recorded on the
//    caller's stream is waited for by the side streams (fork) and the caller's
//    stream waits for one event per side stream (join). Capturable: the side
//    streams join the capture through the fork event and rejoin it before
//    the call returns, on every path, error paths included.
//  * One-time creations and plan building run with this thread's capture
//    mode exchanged to relaxed (cudaThreadExchangeStreamCaptureMode), so a
//    thread's first call may come inside a capture; a warm-up call outside
//    is still advisable (cuBLASLt loads its kernels lazily).
//  * Side streams and events are per device *and per thread*: a side stream
//    forked into a graph capture stays in capture mode until the caller ends
//    the capture, so another thread must not enqueue on it meanwhile. A
//    thread's set goes back to a per-device pool when the thread exits (no
//    CUDA call at thread exit) and is reused by the next thread.
//  * The cuBLASLt handle is one per device, shared by all threads (cuBLASLt
//    keeps no per-call state in it; the stream is a cublasLtMatmul argument).
//  * Plans (layouts, matmul descriptor, algorithm, chosen epilogue) are
//    cached per device and per key (shape, dtypes, ops, epilogue request,
//    pointer alignments, workspace bytes) in a mutex-protected map, so a
//    repeated shape costs a lookup, no heuristic query. The map is cleared
//    when it exceeds kMaxCachedPlans (ragged m_i make many keys); plans in use
//    are kept alive by shared_ptr.
//  * Descriptors of plans without pointer attributes (plain GEMM) are shared
//    read-only. Plans whose epilogue carries pointers (bias, aux) get a fresh
//    descriptor per group and call, initialised in place on the stack
//    (cublasLtMatmulDescInit, no allocation), so concurrent threads never
//    write to a shared descriptor.
//  * Everything is planned (host only) before anything is enqueued: a
//    problem no algorithm can run fails without having written anything.
//  * Handles, pools and plans are never destroyed (process lifetime): no
//    CUDA or cuBLAS call runs during static destruction.
#include "cublas_fallback.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace moegemm::detail {
namespace {

constexpr size_t kWorkspaceAlignment = 256;
constexpr size_t kMaxCachedPlans = 4096;
constexpr int kMaxAlignLog2 = 8;  // 256 bytes: cuBLASLt's default (and largest) alignment assumption

// ---------------------------------------------------------------------------
// Errors

std::string group_suffix(int group) { return group >= 0 ? " for group " + std::to_string(group) : std::string(); }

Check cuda_failure(const char* call, int group, cudaError_t err) {
  cudaGetLastError();  // leave no (non-sticky) error behind for the caller's next check
  std::string msg = std::string(call) + " failed" + group_suffix(group) + ": " + cudaGetErrorName(err) + " (" +
                    cudaGetErrorString(err) + ")";
  if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction)
    msg += "; moegemm's own kernels are built for SM90 only (the epilogue of a bias/GELU or k = 0 group needs one)";
  return Check{MOEGEMM_STATUS_CUDA_ERROR, msg};
}

Check cublas_failure(const char* call, int group, cublasStatus_t st) {
  return Check{MOEGEMM_STATUS_CUDA_ERROR,
               std::string(call) + " failed" + group_suffix(group) + ": " + cublasLtGetStatusName(st)};
}

// ---------------------------------------------------------------------------
// Types

cudaDataType_t cuda_type(moegemm_dtype_t t) {
  switch (t) {
    case MOEGEMM_DTYPE_FP32: return CUDA_R_32F;
    case MOEGEMM_DTYPE_BF16: return CUDA_R_16BF;
    case MOEGEMM_DTYPE_FP16: return CUDA_R_16F;
  }
  return CUDA_R_32F;
}

size_t dtype_bytes(moegemm_dtype_t t) { return t == MOEGEMM_DTYPE_FP32 ? 4 : 2; }

bool known_dtype(moegemm_dtype_t t) {
  return t == MOEGEMM_DTYPE_FP32 || t == MOEGEMM_DTYPE_BF16 || t == MOEGEMM_DTYPE_FP16;
}

// log2 of the largest power of two (capped at 256) dividing the address.
uint8_t align_log2(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a == 0) return kMaxAlignLog2;
  uint8_t l = 0;
  while (l < kMaxAlignLog2 && (a & (uintptr_t{1} << l)) == 0) ++l;
  return l;
}

// While alive, this thread's stream-capture mode is "relaxed": the one-time
// creations (cuBLASLt handle, streams, events, heuristic queries) then also
// work when the first call of a thread comes inside a graph capture in
// global or thread-local mode, which forbids "potentially unsafe" calls.
struct RelaxedCaptureMode {
  cudaStreamCaptureMode previous = cudaStreamCaptureModeRelaxed;
  bool exchanged = false;
  RelaxedCaptureMode() {
    exchanged = cudaThreadExchangeStreamCaptureMode(&previous) == cudaSuccess;
    if (!exchanged) cudaGetLastError();
  }
  ~RelaxedCaptureMode() {
    if (exchanged) cudaThreadExchangeStreamCaptureMode(&previous);
  }
  RelaxedCaptureMode(const RelaxedCaptureMode&) = delete;
  RelaxedCaptureMode& operator=(const RelaxedCaptureMode&) = delete;
};

// ---------------------------------------------------------------------------
// Pointwise epilogue kernel (k = 0 groups, and epilogues cuBLASLt rejected)
//
//   x = (src ? src[r, c] : 0) + (bias ? bias[c] : 0)       (in FP32)
//   gelu:  pre[r, c] = x,  out[r, c] = GELU_tanh(x)
//   else:  out[r, c] = x
// src may alias pre or out (each element is read before it is written, by the
// same thread).

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float gelu_tanh(float x) {
  const float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

template <typename T>
__global__ void pointwise_epilogue(const T* src, const T* bias, T* pre, T* out, int64_t rows, int64_t cols,
                                   bool gelu) {
  const int64_t col_step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t row = r * cols;
    for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += col_step) {
      float x = src != nullptr ? to_float(src[row + c]) : 0.0f;
      if (bias != nullptr) x += to_float(bias[c]);
      if (gelu) {
        if (pre != nullptr) pre[row + c] = from_float<T>(x);
        out[row + c] = from_float<T>(gelu_tanh(x));
      } else {
        out[row + c] = from_float<T>(x);
      }
    }
  }
}

template <typename T>
cudaError_t launch_pointwise_t(const void* src, const void* bias, void* pre, void* out, int64_t rows, int64_t cols,
                               bool gelu, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t col_blocks = (cols + kThreads - 1) / kThreads;
  const unsigned gx = static_cast<unsigned>(col_blocks < 64 ? col_blocks : 64);
  int64_t gy = 8192 / gx;  // about 8k blocks at most; each loops over its rows
  if (gy > rows) gy = rows;
  if (gy > 65535) gy = 65535;
  if (gy < 1) gy = 1;
  const T* s = static_cast<const T*>(src);
  const T* b = static_cast<const T*>(bias);
  T* p = static_cast<T*>(pre);
  T* o = static_cast<T*>(out);
  void* args[] = {&s, &b, &p, &o, &rows, &cols, &gelu};
  return cudaLaunchKernel(pointwise_epilogue<T>, dim3(gx, static_cast<unsigned>(gy)), dim3(kThreads), args, 0,
                          stream);
}

// Loads the pointwise kernels on the current device now (CUDA loads modules
// lazily, on first launch, which could otherwise happen inside a capture).
// A failure (no kernel image on a non-SM90 GPU) is left for the launch to report.
void preload_pointwise_kernels() {
  cudaFuncAttributes attr;
  if (cudaFuncGetAttributes(&attr, pointwise_epilogue<float>) != cudaSuccess ||
      cudaFuncGetAttributes(&attr, pointwise_epilogue<__nv_bfloat16>) != cudaSuccess ||
      cudaFuncGetAttributes(&attr, pointwise_epilogue<__half>) != cudaSuccess)
    cudaGetLastError();
}

cudaError_t launch_pointwise(moegemm_dtype_t t, const void* src, const void* bias, void* pre, void* out, int64_t rows,
                             int64_t cols, bool gelu, cudaStream_t stream) {
  switch (t) {
    case MOEGEMM_DTYPE_FP32: return launch_pointwise_t<float>(src, bias, pre, out, rows, cols, gelu, stream);
    case MOEGEMM_DTYPE_BF16: return launch_pointwise_t<__nv_bfloat16>(src, bias, pre, out, rows, cols, gelu, stream);
    case MOEGEMM_DTYPE_FP16: return launch_pointwise_t<__half>(src, bias, pre, out, rows, cols, gelu, stream);
  }
  return cudaErrorInvalidValue;
}

// ---------------------------------------------------------------------------
// Plans

struct PlanKey {
  int64_t m = 0, n = 0, k = 0;
  uint64_t workspace = 0;
  uint8_t ab = 0, d = 0, op_a = 0, op_b = 0;
  uint8_t bias = 0, gelu = 0;  // what the caller asked for
  uint8_t align_a = 0, align_b = 0, align_d = 0, align_bias = 0, align_aux = 0;

  bool operator==(const PlanKey& o) const {
    return m == o.m && n == o.n && k == o.k && workspace == o.workspace && ab == o.ab && d == o.d &&
           op_a == o.op_a && op_b == o.op_b && bias == o.bias && gelu == o.gelu && align_a == o.align_a &&
           align_b == o.align_b && align_d == o.align_d && align_bias == o.align_bias && align_aux == o.align_aux;
  }
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    auto mix = [&h](uint64_t v) {
      h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      h *= 0xff51afd7ed558ccdull;
    };
    mix(static_cast<uint64_t>(k.m));
    mix(static_cast<uint64_t>(k.n));
    mix(static_cast<uint64_t>(k.k));
    mix(k.workspace);
    mix(uint64_t{k.ab} | uint64_t{k.d} << 8 | uint64_t{k.op_a} << 16 | uint64_t{k.op_b} << 24 |
        uint64_t{k.bias} << 32 | uint64_t{k.gelu} << 40);
    mix(uint64_t{k.align_a} | uint64_t{k.align_b} << 8 | uint64_t{k.align_d} << 16 | uint64_t{k.align_bias} << 24 |
        uint64_t{k.align_aux} << 32);
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

// How one group's GEMM runs: which epilogue cuBLASLt does, where it writes,
// and what the pointwise kernel adds afterwards.
struct Plan {
  cublasLtMatrixLayout_t layout_b = nullptr;    // cuBLAS "A": the stored B_i
  cublasLtMatrixLayout_t layout_a = nullptr;    // cuBLAS "B": the stored A_i
  cublasLtMatrixLayout_t layout_out = nullptr;  // C and D (and the aux matrix)
  cublasLtMatmulDesc_t desc = nullptr;          // shared read-only unless has_pointers
  cublasLtMatmulAlgo_t algo{};
  cublasOperation_t trans_b = CUBLAS_OP_N;      // transa of the call (op_b)
  cublasOperation_t trans_a = CUBLAS_OP_N;      // transb of the call (op_a)
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  bool has_pointers = false;  // the epilogue carries bias/aux pointers: per-call descriptor
  bool out_is_aux = false;    // cuBLASLt writes the pre-activation into gelu_input
  bool kernel_bias = false;   // the pointwise kernel adds the bias
  bool kernel_gelu = false;   // the pointwise kernel applies GELU (gelu_input -> D)

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
    if (layout_out != nullptr) cublasLtMatrixLayoutDestroy(layout_out);
    if (layout_a != nullptr) cublasLtMatrixLayoutDestroy(layout_a);
    if (layout_b != nullptr) cublasLtMatrixLayoutDestroy(layout_b);
  }
};

bool epilogue_has_bias(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}
bool epilogue_has_aux(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}

template <typename V>
cublasStatus_t set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const V& value) {
  return cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value));
}

// Every attribute of a plan's descriptor; the pointers are the call's (or,
// for the heuristic query, the first caller's: only their alignment matters).
cublasStatus_t configure_desc(cublasLtMatmulDesc_t desc, cublasOperation_t trans_b, cublasOperation_t trans_a,
                              cublasLtEpilogue_t epilogue, const void* bias, void* aux, int64_t aux_ld) {
  cublasStatus_t st = set_desc(desc, CUBLASLT_MATMUL_DESC_TRANSA, static_cast<int32_t>(trans_b));
  if (st == CUBLAS_STATUS_SUCCESS) st = set_desc(desc, CUBLASLT_MATMUL_DESC_TRANSB, static_cast<int32_t>(trans_a));
  if (epilogue == CUBLASLT_EPILOGUE_DEFAULT) return st;
  if (st == CUBLAS_STATUS_SUCCESS) st = set_desc(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, static_cast<uint32_t>(epilogue));
  if (st == CUBLAS_STATUS_SUCCESS && epilogue_has_bias(epilogue))
    st = set_desc(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  if (st == CUBLAS_STATUS_SUCCESS && epilogue_has_aux(epilogue)) {
    st = set_desc(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux);
    if (st == CUBLAS_STATUS_SUCCESS) st = set_desc(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, aux_ld);
  }
  return st;
}

struct Candidate {
  cublasLtEpilogue_t epilogue;
  bool out_is_aux, kernel_bias, kernel_gelu;
};

// The epilogue requests to try, best first (see the file comment).
int candidates(const PlanKey& key, Candidate* out) {
  const bool bias = key.bias != 0, gelu = key.gelu != 0;
  const bool aux_ld_ok = key.n % 8 == 0;          // GELU aux ld (= n) must be a multiple of 8
  const bool bias_ok = key.align_bias >= 4;       // fused bias only from a 16-byte aligned vector
  const bool aux_ok = aux_ld_ok && key.align_aux >= 4;  // fused aux only into a 16-byte aligned matrix
  int c = 0;
  if (gelu && bias) {
    if (aux_ok && bias_ok) out[c++] = {CUBLASLT_EPILOGUE_GELU_AUX_BIAS, false, false, false};
    if (bias_ok) out[c++] = {CUBLASLT_EPILOGUE_BIAS, true, false, true};
    out[c++] = {CUBLASLT_EPILOGUE_DEFAULT, true, true, true};
  } else if (gelu) {
    if (aux_ok) out[c++] = {CUBLASLT_EPILOGUE_GELU_AUX, false, false, false};
    out[c++] = {CUBLASLT_EPILOGUE_DEFAULT, true, false, true};
  } else if (bias) {
    if (bias_ok) out[c++] = {CUBLASLT_EPILOGUE_BIAS, false, false, false};
    out[c++] = {CUBLASLT_EPILOGUE_DEFAULT, false, true, false};
  } else {
    out[c++] = {CUBLASLT_EPILOGUE_DEFAULT, false, false, false};
  }
  return c;
}

struct PreferenceGuard {
  cublasLtMatmulPreference_t pref = nullptr;
  ~PreferenceGuard() {
    if (pref != nullptr) cublasLtMatmulPreferenceDestroy(pref);
  }
};

// Builds the plan of one key: layouts, then the first epilogue candidate the
// heuristic has an algorithm for. bias/aux: this group's pointers.
Check build_plan(cublasLtHandle_t handle, const PlanKey& key, const void* bias, void* aux, int group,
                 std::shared_ptr<Plan>* out) {
  auto plan = std::make_shared<Plan>();
  const cudaDataType_t ab = cuda_type(static_cast<moegemm_dtype_t>(key.ab));
  const cudaDataType_t d = cuda_type(static_cast<moegemm_dtype_t>(key.d));
  const uint64_t m = static_cast<uint64_t>(key.m), n = static_cast<uint64_t>(key.n), k = static_cast<uint64_t>(key.k);
  const bool b_t = key.op_b == MOEGEMM_OP_T, a_t = key.op_a == MOEGEMM_OP_T;
  plan->trans_b = b_t ? CUBLAS_OP_T : CUBLAS_OP_N;
  plan->trans_a = a_t ? CUBLAS_OP_T : CUBLAS_OP_N;

  // Stored row-major [R, C] -> column-major (rows C, cols R, ld C).
  cublasStatus_t st;
  st = b_t ? cublasLtMatrixLayoutCreate(&plan->layout_b, ab, k, n, static_cast<int64_t>(k))   // B: [n, k]
           : cublasLtMatrixLayoutCreate(&plan->layout_b, ab, n, k, static_cast<int64_t>(n));  // B: [k, n]
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatrixLayoutCreate(B)", group, st);
  st = a_t ? cublasLtMatrixLayoutCreate(&plan->layout_a, ab, m, k, static_cast<int64_t>(m))   // A: [k, m]
           : cublasLtMatrixLayoutCreate(&plan->layout_a, ab, k, m, static_cast<int64_t>(k));  // A: [m, k]
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatrixLayoutCreate(A)", group, st);
  st = cublasLtMatrixLayoutCreate(&plan->layout_out, d, n, m, static_cast<int64_t>(n));  // D: [m, n]
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatrixLayoutCreate(D)", group, st);

  Candidate cands[3];
  const int num_cands = candidates(key, cands);
  cublasStatus_t last_failure = CUBLAS_STATUS_NOT_SUPPORTED;
  for (int c = 0; c < num_cands; ++c) {
    const Candidate& cand = cands[c];
    cublasLtMatmulDesc_t desc = nullptr;
    st = cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulDescCreate", group, st);
    st = configure_desc(desc, plan->trans_b, plan->trans_a, cand.epilogue, bias, aux, key.n);
    if (st != CUBLAS_STATUS_SUCCESS) {
      cublasLtMatmulDescDestroy(desc);
      return cublas_failure("cublasLtMatmulDescSetAttribute", group, st);
    }
    PreferenceGuard pref;
    st = cublasLtMatmulPreferenceCreate(&pref.pref);
    if (st != CUBLAS_STATUS_SUCCESS) {
      cublasLtMatmulDescDestroy(desc);
      return cublas_failure("cublasLtMatmulPreferenceCreate", group, st);
    }
    const uint64_t ws = key.workspace;
    // cuBLAS's A is our B, its B our A; C = D is D, or gelu_input when the
    // pre-activation goes there.
    const uint32_t align_first = 1u << key.align_b;
    const uint32_t align_second = 1u << key.align_a;
    const uint32_t align_out = 1u << (cand.out_is_aux ? key.align_aux : key.align_d);
    st = cublasLtMatmulPreferenceSetAttribute(pref.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_first,
                                                sizeof(align_first));
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_second,
                                                sizeof(align_second));
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_out,
                                                sizeof(align_out));
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_out,
                                                sizeof(align_out));
    if (st != CUBLAS_STATUS_SUCCESS) {
      cublasLtMatmulDescDestroy(desc);
      return cublas_failure("cublasLtMatmulPreferenceSetAttribute", group, st);
    }
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    st = cublasLtMatmulAlgoGetHeuristic(handle, desc, plan->layout_b, plan->layout_a, plan->layout_out,
                                        plan->layout_out, pref.pref, 1, &result, &returned);
    if (st == CUBLAS_STATUS_SUCCESS && (returned < 1 || result.state != CUBLAS_STATUS_SUCCESS))
      st = returned < 1 ? CUBLAS_STATUS_NOT_SUPPORTED : result.state;
    if (st != CUBLAS_STATUS_SUCCESS) {
      // This epilogue (or this dtype/alignment combination) is not supported:
      // try the next, less fused candidate.
      cublasLtMatmulDescDestroy(desc);
      last_failure = st;  // the last candidate is the plain GEMM: its failure is the one reported
      continue;
    }
    plan->desc = desc;
    plan->algo = result.algo;
    plan->epilogue = cand.epilogue;
    plan->has_pointers = cand.epilogue != CUBLASLT_EPILOGUE_DEFAULT;
    plan->out_is_aux = cand.out_is_aux;
    plan->kernel_bias = cand.kernel_bias;
    plan->kernel_gelu = cand.kernel_gelu;
    *out = std::move(plan);
    return Check{};
  }
  return Check{MOEGEMM_STATUS_CUDA_ERROR,
               "cublasLtMatmulAlgoGetHeuristic failed for group " + std::to_string(group) + ": " +
                   cublasLtGetStatusName(last_failure) + " (no cuBLASLt algorithm for m=" +
                   std::to_string(key.m) + " n=" + std::to_string(key.n) + " k=" + std::to_string(key.k) +
                   " op_a=" + (key.op_a == MOEGEMM_OP_T ? "T" : "N") + " op_b=" +
                   (key.op_b == MOEGEMM_OP_T ? "T" : "N") + " with these dtypes and pointer alignments, " +
                   std::to_string(key.workspace) + " workspace bytes per stream)"};
}

// ---------------------------------------------------------------------------
// Per-device and per-thread state

struct DeviceState {
  int device = -1;
  cublasLtHandle_t handle = nullptr;
  std::mutex plans_mu;
  std::unordered_map<PlanKey, std::shared_ptr<const Plan>, PlanKeyHash> plans;
};

// A thread's side streams and events on one device.
struct StreamSet {
  int device = -1;
  cudaEvent_t fork = nullptr;
  std::vector<cudaStream_t> side;  // side[s - 1] is stream s
  std::vector<cudaEvent_t> join;   // join[s - 1] is recorded on side[s - 1]
};

struct Registry {
  std::mutex mu;
  std::vector<DeviceState*> devices;
  std::vector<StreamSet*> free_sets;  // sets of threads that exited
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: usable from thread-exit destructors
  return *r;
}

struct ThreadState {
  std::vector<std::pair<DeviceState*, StreamSet*>> per_device;
  ThreadState() = default;
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;
  ~ThreadState() {  // hand the streams to the next thread; no CUDA call here
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    for (auto& entry : per_device) r.free_sets.push_back(entry.second);
  }
};

thread_local ThreadState t_state;

Check device_and_streams(int device, DeviceState** state, StreamSet** set) {
  for (auto& entry : t_state.per_device)
    if (entry.first->device == device) {
      *state = entry.first;
      *set = entry.second;
      return Check{};
    }
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  DeviceState* ds = nullptr;
  for (DeviceState* d : r.devices)
    if (d->device == device) ds = d;
  if (ds == nullptr) {
    RelaxedCaptureMode relaxed;
    cublasLtHandle_t handle = nullptr;
    const cublasStatus_t st = cublasLtCreate(&handle);
    if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtCreate", -1, st);
    ds = new DeviceState;
    ds->device = device;
    ds->handle = handle;
    r.devices.push_back(ds);
    preload_pointwise_kernels();
  }
  StreamSet* ss = nullptr;
  for (size_t i = 0; i < r.free_sets.size(); ++i)
    if (r.free_sets[i]->device == device) {
      ss = r.free_sets[i];
      r.free_sets.erase(r.free_sets.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  if (ss == nullptr) {
    ss = new StreamSet;
    ss->device = device;
  }
  t_state.per_device.emplace_back(ds, ss);
  *state = ds;
  *set = ss;
  return Check{};
}

// Creates what is missing for `streams` streams (stream 0 is the caller's).
Check ensure_streams(StreamSet& ss, int streams) {
  if (streams <= 1 || (ss.fork != nullptr && static_cast<int>(ss.side.size()) >= streams - 1)) return Check{};
  RelaxedCaptureMode relaxed;
  cudaError_t err;
  if (ss.fork == nullptr) {
    if ((err = cudaEventCreateWithFlags(&ss.fork, cudaEventDisableTiming)) != cudaSuccess) {
      ss.fork = nullptr;
      return cuda_failure("cudaEventCreateWithFlags", -1, err);
    }
  }
  while (static_cast<int>(ss.side.size()) < streams - 1) {
    cudaStream_t s = nullptr;
    if ((err = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)) != cudaSuccess)
      return cuda_failure("cudaStreamCreateWithFlags", -1, err);
    cudaEvent_t e = nullptr;
    if ((err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming)) != cudaSuccess) {
      cudaStreamDestroy(s);
      return cuda_failure("cudaEventCreateWithFlags", -1, err);
    }
    ss.side.push_back(s);
    ss.join.push_back(e);
  }
  return Check{};
}

Check lookup_plan(DeviceState& ds, const PlanKey& key, const void* bias, void* aux, int group,
                  std::shared_ptr<const Plan>* out) {
  {
    std::lock_guard<std::mutex> lock(ds.plans_mu);
    auto it = ds.plans.find(key);
    if (it != ds.plans.end()) {
      *out = it->second;
      return Check{};
    }
  }
  // Built outside the lock (heuristic queries take tens of microseconds); a
  // thread that raced us to the same key wins, ours is dropped.
  std::shared_ptr<Plan> built;
  {
    RelaxedCaptureMode relaxed;
    if (Check c = build_plan(ds.handle, key, bias, aux, group, &built); !c.ok()) return c;
  }
  std::lock_guard<std::mutex> lock(ds.plans_mu);
  if (ds.plans.size() >= kMaxCachedPlans) ds.plans.clear();
  auto ins = ds.plans.emplace(key, std::move(built));
  *out = ins.first->second;
  return Check{};
}

// ---------------------------------------------------------------------------
// One call

struct Work {
  int group = 0;
  std::shared_ptr<const Plan> plan;  // null: k == 0 (no GEMM)
};

thread_local std::vector<Work> t_work;  // reused between calls (no allocation once grown)

// Clears t_work on every way out (drops the plan references).
struct WorkReset {
  ~WorkReset() { t_work.clear(); }
};

Check enqueue_group(const moegemm_gemm_list_t& p, const Work& w, cublasLtHandle_t handle, cudaStream_t stream,
                    void* ws, size_t ws_bytes) {
  const int i = w.group;
  const int64_t m = p.m[i], n = p.n[i];
  const bool bias_req = p.bias != nullptr;
  const bool gelu_req = p.gelu_input != nullptr;
  const void* bias = bias_req ? p.bias[i] : nullptr;
  void* aux = gelu_req ? p.gelu_input[i] : nullptr;
  void* d = p.d[i];

  if (!w.plan) {  // k == 0, overwriting: D = GELU(bias or 0), gelu_input = bias or 0; or zeros
    if (!bias_req && !gelu_req) {
      const cudaError_t err =
          cudaMemsetAsync(d, 0, static_cast<size_t>(m) * static_cast<size_t>(n) * dtype_bytes(p.d_dtype), stream);
      return err == cudaSuccess ? Check{} : cuda_failure("cudaMemsetAsync", i, err);
    }
    const cudaError_t err = launch_pointwise(p.d_dtype, nullptr, bias, aux, d, m, n, gelu_req, stream);
    return err == cudaSuccess ? Check{} : cuda_failure("epilogue kernel launch", i, err);
  }

  const Plan& plan = *w.plan;
  cublasLtMatmulDescOpaque_t storage;  // per-call descriptor for epilogues with pointers
  cublasLtMatmulDesc_t desc = plan.desc;
  if (plan.has_pointers) {
    desc = &storage;
    cublasStatus_t st = cublasLtMatmulDescInit(desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulDescInit", i, st);
    st = configure_desc(desc, plan.trans_b, plan.trans_a, plan.epilogue, bias, aux, n);
    if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmulDescSetAttribute", i, st);
  }
  const float alpha = 1.0f;
  const float beta = p.accumulate ? 1.0f : 0.0f;
  void* out = plan.out_is_aux ? aux : d;
  const cublasStatus_t st = cublasLtMatmul(handle, desc, &alpha, p.b[i], plan.layout_b, p.a[i], plan.layout_a, &beta,
                                           out, plan.layout_out, out, plan.layout_out, &plan.algo, ws, ws_bytes,
                                           stream);
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_failure("cublasLtMatmul", i, st);

  if (plan.kernel_gelu || plan.kernel_bias) {
    // GELU: cuBLASLt wrote the pre-activation (maybe without bias) into
    // gelu_input; complete it there and write GELU of it into D.
    // Bias only: cuBLASLt wrote A·B into D; add the bias in place.
    const cudaError_t err =
        plan.kernel_gelu
            ? launch_pointwise(p.d_dtype, aux, plan.kernel_bias ? bias : nullptr, aux, d, m, n, true, stream)
            : launch_pointwise(p.d_dtype, d, bias, nullptr, d, m, n, false, stream);
    if (err != cudaSuccess) return cuda_failure("epilogue kernel launch", i, err);
  }
  return Check{};
}

}  // namespace

size_t cublas_list_workspace_size(int num_streams) {
  if (num_streams < 1) num_streams = 1;
  if (num_streams > kMaxCublasStreams) num_streams = kMaxCublasStreams;
  return kCublasWorkspacePerStream * static_cast<size_t>(num_streams);
}

Check cublas_gemm_list(const moegemm_gemm_list_t& p, int num_streams, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream, const CallerStreamWork* beside) {
  // The problem is validated by the caller; these checks only keep a bug
  // there from turning into a wrong cuBLAS call.
  if (p.num_groups < 1 || p.m == nullptr || p.n == nullptr || p.k == nullptr || p.d == nullptr)
    return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, "cuBLAS path: num_groups, m, n, k and d must be given"};
  if (!known_dtype(p.ab_dtype) || !(p.d_dtype == MOEGEMM_DTYPE_FP32 || p.d_dtype == p.ab_dtype))
    return Check{MOEGEMM_STATUS_INVALID_ARGUMENT,
                 "cuBLAS path: ab_dtype must be FP32, BF16 or FP16 and d_dtype FP32 or ab_dtype"};
  if (p.accumulate && (p.bias != nullptr || p.gelu_input != nullptr))
    return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, "cuBLAS path: bias and gelu_input cannot be combined with accumulate"};
  if (num_streams < 1) num_streams = 1;
  if (num_streams > kMaxCublasStreams) num_streams = kMaxCublasStreams;

  int device = -1;
  if (cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return cuda_failure("cudaGetDevice", -1, err);
  DeviceState* ds = nullptr;
  StreamSet* ss = nullptr;
  if (Check c = device_and_streams(device, &ds, &ss); !c.ok()) return c;

  // Workspace: equal 256-byte aligned chunks, one per stream, at most
  // kCublasWorkspacePerStream each (so the plan keys do not depend on how
  // much more than needed the caller gave).
  char* ws_base = nullptr;
  size_t chunk = 0;
  if (workspace != nullptr && workspace_bytes > 0) {
    const uintptr_t raw = reinterpret_cast<uintptr_t>(workspace);
    const uintptr_t aligned = (raw + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
    const size_t skip = static_cast<size_t>(aligned - raw);
    if (workspace_bytes > skip) {
      ws_base = reinterpret_cast<char*>(aligned);
      chunk = (workspace_bytes - skip) / static_cast<size_t>(num_streams) / kWorkspaceAlignment * kWorkspaceAlignment;
      if (chunk > kCublasWorkspacePerStream) chunk = kCublasWorkspacePerStream;
    }
  }
  if (chunk == 0) ws_base = nullptr;

  // 1. Plan every group on the host; nothing is enqueued before all succeed.
  WorkReset reset;
  std::vector<Work>& work = t_work;
  work.clear();
  const bool bias_req = p.bias != nullptr;
  const bool gelu_req = p.gelu_input != nullptr;
  for (int i = 0; i < p.num_groups; ++i) {
    const int64_t m = p.m[i], n = p.n[i], k = p.k[i];
    if (m < 0 || n < 0 || k < 0)
      return Check{MOEGEMM_STATUS_INVALID_ARGUMENT,
                   "cuBLAS path: group " + std::to_string(i) + " has a negative size"};
    if (m == 0 || n == 0) continue;           // nothing to write
    if (k == 0 && p.accumulate) continue;     // D += 0: untouched
    if (p.d[i] == nullptr || (bias_req && p.bias[i] == nullptr) || (gelu_req && p.gelu_input[i] == nullptr))
      return Check{MOEGEMM_STATUS_INVALID_ARGUMENT,
                   "cuBLAS path: group " + std::to_string(i) + " has a NULL d, bias or gelu_input pointer"};
    Work w;
    w.group = i;
    if (k > 0) {
      if (p.a == nullptr || p.b == nullptr || p.a[i] == nullptr || p.b[i] == nullptr)
        return Check{MOEGEMM_STATUS_INVALID_ARGUMENT,
                     "cuBLAS path: group " + std::to_string(i) + " has k > 0 and a NULL a or b pointer"};
      PlanKey key;
      key.m = m;
      key.n = n;
      key.k = k;
      key.workspace = chunk;
      key.ab = static_cast<uint8_t>(p.ab_dtype);
      key.d = static_cast<uint8_t>(p.d_dtype);
      key.op_a = static_cast<uint8_t>(p.op_a);
      key.op_b = static_cast<uint8_t>(p.op_b);
      key.bias = bias_req;
      key.gelu = gelu_req;
      key.align_a = align_log2(p.a[i]);
      key.align_b = align_log2(p.b[i]);
      key.align_d = align_log2(p.d[i]);
      key.align_bias = bias_req ? align_log2(p.bias[i]) : 0;
      key.align_aux = gelu_req ? align_log2(p.gelu_input[i]) : 0;
      if (Check c = lookup_plan(*ds, key, bias_req ? p.bias[i] : nullptr, gelu_req ? p.gelu_input[i] : nullptr, i,
                                &w.plan);
          !c.ok())
        return c;
    }
    work.push_back(std::move(w));
  }
  if (work.empty()) return beside != nullptr ? (*beside)(stream) : Check{};

  // 2. Fork: stream 0 is the caller's, streams 1..used-1 side streams. With
  // work `beside` the caller's stream, the groups take side streams only
  // (at least one).
  const int first = beside != nullptr ? 1 : 0;  // the first stream that takes groups
  const int group_streams = std::max(1, std::min(static_cast<int>(work.size()), num_streams - first));
  const int used = first + group_streams;
  if (used > kMaxCublasStreams)
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "cuBLAS path: more streams than kMaxCublasStreams"};
  if (Check c = ensure_streams(*ss, used); !c.ok()) return c;
  auto stream_of = [&](int s) { return s == 0 ? stream : ss->side[static_cast<size_t>(s - 1)]; };

  int forked = 1;  // streams that follow the caller's stream (stream 0 always does)
  Check result;
  if (used > 1) {
    if (cudaError_t err = cudaEventRecord(ss->fork, stream); err != cudaSuccess)
      return cuda_failure("cudaEventRecord(fork)", -1, err);
    for (int s = 1; s < used; ++s) {
      if (cudaError_t err = cudaStreamWaitEvent(stream_of(s), ss->fork, 0); err != cudaSuccess) {
        result = cuda_failure("cudaStreamWaitEvent(fork)", -1, err);
        break;
      }
      forked = s + 1;
    }
  }

  // 3. The groups, round-robin; then the caller's work beside them.
  if (result.ok()) {
    for (size_t j = 0; j < work.size(); ++j) {
      const int s = first + static_cast<int>(j % static_cast<size_t>(group_streams));
      void* ws = ws_base != nullptr ? ws_base + static_cast<size_t>(s - first) * chunk : nullptr;
      result = enqueue_group(p, work[j], ds->handle, stream_of(s), ws, chunk);
      if (!result.ok()) break;
    }
  }
  if (result.ok() && beside != nullptr) result = (*beside)(stream);

  // 4. Join every forked side stream, on error paths too (a side stream left
  // forked would break a graph capture and the caller's ordering).
  for (int s = 1; s < forked; ++s) {
    cudaError_t err = cudaEventRecord(ss->join[static_cast<size_t>(s - 1)], stream_of(s));
    const char* what = "cudaEventRecord(join)";
    if (err == cudaSuccess) {
      err = cudaStreamWaitEvent(stream, ss->join[static_cast<size_t>(s - 1)], 0);
      what = "cudaStreamWaitEvent(join)";
    }
    if (err != cudaSuccess && result.ok()) result = cuda_failure(what, -1, err);
    else if (err != cudaSuccess) cudaGetLastError();
  }
  return result;
}

}  // namespace moegemm::detail
