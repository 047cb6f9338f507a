// SM90 uniform-K kernel for the ragged-M form in one launch:
//   D[start_i + r, :] = A[start_i + r, :] · op_b(B_i),  r < m_i,  i < g,
// A [T, k] and D [T, n] contiguous, B contiguous [g, n, k] (op_b T) or
// [g, k, n] (op_b N), one k.
//
// The CUTLASS kernels of this family (uniform_k_sm90.cuh) need a setup kernel
// in front of the GEMM that writes every group's shape, pointers and four TMA
// descriptors; on an H100 that costs 4-5 µs of every call, most of it the
// descriptor writes (docs/perf-notes.md U14, U15). This kernel needs none:
//   - Each CTA holds the groups' clamped row offsets and first work units in
//     its own shared memory: with host sizes the launcher computes them and
//     passes them in the kernel parameters; a device array of sizes is read
//     after the grid-dependency wait and scanned by each CTA.
//   - A and D are read and written through one descriptor each over all T
//     rows, B through one 3-D descriptor over the groups. A row tile of a
//     group starts at any row of A; in the group's last row tile the rows past
//     the group belong to the next group (or lie past T: zeros), and their
//     results are simply not stored (when they fill the tile's second 64-row
//     half, its MMAs are skipped). K tails are zero-filled by TMA (k is the
//     descriptors' own extent).
//   - Output slices of 64 rows wholly inside the group are TMA stores; the
//     last, partial slice of a group is stored from registers, row by row.
//
// Work units: a 128-row tile of a group and a set of 2 or 4 128-column tiles,
// one per CTA of a 1x2 or 1x4 cluster (the CTAs multicast the shared A tile
// to each other). Units are numbered group by group, the column set outer
// and the row tile inner, so
// that the CTAs working on a weight tile at the same time are neighbours and
// read it from L2. Warp specialisation as in the one-launch wgrad kernel:
// warp group 0 produces (one thread issues the TMA loads of a 6-stage
// pipeline), warp groups 1 and 2 consume alternate units (ping-pong), each
// with its own output staging buffers, so one's epilogue overlaps the other's
// mainloop.
//
// Served (ragged_m_onelaunch_serves, config_select.h): overwriting calls
// (no accumulation, no zero_unused_rows), contiguous B, at most 256 groups;
// the rest stays on the CUTLASS kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cub/block/block_scan.cuh>
#include <cute/arch/copy_sm90_desc.hpp>
#include <cute/arch/copy_sm90_tma.hpp>
#include <cute/arch/mma_sm90.hpp>
#include <cute/tensor.hpp>

#include "cutlass/arch/barrier.h"
#include "cutlass/arch/reg_reconfig.h"
#include "cutlass/pipeline/sm90_pipeline.hpp"

#include "config_select.h"
#include "kernels/onelaunch_common.cuh"
#include "kernels/sm90_common.cuh"
#include "kernels/uniform_k_sm90.h"

namespace moegemm::detail::ragged_onelaunch {

constexpr int kTileM = 128, kTileN = 128, kTileK = 64;
// The CTAs of a cluster (2 or 4, Params::cluster_n) split 256 or 512
// columns and share the A tile (each loads 128 / cluster_n of its rows).
constexpr int kMaxClusterN = 4;
constexpr int kStages = 6;
constexpr int kThreads = 384;  // producer warp group + 2 consumer warp groups
constexpr int kMaxGroups = kRaggedOneLaunchMaxGroups;
static_assert(kMaxGroups + 1 <= kThreads, "one group per thread in prepare_groups");
constexpr int kHalfBytes = 64 * kTileK * 2;  // 64 rows (or columns) x 64 k of a 16-bit operand: 8 KB
constexpr int kOperandStageBytes = 2 * kHalfBytes;
constexpr int kStageTxBytes = 2 * kOperandStageBytes;
constexpr int kSliceRows = 64;
constexpr int kSliceRowBytes = kOneLaunchSliceRowBytes;
constexpr int kEpiBufferBytes = kSliceRows * kSliceRowBytes;
// L2 eviction priorities of the operand loads (docs/perf-notes.md U22): a
// weight tile that only one row tile of its group reads is streamed through
// L2 first-out; A, re-read by every column set of its rows, is kept last-out
// when all of it is small beside the 50 MB L2, so the weights streaming past
// do not evict it.
constexpr uint64_t kCacheHintNormal = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_NORMAL);
constexpr uint64_t kCacheHintFirst = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_FIRST);
constexpr uint64_t kCacheHintLast = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_LAST);
constexpr int64_t kEvictLastMaxABytes = int64_t{16} << 20;

using Pipeline = cutlass::PipelineTmaAsync<kStages>;

// Operand tiles in shared memory, 128-byte swizzle. A [rows, k] is K-major:
// row r of a stage at 128 r bytes, so the two 64-row halves (one TMA box each,
// one per CTA of the pair) are 8 KB apart. B is K-major for op_b T (one box of
// 128 columns x 64 k) and N-major for op_b N (two boxes of 64 columns x 64 k,
// 8 KB apart).
template <class AB>
using SmemLayoutA = decltype(cute::tile_to_shape(
    cute::GMMA::Layout_K_SW128_Atom<AB>{}, cute::Shape<cute::Int<kTileM>, cute::Int<kTileK>, cute::Int<kStages>>{}));
template <class AB, bool kBKMajor>
using SmemLayoutB = std::conditional_t<
    kBKMajor,
    decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW128_Atom<AB>{},
                                 cute::Shape<cute::Int<kTileN>, cute::Int<kTileK>, cute::Int<kStages>>{})),
    decltype(cute::tile_to_shape(cute::GMMA::Layout_MN_SW128_Atom<AB>{},
                                 cute::Shape<cute::Int<kTileN>, cute::Int<kTileK>, cute::Int<kStages>>{},
                                 cute::Step<cute::_2, cute::_1, cute::_3>{}))>;
// One consumer warp group computes the whole 128 x 128 tile (2 x 64-row MMAs).
template <class AB, bool kBKMajor>
using TiledMma = decltype(cute::make_tiled_mma(
    cute::GMMA::ss_op_selector<AB, AB, float, cute::Shape<cute::_64, cute::Int<kTileN>, cute::Int<kTileK>>,
                               cute::GMMA::Major::K, kBKMajor ? cute::GMMA::Major::K : cute::GMMA::Major::MN>()));

struct alignas(1024) SharedStorage {
  alignas(1024) char a[kStages][kOperandStageBytes];
  alignas(1024) char b[kStages][kOperandStageBytes];
  alignas(1024) char epi[2][2][kEpiBufferBytes];  // [consumer][buffer]; cub's scratch before that
  int32_t group_start[kMaxGroups + 1];  // clamped first row; [g] = end of the last group
  int32_t unit_begin[kMaxGroups + 1];   // first work unit; [g] = all units
  Pipeline::SharedStorage pipeline;
};

struct Params {
  CUtensorMap tma_a;  // A [T][k], box 64 (k) x 64 rows
  CUtensorMap tma_b;  // op_b T: B [g][n][k], box 64 x 128 x 1; op_b N: B [g][k][n], box 64 x 64 x 1
  CUtensorMap tma_d;  // D [T][n], box (128 bytes) x 64 rows
  void* d;
  int g;
  int n;
  int k_blocks;
  int total_rows;
  int n_tiles;
  int cluster_n;  // 2 or 4
  int n_sets;     // ceil(n_tiles / cluster_n): column-tile sets of a cluster
  const int64_t* device_sizes;  // nullptr: the host tables below
  uint64_t a_cache_hint;  // kCacheHintLast for an A of at most kEvictLastMaxABytes
  // Host sizes: what prepare_groups makes of them, computed by the launcher
  // (first g + 1 entries): each group's clamped first row ([g]: the end of
  // the last group) and first work unit ([g]: all units). Groups that run as
  // cuBLAS GEMMs beside the kernel get no units.
  int32_t host_group_start[kMaxGroups + 1];
  int32_t host_unit_begin[kMaxGroups + 1];
};

// ---------------------------------------------------------------------------
// Device pieces

// Row offsets and first work units of the call's groups, in shared memory.
// All threads; ends with a barrier. Sizes follow moegemm.h's clamping rule
// (each clamped to [0, T]; start_i = min(s_0 + ... + s_{i-1}, T),
// m_i = min(start_i + s_i, T) - start_i), as the setup kernel of the CUTLASS
// kernels applies it. Host sizes come as finished tables: a copy instead of
// two block scans, on the path to the first load (0.6 µs less per call on an
// H100).
inline __device__ void prepare_groups(const Params& p, SharedStorage& s) {
  const int i = static_cast<int>(threadIdx.x);
  if (p.device_sizes == nullptr) {
    if (i <= p.g) {
      s.group_start[i] = p.host_group_start[i];
      s.unit_begin[i] = p.host_unit_begin[i];
    }
    __syncthreads();
    return;
  }
  using Scan64 = cub::BlockScan<int64_t, kThreads>;
  using Scan32 = cub::BlockScan<int32_t, kThreads>;
  static_assert(sizeof(typename Scan64::TempStorage) <= sizeof(s.epi));
  static_assert(sizeof(typename Scan32::TempStorage) <= sizeof(s.epi));
  const int64_t T = p.total_rows;
  int64_t size = 0;
  if (i < p.g) {
    const int64_t v = p.device_sizes[i];
    size = v < 0 ? 0 : (v > T ? T : v);  // sums stay below g * T < 2^40
  }
  int64_t inclusive;
  Scan64(*reinterpret_cast<typename Scan64::TempStorage*>(&s.epi[0][0][0])).InclusiveSum(size, inclusive);
  const int64_t start = min(inclusive - size, T);
  const int64_t end = min(inclusive, T);
  // The host bounds the units of any sizes: (T / 128 + g) x n_sets < 2^31.
  const int32_t units = static_cast<int32_t>((end - start + kTileM - 1) / kTileM) * p.n_sets;
  __syncthreads();  // the scan storage is reused
  int32_t units_inclusive, units_total;
  Scan32(*reinterpret_cast<typename Scan32::TempStorage*>(&s.epi[0][0][0]))
      .InclusiveSum(units, units_inclusive, units_total);
  if (i < p.g) {
    s.group_start[i] = static_cast<int32_t>(start);
    s.unit_begin[i] = units_inclusive - units;
    if (i == p.g - 1) {
      s.group_start[p.g] = static_cast<int32_t>(end);
      s.unit_begin[p.g] = units_total;
    }
  }
  __syncthreads();
}

struct WorkTile {
  int group;
  int row0;        // first row of the tile in A and D
  int valid_rows;  // rows of the tile inside the group (1..128)
  int row_tiles;   // of the group
  int n_tile;      // may be n_tiles (past n) for the second CTA of an odd count
};

__device__ __forceinline__ WorkTile work_tile(const Params& p, const SharedStorage& s, int unit, int cta_rank) {
  // The group: the last one whose first unit is <= unit (empty and skipped
  // groups have no units, so they are never the last such one).
  int lo = 0, hi = p.g - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (s.unit_begin[mid] <= unit) lo = mid;
    else hi = mid - 1;
  }
  const int start = s.group_start[lo];
  const int rows = s.group_start[lo + 1] - start;
  const int row_tiles = (rows + kTileM - 1) / kTileM;
  const int r = unit - s.unit_begin[lo];
  const int set = r / row_tiles;
  const int m_tile = r - set * row_tiles;
  WorkTile w;
  w.group = lo;
  w.row0 = start + m_tile * kTileM;
  w.valid_rows = min(kTileM, rows - m_tile * kTileM);
  w.row_tiles = row_tiles;
  w.n_tile = set * p.cluster_n + cta_rank;
  return w;
}

// The units of one cluster, static and the same in all its CTAs: unit
// r * clusters + c in round r.
struct ClusterWork {
  int cluster, clusters, total;
  __device__ ClusterWork(int total_units)
      : cluster(static_cast<int>(cute::cluster_id_in_grid().x)),
        clusters(static_cast<int>(cute::cluster_grid_dims().x)),
        total(total_units) {}
  __device__ int rounds() const { return (total + clusters - 1) / clusters; }
  __device__ int unit(int r) const { return r * clusters + cluster; }  // >= total: none this round
};

// Rows [row0, row0 + rows) of half mm of the tile, from registers (the
// group's last, partial slice: a TMA store would write the next group's rows).
template <class ElementD, class Accumulators>
__device__ void store_partial_half(const Params& p, const WorkTile& w, const Accumulators& acc, int mm, int rows,
                                   int t) {
  const int warp = t / 32, lane = t % 32;
  const int n0 = w.n_tile * kTileN;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = 16 * warp + 8 * i + lane / 4;
    if (row >= rows) continue;
    ElementD* out_row = static_cast<ElementD*>(p.d) + static_cast<size_t>(w.row0 + 64 * mm + row) * p.n;
#pragma unroll
    for (int jj = 0; jj < kTileN / 8; ++jj) {
      const int col = n0 + 8 * jj + 2 * (lane % 4);
      if (col >= p.n) break;  // n is a multiple of 8: col + 1 < n too
      store_pair(out_row + col, acc_at(acc, 0, i, jj, mm), acc_at(acc, 1, i, jj, mm));
    }
  }
}

// The consumer warp group's tile to D: 64-row slices of 128 bytes staged in
// one of its two buffers (while the other one's TMA store drains), or, for
// the group's partial last half tile, straight from registers.
template <class ElementD, class Accumulators>
__device__ void store_tile(const Params& p, SharedStorage& s, int consumer, int t, const WorkTile& w,
                           const Accumulators& acc, uint32_t& slice_count) {
  constexpr int kSliceCols = kSliceRowBytes / sizeof(ElementD);
  constexpr int kColSlices = kTileN / kSliceCols;
  constexpr int kBlocksPerSlice = kSliceCols / 8;  // 8-column accumulator blocks
  if (w.n_tile >= p.n_tiles) return;  // the second tile of an odd count: past n
  const int n0 = w.n_tile * kTileN;
  const int barrier_id = 1 + consumer;
#pragma unroll
  for (int mm = 0; mm < 2; ++mm) {
    const int rows = w.valid_rows - 64 * mm;
    if (rows <= 0) break;
    if (rows < kSliceRows) {
      store_partial_half<ElementD>(p, w, acc, mm, rows, t);
      continue;
    }
#pragma unroll
    for (int slice = 0; slice < kColSlices; ++slice) {
      const int col0 = n0 + slice * kSliceCols;
      if (col0 >= p.n) break;
      char* buf = s.epi[consumer][slice_count & 1];
      // The store that last read this buffer (two slices ago) must be done with it.
      if (t == 0) cute::tma_store_wait<1>();
      cutlass::arch::NamedBarrier::sync(128, barrier_id);
      stage_slice<ElementD>(buf, acc, mm, slice * kBlocksPerSlice, t, /*zeros=*/false);
      cutlass::arch::fence_view_async_shared();  // generic writes -> TMA reads
      cutlass::arch::NamedBarrier::sync(128, barrier_id);
      if (t == 0) {
        cute::SM90_TMA_STORE_2D::copy(&p.tma_d, buf, col0, w.row0 + 64 * mm);
        cute::tma_store_arrive();
      }
      ++slice_count;
    }
  }
}

template <class AB, class ElementD, bool kBKMajor>
__device__ void consume(const Params& p, SharedStorage& s, Pipeline& pipeline, int consumer, int cta_rank,
                        int total_units) {
  using namespace cute;
  const int t = static_cast<int>(threadIdx.x) % 128;
  TiledMma<AB, kBKMajor> mma;
  auto thr = mma.get_thread_slice(t);
  Tensor sA = make_tensor(make_smem_ptr(reinterpret_cast<AB*>(&s.a[0][0])), SmemLayoutA<AB>{});
  Tensor sB = make_tensor(make_smem_ptr(reinterpret_cast<AB*>(&s.b[0][0])), SmemLayoutB<AB, kBKMajor>{});
  Tensor tCrA = thr.make_fragment_A(thr.partition_A(sA));  // smem descriptors
  Tensor tCrB = thr.make_fragment_B(thr.partition_B(sB));
  Tensor acc = partition_fragment_C(mma, Shape<Int<kTileM>, Int<kTileN>>{});

  cutlass::PipelineState<kStages> state;
  uint32_t slice_count = 0;
  // The two consumers run their mainloops in unit order (consume_tile).
  const int other_done = 3 + (1 - consumer), this_done = 3 + consumer;
  const ClusterWork work(total_units);
  const int blocks = p.k_blocks;
  int local = 0;  // index of the unit among this CTA's
  for (int r = 0; r < work.rounds(); ++r) {
    const int unit = work.unit(r);
    if (unit >= total_units) continue;
    const int index = local++;
    if ((index & 1) != consumer) {  // the other consumer's unit: skip its stages
      state.advance(blocks);
      continue;
    }
    const WorkTile w = work_tile(p, s, unit, cta_rank);
    const bool has_next = work.unit(r + 1) < total_units;
    if (index > 0) cutlass::arch::NamedBarrier::sync(256, other_done);
    // A tile with no row in its lower half multiplies the upper half only.
    if (w.valid_rows <= 64)
      consume_tile<true>(mma, tCrA, tCrB, acc, pipeline, state, blocks, has_next, this_done, [](int, int) {});
    else
      consume_tile<false>(mma, tCrA, tCrB, acc, pipeline, state, blocks, has_next, this_done, [](int, int) {});
    store_tile<ElementD>(p, s, consumer, t, w, acc, slice_count);
  }
  // Shared memory must outlive the reads of the last stores.
  if (t == 0) cute::tma_store_wait<0>();
}

template <bool kBKMajor>
__device__ void produce(const Params& p, SharedStorage& s, Pipeline& pipeline, int cta_rank, int total_units) {
  auto state = cutlass::make_producer_start_state<Pipeline>();
  const ClusterWork work(total_units);
  const int a_rows = kTileM / p.cluster_n;  // this CTA's share of the A tile
  const uint16_t all_ctas = static_cast<uint16_t>((1 << p.cluster_n) - 1);
  for (int r = 0; r < work.rounds(); ++r) {
    const int unit = work.unit(r);
    if (unit >= total_units) continue;
    const WorkTile w = work_tile(p, s, unit, cta_rank);
    const int n0 = w.n_tile * kTileN;
    const uint64_t hb = w.row_tiles == 1 ? kCacheHintFirst : kCacheHintNormal;
    for (int kb = 0; kb < p.k_blocks; ++kb) {
      pipeline.producer_acquire(state);
      uint64_t* bar = pipeline.producer_get_barrier(state);
      const int k0 = kb * kTileK;
      char* a = &s.a[state.index()][0];
      char* b = &s.b[state.index()][0];
      // This CTA's share of the common A tile, to every CTA of the cluster
      // (rows past T read as zeros).
      cute::SM90_TMA_LOAD_MULTICAST_2D::copy(&p.tma_a, bar, all_ctas, p.a_cache_hint,
                                             a + cta_rank * a_rows * kTileK * 2, k0, w.row0 + a_rows * cta_rank);
      if constexpr (kBKMajor) {
        cute::SM90_TMA_LOAD_3D::copy(&p.tma_b, bar, hb, b, k0, n0, w.group);
      } else {
        cute::SM90_TMA_LOAD_3D::copy(&p.tma_b, bar, hb, b, n0, k0, w.group);
        cute::SM90_TMA_LOAD_3D::copy(&p.tma_b, bar, hb, b + kHalfBytes, n0 + 64, k0, w.group);
      }
      ++state;
    }
  }
  // Do not exit while the other CTA may still multicast into this one.
  pipeline.producer_tail(state);
}

template <class AB, class ElementD, bool kBKMajor>
__global__ void __launch_bounds__(kThreads, 1) ragged_m_onelaunch_kernel(const __grid_constant__ Params p) {
  extern __shared__ char smem_raw[];
  // The dynamic shared memory window starts 1024-byte aligned (no static
  // shared memory here), as the 128-byte swizzle needs.
  SharedStorage& s = *reinterpret_cast<SharedStorage*>(smem_raw);
  const int warp_group = static_cast<int>(threadIdx.x) / 128;
  const int cta_rank = static_cast<int>(cute::block_rank_in_cluster());

  const auto pp = onelaunch_pipeline_params<Pipeline>(warp_group, kStageTxBytes);
  // The cluster lies along the grid's x; the pipeline needs its shape to
  // know which CTAs multicast into this one (all of them).
  Pipeline pipeline = p.cluster_n == 4 ? Pipeline(s.pipeline, pp, cute::Shape<cute::_4, cute::_1, cute::_1>{})
                                       : Pipeline(s.pipeline, pp, cute::Shape<cute::_2, cute::_1, cute::_1>{});
  cute::cluster_arrive_relaxed();  // barrier init visible to the other CTA (waited below)
  onelaunch_prologue(&p.tma_a, &p.tma_b, /*prefetch=*/true, p.device_sizes == nullptr, [&] { prepare_groups(p, s); });
  const int total_units = s.unit_begin[p.g];
  cute::cluster_wait();

  if (warp_group == 0) {
    cutlass::arch::warpgroup_reg_dealloc<40>();
    if (threadIdx.x == 0) produce<kBKMajor>(p, s, pipeline, cta_rank, total_units);
  } else {
    cutlass::arch::warpgroup_reg_alloc<232>();
    consume<AB, ElementD, kBKMajor>(p, s, pipeline, warp_group - 1, cta_rank, total_units);
  }
}

// ---------------------------------------------------------------------------
// Host launcher

constexpr size_t kDynamicSmemBytes = sizeof(SharedStorage);
static_assert(sizeof(Params) <= 4096, "kernel parameters: at most 4 KB without the large-parameter opt-in");
static_assert(kDynamicSmemBytes <= 227 * 1024, "SM90 allows 227 KB of shared memory per block");

// The occupancy (clusters that fit at once) of the kernel for either cluster size.
template <auto Kernel>
Check max_clusters_of(const UniformKLaunch& l, int cluster_n, int* clusters) {
  constexpr const char* what = "ragged-M one-launch kernel set-up";
  return cluster_n == 4
             ? cached_max_clusters<Kernel, 4>(l.device, l.sm_count, kDynamicSmemBytes, kThreads, what, clusters)
             : cached_max_clusters<Kernel, 2>(l.device, l.sm_count, kDynamicSmemBytes, kThreads, what, clusters);
}

// Enqueues the call. The dispatcher has checked ragged_m_onelaunch_serves.
template <class AB, class ElementD, bool kBKMajor>
Check run(const UniformKLaunch& l) {
  const int cluster_n = l.tile == UniformKTile::kOneLaunch128x128Cluster1x4 ? 4 : 2;
  const moegemm_ragged_m_problem_t& p = *l.ragged;
  const int g = p.num_groups;
  const bool host_sizes = p.group_sizes_location == MOEGEMM_MEMORY_HOST;
  if (p.total_rows == 0) return Check{};  // no row of D exists

  Params prm;  // the host array is filled up to g only
  prm.d = p.d;
  prm.g = g;
  prm.n = static_cast<int>(p.n);
  prm.k_blocks = static_cast<int>((p.k + kTileK - 1) / kTileK);
  prm.total_rows = static_cast<int>(p.total_rows);
  prm.n_tiles = static_cast<int>((p.n + kTileN - 1) / kTileN);
  prm.cluster_n = cluster_n;
  prm.n_sets = (prm.n_tiles + cluster_n - 1) / cluster_n;
  prm.device_sizes = host_sizes ? nullptr : p.group_sizes;
  prm.a_cache_hint =
      p.total_rows * p.k * int64_t{sizeof(AB)} <= kEvictLastMaxABytes ? kCacheHintLast : kCacheHintNormal;
  int64_t units = int64_t{g} * prm.n_sets;  // the most there can be with device sizes
  if (host_sizes) {
    // prepare_groups' tables (and the grid size; a call with no rows is skipped).
    int64_t start = 0, row_tiles = 0;
    for (int i = 0; i < g; ++i) {
      const int64_t v = std::clamp<int64_t>(p.group_sizes[i], 0, p.total_rows);
      const int64_t end = std::min(start + v, p.total_rows);
      prm.host_group_start[i] = static_cast<int32_t>(start);
      prm.host_unit_begin[i] = static_cast<int32_t>(row_tiles * prm.n_sets);
      const bool skip = l.skip_groups != nullptr && l.skip_groups[i];
      if (!skip) row_tiles += (end - start + kTileM - 1) / kTileM;
      start = end;
    }
    prm.host_group_start[g] = static_cast<int32_t>(start);
    prm.host_unit_begin[g] = static_cast<int32_t>(row_tiles * prm.n_sets);
    if (row_tiles == 0) return Check{};  // every group empty: nothing to write
    units = row_tiles * prm.n_sets;
  } else {
    units += (p.total_rows + kTileM - 1) / kTileM * prm.n_sets;
  }

  const cuuint64_t a_dims[2] = {static_cast<cuuint64_t>(p.k), static_cast<cuuint64_t>(p.total_rows)};
  const cuuint64_t a_strides[1] = {static_cast<cuuint64_t>(p.k) * sizeof(AB)};
  const cuuint32_t a_box[2] = {64, static_cast<cuuint32_t>(kTileM / cluster_n)};
  const cuuint64_t b_inner = static_cast<cuuint64_t>(kBKMajor ? p.k : p.n);
  const cuuint64_t b_outer = static_cast<cuuint64_t>(kBKMajor ? p.n : p.k);
  const cuuint64_t b_dims[3] = {b_inner, b_outer, static_cast<cuuint64_t>(g)};
  const cuuint64_t b_strides[2] = {b_inner * sizeof(AB), b_inner * b_outer * sizeof(AB)};
  const cuuint32_t b_box[3] = {64, kBKMajor ? 128u : 64u, 1};
  const cuuint64_t d_dims[2] = {static_cast<cuuint64_t>(p.n), static_cast<cuuint64_t>(p.total_rows)};
  const cuuint64_t d_strides[1] = {static_cast<cuuint64_t>(p.n) * sizeof(ElementD)};
  const cuuint32_t d_box[2] = {kSliceRowBytes / static_cast<cuuint32_t>(sizeof(ElementD)), kSliceRows};
  if (!encode_tiled<AB>(&prm.tma_a, 2, p.a, a_dims, a_strides, a_box) ||
      !encode_tiled<AB>(&prm.tma_b, 3, p.b, b_dims, b_strides, b_box) ||
      !encode_tiled<ElementD>(&prm.tma_d, 2, p.d, d_dims, d_strides, d_box))
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "cuTensorMapEncodeTiled rejected a ragged-M one-launch descriptor"};

  constexpr auto kernel = ragged_m_onelaunch_kernel<AB, ElementD, kBKMajor>;
  int max_clusters = 0;
  if (Check c = max_clusters_of<kernel>(l, cluster_n, &max_clusters); !c.ok()) return c;
  const int clusters = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(units, max_clusters)));
  const Sm90LaunchConfig launch(dim3(cluster_n * clusters), dim3(kThreads), kDynamicSmemBytes,
                                dim3(cluster_n, 1, 1), l.stream, /*pdl=*/true);
  if (cudaError_t err = cudaLaunchKernelEx(&launch.cfg, kernel, prm); err != cudaSuccess) {
    (void)cudaGetLastError();
    return cuda_fail(err, "launch of the ragged-M one-launch kernel");
  }
  return Check{};
}

}  // namespace moegemm::detail::ragged_onelaunch
