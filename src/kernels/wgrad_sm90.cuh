// SM90 variable-K weight-gradient kernel family:
//   D_i[m, n] (+)= dY_i^T · X_i,  i < g,  K = k_i ragged.
//
// Two launches per call:
//   1. wgrad_setup_kernel: turns the split sizes (host values in the kernel's
//      parameters, or a device array) into clamped offsets, orders the groups
//      by decreasing k, writes the per-group problem shapes / pointers /
//      strides and TMA descriptors that the grouped GEMM reads, and
//      zero-fills the outputs of empty groups (unless accumulating). The host
//      never reads the split sizes.
//   2. A CUTLASS 3.x SM90 ptr-array grouped GEMM (TMA + WGMMA, warp
//      specialised, persistent group tile scheduler) with the prebuilt
//      descriptors (prebuilt_tma_descriptors.cuh), launched with programmatic
//      dependent launch so that it is resident before the setup kernel ends.
//      Empty groups get the shape (0, 0, 0): no tile, so no TMA descriptor
//      ever sees a zero extent.
//
// In GEMM terms (CUTLASS's M x K times K x N):
//   A_i = dY_i^T : M = m, K = k_i, M-contiguous (column-major), ld = m
//   B_i = X_i    : N = n, K = k_i, N-contiguous (row-major K x N), ld = n
//   D_i          : row-major m x n; C_i = D_i with beta = 1 when accumulating.
// The K tail of every group is handled by TMA's out-of-bounds zero fill, so
// any k_i works as long as rows are 16-byte aligned (m, n multiples of 8).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>
#include <cute/tensor.hpp>

#include "cutlass/cutlass.h"
#include "cutlass/util/packed_stride.hpp"

#include "kernels/sm90_common.cuh"
#include "kernels/wgrad_onelaunch_sm90.cuh"
#include "kernels/wgrad_sm90.h"

namespace moegemm::detail {

// Tile configurations (see moegemm_wgrad_config_t): sm90_common.cuh.

// ---------------------------------------------------------------------------
// The grouped GEMM (sm90_common.cuh) for one configuration and output type:
// A = dY^T (CUTLASS column-major M x K), B = X (row-major K x N).

template <class Config, class ElementD>
using WgradGemm =
    Sm90GroupedGemm<Config, cutlass::bfloat16_t, ElementD, cutlass::layout::ColumnMajor, cutlass::layout::RowMajor>;

// Per-group argument arrays in the workspace, followed by CUTLASS's own
// workspace (one TMA descriptor copy per SM).
template <class G>
using WgradWorkspace = GroupArgumentArrays<G>;

// Programmatic dependent launch (grid_dependency_wait, allow_dependent_grids)
// and the grouped GEMM's entry point that waits for the setup kernel
// (sm90_grouped_gemm_kernel): sm90_common.cuh.

// ---------------------------------------------------------------------------
// Setup kernel

constexpr int kSetupThreads = 256;

// Host-resident split sizes / output pointers travel in the kernel's
// parameters: no copy, and a captured graph keeps the values of capture time.
template <int Cap>
struct HostGroupData {
  int32_t sizes[Cap];
  void* out_ptrs[Cap];
};

template <class G>
struct SetupArgs {
  int g;
  int64_t m, n, total_tokens;
  const typename G::ElementAB* x;
  const typename G::ElementAB* dy;
  const int64_t* device_sizes;  // nullptr: sizes are in HostGroupData
  char* out;                    // contiguous [g, m, n], or nullptr
  void* const* device_out_ptrs; // device pointer list, or nullptr
  bool accumulate;
  WgradWorkspace<G> ws;
  typename G::StrideA stride_a;
  typename G::StrideB stride_b;
  typename G::StrideD stride_d;
  typename G::Kernel::MainloopParams mainloop;  // where the prebuilt descriptors go
  typename G::Kernel::EpilogueParams epilogue;
};

// Groups are handled in chunks of kSetupChunk. Within a chunk the GEMM's
// group slots are ordered by decreasing k (when groups are large enough for
// it to matter): CUTLASS's persistent scheduler deals
// tiles round-robin in slot order, so the heaviest tiles start first and the
// light ones fill in at the end (ragged k otherwise leaves some SMs with
// several of the heaviest tiles).
constexpr int kSetupItems = 2;
constexpr int kSetupChunk = kSetupThreads * kSetupItems;
constexpr int kSortKeyBits = 8;
constexpr int kSortMinAvgTokens = 256;

template <class G, int Cap>
__device__ char* group_output(const SetupArgs<G>& a, const HostGroupData<Cap>& host, int group, size_t group_bytes) {
  if (a.out != nullptr) return a.out + static_cast<size_t>(group) * group_bytes;
  return static_cast<char*>(a.device_out_ptrs != nullptr ? a.device_out_ptrs[group] : host.out_ptrs[group]);
}

template <class G, int Cap>
__global__ void __launch_bounds__(kSetupThreads)
    wgrad_setup_kernel(const SetupArgs<G> a, const HostGroupData<Cap> host) {
  using Scan = cub::BlockScan<int64_t, kSetupThreads>;
  using Sort = cub::BlockRadixSort<uint32_t, kSetupThreads, kSetupItems, int32_t>;
  __shared__ union {
    typename Scan::TempStorage scan;
    typename Sort::TempStorage sort;
  } temp;
  __shared__ int32_t chunk_start[kSetupChunk];  // clamped row offset of each group of the chunk
  __shared__ int32_t chunk_k[kSetupChunk];      // clamped token count
  __shared__ int fill_list[kSetupChunk];
  __shared__ int fill_count;
  __shared__ alignas(128) cute::TmaDescriptor descriptor_scratch[kSetupThreads];

  // Let the GEMM grid get scheduled now; it waits for this grid's completion
  // (and memory flush) before reading anything written here.
  allow_dependent_grids();
  const int64_t T = a.total_tokens;
  const size_t group_bytes = static_cast<size_t>(a.m * a.n) * sizeof(typename G::ElementD);
  const int tid = static_cast<int>(threadIdx.x);
  // The order only needs to be roughly right: sort on k's top kSortKeyBits
  // bits (one or two radix passes instead of eight).
  const int key_shift = max(0, 32 - __clz(static_cast<uint32_t>(T)) - kSortKeyBits);
  // Measured on the seed grid (H100): ordering is 10-20% faster from 512
  // tokens per group on and gains nothing below 256, where the sort (~1 us of
  // this kernel, which the GEMM waits for) is skipped.
  const bool sort = a.g > 1 && T > int64_t{kSortMinAvgTokens} * a.g;
  int64_t carry = 0;  // clamped offset where this chunk of groups starts

  for (int base = 0; base < a.g; base += kSetupChunk) {
    int64_t k[kSetupItems], inclusive[kSetupItems], chunk_total;
    for (int j = 0; j < kSetupItems; ++j) {
      const int i = base + tid * kSetupItems + j;
      int64_t v = 0;
      if (i < a.g) v = a.device_sizes != nullptr ? a.device_sizes[i] : host.sizes[i];
      k[j] = v < 0 ? 0 : (v > T ? T : v);  // bounds the sums below by g*T: no overflow
    }
    Scan(temp.scan).InclusiveSum(k, inclusive, chunk_total);
    uint32_t keys[kSetupItems];
    int32_t locals[kSetupItems];
    for (int j = 0; j < kSetupItems; ++j) {
      const int local = tid * kSetupItems + j;
      const int64_t start = min(carry + inclusive[j] - k[j], T);
      const int64_t k_clamped = min(carry + inclusive[j], T) - start;
      chunk_start[local] = static_cast<int32_t>(start);
      chunk_k[local] = static_cast<int32_t>(k_clamped);
      keys[j] = static_cast<uint32_t>(k_clamped >> key_shift);
      locals[j] = local;
    }
    carry = min(carry + chunk_total, T);
    if (tid == 0) fill_count = 0;
    __syncthreads();  // scan storage is reused by the sort
    // Stable: equal keys keep their order, so the result is deterministic.
    if (sort) {
      // Striped result: thread t gets slots t, t + kSetupThreads, ..., so the
      // descriptor writes below spread over all threads.
      Sort(temp.sort).SortDescendingBlockedToStriped(keys, locals, 0, kSortKeyBits);
    } else {
      for (int j = 0; j < kSetupItems; ++j) locals[j] = j * kSetupThreads + tid;
    }

    for (int j = 0; j < kSetupItems; ++j) {
      const int slot = base + j * kSetupThreads + tid;  // the GEMM's group index
      if (slot >= a.g) continue;                     // out-of-range groups sort last (k = 0)
      const int local = locals[j];
      const int group = base + local;
      const int64_t start = chunk_start[local];
      const int k_clamped = chunk_k[local];
      char* out = group_output(a, host, group, group_bytes);
      // A device pointer list cannot be checked on the host: a NULL or
      // misaligned entry makes its group a no-op instead of a fault.
      const bool out_ok = out != nullptr && (reinterpret_cast<uintptr_t>(out) % 16) == 0;
      const bool run = out_ok && k_clamped > 0;
      if (!a.accumulate && out_ok && k_clamped == 0) fill_list[atomicAdd(&fill_count, 1)] = group;
      if (blockIdx.x != 0) continue;
      a.ws.shapes[slot] = run ? typename G::GroupShape{static_cast<int>(a.m), static_cast<int>(a.n), k_clamped}
                              : typename G::GroupShape{0, 0, 0};
      a.ws.ptr_a[slot] = a.dy + start * a.m;
      a.ws.ptr_b[slot] = a.x + start * a.n;
      a.ws.ptr_c[slot] = reinterpret_cast<const typename G::ElementD*>(run ? out : a.out);
      a.ws.ptr_d[slot] = reinterpret_cast<typename G::ElementD*>(run ? out : a.out);
      a.ws.stride_a[slot] = a.stride_a;
      a.ws.stride_b[slot] = a.stride_b;
      a.ws.stride_c[slot] = a.stride_d;
      a.ws.stride_d[slot] = a.stride_d;
      if (run) {
        G::Mainloop::write_group_descriptors(a.mainloop, slot, a.dy + start * a.m, a.stride_a,
                                             a.x + start * a.n, a.stride_b, static_cast<int>(a.m),
                                             static_cast<int>(a.n), k_clamped, descriptor_scratch[tid]);
        G::Epilogue::write_group_descriptors(a.epilogue, slot, reinterpret_cast<typename G::ElementD*>(out),
                                             a.stride_d, static_cast<int>(a.m), static_cast<int>(a.n),
                                             descriptor_scratch[tid]);
      }
    }
    __syncthreads();

    // Empty groups are zero-filled by the whole grid (not when accumulating:
    // then they stay as they are).
    const size_t vecs = group_bytes / sizeof(uint4);
    const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
    for (int e = 0; e < fill_count; ++e) {
      uint4* dst = reinterpret_cast<uint4*>(group_output(a, host, fill_list[e], group_bytes));
      for (size_t v = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; v < vecs; v += stride)
        dst[v] = make_uint4(0, 0, 0, 0);
    }
    __syncthreads();  // chunk arrays and fill_list are reused by the next chunk
  }
  // Descriptors were written through the generic proxy; the GEMM acquires them.
  cute::tma_descriptor_fence_release();
}

// ---------------------------------------------------------------------------
// Host launcher

// cuda_fail, group_workspace_bytes, sm90_cached_params: sm90_common.cuh.

// What the shared GEMM set-up (sm90_common.cuh) reports for this family. Its
// cached kernel parameters are not keyed on sm_count, and a failed CUDA call
// there leaves the thread's last error as it is.
struct WgradFamily {
  static constexpr const char* kSetAttributeWhat = "cudaFuncSetAttribute(wgrad kernel)";
  static constexpr const char* kRejected = "CUTLASS can_implement rejected the wgrad kernel";
  static constexpr bool kParamsKeyedOnSmCount = false;
  static Check cuda_error(cudaError_t err, const char* what) { return cuda_fail(err, what); }
};

template <class G, int Cap>
Check launch_setup(const SetupArgs<G>& a, const moegemm_wgrad_problem_t& p, int blocks,
                   cudaStream_t stream) {
  HostGroupData<Cap> host;  // only the first g entries are read
  if (p.group_sizes_location == MOEGEMM_MEMORY_HOST)
    for (int i = 0; i < p.num_groups; ++i) host.sizes[i] = static_cast<int32_t>(p.group_sizes[i]);
  if (p.out_ptrs != nullptr && p.out_ptrs_location == MOEGEMM_MEMORY_HOST)
    for (int i = 0; i < p.num_groups; ++i) host.out_ptrs[i] = p.out_ptrs[i];
  wgrad_setup_kernel<G, Cap><<<blocks, kSetupThreads, 0, stream>>>(a, host);
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess)
    return cuda_fail(err, "launch of wgrad_setup_kernel");
  return Check{};
}

template <class G>
Check run_wgrad_gemm(const WgradLaunch& l) {
  const moegemm_wgrad_problem_t& p = *l.problem;
  const int g = p.num_groups;
  const bool accumulate = p.accumulate != 0;
  const auto ws = carve_group_workspace<G>(l.workspace, g, l.sm_count);

  SetupArgs<G> a{};
  a.g = g;
  a.m = p.m;
  a.n = p.n;
  a.total_tokens = p.total_tokens;
  a.x = static_cast<const typename G::ElementAB*>(p.x);
  a.dy = static_cast<const typename G::ElementAB*>(p.dy);
  a.device_sizes = p.group_sizes_location == MOEGEMM_MEMORY_DEVICE ? p.group_sizes : nullptr;
  a.out = static_cast<char*>(p.out);
  a.device_out_ptrs = (p.out_ptrs != nullptr && p.out_ptrs_location == MOEGEMM_MEMORY_DEVICE) ? p.out_ptrs : nullptr;
  a.accumulate = accumulate;
  a.ws = ws;
  const int m = static_cast<int>(p.m), n = static_cast<int>(p.n);
  a.stride_a = cutlass::make_cute_packed_stride(typename G::StrideA{}, cute::make_shape(m, 1, 1));
  a.stride_b = cutlass::make_cute_packed_stride(typename G::StrideB{}, cute::make_shape(n, 1, 1));
  a.stride_d = cutlass::make_cute_packed_stride(typename G::StrideD{}, cute::make_shape(m, n, 1));

  // Host split sizes tell us whether any group is empty; device ones do not,
  // so then the whole grid stands ready to zero-fill.
  bool any_empty = true;
  int64_t host_total = -1;
  if (p.group_sizes_location == MOEGEMM_MEMORY_HOST) {
    any_empty = false;
    host_total = 0;
    for (int i = 0; i < g; ++i) {
      any_empty |= p.group_sizes[i] == 0;
      host_total += p.group_sizes[i];
    }
  }
  const int blocks = (accumulate || !any_empty) ? 1 : l.sm_count;

  // The kernel parameters first: the setup kernel writes into the workspace
  // regions they point at (prebuilt descriptors).
  typename G::Params params;
  Check c = sm90_cached_params<G, WgradFamily>(l.device, l.sm_count, l.workspace, g, accumulate, ws, &params);
  if (!c.ok()) return c;
  a.mainloop = params.mainloop;
  a.epilogue = params.epilogue;

  const bool host_data = a.device_sizes == nullptr ||
                         (p.out_ptrs != nullptr && p.out_ptrs_location == MOEGEMM_MEMORY_HOST);
  if (!host_data) c = launch_setup<G, 1>(a, p, blocks, l.stream);
  else if (g <= 32) c = launch_setup<G, 32>(a, p, blocks, l.stream);
  else if (g <= 256) c = launch_setup<G, 256>(a, p, blocks, l.stream);
  else c = launch_setup<G, MOEGEMM_MAX_HOST_GROUPS>(a, p, blocks, l.stream);
  if (!c.ok()) return c;
  if (host_total == 0) return Check{};  // every group empty: the setup kernel did it all

  if (cudaError_t err = launch_sm90_grouped_gemm<G>(params, l.stream); err != cudaSuccess) {
    (void)cudaGetLastError();  // a failed launch leaves its error behind
    return cuda_fail(err, "launch of the wgrad grouped GEMM");
  }
  return Check{};
}

template <class ElementD>
size_t wgrad_workspace_size_for(int g, int sm_count) {
  const size_t a = group_workspace_bytes<WgradGemm<PingpongTile128x128x64Cluster2x1, ElementD>>(g, sm_count);
  const size_t b = group_workspace_bytes<WgradGemm<CooperativeTile256x128x64Cluster2x1, ElementD>>(g, sm_count);
  const size_t c = group_workspace_bytes<WgradGemm<CooperativeTile128x256x64Cluster2x1, ElementD>>(g, sm_count);
  return std::max({a, b, c});
}

template <class ElementD>
Check run_wgrad_for(const WgradLaunch& l) {
  switch (l.config) {
    case MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1:
      return run_wgrad_gemm<WgradGemm<PingpongTile128x128x64Cluster2x1, ElementD>>(l);
    case MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1:
      return run_wgrad_gemm<WgradGemm<CooperativeTile256x128x64Cluster2x1, ElementD>>(l);
    case MOEGEMM_WGRAD_CONFIG_COOPERATIVE_128x256x64_C2x1:
      return run_wgrad_gemm<WgradGemm<CooperativeTile128x256x64Cluster2x1, ElementD>>(l);
    case MOEGEMM_WGRAD_CONFIG_ONELAUNCH_128x128x64_C2x1:
      // The ping-pong kernel of the same tile serves where this one cannot:
      // more groups than its shared-memory tables hold, beyond 2^31 tokens
      // (its TMA coordinates are 32-bit), and BF16 accumulation (its L2
      // reduce-add would round the product to BF16 before adding; CUTLASS's
      // epilogue rounds once).
      if (!onelaunch::serves(*l.problem))
        return run_wgrad_gemm<WgradGemm<PingpongTile128x128x64Cluster2x1, ElementD>>(l);
      return onelaunch::run<ElementD>(l);
    default:
      return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "config: not a concrete wgrad configuration"};
  }
}

}  // namespace moegemm::detail
