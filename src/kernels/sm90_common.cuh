// Pieces shared by moegemm's SM90 grouped-GEMM kernel families (variable-K
// wgrad, uniform-K forward/dgrad): tile configurations, the per-group argument
// arrays in the caller's workspace, programmatic dependent launch, and small
// host helpers.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include <cuda_runtime_api.h>

#include <cute/tensor.hpp>

#include "cutlass/cutlass.h"
#include "cutlass/epilogue/dispatch_policy.hpp"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/gemm.h"

#include "validate.h"

namespace moegemm::detail {

// ---------------------------------------------------------------------------
// Tile configurations (CUTLASS SM90 ptr-array schedules)

struct PingpongTile128x128x64Cluster2x1 {
  using TileShape = cute::Shape<cute::_128, cute::_128, cute::_64>;
  using ClusterShape = cute::Shape<cute::_2, cute::_1, cute::_1>;
  using KernelSchedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecializedPingpong;
  using EpilogueSchedule = cutlass::epilogue::PtrArrayTmaWarpSpecializedPingpong;
};

struct CooperativeTile256x128x64Cluster2x1 {
  using TileShape = cute::Shape<cute::_256, cute::_128, cute::_64>;
  using ClusterShape = cute::Shape<cute::_2, cute::_1, cute::_1>;
  using KernelSchedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative;
};

struct CooperativeTile128x256x64Cluster2x1 {
  using TileShape = cute::Shape<cute::_128, cute::_256, cute::_64>;
  using ClusterShape = cute::Shape<cute::_2, cute::_1, cute::_1>;
  using KernelSchedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative;
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

}  // namespace moegemm::detail
