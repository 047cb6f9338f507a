// SM90 uniform-K grouped kernel family (path 1 of moegemm.h): for every group i
//   D_i[m_i, n_i] (+)= A_i[m_i, k] · op_b(B_i),  ragged m_i (may be 0), one k.
//
// Two kinds of launches per call, like the wgrad family (wgrad_sm90.cuh):
//   1. A setup kernel writes, for every group slot, the problem shape,
//      pointers and strides that CUTLASS's grouped GEMM reads, and the group's
//      four TMA descriptors (A_i, B_i; D_i, C_i = D_i; prebuilt_tma_descriptors.cuh).
//      Empty groups get the shape (0, 0, 0): no tile, and no descriptor is
//      built for them (none ever has a zero extent).
//        ragged-M form: uniform_k_ragged_setup_kernel turns the group sizes
//          (host values in its parameters, or a device array, clamped like
//          moegemm_wgrad's split sizes) into row offsets of A [T, k] and D [T, n].
//          One block per 256 groups; with zero_unused_rows and device sizes,
//          more blocks clear D's rows past the groups.
//        list form: uniform_k_list_setup_kernel takes the host arrays (sizes
//          and device pointers) in its parameters, in chunks of at most
//          kUkListChunk groups (the 32 KB kernel-parameter limit): one launch
//          per chunk, one block per 256 groups of the chunk.
//   2. A CUTLASS SM90 ptr-array grouped GEMM (TMA + WGMMA, warp specialised,
//      persistent group tile scheduler) with the prebuilt descriptors,
//      launched with programmatic dependent launch.
//
// In GEMM terms (CUTLASS's M x K times K x N), for group i:
//   A_i: M = m_i, K = k, row-major [m_i, k] (K-major), ld = k
//   B_i: op_b T: [n_i, k] row-major = CUTLASS ColumnMajor B (K-major), ld = k
//        op_b N: [k, n_i] row-major = CUTLASS RowMajor B (N-major), ld = n_i
//   D_i: row-major [m_i, n_i], ld = n_i; C_i = D_i with beta = 1 when accumulating.
// Each group's descriptors have exactly its extents (m_i rows of A and D), so
// TMA bounds clip every tile at the group's edge: rows of the ragged [T, n]
// output outside the group are never read or written through them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <cub/block/block_scan.cuh>
#include <cute/tensor.hpp>

#include "cutlass/cutlass.h"
#include "cutlass/util/packed_stride.hpp"

#include "kernels/ragged_m_onelaunch_sm90.cuh"
#include "kernels/sm90_common.cuh"
#include "kernels/uniform_k_sm90.h"
#include "kernels/uniform_k_sm90_instances.h"

namespace moegemm::detail {

template <moegemm_dtype_t T>
struct UkElement;
template <>
struct UkElement<MOEGEMM_DTYPE_FP32> {
  using type = float;
};
template <>
struct UkElement<MOEGEMM_DTYPE_BF16> {
  using type = cutlass::bfloat16_t;
};
template <>
struct UkElement<MOEGEMM_DTYPE_FP16> {
  using type = cutlass::half_t;
};

// ---------------------------------------------------------------------------
// The grouped GEMM (sm90_common.cuh) for one tile configuration, element types
// and op_b. A [m, k] is K-major: CUTLASS's row-major M x K. B [n, k] (op_b T)
// is K-major: CUTLASS's column-major K x N. B [k, n] (op_b N) is N-major:
// row-major K x N.

template <class Config, class ElementAB, class ElementD, moegemm_op_t OpB>
using UniformKGemm =
    Sm90GroupedGemm<Config, ElementAB, ElementD, cutlass::layout::RowMajor,
                    std::conditional_t<OpB == MOEGEMM_OP_T, cutlass::layout::ColumnMajor, cutlass::layout::RowMajor>>;

// ---------------------------------------------------------------------------
// Setup kernels

constexpr int kUkSetupThreads = 256;  // one group per thread
// Groups per list-form setup launch: its host arrays (32 bytes a group) and
// the common arguments must fit CUDA's 32764 bytes of kernel parameters.
constexpr int kUkListChunk = 512;
constexpr size_t kUkMaxParamBytes = 32764;

// What both setup kernels need: where the per-group arguments go.
template <class G>
struct UkSetupCommon {
  int g;  // group slots of the GEMM
  int k;
  GroupArgumentArrays<G> ws;
  typename G::Kernel::MainloopParams mainloop;  // where the prebuilt descriptors go
  typename G::Kernel::EpilogueParams epilogue;
};

__device__ __forceinline__ bool uk_aligned16(const void* p) {
  return p != nullptr && (reinterpret_cast<uintptr_t>(p) % 16) == 0;
}

// Writes group slot `slot`: shape, pointers, strides and, unless the group is
// empty, its four TMA descriptors. A NULL or misaligned pointer (possible only
// in a device pointer list, which the host cannot check) makes the group a
// no-op instead of a fault.
template <class G>
__device__ void uk_write_group(const UkSetupCommon<G>& c, int slot, const typename G::ElementAB* a,
                               const typename G::ElementAB* b, typename G::ElementD* d, int m, int n,
                               cute::TmaDescriptor& scratch) {
  const bool run = m > 0 && n > 0 && uk_aligned16(a) && uk_aligned16(b) && uk_aligned16(d);
  const int k = c.k;
  const auto stride_a = cutlass::make_cute_packed_stride(typename G::StrideA{}, cute::make_shape(m, k, 1));
  const auto stride_b = cutlass::make_cute_packed_stride(typename G::StrideB{}, cute::make_shape(n, k, 1));
  const auto stride_d = cutlass::make_cute_packed_stride(typename G::StrideD{}, cute::make_shape(m, n, 1));
  c.ws.shapes[slot] = run ? typename G::GroupShape{m, n, k} : typename G::GroupShape{0, 0, 0};
  c.ws.ptr_a[slot] = a;
  c.ws.ptr_b[slot] = b;
  c.ws.ptr_c[slot] = d;
  c.ws.ptr_d[slot] = d;
  c.ws.stride_a[slot] = stride_a;
  c.ws.stride_b[slot] = stride_b;
  c.ws.stride_c[slot] = stride_d;
  c.ws.stride_d[slot] = stride_d;
  if (run) {
    G::Mainloop::write_group_descriptors(c.mainloop, slot, a, stride_a, b, stride_b, m, n, k, scratch);
    G::Epilogue::write_group_descriptors(c.epilogue, slot, d, stride_d, m, n, scratch);
  }
}

// Ragged-M form. Host-resident group sizes / B pointers travel in the
// kernel's parameters: no copy, and a captured graph keeps the values of
// capture time.
template <int Cap>  // Cap == 1: nothing host-resident
struct UkRaggedHost {
  const void* b_ptrs[Cap];
  int32_t sizes[Cap];  // already clamped to [0, T]
};

template <class G>
struct UkRaggedArgs {
  UkSetupCommon<G> c;
  int64_t total_rows;  // T
  int n;
  const typename G::ElementAB* a;  // [T, k]
  const typename G::ElementAB* b;  // contiguous [g, n, k] / [g, k, n], or nullptr
  const void* const* device_b_ptrs;  // device list, or nullptr (then b or the host list)
  typename G::ElementD* d;           // [T, n]
  const int64_t* device_sizes;       // nullptr: sizes are in UkRaggedHost
};

// Blocks of the ragged setup kernel past ceil(g / 256) clear rows
// [min(sum of the sizes, T), T) of D (zero_unused_rows with device sizes):
// one block per this many bytes of D, at most 2 per SM.
constexpr int64_t kUkZeroBytesPerBlock = int64_t{kUkSetupThreads} * 16 * 8;

// Block b handles groups [256 b, 256 b + 256). Offsets follow moegemm_wgrad's
// rule for split sizes: every size clamped to [0, T], then
//   start_i = min(s_0 + ... + s_{i-1}, T),  m_i = min(start_i + s_i, T) - start_i
// (capping the running sum at T at every step, as wgrad's setup kernel does,
// gives the same values since all s_i >= 0). A block first sums the sizes of
// the groups before its own (strided over all threads), then scans its own.
// Blocks from ceil(g / 256) on, when launched (zero_unused_rows with device
// sizes), clear the rows of D past the groups instead.
template <class G, int Cap>
__global__ void __launch_bounds__(kUkSetupThreads)
    uniform_k_ragged_setup_kernel(const UkRaggedArgs<G> a, const UkRaggedHost<Cap> host) {
  using Scan = cub::BlockScan<int64_t, kUkSetupThreads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ alignas(128) cute::TmaDescriptor descriptor_scratch[kUkSetupThreads];

  // Let the GEMM grid get scheduled now; it waits for this grid's completion
  // (and memory flush) before reading anything written here.
  allow_dependent_grids();
  const int64_t T = a.total_rows;
  const int g = a.c.g;
  const int tid = static_cast<int>(threadIdx.x);
  const int base = static_cast<int>(blockIdx.x) * kUkSetupThreads;
  // Cap == 1: nothing host-resident (sizes and any B list are on the device).
  constexpr bool kHostData = Cap > 1;
  auto clamped_size = [&](int i) -> int64_t {
    int64_t v;
    if constexpr (kHostData)
      v = a.device_sizes != nullptr ? a.device_sizes[i] : int64_t{host.sizes[i]};
    else
      v = a.device_sizes[i];
    return v < 0 ? 0 : (v > T ? T : v);  // bounds every sum below by g * T: no overflow
  };

  const int group_blocks = (g + kUkSetupThreads - 1) / kUkSetupThreads;
  if (static_cast<int>(blockIdx.x) >= group_blocks) {
    // A zeroing block: every one sums all sizes (g values, from L2), then
    // clears its share of the rows past them, 16 bytes a store (D is 16-byte
    // aligned and n % 8 == 0 on this path, so rows are whole 16-byte units).
    int64_t part = 0;
    for (int i = tid; i < g; i += kUkSetupThreads) part += clamped_size(i);
    int64_t unused, total;
    Scan(scan).InclusiveSum(part, unused, total);
    const int64_t row_units = int64_t{a.n} * static_cast<int64_t>(sizeof(typename G::ElementD)) / 16;
    const int64_t end = T * row_units;
    const int zero_block = static_cast<int>(blockIdx.x) - group_blocks;
    const int64_t stride = int64_t{static_cast<int>(gridDim.x) - group_blocks} * kUkSetupThreads;
    uint4* d = reinterpret_cast<uint4*>(a.d);
    for (int64_t i = min(total, T) * row_units + int64_t{zero_block} * kUkSetupThreads + tid; i < end; i += stride)
      d[i] = make_uint4(0, 0, 0, 0);
    return;
  }

  int64_t before = 0;  // sum of the clamped sizes of groups [0, base)
  if (base > 0) {      // the same for the whole block
    int64_t part = 0;
    for (int i = tid; i < base; i += kUkSetupThreads) part += clamped_size(i);
    int64_t unused;
    Scan(scan).InclusiveSum(part, unused, before);  // block aggregate: in every thread
    __syncthreads();                                // scan storage is reused below
  }
  const int group = base + tid;
  const int64_t size = group < g ? clamped_size(group) : 0;
  int64_t inclusive;
  Scan(scan).InclusiveSum(size, inclusive);

  if (group < g) {
    const int64_t start = min(before + inclusive - size, T);
    const int m = static_cast<int>(min(before + inclusive, T) - start);
    const typename G::ElementAB* b = nullptr;
    if (m > 0) {
      using AB = typename G::ElementAB;
      if (a.b != nullptr)
        b = a.b + static_cast<int64_t>(group) * a.n * a.c.k;
      else if (a.device_b_ptrs != nullptr)
        b = static_cast<const AB*>(a.device_b_ptrs[group]);
      else if constexpr (kHostData)
        b = static_cast<const AB*>(host.b_ptrs[group]);
    }
    uk_write_group<G>(a.c, group, a.a + start * a.c.k, b, a.d + start * a.n, m, a.n, descriptor_scratch[tid]);
  }
  // Descriptors were written through the generic proxy; the GEMM acquires them.
  cute::tma_descriptor_fence_release();
}

// List form: one chunk of at most Cap groups (slots base .. base + count - 1).
template <int Cap>
struct UkListHost {
  const void* a[Cap];
  const void* b[Cap];
  void* d[Cap];
  int32_t m[Cap];
  int32_t n[Cap];
};

template <class G, int Cap>
__global__ void __launch_bounds__(kUkSetupThreads)
    uniform_k_list_setup_kernel(const UkSetupCommon<G> c, const int base, const int count,
                                const UkListHost<Cap> host) {
  __shared__ alignas(128) cute::TmaDescriptor descriptor_scratch[kUkSetupThreads];
  allow_dependent_grids();
  const int local = static_cast<int>(blockIdx.x) * kUkSetupThreads + static_cast<int>(threadIdx.x);
  if (local < count) {
    uk_write_group<G>(c, base + local, static_cast<const typename G::ElementAB*>(host.a[local]),
                      static_cast<const typename G::ElementAB*>(host.b[local]),
                      static_cast<typename G::ElementD*>(host.d[local]), host.m[local], host.n[local],
                      descriptor_scratch[threadIdx.x]);
  }
  cute::tma_descriptor_fence_release();
}

// The grouped GEMM's entry point: sm90_grouped_gemm_kernel (sm90_common.cuh).

// ---------------------------------------------------------------------------
// Host side

// A failed launch leaves its error as the thread's last error; clear it so that
// a later cudaGetLastError() in the caller does not see it again.
inline Check uk_launch_fail(cudaError_t err, const char* what) {
  (void)cudaGetLastError();
  return cuda_fail(err, what);
}

// What the shared GEMM set-up (sm90_common.cuh) reports for this family; its
// cached kernel parameters are keyed on sm_count too.
struct UniformKFamily {
  static constexpr const char* kSetAttributeWhat = "cudaFuncSetAttribute(uniform-K grouped GEMM)";
  static constexpr const char* kRejected = "CUTLASS can_implement rejected the uniform-K kernel";
  static constexpr bool kParamsKeyedOnSmCount = true;
  static Check cuda_error(cudaError_t err, const char* what) { return uk_launch_fail(err, what); }
};

// The kernel parameters for g groups of `l`, built once per (device,
// workspace address, g, beta, sm_count) and cached (sm90_cached_params).
template <class G>
Check uk_cached_params(const UniformKLaunch& l, int g, const GroupArgumentArrays<G>& ws,
                       typename G::Params* params) {
  // The shared set-up needs a device id >= 0 (a negative one never gets a
  // cache entry, so checking it first answers as a lookup would have).
  if (l.device < 0) return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "uniform-K: no device"};
  return sm90_cached_params<G, UniformKFamily>(l.device, l.sm_count, l.workspace, g, l.accumulate, ws, params);
}

template <class... Params, class... Args>
Check uk_launch_setup(void (*kernel)(Params...), int blocks, cudaStream_t stream, const char* what,
                      const Args&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(blocks));
  cfg.blockDim = dim3(kUkSetupThreads);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  if (cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, args...); err != cudaSuccess)
    return uk_launch_fail(err, what);
  return Check{};
}

template <class G, int Cap>
Check uk_launch_ragged_setup(const UkRaggedArgs<G>& a, const moegemm_ragged_m_problem_t& p, int zero_blocks,
                             cudaStream_t stream) {
  static_assert(sizeof(UkRaggedArgs<G>) + sizeof(UkRaggedHost<Cap>) + 256 <= kUkMaxParamBytes,
                "ragged setup kernel parameters exceed CUDA's limit");
  UkRaggedHost<Cap> host;  // only the first g entries are read, and only the host-resident ones
  const int g = p.num_groups;
  if (p.group_sizes_location == MOEGEMM_MEMORY_HOST) {
    for (int i = 0; i < g; ++i) {
      const int64_t v = p.group_sizes[i];
      host.sizes[i] = static_cast<int32_t>(v < 0 ? 0 : std::min(v, p.total_rows));
    }
  }
  if (p.b_ptrs != nullptr && p.b_ptrs_location == MOEGEMM_MEMORY_HOST)
    for (int i = 0; i < g; ++i) host.b_ptrs[i] = p.b_ptrs[i];
  const int blocks = (g + kUkSetupThreads - 1) / kUkSetupThreads + zero_blocks;
  return uk_launch_setup(uniform_k_ragged_setup_kernel<G, Cap>, blocks, stream,
                               "launch of uniform_k_ragged_setup_kernel", a, host);
}

template <class G, int Cap>
Check uk_launch_list_setup(const UkSetupCommon<G>& c, const moegemm_gemm_list_t& p, int base, int count,
                           cudaStream_t stream) {
  static_assert(sizeof(UkSetupCommon<G>) + sizeof(UkListHost<Cap>) + 256 <= kUkMaxParamBytes,
                "list setup kernel parameters exceed CUDA's limit");
  UkListHost<Cap> host;  // only the first `count` entries are read
  for (int j = 0; j < count; ++j) {
    const int i = base + j;
    host.a[j] = p.a[i];
    host.b[j] = p.b[i];
    host.d[j] = p.d[i];
    host.m[j] = static_cast<int32_t>(p.m[i]);
    host.n[j] = static_cast<int32_t>(p.n[i]);
  }
  const int blocks = (count + kUkSetupThreads - 1) / kUkSetupThreads;
  return uk_launch_setup(uniform_k_list_setup_kernel<G, Cap>, blocks, stream,
                               "launch of uniform_k_list_setup_kernel", c, base, count, host);
}

template <class G>
Check uk_launch_gemm(const typename G::Params& params, cudaStream_t stream) {
  if (cudaError_t err = launch_sm90_grouped_gemm<G>(params, stream); err != cudaSuccess)
    return uk_launch_fail(err, "launch of the uniform-K grouped GEMM");
  return Check{};
}

constexpr int64_t kUkIntMax = std::numeric_limits<int32_t>::max();

template <class G>
Check uk_run_ragged(const UniformKLaunch& l) {
  using AB = typename G::ElementAB;
  const moegemm_ragged_m_problem_t& p = *l.ragged;
  const int g = p.num_groups;
  // The dispatcher has checked these; the kernel relies on them (int shapes).
  if (g < 1 || p.total_rows < 0 || p.total_rows > kUkIntMax || p.n < 1 || p.n > kUkIntMax || p.k < 1 ||
      p.k > kUkIntMax)
    return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, "uniform-K: sizes out of range"};
  const bool host_sizes = p.group_sizes_location == MOEGEMM_MEMORY_HOST;
  const bool host_b = p.b_ptrs != nullptr && p.b_ptrs_location == MOEGEMM_MEMORY_HOST;
  if ((host_sizes || host_b) && g > MOEGEMM_MAX_HOST_GROUPS)
    return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, "uniform-K: too many groups for host-resident arrays"};
  if (p.total_rows == 0) return Check{};  // no row of D exists
  if (host_sizes) {
    bool any = false;
    for (int i = 0; i < g && !any; ++i) any = p.group_sizes[i] > 0;
    if (!any) return Check{};  // every group empty: nothing to write
  }

  const auto ws = carve_group_workspace<G>(l.workspace, g, l.sm_count);
  // The kernel parameters first: the setup kernel writes into the workspace
  // regions they point at (prebuilt descriptors).
  typename G::Params params;
  if (Check c = uk_cached_params<G>(l, g, ws, &params); !c.ok()) return c;

  UkRaggedArgs<G> a{};
  a.c.g = g;
  a.c.k = static_cast<int>(p.k);
  a.c.ws = ws;
  a.c.mainloop = params.mainloop;
  a.c.epilogue = params.epilogue;
  a.total_rows = p.total_rows;
  a.n = static_cast<int>(p.n);
  a.a = static_cast<const AB*>(p.a);
  a.b = static_cast<const AB*>(p.b);
  a.device_b_ptrs = (p.b_ptrs != nullptr && !host_b) ? p.b_ptrs : nullptr;
  a.d = static_cast<typename G::ElementD*>(p.d);
  a.device_sizes = host_sizes ? nullptr : p.group_sizes;

  int zero_blocks = 0;
  if (l.zero_rows_past_groups) {
    const int64_t d_bytes = p.total_rows * p.n * static_cast<int64_t>(sizeof(typename G::ElementD));
    zero_blocks = static_cast<int>(
        std::clamp<int64_t>((d_bytes + kUkZeroBytesPerBlock - 1) / kUkZeroBytesPerBlock, 1, 2 * int64_t{l.sm_count}));
  }
  Check c;
  if (!host_sizes && !host_b)
    c = uk_launch_ragged_setup<G, 1>(a, p, zero_blocks, l.stream);
  else if (g <= 32)
    c = uk_launch_ragged_setup<G, 32>(a, p, zero_blocks, l.stream);
  else if (g <= 256)
    c = uk_launch_ragged_setup<G, 256>(a, p, zero_blocks, l.stream);
  else
    c = uk_launch_ragged_setup<G, MOEGEMM_MAX_HOST_GROUPS>(a, p, zero_blocks, l.stream);
  if (!c.ok()) return c;
  return uk_launch_gemm<G>(params, l.stream);
}

template <class G>
Check uk_run_list(const UniformKLaunch& l) {
  const moegemm_gemm_list_t& p = *l.list;
  const int g = p.num_groups;
  if (g < 1) return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, "uniform-K: num_groups must be >= 1"};
  const int64_t k = p.k[0];
  if (k < 1 || k > kUkIntMax) return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, "uniform-K: k out of range"};
  bool any = false;
  for (int i = 0; i < g; ++i) {
    if (p.k[i] != k || p.m[i] < 0 || p.m[i] > kUkIntMax || p.n[i] < 0 || p.n[i] > kUkIntMax)
      return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, "uniform-K: group sizes out of range or k not uniform"};
    any |= p.m[i] > 0 && p.n[i] > 0;
  }
  if (!any) return Check{};  // every group empty: nothing to write

  const auto ws = carve_group_workspace<G>(l.workspace, g, l.sm_count);
  typename G::Params params;
  if (Check c = uk_cached_params<G>(l, g, ws, &params); !c.ok()) return c;

  UkSetupCommon<G> c{};
  c.g = g;
  c.k = static_cast<int>(k);
  c.ws = ws;
  c.mainloop = params.mainloop;
  c.epilogue = params.epilogue;
  // One launch per chunk, in stream order: only the last one precedes the
  // GEMM directly (programmatic dependent launch), and it starts only after
  // the earlier ones have completed.
  for (int base = 0; base < g; base += kUkListChunk) {
    const int count = std::min(kUkListChunk, g - base);
    Check r;
    if (count <= 32)
      r = uk_launch_list_setup<G, 32>(c, p, base, count, l.stream);
    else if (count <= 256)
      r = uk_launch_list_setup<G, 256>(c, p, base, count, l.stream);
    else
      r = uk_launch_list_setup<G, kUkListChunk>(c, p, base, count, l.stream);
    if (!r.ok()) return r;
  }
  return uk_launch_gemm<G>(params, l.stream);
}

// ---------------------------------------------------------------------------
// Instances

template <class Config, moegemm_dtype_t AB, moegemm_dtype_t D, moegemm_op_t OpB>
using UniformKGemmFor =
    UniformKGemm<Config, typename UkElement<AB>::type, typename UkElement<D>::type, OpB>;

// The tile configurations of this family for output type D (config_select.h
// says when each serves). With a 16-bit
// output, wider output sub-tiles than CUTLASS's default (64x32 ping-pong,
// 128x32 cooperative): 16 KB per TMA store, half as many store rounds per
// tile. Measured on issue 3's grid (H100, docs/perf-notes.md U3): up to 10%
// faster on the shapes with large outputs, level elsewhere. FP32 output keeps
// the default (for wgrad's FP32 output, 32 KB sub-tiles measured slower).
template <moegemm_dtype_t D>
using UkPingpong = std::conditional_t<D == MOEGEMM_DTYPE_FP32, PingpongTile128x128x64Cluster1x2,
                                      WithEpilogueTile<PingpongTile128x128x64Cluster1x2, 64, 128>>;
template <moegemm_dtype_t D>
using UkPingpong1x4 = std::conditional_t<D == MOEGEMM_DTYPE_FP32, PingpongTile128x128x64Cluster1x4,
                                         WithEpilogueTile<PingpongTile128x128x64Cluster1x4, 64, 128>>;
template <moegemm_dtype_t D>
using UkCooperative = std::conditional_t<D == MOEGEMM_DTYPE_FP32, CooperativeTile128x256x64Cluster1x2,
                                         WithEpilogueTile<CooperativeTile128x256x64Cluster1x2, 128, 64>>;

template <moegemm_dtype_t D>
using UkCooperativeNoCluster =
    std::conditional_t<D == MOEGEMM_DTYPE_FP32, CooperativeTile128x256x64Cluster1x1,
                       WithEpilogueTile<CooperativeTile128x256x64Cluster1x1, 128, 64>>;

template <moegemm_dtype_t D>
using UkPingpong64x256 = std::conditional_t<D == MOEGEMM_DTYPE_FP32, PingpongTile64x256x64Cluster1x1,
                                            WithEpilogueTile<PingpongTile64x256x64Cluster1x1, 64, 128>>;

template <moegemm_dtype_t AB, moegemm_dtype_t D, moegemm_op_t OpB>
size_t UniformKInstance<AB, D, OpB>::workspace_size(int num_groups, int sm_count) {
  return std::max(
      {group_workspace_bytes<UniformKGemmFor<UkPingpong<D>, AB, D, OpB>>(num_groups, sm_count),
       group_workspace_bytes<UniformKGemmFor<UkPingpong1x4<D>, AB, D, OpB>>(num_groups, sm_count),
       group_workspace_bytes<UniformKGemmFor<UkCooperative<D>, AB, D, OpB>>(num_groups, sm_count),
       group_workspace_bytes<UniformKGemmFor<UkCooperativeNoCluster<D>, AB, D, OpB>>(num_groups, sm_count),
       group_workspace_bytes<UniformKGemmFor<UkPingpong64x256<D>, AB, D, OpB>>(num_groups, sm_count)});
}

template <class G>
Check uk_run(const UniformKLaunch& l) {
  return l.ragged != nullptr ? uk_run_ragged<G>(l) : uk_run_list<G>(l);
}

template <moegemm_dtype_t AB, moegemm_dtype_t D, moegemm_op_t OpB>
Check UniformKInstance<AB, D, OpB>::onelaunch_clusters(const UniformKLaunch& l, int cluster_n, int* clusters) {
  constexpr auto kernel = ragged_onelaunch::ragged_m_onelaunch_kernel<typename UkElement<AB>::type,
                                                                      typename UkElement<D>::type, OpB == MOEGEMM_OP_T>;
  return ragged_onelaunch::max_clusters_of<kernel>(l, cluster_n, clusters);
}

template <moegemm_dtype_t AB, moegemm_dtype_t D, moegemm_op_t OpB>
Check UniformKInstance<AB, D, OpB>::run(const UniformKLaunch& l) {
  if ((l.ragged == nullptr) == (l.list == nullptr))
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "uniform-K: exactly one of ragged and list must be set"};
  switch (l.tile) {
    case UniformKTile::kPingpong128x128:
      return uk_run<UniformKGemmFor<UkPingpong<D>, AB, D, OpB>>(l);
    case UniformKTile::kPingpong128x128Cluster1x4:
      return uk_run<UniformKGemmFor<UkPingpong1x4<D>, AB, D, OpB>>(l);
    case UniformKTile::kCooperative128x256:
      return uk_run<UniformKGemmFor<UkCooperative<D>, AB, D, OpB>>(l);
    case UniformKTile::kCooperative128x256NoCluster:
      return uk_run<UniformKGemmFor<UkCooperativeNoCluster<D>, AB, D, OpB>>(l);
    case UniformKTile::kPingpong64x256:
      return uk_run<UniformKGemmFor<UkPingpong64x256<D>, AB, D, OpB>>(l);
    case UniformKTile::kOneLaunch128x128:
    case UniformKTile::kOneLaunch128x128Cluster1x4:
      if (l.ragged == nullptr)
        return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "uniform-K: the one-launch kernel serves the ragged form only"};
      return ragged_onelaunch::run<typename UkElement<AB>::type, typename UkElement<D>::type, OpB == MOEGEMM_OP_T>(l);
    case UniformKTile::kAuto:
    case UniformKTile::kAutoCutlass:
      break;  // resolved by the dispatcher
  }
  return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "uniform-K: unknown tile configuration"};
}

}  // namespace moegemm::detail
