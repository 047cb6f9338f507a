// Pieces shared by moegemm's SM90 grouped-GEMM kernel families (variable-K
// wgrad, uniform-K forward/dgrad): tile configurations, the grouped GEMM type
// and its entry kernel, the per-group argument arrays in the caller's
// workspace, programmatic dependent launch, and the host set-up of the GEMM
// (per-device kernel attributes, cached kernel parameters).
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_runtime_api.h>

#include <cute/tensor.hpp>

#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/dispatch_policy.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/gemm.h"
#include "cutlass/gemm/group_array_problem_shape.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/kernel_hardware_info.h"

#include "kernels/prebuilt_tma_descriptors.cuh"
#include "validate.h"

namespace moegemm::detail {

// ---------------------------------------------------------------------------
// Tile configurations (CUTLASS SM90 ptr-array schedules)

// One tile configuration: CTA tile M x N x K, cluster ClusterM x ClusterN,
// ping-pong (two consumer warp groups on two tiles, epilogue of one beside
// the other's mainloop) or cooperative (both on one tile).
template <int M, int N, int K, int ClusterM, int ClusterN, bool Pingpong>
struct SchedTile {
  using TileShape = cute::Shape<cute::Int<M>, cute::Int<N>, cute::Int<K>>;
  using ClusterShape = cute::Shape<cute::Int<ClusterM>, cute::Int<ClusterN>, cute::_1>;
  using KernelSchedule = std::conditional_t<Pingpong, cutlass::gemm::KernelPtrArrayTmaWarpSpecializedPingpong,
                                            cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperative>;
  using EpilogueSchedule = std::conditional_t<Pingpong, cutlass::epilogue::PtrArrayTmaWarpSpecializedPingpong,
                                              cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative>;
  using EpilogueTile = cutlass::epilogue::collective::EpilogueTileAuto;
};

using PingpongTile128x128x64Cluster2x1 = SchedTile<128, 128, 64, 2, 1, true>;
// Ragged M (uniform-K family): the 2 (or 4) CTAs of a cluster split N and
// share the token (A) tile. Along M, a group of at most 128 rows would leave the
// cluster's second CTA a tile wholly past the group's rows.
using PingpongTile128x128x64Cluster1x2 = SchedTile<128, 128, 64, 1, 2, true>;
using PingpongTile128x128x64Cluster1x4 = SchedTile<128, 128, 64, 1, 4, true>;
using PingpongTile64x256x64Cluster1x1 = SchedTile<64, 256, 64, 1, 1, true>;
using CooperativeTile128x256x64Cluster1x2 = SchedTile<128, 256, 64, 1, 2, false>;
using CooperativeTile128x256x64Cluster1x1 = SchedTile<128, 256, 64, 1, 1, false>;
using CooperativeTile256x128x64Cluster2x1 = SchedTile<256, 128, 64, 2, 1, false>;
using CooperativeTile128x256x64Cluster2x1 = SchedTile<128, 256, 64, 2, 1, false>;

// `Config` with an explicit output sub-tile (rows x cols) instead of
// CUTLASS's default (64x32 ping-pong, 128x32 cooperative).
template <class Config, int EpiM, int EpiN>
struct WithEpilogueTile : Config {
  using EpilogueTile = cute::Shape<cute::Int<EpiM>, cute::Int<EpiN>>;
};

// ---------------------------------------------------------------------------
// The grouped GEMM for one tile configuration, element types and operand
// layouts (A: M x K, B: K x N in CUTLASS's terms; D row-major).
//
// The per-group TMA descriptors (A, B; D, C) come from the family's setup
// kernel (prebuilt_tma_descriptors.cuh) instead of being rewritten in the GEMM
// at every change of group; for the wgrad mainloop alone that measured 3-4%
// faster on the seed grid.

template <class Config, class ElementAB_, class ElementD_, class LayoutA_, class LayoutB_>
struct Sm90GroupedGemm {
  using ElementAB = ElementAB_;
  using ElementD = ElementD_;
  using ElementAccumulator = float;
  using LayoutA = LayoutA_;
  using LayoutB = LayoutB_;
  using LayoutD = cutlass::layout::RowMajor;
  static constexpr int kAlignAB = 16 / sizeof(ElementAB);
  static constexpr int kAlignD = 16 / sizeof(ElementD);
  using ProblemShape = cutlass::gemm::GroupProblemShape<cute::Shape<int, int, int>>;
  using GroupShape = typename ProblemShape::UnderlyingProblemShape;

  // C is D itself (read only when beta != 0, i.e. when accumulating). The
  // builder keeps 2 output sub-tiles in flight; 4 and 8 were measured slower
  // for wgrad (docs/perf-notes.md).
  using BuiltEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, typename Config::TileShape,
      typename Config::ClusterShape, typename Config::EpilogueTile,
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

// ---------------------------------------------------------------------------
// Per-group argument arrays of a CUTLASS ptr-array grouped GEMM `G` (problem
// shapes, pointers, strides) carved from the caller's workspace, followed by
// CUTLASS's own workspace.

template <class G>
struct GroupArgumentArrays {
  typename G::GroupShape* shapes;
  const typename G::ElementAB** ptr_a;
  const typename G::ElementAB** ptr_b;
  const typename G::ElementD** ptr_c;
  typename G::ElementD** ptr_d;
  typename G::StrideA* stride_a;
  typename G::StrideB* stride_b;
  typename G::StrideC* stride_c;
  typename G::StrideD* stride_d;
  void* cutlass;
  size_t bytes;  // total, including CUTLASS's part

  static GroupArgumentArrays carve(void* base, int g, size_t cutlass_bytes) {
    GroupArgumentArrays w{};
    size_t off = 0;
    auto take = [&](auto*& field, size_t elem_bytes) {
      using T = std::remove_reference_t<decltype(field)>;
      field = reinterpret_cast<T>(static_cast<char*>(base) + off);
      off += (elem_bytes * static_cast<size_t>(g) + 127) / 128 * 128;
    };
    take(w.shapes, sizeof(typename G::GroupShape));
    take(w.ptr_a, sizeof(void*));
    take(w.ptr_b, sizeof(void*));
    take(w.ptr_c, sizeof(void*));
    take(w.ptr_d, sizeof(void*));
    take(w.stride_a, sizeof(typename G::StrideA));
    take(w.stride_b, sizeof(typename G::StrideB));
    take(w.stride_c, sizeof(typename G::StrideC));
    take(w.stride_d, sizeof(typename G::StrideD));
    w.cutlass = static_cast<char*>(base) + off;
    w.bytes = off + cutlass_bytes;
    return w;
  }
};

// ---------------------------------------------------------------------------
// Programmatic dependent launch (PTX, sm_90). Written out rather than taken
// from CUTLASS, whose helpers compile to nothing unless a macro is set: a
// silently missing wait would be a race.

__device__ __forceinline__ void grid_dependency_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void allow_dependent_grids() { asm volatile("griddepcontrol.launch_dependents;"); }

// The grouped GEMM's entry point: CUTLASS's kernel body behind a grid
// dependency wait. It is launched with programmatic dependent launch, so it is
// scheduled while the family's setup kernel still runs and only waits here,
// before the first read of the per-group arguments, instead of after a full
// launch gap.
template <class Kernel>
__global__ void __launch_bounds__(Kernel::MaxThreadsPerBlock, Kernel::MinBlocksPerMultiprocessor)
    sm90_grouped_gemm_kernel(CUTLASS_GRID_CONSTANT typename Kernel::Params const params) {
  extern __shared__ char smem[];
  grid_dependency_wait();
  Kernel op;
  op(params, smem);
}

// ---------------------------------------------------------------------------
// Host helpers

inline Check cuda_fail(cudaError_t err, const char* what) {
  return Check{MOEGEMM_STATUS_CUDA_ERROR, std::string(what) + ": " + cudaGetErrorString(err)};
}

// CUTLASS's own workspace of grouped GEMM `G` for g groups (device-resident
// problem shapes).
template <class G>
size_t cutlass_workspace_bytes(int g, int sm_count) {
  typename G::Arguments args{};
  args.mode = cutlass::gemm::GemmUniversalMode::kGrouped;
  args.problem_shape = {g, nullptr, nullptr};
  args.hw_info.sm_count = sm_count;
  return G::Kernel::get_workspace_size(args);
}

// The workspace of grouped GEMM `G` for g groups at `base`: the per-group
// argument arrays, then CUTLASS's own workspace.
template <class G>
GroupArgumentArrays<G> carve_group_workspace(void* base, int g, int sm_count) {
  return GroupArgumentArrays<G>::carve(base, g, cutlass_workspace_bytes<G>(g, sm_count));
}

template <class G>
size_t group_workspace_bytes(int g, int sm_count) {
  return carve_group_workspace<G>(nullptr, g, sm_count).bytes;
}

// The cluster shape of CUTLASS kernel `Kernel`, as a launch dimension.
template <class Kernel>
dim3 cluster_dims() {
  return dim3(cute::size<0>(typename Kernel::ClusterShape{}), cute::size<1>(typename Kernel::ClusterShape{}),
              cute::size<2>(typename Kernel::ClusterShape{}));
}

// A launch configuration with a cluster shape and, for a GEMM launch,
// programmatic dependent launch (the kernel may start before the previous one
// in the stream ends; it waits in grid_dependency_wait). Not copyable: `cfg`
// points at `attrs`.
struct Sm90LaunchConfig {
  cudaLaunchConfig_t cfg{};
  cudaLaunchAttribute attrs[2]{};
  Sm90LaunchConfig(dim3 grid, dim3 block, size_t smem_bytes, dim3 cluster, cudaStream_t stream, bool pdl) {
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem_bytes;
    cfg.stream = stream;
    attrs[0].id = cudaLaunchAttributeClusterDimension;
    attrs[0].val.clusterDim.x = cluster.x;
    attrs[0].val.clusterDim.y = cluster.y;
    attrs[0].val.clusterDim.z = cluster.z;
    attrs[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attrs;
    cfg.numAttrs = pdl ? 2 : 1;
  }
  Sm90LaunchConfig(const Sm90LaunchConfig&) = delete;
  Sm90LaunchConfig& operator=(const Sm90LaunchConfig&) = delete;
};

// Launches grouped GEMM `G` on `stream` with its cluster shape and
// programmatic dependent launch (it may start before the family's setup
// kernel ends, which allows it at its start, and waits in
// sm90_grouped_gemm_kernel). One cudaLaunchKernelEx, no per-call attribute
// calls (CUTLASS's ClusterLauncher sets a function attribute at every launch).
template <class G>
cudaError_t launch_sm90_grouped_gemm(const typename G::Params& params, cudaStream_t stream) {
  using Kernel = typename G::Kernel;
  const Sm90LaunchConfig launch(Kernel::get_grid_shape(params), Kernel::get_block_shape(), Kernel::SharedStorageSize,
                                cluster_dims<Kernel>(), stream, /*pdl=*/true);
  return cudaLaunchKernelEx(&launch.cfg, sm90_grouped_gemm_kernel<Kernel>, params);
}

// The set-up below is shared by the kernel families; a family `F` supplies
// what differs between them:
//   F::kSetAttributeWhat      what a failed cudaFuncSetAttribute is reported as
//   F::kRejected              the message when CUTLASS's can_implement says no
//   F::kParamsKeyedOnSmCount  whether the cached parameters are also told
//                             apart by sm_count (besides device, workspace
//                             address, g and beta)
//   F::cuda_error(err, what)  the Check of a failed CUDA call

// One-time per (kernel, device) set-up: the shared-memory opt-in and the
// occupancy query. Kept off the per-call path. `device` must be >= 0.
template <class G, class F>
Check sm90_kernel_hw_info(int device, int sm_count, cutlass::KernelHardwareInfo* out) {
  static std::mutex mu;
  static std::vector<int> cached;  // max active clusters per device id (-1: not yet)
  std::lock_guard<std::mutex> lock(mu);
  if (device >= static_cast<int>(cached.size())) cached.resize(device + 1, -1);
  if (cached[device] < 0) {
    using Kernel = typename G::Kernel;
    constexpr int smem = static_cast<int>(Kernel::SharedStorageSize);
    cudaError_t err = cudaFuncSetAttribute(sm90_grouped_gemm_kernel<Kernel>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) return F::cuda_error(err, F::kSetAttributeWhat);
    const int clusters = cutlass::KernelHardwareInfo::query_device_max_active_clusters(
        cluster_dims<Kernel>(), Kernel::MaxThreadsPerBlock,
        reinterpret_cast<const void*>(sm90_grouped_gemm_kernel<Kernel>));
    // 0 means the query failed (CUTLASS then sizes the grid from sm_count);
    // cache it anyway: it is not retried per call.
    cached[device] = std::max(clusters, 0);
  }
  *out = cutlass::KernelHardwareInfo{device, sm_count, cached[device]};
  return Check{};
}

// Kernel parameters depend only on (device, workspace address, g, beta):
// build them (four host TMA descriptor encodes) once and reuse them. `ws` is
// the workspace at `workspace` carved for g groups.
template <class G, class F>
Check sm90_cached_params(int device, int sm_count, const void* workspace, int g, bool accumulate,
                         const GroupArgumentArrays<G>& ws, typename G::Params* params) {
  struct Entry {
    int device;
    const void* workspace;
    int g;
    bool accumulate;
    int sm_count;
    typename G::Params params;
  };
  static std::mutex mu;
  static std::vector<Entry> cache;  // a handful of entries: one per live workspace
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const Entry& e : cache) {
      if (e.device == device && e.workspace == workspace && e.g == g && e.accumulate == accumulate &&
          (!F::kParamsKeyedOnSmCount || e.sm_count == sm_count)) {
        *params = e.params;
        return Check{};
      }
    }
  }
  cutlass::KernelHardwareInfo hw;
  if (Check c = sm90_kernel_hw_info<G, F>(device, sm_count, &hw); !c.ok()) return c;

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

  if (G::Kernel::can_implement(args) != true) return Check{MOEGEMM_STATUS_INTERNAL_ERROR, F::kRejected};
  typename G::Params p = G::Kernel::to_underlying_arguments(args, ws.cutlass);
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 16) cache.erase(cache.begin());
  cache.push_back(Entry{device, workspace, g, accumulate, sm_count, p});
  *params = p;
  return Check{};
}

}  // namespace moegemm::detail
