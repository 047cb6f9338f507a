// SM90 variable-K weight-gradient kernel in one launch:
//   D_i[m, n] (+)= dY_i^T · X_i,  i < g,  K = k_i ragged.
//
// The CUTLASS family (wgrad_sm90.cuh) needs a setup kernel in front of the
// GEMM: its scheduler and collectives read per-group shapes, pointers and TMA
// descriptors from memory. Measured on an H100 that setup costs ~10% of the
// seed grid (docs/perf-notes.md #13) and zero-filling empty groups holds every
// SM before the GEMM starts. This kernel needs neither:
//   - Each CTA turns the split sizes (host values in the kernel's parameters,
//     or a device array read after the grid-dependency wait) into clamped row
//     offsets and an order of the groups (by decreasing k) in its own shared
//     memory. No argument arrays, no workspace, nothing written before the
//     GEMM: the tile of a work unit follows from its index.
//   - A and B are read through one TMA descriptor each over all T rows of dY
//     and X (built on the host per call). A group's K range starts at any row;
//     the last k-block of a group also covers rows of the next group, which
//     the consumer zeroes in shared memory before its MMAs (rows past T are
//     zero-filled by TMA).
//   - Empty groups are ordinary tiles with no k-block (their zeros are stored
//     like any result) or, when accumulating, are not scheduled at all.
//   - Accumulation (FP32) is a load-add-store from the consumer's registers.
//
// Warp specialisation: warp group 0 is the producer (one thread issues TMA
// loads into a 6-stage pipeline; the 2 CTAs of a cluster share, via
// multicast, the X tile of their common column), warp groups 1 and 2 are
// consumers that take alternate tiles of their CTA. Their mainloops run in
// tile order (ping-pong); each has its own output staging buffers, so that
// their epilogues overlap each other as well as the other's mainloop (at
// small K the output store is nearly all of the work).
#pragma once

#include <cstdint>
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
#include "kernels/wgrad_sm90.h"

namespace moegemm::detail::onelaunch {

constexpr int kTileM = 128, kTileN = 128, kTileK = 64;
constexpr int kClusterM = 2;  // the CTA pair shares the X (B) tile of one column
constexpr int kStages = 6;  // 4 (more output staging) measured 10-15% slower at 256-512 tokens per group
constexpr int kThreads = 384;  // producer warp group + 2 consumer warp groups
constexpr int kMaxGroups = kOneLaunchMaxGroups;  // more: the CUTLASS ping-pong kernel serves
constexpr int kGroupsPerThread = (kMaxGroups + kThreads - 1) / kThreads;
constexpr int kHalfBytes = 64 * kTileK * 2;       // one 64-wide half of an operand tile (8 KB)
constexpr int kOperandStageBytes = 2 * kHalfBytes;  // 128 x 64 BF16
constexpr int kStageTxBytes = 2 * kOperandStageBytes;
// Output staging (contiguous D): slices of 64 rows x 128 bytes (32 FP32 or 64
// BF16 columns), 128B-swizzled as the TMA store reads them; two buffers per
// consumer. Pointer lists are stored from registers (no descriptor per group).
constexpr int kSliceRows = 64;
constexpr int kSliceRowBytes = kOneLaunchSliceRowBytes;
constexpr int kEpiBufferBytes = kSliceRows * kSliceRowBytes;
// Above this many tokens per group on average, the groups are scheduled by
// decreasing k (serpentine over the clusters, ClusterWork): 5-14% faster at
// 256 tokens per group on an H100, within noise at 64-128 (perf-notes #22).
constexpr int kSortMinAvgTokens = 128;
constexpr uint64_t kCacheHintNormal = 0x1000000000000000ull;  // TMA::CacheHintSm90::EVICT_NORMAL

using Pipeline = cutlass::PipelineTmaAsync<kStages>;
using ClusterShape = cute::Shape<cute::Int<kClusterM>, cute::_1, cute::_1>;

// Operand tiles in shared memory: M- (N-) contiguous, 128-byte swizzle, the
// two 64-wide halves of a tile 8 KB apart (each is one TMA box of 64 x 64).
using SmemAtom = cute::GMMA::Layout_MN_SW128_Atom<cutlass::bfloat16_t>;
using SmemLayoutA = decltype(cute::tile_to_shape(
    SmemAtom{}, cute::Shape<cute::Int<kTileM>, cute::Int<kTileK>, cute::Int<kStages>>{},
    cute::Step<cute::_2, cute::_1, cute::_3>{}));
using SmemLayoutB = decltype(cute::tile_to_shape(
    SmemAtom{}, cute::Shape<cute::Int<kTileN>, cute::Int<kTileK>, cute::Int<kStages>>{},
    cute::Step<cute::_2, cute::_1, cute::_3>{}));
// One consumer warp group computes the whole 128 x 128 tile (2 x 64-row MMAs).
using TiledMma = decltype(cute::make_tiled_mma(
    cute::SM90_64x128x16_F32BF16BF16_SS<cute::GMMA::Major::MN, cute::GMMA::Major::MN>{}));

struct alignas(1024) SharedStorage {
  alignas(1024) cutlass::bfloat16_t a[kStages][kTileM * kTileK];
  alignas(1024) cutlass::bfloat16_t b[kStages][kTileN * kTileK];
  alignas(1024) char epi[2][2][kEpiBufferBytes];  // [consumer][buffer]; cub's scratch before that
  int32_t group_k[kMaxGroups];      // clamped token count
  int32_t group_start[kMaxGroups];  // clamped first row
  int16_t order[kMaxGroups];        // work slot -> group
  Pipeline::SharedStorage pipeline;
  int scheduled_groups;
  bool by_size;  // order sorted by decreasing k
};

struct Params {
  CUtensorMap tma_dy;   // dY [T][m], box 64 x 64
  CUtensorMap tma_x;    // X [T][n], box 64 x 64
  CUtensorMap tma_out;  // contiguous D [g][m][n], box (128 bytes) x 64 x 1: overwriting it
  void* out;            // contiguous D: accumulating into it (nullptr for pointer lists)
  int g;
  int m, n;
  int total_tokens;
  int m_tiles;  // multiple of kClusterM
  int n_tiles;
  bool accumulate;
  bool pointer_list;
  const int64_t* device_sizes;    // nullptr: host_sizes
  void* const* device_out_ptrs;   // device pointer list, or nullptr
  int32_t host_sizes[kMaxGroups];  // first g entries
  void* host_out_ptrs[kMaxGroups];
};

// ---------------------------------------------------------------------------
// Device pieces

// Offsets, order and scheduled-group count of the call, in shared memory.
// All threads; ends with a barrier. One block-wide scan gives both the row
// offsets and the non-empty count (packed: sum of k above, count below):
// non-empty groups take the first slots in index order, empty ones follow.
// When the groups are large enough for it to matter (kSortMinAvgTokens) the
// slots are instead sorted by decreasing k, so that the heaviest tiles start
// first and ClusterWork can balance the clusters' loads.
constexpr int kCountBits = 11;  // > log2(kMaxGroups)
static_assert((1 << kCountBits) > kMaxGroups);

inline __device__ void prepare_groups(const Params& p, SharedStorage& s) {
  using Scan = cub::BlockScan<int64_t, kThreads>;
  static_assert(sizeof(typename Scan::TempStorage) <= sizeof(s.epi));
  auto& scan_temp = *reinterpret_cast<typename Scan::TempStorage*>(&s.epi[0][0][0]);
  const int tid = static_cast<int>(threadIdx.x);
  const int64_t T = p.total_tokens;
  constexpr int64_t kCountMask = (int64_t{1} << kCountBits) - 1;

  int64_t packed[kGroupsPerThread], inclusive[kGroupsPerThread], total;
  for (int j = 0; j < kGroupsPerThread; ++j) {
    const int i = tid * kGroupsPerThread + j;
    int64_t v = 0;
    if (i < p.g) v = p.device_sizes != nullptr ? p.device_sizes[i] : p.host_sizes[i];
    const int64_t k = v < 0 ? 0 : (v > T ? T : v);  // sums stay below g * T * 2^11 < 2^63
    packed[j] = (k << kCountBits) | (k > 0 ? 1 : 0);
  }
  Scan(scan_temp).InclusiveSum(packed, inclusive, total);
  const int nonempty_total = static_cast<int>(total & kCountMask);
  const bool by_size = p.g > 1 && T > int64_t{kSortMinAvgTokens} * p.g;
  for (int j = 0; j < kGroupsPerThread; ++j) {
    const int i = tid * kGroupsPerThread + j;
    const int64_t k = packed[j] >> kCountBits;
    const int64_t start = min((inclusive[j] >> kCountBits) - k, T);
    const int kc = static_cast<int>(min(inclusive[j] >> kCountBits, T) - start);
    if (i < p.g) {
      s.group_k[i] = kc;
      s.group_start[i] = static_cast<int32_t>(start);
      if (!by_size) {
        // Clamping can empty a group after the count: such a group keeps a
        // non-empty slot and simply has no k-block.
        const int before = static_cast<int>((inclusive[j] - packed[j]) & kCountMask);
        s.order[(packed[j] & 1) ? before : nonempty_total + (i - before)] = static_cast<int16_t>(i);
      }
    }
  }
  if (tid == 0) {
    s.scheduled_groups = nonempty_total;
    s.by_size = by_size;
  }
  if (by_size) {
    // Slot of a group: its rank by decreasing k, ties in index order (empty
    // groups last). Counting over at most 256 broadcast reads is cheaper here
    // than a block radix sort (several passes and barriers).
    __syncthreads();
    for (int j = 0; j < kGroupsPerThread; ++j) {
      const int i = tid * kGroupsPerThread + j;
      if (i >= p.g) continue;
      const int ki = s.group_k[i];
      int rank = 0;
      for (int q = 0; q < p.g; ++q) {
        const int kq = s.group_k[q];
        rank += (kq > ki || (kq == ki && q < i)) ? 1 : 0;
      }
      s.order[rank] = static_cast<int16_t>(i);
    }
  }
  __syncthreads();
}

struct WorkTile {
  int group;
  int m_tile, n_tile;
  int k;      // tokens
  int start;  // first row in dY / X
};

__device__ __forceinline__ WorkTile work_tile(const Params& p, const SharedStorage& s, int unit, int cta_rank) {
  const int pairs = p.m_tiles / kClusterM;
  const int per_group = pairs * p.n_tiles;
  const int slot = unit / per_group;
  const int r = unit - slot * per_group;
  WorkTile w;
  w.group = s.order[slot];
  w.m_tile = (r % pairs) * kClusterM + cta_rank;
  w.n_tile = r / pairs;
  w.k = s.group_k[w.group];
  w.start = s.group_start[w.group];
  return w;
}

__device__ __forceinline__ int k_blocks(int k) { return (k + kTileK - 1) / kTileK; }

// The work units of one cluster, static and the same in every CTA: unit
// r * clusters + c in round r, or, when the units are sorted by decreasing k,
// in serpentine order (odd rounds reversed), so that the cluster with the
// heaviest unit of a round gets the lightest of the next.
struct ClusterWork {
  int cluster, clusters, total;
  bool serpentine;
  __device__ ClusterWork(const SharedStorage& s, int total_units)
      : cluster(static_cast<int>(blockIdx.x) / kClusterM),
        clusters(static_cast<int>(gridDim.x) / kClusterM),
        total(total_units),
        serpentine(s.by_size) {}
  __device__ int rounds() const { return (total + clusters - 1) / clusters; }
  // Unit of round r; >= total when this cluster has none in it (last round).
  __device__ int unit(int r) const {
    return r * clusters + ((serpentine && (r & 1)) ? clusters - 1 - cluster : cluster);
  }
};

// Rows [valid, 64) of both operand tiles of a stage hold the next group's
// rows: zero them (16-byte stores; a k row of a 64-wide half is one 128-byte
// line, whatever the swizzle does inside it).
__device__ __forceinline__ void zero_k_tail(char* a_stage, char* b_stage, int valid, int t) {
  const int rows = kTileK - valid;
  const int chunks = 4 * rows * 8;
  for (int q = t; q < chunks; q += 128) {
    const int line = q >> 3;
    const int half = line / rows;  // 0, 1: A halves; 2, 3: B halves
    const int row = valid + (line - half * rows);
    char* base = (half < 2 ? a_stage : b_stage) + (half & 1) * kHalfBytes + row * 128 + (q & 7) * 16;
    *reinterpret_cast<uint4*>(base) = make_uint4(0, 0, 0, 0);
  }
}

// The consumer warp group's 128 x 128 result to D.
//   Contiguous D, overwritten: slices of 64 rows x 128 bytes, each staged in
//   one of the group's two buffers (while the other one's TMA store drains)
//   and written by a TMA store.
//   Pointer list, or accumulating: straight from registers (each quad of
//   threads writes 32 contiguous bytes of a row); accumulating, a row's
//   values are loaded, added and stored (only FP32 accumulates here, see
//   serves()).
// Accumulator element (e, i, jj) of row half mm sits at row
// 64 mm + 16 warp + 8 i + lane / 4, column 8 jj + 2 (lane % 4) + e (the SM90
// 64xN accumulator layout). `zeros`: store zeros instead (an empty group; the
// accumulators are only ever written by WGMMA, which keeps ptxas from
// serialising the MMAs).
template <class ElementD, class Accumulators>
__device__ void store_tile(const Params& p, SharedStorage& s, int consumer, int t, const WorkTile& w,
                           const Accumulators& acc, bool zeros, uint32_t& slice_count) {
  constexpr bool kFp32 = sizeof(ElementD) == 4;
  constexpr int kSliceCols = kSliceRowBytes / sizeof(ElementD);
  constexpr int kColSlices = kTileN / kSliceCols;
  constexpr int kBlocksPerSlice = kSliceCols / 8;  // 8-column accumulator blocks
  const int warp = t / 32, lane = t % 32;
  const int m0 = w.m_tile * kTileM, n0 = w.n_tile * kTileN;

  // Pointer lists, and accumulation into a contiguous D, are stored from
  // registers: no descriptor per group, and a load-add-store in the thread
  // measured faster than the TMA reduce-add in L2 (perf-notes #23).
  if (p.pointer_list || p.accumulate) {
    char* out = !p.pointer_list
                    ? static_cast<char*>(p.out) + static_cast<size_t>(w.group) * p.m * p.n * sizeof(ElementD)
                    : static_cast<char*>(p.device_out_ptrs != nullptr ? p.device_out_ptrs[w.group]
                                                                      : p.host_out_ptrs[w.group]);
    // A device list cannot be checked on the host: a NULL or misaligned entry
    // makes its group a no-op.
    if (out == nullptr || reinterpret_cast<uintptr_t>(out) % 16 != 0) return;
#pragma unroll
    for (int mm = 0; mm < 2; ++mm) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int row = m0 + 64 * mm + 16 * warp + 8 * i + lane / 4;
        if (row >= p.m) continue;
        ElementD* out_row = reinterpret_cast<ElementD*>(out) + static_cast<size_t>(row) * p.n;
        // Accumulating: the thread's 16 pairs of this row are all loaded
        // before any is stored (a load after a store to a computed address is
        // not hoisted: one memory round trip per pair was 2.5-3.5x slower).
        float2 old[kTileN / 8];
        if constexpr (kFp32) {
          if (p.accumulate) {
#pragma unroll
            for (int jj = 0; jj < kTileN / 8; ++jj) {
              const int col = n0 + 8 * jj + 2 * (lane % 4);
              old[jj] = col < p.n ? *reinterpret_cast<const float2*>(out_row + col) : make_float2(0.0f, 0.0f);
            }
          }
        }
#pragma unroll
        for (int jj = 0; jj < kTileN / 8; ++jj) {
          const int col = n0 + 8 * jj + 2 * (lane % 4);
          if (col >= p.n) break;  // n is a multiple of 8: col + 1 < n too
          float v0 = zeros ? 0.0f : acc_at(acc, 0, i, jj, mm);
          float v1 = zeros ? 0.0f : acc_at(acc, 1, i, jj, mm);
          if constexpr (kFp32) {
            if (p.accumulate) {
              v0 += old[jj].x;
              v1 += old[jj].y;
            }
          }
          store_pair(out_row + col, v0, v1);
        }
      }
    }
    return;
  }

  const int barrier_id = 1 + consumer;
#pragma unroll
  for (int mm = 0; mm < 2; ++mm) {
#pragma unroll
    for (int slice = 0; slice < kColSlices; ++slice) {
      char* buf = s.epi[consumer][slice_count & 1];
      // The store that last read this buffer (two slices ago) must be done with it.
      if (t == 0) cute::tma_store_wait<1>();
      cutlass::arch::NamedBarrier::sync(128, barrier_id);
      stage_slice<ElementD>(buf, acc, mm, slice * kBlocksPerSlice, t, zeros);
      cutlass::arch::fence_view_async_shared();  // generic writes -> TMA reads
      cutlass::arch::NamedBarrier::sync(128, barrier_id);
      if (t == 0) {
        const int col0 = n0 + slice * kSliceCols, row0 = m0 + 64 * mm;
        cute::SM90_TMA_STORE_3D::copy(&p.tma_out, buf, col0, row0, w.group);
        cute::tma_store_arrive();
      }
      ++slice_count;
    }
  }
}

template <class ElementD>
__device__ void consume(const Params& p, SharedStorage& s, Pipeline& pipeline, int consumer, int cta_rank,
                        int total_units) {
  using namespace cute;
  const int t = static_cast<int>(threadIdx.x) % 128;
  TiledMma mma;
  auto thr = mma.get_thread_slice(t);
  Tensor sA = make_tensor(make_smem_ptr(&s.a[0][0]), SmemLayoutA{});
  Tensor sB = make_tensor(make_smem_ptr(&s.b[0][0]), SmemLayoutB{});
  Tensor tCrA = thr.make_fragment_A(thr.partition_A(sA));  // smem descriptors
  Tensor tCrB = thr.make_fragment_B(thr.partition_B(sB));
  Tensor acc = partition_fragment_C(mma, Shape<Int<kTileM>, Int<kTileN>>{});

  cutlass::PipelineState<kStages> state;
  uint32_t slice_count = 0;
  // The two consumers run their mainloops in tile order (consume_tile).
  const int other_done = 3 + (1 - consumer), this_done = 3 + consumer;
  const ClusterWork work(s, total_units);
  int local = 0;  // index of the unit among this CTA's
  for (int r = 0; r < work.rounds(); ++r) {
    const int unit = work.unit(r);
    if (unit >= total_units) continue;
    const WorkTile w = work_tile(p, s, unit, cta_rank);
    const int blocks = k_blocks(w.k);
    const int index = local++;
    if ((index & 1) != consumer) {  // the other consumer's tile: skip its stages
      state.advance(blocks);
      continue;
    }
    const bool has_next = work.unit(r + 1) < total_units;
    if (index > 0) cutlass::arch::NamedBarrier::sync(256, other_done);
    if (blocks == 0) {
      if (has_next) cutlass::arch::NamedBarrier::arrive(256, this_done);
    } else {
      // Rows of a group's last k-block past its k belong to the next group.
      consume_tile<false>(mma, tCrA, tCrB, acc, pipeline, state, blocks, has_next, this_done, [&](int kb, int stage) {
        const int valid = w.k - kb * kTileK;
        if (valid < kTileK) {
          zero_k_tail(reinterpret_cast<char*>(&s.a[stage][0]), reinterpret_cast<char*>(&s.b[stage][0]), valid, t);
          cutlass::arch::fence_view_async_shared();  // generic writes -> WGMMA reads
          cutlass::arch::NamedBarrier::sync(128, 1 + consumer);
        }
      });
    }
    // Accumulating, a group emptied by clamping has nothing to add.
    if (!(p.accumulate && blocks == 0)) store_tile<ElementD>(p, s, consumer, t, w, acc, blocks == 0, slice_count);
  }
  // Shared memory must outlive the reads of the last stores.
  if (t == 0) cute::tma_store_wait<0>();
}

inline __device__ void produce(const Params& p, SharedStorage& s, Pipeline& pipeline, int cta_rank, int total_units) {
  auto state = cutlass::make_producer_start_state<Pipeline>();
  const ClusterWork work(s, total_units);
  for (int r = 0; r < work.rounds(); ++r) {
    const int unit = work.unit(r);
    if (unit >= total_units) continue;
    const WorkTile w = work_tile(p, s, unit, cta_rank);
    const int blocks = k_blocks(w.k);
    const int m0 = w.m_tile * kTileM, n0 = w.n_tile * kTileN;
    for (int kb = 0; kb < blocks; ++kb) {
      pipeline.producer_acquire(state);
      uint64_t* bar = pipeline.producer_get_barrier(state);
      const int row = w.start + kb * kTileK;
      char* a = reinterpret_cast<char*>(&s.a[state.index()][0]);
      char* b = reinterpret_cast<char*>(&s.b[state.index()][0]);
      cute::SM90_TMA_LOAD_2D::copy(&p.tma_dy, bar, kCacheHintNormal, a, m0, row);
      cute::SM90_TMA_LOAD_2D::copy(&p.tma_dy, bar, kCacheHintNormal, a + kHalfBytes, m0 + 64, row);
      // This CTA's half of the shared X tile, to both CTAs of the cluster.
      cute::SM90_TMA_LOAD_MULTICAST_2D::copy(&p.tma_x, bar, static_cast<uint16_t>((1 << kClusterM) - 1),
                                             kCacheHintNormal, b + cta_rank * kHalfBytes, n0 + 64 * cta_rank,
                                             row);
      ++state;
    }
  }
  // Do not exit while the other CTA may still multicast into this one.
  pipeline.producer_tail(state);
}

template <class ElementD>
__global__ void __launch_bounds__(kThreads, 1) wgrad_onelaunch_kernel(const __grid_constant__ Params p) {
  extern __shared__ char smem_raw[];
  // The dynamic shared memory window starts 1024-byte aligned (no static
  // shared memory here), as the 128-byte swizzle needs; CUTLASS's kernels
  // rely on the same. Six stages leave no room for alignment slack.
  SharedStorage& s = *reinterpret_cast<SharedStorage*>(smem_raw);
  const int warp_group = static_cast<int>(threadIdx.x) / 128;
  const int cta_rank = static_cast<int>(cute::block_rank_in_cluster());

  const auto pp = onelaunch_pipeline_params<Pipeline>(warp_group, kStageTxBytes);
  Pipeline pipeline(s.pipeline, pp, ClusterShape{});
  cute::cluster_arrive_relaxed();  // barrier init visible to the other CTA (waited below)
  // (No descriptors exist for X and dY without tokens.)
  onelaunch_prologue(&p.tma_dy, &p.tma_x, p.total_tokens > 0, p.device_sizes == nullptr,
                     [&] { prepare_groups(p, s); });
  // Accumulating, empty groups are left as they are: only the non-empty
  // ones (sorted first) get tiles.
  const int scheduled = p.accumulate ? s.scheduled_groups : p.g;
  const int total_units = scheduled * (p.m_tiles / kClusterM) * p.n_tiles;
  cute::cluster_wait();

  if (warp_group == 0) {
    cutlass::arch::warpgroup_reg_dealloc<40>();
    if (threadIdx.x == 0) produce(p, s, pipeline, cta_rank, total_units);
  } else {
    cutlass::arch::warpgroup_reg_alloc<232>();
    consume<ElementD>(p, s, pipeline, warp_group - 1, cta_rank, total_units);
  }
}

// ---------------------------------------------------------------------------
// Host launcher

// Row-major BF16 [rows][cols], loaded in 64 x 64 boxes.
inline bool encode_operand(CUtensorMap* map, const void* base, int64_t rows, int64_t cols) {
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, kTileK};
  return encode_tiled<cutlass::bfloat16_t>(map, 2, base, dims, strides, box);
}

// Contiguous D [g][m][n], stored in slices of 128 bytes x 64 rows (kSliceRows).
template <class ElementD>
bool encode_output(CUtensorMap* map, void* base, int g, int64_t m, int64_t n) {
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(n), static_cast<cuuint64_t>(m), static_cast<cuuint64_t>(g)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(n) * sizeof(ElementD),
                                 static_cast<cuuint64_t>(m * n) * sizeof(ElementD)};
  const cuuint32_t box[3] = {kSliceRowBytes / static_cast<cuuint32_t>(sizeof(ElementD)), kSliceRows, 1};
  return encode_tiled<ElementD>(map, 3, base, dims, strides, box);
}

constexpr size_t kDynamicSmemBytes = sizeof(SharedStorage);
static_assert(kDynamicSmemBytes <= 227 * 1024, "SM90 allows 227 KB of shared memory per block");

// Whether this kernel serves the (validated) problem; see run_wgrad_for.
inline bool serves(const moegemm_wgrad_problem_t& p) {
  WgradShape shape{p.num_groups, p.m, p.n, p.total_tokens, p.out_dtype, p.accumulate != 0, p.out_ptrs != nullptr};
  return onelaunch_serves(shape);
}

template <class ElementD>
Check run(const WgradLaunch& l) {
  const moegemm_wgrad_problem_t& p = *l.problem;
  const int g = p.num_groups;
  const bool host_sizes = p.group_sizes_location == MOEGEMM_MEMORY_HOST;
  int64_t host_total = -1, host_nonempty = -1;
  if (host_sizes) {
    host_total = host_nonempty = 0;
    for (int i = 0; i < g; ++i) {
      host_total += p.group_sizes[i];
      host_nonempty += p.group_sizes[i] > 0 ? 1 : 0;
    }
    if (p.accumulate != 0 && host_total == 0) return Check{};  // nothing to add
  }

  Params prm;  // the host arrays are filled up to g only
  prm.g = g;
  prm.m = static_cast<int>(p.m);
  prm.n = static_cast<int>(p.n);
  prm.total_tokens = static_cast<int>(p.total_tokens);
  prm.m_tiles = static_cast<int>((p.m + kTileM * kClusterM - 1) / (kTileM * kClusterM)) * kClusterM;
  prm.n_tiles = static_cast<int>((p.n + kTileN - 1) / kTileN);
  prm.accumulate = p.accumulate != 0;
  prm.pointer_list = p.out_ptrs != nullptr;
  prm.device_sizes = host_sizes ? nullptr : p.group_sizes;
  prm.device_out_ptrs = (prm.pointer_list && p.out_ptrs_location == MOEGEMM_MEMORY_DEVICE) ? p.out_ptrs : nullptr;
  if (host_sizes)
    for (int i = 0; i < g; ++i) prm.host_sizes[i] = static_cast<int32_t>(p.group_sizes[i]);
  if (prm.pointer_list && prm.device_out_ptrs == nullptr)
    for (int i = 0; i < g; ++i) prm.host_out_ptrs[i] = p.out_ptrs[i];

  if (p.total_tokens > 0 && (!encode_operand(&prm.tma_dy, p.dy, p.total_tokens, p.m) ||
                             !encode_operand(&prm.tma_x, p.x, p.total_tokens, p.n)))
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "cuTensorMapEncodeTiled rejected the X / dY descriptor"};
  prm.out = prm.pointer_list ? nullptr : p.out;
  if (!prm.pointer_list && !encode_output<ElementD>(&prm.tma_out, p.out, g, p.m, p.n))
    return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "cuTensorMapEncodeTiled rejected the output descriptor"};

  int max_clusters = 0;
  if (Check c = cached_max_clusters<wgrad_onelaunch_kernel<ElementD>, kClusterM>(
          l.device, l.sm_count, kDynamicSmemBytes, kThreads, "one-launch wgrad kernel set-up", &max_clusters);
      !c.ok())
    return c;
  // Work units (cluster tiles); with device split sizes, the most there can be.
  const int64_t groups = host_sizes ? (p.accumulate != 0 ? host_nonempty : g) : g;
  const int64_t units = groups * (prm.m_tiles / kClusterM) * prm.n_tiles;
  const int clusters = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(units, max_clusters)));

  const Sm90LaunchConfig launch(dim3(kClusterM * clusters), dim3(kThreads), kDynamicSmemBytes, dim3(kClusterM, 1, 1),
                                l.stream, /*pdl=*/true);
  if (cudaError_t err = cudaLaunchKernelEx(&launch.cfg, wgrad_onelaunch_kernel<ElementD>, prm); err != cudaSuccess) {
    (void)cudaGetLastError();
    return cuda_fail(err, "launch of the one-launch wgrad kernel");
  }
  return Check{};
}

}  // namespace moegemm::detail::onelaunch
