// Pieces shared by moegemm's own one-launch SM90 kernels (the variable-K
// wgrad kernel, wgrad_onelaunch_sm90.cuh, and the ragged-M uniform-K kernel,
// ragged_m_onelaunch_sm90.cuh): host-side TMA descriptor encoding, the
// per-device occupancy query, and the accumulator-to-output helpers of their
// epilogues (both keep a 128 x 128 FP32 tile per consumer warp group in
// CuTe's SM90 64xN accumulator layout, two 64-row halves).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cute/arch/copy_sm90_desc.hpp>
#include <cute/tensor.hpp>

#include "cutlass/numeric_types.h"
#include "kernels/sm90_common.cuh"

namespace moegemm::detail {

// ---------------------------------------------------------------------------
// Host: TMA descriptors

// cuTensorMapEncodeTiled through the runtime's driver entry point (looked up
// once): the library must load on machines without a driver (no link against
// libcuda), and a direct call would need it.
using EncodeTiledFn = decltype(&cuTensorMapEncodeTiled);
inline EncodeTiledFn encode_tiled_fn() {
  static const EncodeTiledFn fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      p = nullptr;
    return reinterpret_cast<EncodeTiledFn>(p);
  }();
  return fn;
}

template <class T>
constexpr CUtensorMapDataType tma_data_type() {
  if constexpr (sizeof(T) == 4) return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  else if constexpr (std::is_same_v<T, cutlass::half_t>) return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  else return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
}

// A tiled descriptor with the 128-byte swizzle (every box's inner extent is
// 128 bytes) and 256-byte L2 promotion; out-of-bounds elements read as zero.
// dims / strides innermost first; strides in bytes, rank - 1 of them.
template <class T>
bool encode_tiled(CUtensorMap* map, cuuint32_t rank, const void* base, const cuuint64_t* dims,
                  const cuuint64_t* strides_bytes, const cuuint32_t* box) {
  const cuuint32_t element_strides[3] = {1, 1, 1};
  const EncodeTiledFn encode = encode_tiled_fn();
  return encode != nullptr &&
         encode(map, tma_data_type<T>(), rank, const_cast<void*>(base), dims, strides_bytes, box, element_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------
// Host: one-time set-up per (kernel, device)

// Shared-memory opt-in and the number of clusters of kClusterSize CTAs
// (along x) that fit at once (the persistent grid), cached per device.
template <auto Kernel, int kClusterSize>
Check cached_max_clusters(int device, int sm_count, size_t smem_bytes, int threads, const char* what,
                          int* clusters) {
  constexpr int cluster_size = kClusterSize;
  static std::mutex mu;
  static std::vector<int> cached;
  std::lock_guard<std::mutex> lock(mu);
  if (device >= static_cast<int>(cached.size())) cached.resize(device + 1, -1);
  if (cached[device] < 0) {
    cudaError_t err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(smem_bytes));
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      return cuda_fail(err, what);
    }
    const Sm90LaunchConfig query(dim3(cluster_size * sm_count), dim3(threads), smem_bytes,
                                 dim3(cluster_size, 1, 1), nullptr, /*pdl=*/false);
    int n = 0;
    err = cudaOccupancyMaxActiveClusters(&n, Kernel, &query.cfg);
    if (err != cudaSuccess || n <= 0) {
      (void)cudaGetLastError();
      return cuda_fail(err == cudaSuccess ? cudaErrorInvalidConfiguration : err, what);
    }
    cached[device] = n;
  }
  *clusters = cached[device];
  return Check{};
}

// ---------------------------------------------------------------------------
// Device: the TMA pipeline and a consumer warp group's mainloop

// The kernels' prologue around the grid-dependency wait: the split sizes,
// inputs and outputs may come from the previous kernel in the stream, so
// nothing global is touched before the wait; sizes passed on the host (in
// the kernel parameters) are prepared before it, overlapping that kernel's
// tail. Thread 0 first prefetches the two operand descriptors.
template <class Prepare>
__device__ __forceinline__ void onelaunch_prologue(const CUtensorMap* a, const CUtensorMap* b, bool prefetch,
                                                   bool sizes_on_host, Prepare&& prepare) {
  if (threadIdx.x == 0 && prefetch) {
    cute::prefetch_tma_descriptor(reinterpret_cast<const cute::TmaDescriptor*>(a));
    cute::prefetch_tma_descriptor(reinterpret_cast<const cute::TmaDescriptor*>(b));
  }
  if (sizes_on_host) prepare();
  grid_dependency_wait();
  if (!sizes_on_host) prepare();
  allow_dependent_grids();
}

// Parameters of the kernels' TMA pipeline: warp group 0 produces (its thread
// 0 issues the loads of `tx_bytes` per stage), and each stage is consumed by
// one whole consumer warp group.
template <class Pipeline>
__device__ __forceinline__ typename Pipeline::Params onelaunch_pipeline_params(int warp_group, uint32_t tx_bytes) {
  typename Pipeline::Params pp;
  pp.transaction_bytes = tx_bytes;
  pp.role = warp_group == 0 ? Pipeline::ThreadCategory::Producer : Pipeline::ThreadCategory::Consumer;
  pp.is_leader = threadIdx.x == 0;
  pp.num_consumers = 128;
  return pp;
}

// `blocks` (>= 1) k-blocks of one tile from the TMA pipeline into `acc`
// (the first MMA overwrites it). One k-block of MMAs stays in flight: the
// one before has read its stage, which is then released. Past its last wait
// the warp group arrives on named barrier `this_done` (when `has_next`), so
// that the other consumer may start waiting on its own tile: the two run
// their mainloops in tile order (a stage's full barrier only tells phases
// apart by parity) while their MMAs and epilogues may overlap.
// before_mma(kb, stage) runs after each stage's wait (the wgrad kernel
// zeroes k tails there). kLowerHalfOnly: only the tile's first 64 rows are
// wanted; the MMAs of the other 64 are skipped (their accumulators are left
// as they are). A template parameter, not a branch inside the k loop, which
// would make ptxas serialise the warp group's MMAs.
template <bool kLowerHalfOnly, class TiledMma, class FragmentA, class FragmentB, class Accumulators, class Pipeline,
          class State, class BeforeMma>
__device__ __forceinline__ void consume_tile(TiledMma& mma, const FragmentA& tCrA, const FragmentB& tCrB,
                                             Accumulators& acc, Pipeline& pipeline, State& state, int blocks,
                                             bool has_next, int this_done, BeforeMma&& before_mma) {
  using namespace cute;
  mma.accumulate_ = GMMA::ScaleOut::Zero;
  warpgroup_fence_operand(acc);
  State previous;
  for (int kb = 0; kb < blocks; ++kb) {
    pipeline.consumer_wait(state);
    if (kb == blocks - 1 && has_next) cutlass::arch::NamedBarrier::arrive(256, this_done);
    const int stage = state.index();
    before_mma(kb, stage);
    warpgroup_arrive();
    if constexpr (kLowerHalfOnly) {
      static_assert(decltype(size<1>(tCrA))::value == 2, "a tile of two 64-row MMA blocks");
#pragma unroll
      for (int kk = 0; kk < size<2>(tCrA); ++kk) {
        cute::gemm(mma, tCrA(_, 0, kk, stage), tCrB(_, 0, kk, stage), acc(_, 0, 0));
        mma.accumulate_ = GMMA::ScaleOut::One;
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < size<2>(tCrA); ++kk) {
        cute::gemm(mma, tCrA(_, _, kk, stage), tCrB(_, _, kk, stage), acc);
        mma.accumulate_ = GMMA::ScaleOut::One;
      }
    }
    warpgroup_commit_batch();
    warpgroup_wait<1>();
    if (kb > 0) pipeline.consumer_release(previous);
    previous = state;
    ++state;
  }
  warpgroup_wait<0>();
  pipeline.consumer_release(previous);
  warpgroup_fence_operand(acc);
}

// ---------------------------------------------------------------------------
// Device: epilogue helpers

// Two FP32 results as one store of the output type (8 bytes for FP32, 4 for
// 16-bit types).
template <class ElementD>
__device__ __forceinline__ void store_pair(ElementD* dst, float v0, float v1) {
  if constexpr (sizeof(ElementD) == 4) {
    *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
  } else if constexpr (std::is_same_v<ElementD, cutlass::half_t>) {
    *reinterpret_cast<__half2*>(dst) = __floats2half2_rn(v0, v1);
  } else {
    *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(v0, v1);
  }
}

// Accumulator pair (e = 0, 1) of row half mm, row block i, column block jj:
// row 64 mm + 16 warp + 8 i + lane / 4, columns 8 jj + 2 (lane % 4) + {0, 1}.
template <class Accumulators>
__device__ __forceinline__ float acc_at(const Accumulators& acc, int e, int i, int jj, int mm) {
  return acc(cute::make_coord(cute::make_coord(e, i, jj), mm, 0));
}

// One slice of an output staging buffer: 64 rows x 128 bytes of row half mm,
// starting at column block `first_block`, written 128B-swizzled (as a TMA
// store with CU_TENSOR_MAP_SWIZZLE_128B reads it). `zeros`: zeros instead.
constexpr int kOneLaunchSliceRowBytes = 128;
template <class ElementD, class Accumulators>
__device__ __forceinline__ void stage_slice(char* buf, const Accumulators& acc, int mm, int first_block, int t,
                                            bool zeros) {
  constexpr int kBlocksPerSlice = kOneLaunchSliceRowBytes / static_cast<int>(sizeof(ElementD)) / 8;
  const int warp = t / 32, lane = t % 32;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = 16 * warp + 8 * i + lane / 4;  // within the slice; row % 8 == lane / 4
#pragma unroll
    for (int b = 0; b < kBlocksPerSlice; ++b) {
      const int jj = first_block + b;
      const float v0 = zeros ? 0.0f : acc_at(acc, 0, i, jj, mm);
      const float v1 = zeros ? 0.0f : acc_at(acc, 1, i, jj, mm);
      const int byte = (8 * b + 2 * (lane % 4)) * static_cast<int>(sizeof(ElementD));
      char* dst = buf + row * kOneLaunchSliceRowBytes + (((byte >> 4) ^ (row & 7)) << 4) + (byte & 15);
      store_pair(reinterpret_cast<ElementD*>(dst), v0, v1);
    }
  }
}

}  // namespace moegemm::detail
