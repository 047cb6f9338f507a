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
#include <mutex>
#include <string>
#include <vector>

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>
#include <cute/tensor.hpp>

#include "cutlass/cluster_launch.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/group_array_problem_shape.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/kernel_hardware_info.h"
#include "cutlass/util/packed_stride.hpp"

#include "kernels/prebuilt_tma_descriptors.cuh"
#include "kernels/sm90_common.cuh"
#include "kernels/wgrad_sm90.h"

namespace moegemm::detail {

// Tile configurations (see moegemm_wgrad_config_t): sm90_common.cuh.

// ---------------------------------------------------------------------------
// The grouped GEMM for one configuration and output type.

// The per-group TMA descriptors (A, B; D, C) come from the setup kernel
// (prebuilt_tma_descriptors.cuh) instead of being rewritten in the GEMM at
// every change of group; for the mainloop alone that measured 3-4% faster on
// the seed grid.
template <class Config, class ElementD_>
struct WgradGemm {
  using ElementAB = cutlass::bfloat16_t;
  using ElementD = ElementD_;
  using ElementAccumulator = float;
  using LayoutA = cutlass::layout::ColumnMajor;  // dY^T
  using LayoutB = cutlass::layout::RowMajor;     // X
  using LayoutD = cutlass::layout::RowMajor;
  static constexpr int kAlignAB = 16 / sizeof(ElementAB);
  static constexpr int kAlignD = 16 / sizeof(ElementD);
  using ProblemShape = cutlass::gemm::GroupProblemShape<cute::Shape<int, int, int>>;
  using GroupShape = typename ProblemShape::UnderlyingProblemShape;

  // C is D itself (read only when beta != 0, i.e. when accumulating). The
  // builder keeps 2 output sub-tiles in flight; 4 and 8 were measured slower
  // (docs/perf-notes.md).
  using BuiltEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, typename Config::TileShape,
      typename Config::ClusterShape, cutlass::epilogue::collective::EpilogueTileAuto,
      ElementAccumulator, ElementAccumulator, ElementD, LayoutD*, kAlignD, ElementD, LayoutD*,
      kAlignD, typename Config::EpilogueSchedule,
      cutlass::epilogue::fusion::LinearCombination<ElementD, ElementAccumulator, ElementD,
                                                   ElementAccumulator>>::CollectiveOp;
  using Epilogue = PrebuiltTmaEpilogue<BuiltEpilogue>;

  using BuiltMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB, LayoutA*, kAlignAB, ElementAB,
      LayoutB*, kAlignAB, ElementAccumulator, typename Config::TileShape,
      typename Config::ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename Epilogue::SharedStorage))>,
      typename Config::KernelSchedule>::CollectiveOp;
  using Mainloop = PrebuiltTmaMainloop<BuiltMainloop>;

  using Kernel = cutlass::gemm::kernel::GemmUniversal<ProblemShape, Mainloop, Epilogue>;
  using Params = typename Kernel::Params;
  using Arguments = typename Kernel::Arguments;
  using StrideA = typename Kernel::InternalStrideA;
  using StrideB = typename Kernel::InternalStrideB;
  using StrideC = typename Kernel::InternalStrideC;
  using StrideD = typename Kernel::InternalStrideD;
};

// Per-group argument arrays in the workspace, followed by CUTLASS's own
// workspace (one TMA descriptor copy per SM).
template <class G>
using WgradWorkspace = GroupArgumentArrays<G>;

// Programmatic dependent launch (grid_dependency_wait, allow_dependent_grids): sm90_common.cuh.

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

// The grouped GEMM's entry point: CUTLASS's kernel body behind a grid
// dependency wait. It is launched with programmatic dependent launch, so it is
// scheduled while the setup kernel still runs and only waits here, before the
// first read of the per-group arguments, instead of after a full launch gap.
template <class Kernel>
__global__ void __launch_bounds__(Kernel::MaxThreadsPerBlock, Kernel::MinBlocksPerMultiprocessor)
    wgrad_gemm_kernel(CUTLASS_GRID_CONSTANT typename Kernel::Params const params) {
  extern __shared__ char smem[];
  grid_dependency_wait();
  Kernel op;
  op(params, smem);
}

// ---------------------------------------------------------------------------
// Host launcher

// cuda_fail, cutlass_workspace_bytes: sm90_common.cuh.

template <class G>
size_t wgrad_workspace_bytes(int g, int sm_count) {
  return WgradWorkspace<G>::carve(nullptr, g, cutlass_workspace_bytes<G>(g, sm_count)).bytes;
}

// One-time per (kernel, device) set-up: the shared-memory opt-in and the
// occupancy query. Kept off the per-call path.
template <class G>
Check kernel_hw_info(int device, int sm_count, cutlass::KernelHardwareInfo* out) {
  static std::mutex mu;
  static std::vector<int> cached(64, -1);  // max active clusters per device id
  std::lock_guard<std::mutex> lock(mu);
  if (device >= static_cast<int>(cached.size())) cached.resize(device + 1, -1);
  if (cached[device] < 0) {
    using Kernel = typename G::Kernel;
    constexpr int smem = static_cast<int>(Kernel::SharedStorageSize);
    cudaError_t err = cudaFuncSetAttribute(wgrad_gemm_kernel<Kernel>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) return cuda_fail(err, "cudaFuncSetAttribute(wgrad kernel)");
    const dim3 cluster(cute::size<0>(typename Kernel::ClusterShape{}),
                       cute::size<1>(typename Kernel::ClusterShape{}),
                       cute::size<2>(typename Kernel::ClusterShape{}));
    cached[device] = cutlass::KernelHardwareInfo::query_device_max_active_clusters(
        cluster, Kernel::MaxThreadsPerBlock, reinterpret_cast<const void*>(wgrad_gemm_kernel<Kernel>));
  }
  *out = cutlass::KernelHardwareInfo{device, sm_count, cached[device]};
  return Check{};
}

// Kernel parameters depend only on (device, workspace address, g, beta): build
// them (four TMA descriptor encodes on the host) once and reuse them.
template <class G>
Check cached_params(const WgradLaunch& l, const WgradWorkspace<G>& ws, bool accumulate,
                    typename G::Params* params) {
  struct Entry {
    int device;
    const void* workspace;
    int g;
    bool accumulate;
    typename G::Params params;
  };
  static std::mutex mu;
  static std::vector<Entry> cache;  // a handful of entries: one per live workspace
  const int g = l.problem->num_groups;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const Entry& e : cache) {
      if (e.device == l.device && e.workspace == l.workspace && e.g == g && e.accumulate == accumulate) {
        *params = e.params;
        return Check{};
      }
    }
  }
  cutlass::KernelHardwareInfo hw;
  if (Check c = kernel_hw_info<G>(l.device, l.sm_count, &hw); !c.ok()) return c;

  typename G::Arguments args{};
  args.mode = cutlass::gemm::GemmUniversalMode::kGrouped;
  args.problem_shape = {g, ws.shapes, nullptr};  // shapes live on the device only
  args.mainloop = {ws.ptr_a, ws.stride_a, ws.ptr_b, ws.stride_b};
  auto& fusion = args.epilogue.thread;
  fusion.alpha = 1.0f;
  fusion.beta = accumulate ? 1.0f : 0.0f;
  args.epilogue.ptr_C = ws.ptr_c;
  args.epilogue.dC = ws.stride_c;
  args.epilogue.ptr_D = ws.ptr_d;
  args.epilogue.dD = ws.stride_d;
  args.hw_info = hw;

  if (G::Kernel::can_implement(args) != true)
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "CUTLASS can_implement rejected the wgrad kernel"};
  typename G::Params p = G::Kernel::to_underlying_arguments(args, ws.cutlass);
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 16) cache.erase(cache.begin());
  cache.push_back(Entry{l.device, l.workspace, g, accumulate, p});
  *params = p;
  return Check{};
}

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
  const auto ws = WgradWorkspace<G>::carve(l.workspace, g, cutlass_workspace_bytes<G>(g, l.sm_count));

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
  Check c = cached_params<G>(l, ws, accumulate, &params);
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

  const dim3 grid = G::Kernel::get_grid_shape(params);
  const dim3 block = G::Kernel::get_block_shape();
  const dim3 cluster(cute::size<0>(typename G::Kernel::ClusterShape{}),
                     cute::size<1>(typename G::Kernel::ClusterShape{}),
                     cute::size<2>(typename G::Kernel::ClusterShape{}));
  void* kernel_params[] = {&params};
  const cutlass::Status st = cutlass::ClusterLauncher::launch(
      grid, cluster, block, G::Kernel::SharedStorageSize, l.stream,
      reinterpret_cast<const void*>(wgrad_gemm_kernel<typename G::Kernel>), kernel_params,
      /*launch_with_pdl=*/true);
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess)
    return cuda_fail(err, "launch of the wgrad grouped GEMM");
  if (st != cutlass::Status::kSuccess)
    return Check{MOEGEMM_STATUS_CUDA_ERROR, "cluster launch of the wgrad grouped GEMM failed"};
  return Check{};
}

template <class ElementD>
size_t wgrad_workspace_size_for(int g, int sm_count) {
  const size_t a = wgrad_workspace_bytes<WgradGemm<PingpongTile128x128x64Cluster2x1, ElementD>>(g, sm_count);
  const size_t b = wgrad_workspace_bytes<WgradGemm<CooperativeTile256x128x64Cluster2x1, ElementD>>(g, sm_count);
  const size_t c = wgrad_workspace_bytes<WgradGemm<CooperativeTile128x256x64Cluster2x1, ElementD>>(g, sm_count);
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
    default:
      return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "config: not a concrete wgrad configuration"};
  }
}

}  // namespace moegemm::detail
