// CUTLASS SM90 ptr-array mainloop and epilogue whose per-group TMA
// descriptors are built ahead of time (by moegemm's setup kernel) instead of
// inside the GEMM.
//
// CUTLASS's grouped collectives rewrite their TMA descriptors whenever a CTA
// moves to a tile of another group: copy to shared memory, replace address,
// dims and strides, copy back to global memory with a release fence, acquire
// before use. The epilogue must moreover wait for all of its outstanding TMA
// stores to complete before it may overwrite its descriptor. With ragged,
// small K nearly every tile of a CTA is in another group, so that chain sits in
// front of nearly every tile's loads and serialises its output stores. Here
// the setup kernel writes two descriptors per group into each collective's
// workspace (mainloop: A_i, B_i; epilogue: D_i, C_i) and the GEMM only picks
// the group's pair and issues an acquire fence on it.
#pragma once

#include <cute/tensor.hpp>

namespace moegemm::detail {

// Writes `out`: the descriptor of `tma` (a CUTLASS TMA atom built on the host
// for a placeholder tensor) re-pointed at `tensor`'s address, shape and
// strides. `scratch` is 128-byte aligned shared memory.
template <class Tma, class Tensor>
CUTLASS_DEVICE void build_tma_descriptor(Tma const& tma, Tensor const& tensor, cute::TmaDescriptor& scratch,
                                         cute::TmaDescriptor& out) {
  using Element = typename Tensor::value_type;
  scratch = *tma.get_tma_descriptor();
  cute::tma_descriptor_replace_addr_in_shared_mem(scratch, tensor.data());
  cute::array<uint32_t, 5> shape = {1, 1, 1, 1, 1};
  cute::array<uint64_t, 5> stride = {0, 0, 0, 0, 0};
  cute::detail::fill_tma_gmem_shape_stride(tma, tensor, shape, stride);
  for (uint64_t& s : stride) s = (s * cute::sizeof_bits_v<Element>) / 8;
  cute::tma_descriptor_replace_dims_strides_in_shared_mem(scratch, shape, stride);
  const uint4* src = reinterpret_cast<const uint4*>(&scratch);
  uint4* dst = reinterpret_cast<uint4*>(&out);
  for (int i = 0; i < static_cast<int>(sizeof(cute::TmaDescriptor) / sizeof(uint4)); ++i) dst[i] = src[i];
}


template <class Base>
struct PrebuiltTmaMainloop : Base {
  using typename Base::Params;
  using typename Base::Arguments;
  using typename Base::TensorMapStorage;
  using typename Base::InternalElementA;
  using typename Base::InternalElementB;

  static constexpr int kDescriptorsPerGroup = 2;

  template <class ProblemShape>
  static size_t get_workspace_size(ProblemShape const& problem_shape, Arguments const&, int) {
    return kDescriptorsPerGroup * sizeof(cute::TmaDescriptor) * static_cast<size_t>(problem_shape.groups());
  }

  // load_init's tensors plus the group they currently stand for.
  template <class ProblemShape_MNKL>
  CUTLASS_DEVICE auto load_init(ProblemShape_MNKL const& problem_shape_MNKL, Params const& params) const {
    auto tensors = Base::load_init(problem_shape_MNKL, params);
    return cute::make_tuple(cute::get<0>(tensors), cute::get<1>(tensors), int32_t{0});
  }

  template <class InputTensors, class ProblemShape_MNKL>
  CUTLASS_DEVICE InputTensors tensors_perform_update(InputTensors const& inputs, Params const&,
                                                     ProblemShape_MNKL, int32_t next_batch) {
    return cute::make_tuple(cute::get<0>(inputs), cute::get<1>(inputs), next_batch);
  }

  CUTLASS_DEVICE auto tensormaps_init(Params const& params, TensorMapStorage&, int32_t, int32_t) {
    auto* table = reinterpret_cast<cute::TmaDescriptor const*>(params.tensormaps);
    return cute::make_tuple(table, table);
  }

  template <class TensorMapA, class TensorMapB, class ProblemShape_MNKL>
  CUTLASS_DEVICE void tensormaps_perform_update(TensorMapStorage&, Params const&,
                                                cute::tuple<TensorMapA, TensorMapB> const&,
                                                ProblemShape_MNKL, int32_t) {}

  template <class TensorMapA, class TensorMapB>
  CUTLASS_DEVICE void tensormaps_cp_fence_release(TensorMapStorage&, cute::tuple<TensorMapA, TensorMapB> const&) {}

  template <class TensorMapA, class TensorMapB>
  CUTLASS_DEVICE void tensormaps_fence_acquire(cute::tuple<TensorMapA, TensorMapB> const&) {}

  template <class TensorA, class TensorB, class TensorMapA, class TensorMapB, class KTileIterator,
            class BlockCoord, class Pipeline, class PipelineState, class TensorStorage>
  CUTLASS_DEVICE void load(Params const& params, Pipeline pipeline, PipelineState smem_pipe_write,
                           cute::tuple<TensorA, TensorB, int32_t> const& inputs,
                           cute::tuple<TensorMapA, TensorMapB> const& tables, BlockCoord const& blk_coord,
                           KTileIterator k_tile_iter, int k_tile_count, int thread_idx,
                           uint32_t block_rank_in_cluster, TensorStorage& shared_tensors) {
    const int32_t group = cute::get<2>(inputs);
    cute::TmaDescriptor const* desc_a = cute::get<0>(tables) + kDescriptorsPerGroup * group;
    cute::TmaDescriptor const* desc_b = desc_a + 1;
    // Written by the setup kernel (an earlier grid) through the generic proxy.
    cute::tma_descriptor_fence_acquire(desc_a);
    cute::tma_descriptor_fence_acquire(desc_b);
    Base::load(params, pipeline, smem_pipe_write,
               cute::make_tuple(cute::get<0>(inputs), cute::get<1>(inputs)),
               cute::make_tuple(desc_a, desc_b), blk_coord, k_tile_iter, k_tile_count, thread_idx,
               block_rank_in_cluster, shared_tensors);
  }

  // Called by the setup kernel, one thread per group: writes the group's A and
  // B descriptors (A: M x K with strides dA, B: N x K with strides dB).
  template <class ElementA, class StrideA, class ElementB, class StrideB>
  CUTLASS_DEVICE static void write_group_descriptors(Params const& params, int32_t group,
                                                     ElementA const* ptr_a, StrideA stride_a,
                                                     ElementB const* ptr_b, StrideB stride_b,
                                                     int m, int n, int k,
                                                     cute::TmaDescriptor& smem_scratch) {
    auto* out = reinterpret_cast<cute::TmaDescriptor*>(params.tensormaps) + kDescriptorsPerGroup * group;
    static_assert(sizeof(ElementA) == sizeof(InternalElementA) && sizeof(ElementB) == sizeof(InternalElementB));
    build_tma_descriptor(params.tma_load_a,
                         cute::make_tensor(reinterpret_cast<InternalElementA const*>(ptr_a),
                                           cute::make_shape(m, k, cute::Int<1>{}), stride_a),
                         smem_scratch, out[0]);
    build_tma_descriptor(params.tma_load_b,
                         cute::make_tensor(reinterpret_cast<InternalElementB const*>(ptr_b),
                                           cute::make_shape(n, k, cute::Int<1>{}), stride_b),
                         smem_scratch, out[1]);
  }
};

template <class Base>
struct PrebuiltTmaEpilogue : Base {
  using typename Base::Params;
  using typename Base::Arguments;
  using typename Base::TensorMapStorage;
  using typename Base::ElementC;
  using typename Base::ElementD;
  using Base::Base;

  static constexpr int kDescriptorsPerGroup = 2;  // D_i, C_i

  template <class ProblemShape>
  static size_t get_workspace_size(ProblemShape const& problem_shape, Arguments const& args, int) {
    // Base's size with no per-SM descriptor copies is what its fusion needs;
    // the table follows it (to_underlying_arguments points params.tensormaps there).
    return Base::get_workspace_size(problem_shape, args, 0) +
           kDescriptorsPerGroup * sizeof(cute::TmaDescriptor) * static_cast<size_t>(problem_shape.groups());
  }

  template <bool IsLoad>
  CUTLASS_DEVICE auto tensormaps_init(Params const& params, TensorMapStorage&, int32_t, int32_t, int32_t) {
    return cute::make_tuple(static_cast<cute::TmaDescriptor*>(params.tensormaps));
  }
  CUTLASS_DEVICE auto load_init(Params const& params, TensorMapStorage& storage, int32_t sm_count, int32_t sm_idx) {
    return tensormaps_init<true>(params, storage, sm_count, sm_idx, 0);
  }
  CUTLASS_DEVICE auto store_init(Params const& params, TensorMapStorage& storage, int32_t sm_count, int32_t sm_idx,
                                 int32_t warp_group_idx) {
    return tensormaps_init<false>(params, storage, sm_count, sm_idx, warp_group_idx);
  }

  template <bool IsLoad, class ProblemShape_MNKL>
  CUTLASS_DEVICE void tensormaps_perform_update(TensorMapStorage&, Params const&, cute::TmaDescriptor const*,
                                                ProblemShape_MNKL, int32_t, int32_t) {}
  // No descriptor is rewritten, so no store has to drain first.
  template <bool IsLoad>
  CUTLASS_DEVICE void tensormaps_cp_fence_release(TensorMapStorage&, cute::TmaDescriptor const*, int32_t = 0) {}
  template <bool IsLoad>
  CUTLASS_DEVICE void tensormaps_fence_acquire(cute::TmaDescriptor const*) {}

  template <class LoadPipeline, class LoadPipelineState, class ProblemShapeMNKL, class TileShapeMNK,
            class TileCoordMNKL, class TiledMma, class TensorStorage>
  CUTLASS_DEVICE auto load(LoadPipeline load_pipeline, LoadPipelineState state, ProblemShapeMNKL problem_shape_mnkl,
                           TileShapeMNK tile_shape_MNK, TileCoordMNKL tile_coord_mnkl, TiledMma tiled_mma,
                           int thread_idx, TensorStorage& shared_tensors, cute::TmaDescriptor* const& table,
                           int subtile_idx = -1) {
    cute::TmaDescriptor const* desc_c = group_descriptor(table, cute::get<3>(tile_coord_mnkl)) + 1;
    cute::tma_descriptor_fence_acquire(desc_c);
    return Base::load(load_pipeline, state, problem_shape_mnkl, tile_shape_MNK, tile_coord_mnkl, tiled_mma,
                      thread_idx, shared_tensors, desc_c, subtile_idx);
  }

  template <class LoadPipeline, class LoadPipelineState, class StorePipeline, class StorePipelineState,
            class ProblemShapeMNKL, class TileShapeMNK, class TileCoordMNKL, class AccEngine, class AccLayout,
            class TiledMma, class TensorStorage>
  CUTLASS_DEVICE auto store(LoadPipeline load_pipeline, LoadPipelineState load_state, StorePipeline store_pipeline,
                            StorePipelineState store_state, ProblemShapeMNKL problem_shape_mnkl,
                            TileShapeMNK tile_shape_MNK, TileCoordMNKL tile_coord_mnkl,
                            cute::Tensor<AccEngine, AccLayout> accumulators, TiledMma tiled_mma, int thread_idx,
                            TensorStorage& shared_tensors, cute::TmaDescriptor* const& table, int subtile_idx = -1) {
    cute::TmaDescriptor const* desc_d = group_descriptor(table, cute::get<3>(tile_coord_mnkl));
    cute::tma_descriptor_fence_acquire(desc_d);
    return Base::store(load_pipeline, load_state, store_pipeline, store_state, problem_shape_mnkl, tile_shape_MNK,
                       tile_coord_mnkl, accumulators, tiled_mma, thread_idx, shared_tensors, desc_d, subtile_idx);
  }

  // Called by the setup kernel, one thread per group: D_i (and C_i = D_i) as
  // row-major M x N with strides dD.
  template <class Element, class Stride>
  CUTLASS_DEVICE static void write_group_descriptors(Params const& params, int32_t group, Element* ptr_d,
                                                     Stride stride_d, int m, int n,
                                                     cute::TmaDescriptor& smem_scratch) {
    static_assert(sizeof(Element) == sizeof(ElementD) && sizeof(ElementC) == sizeof(ElementD));
    auto* out = static_cast<cute::TmaDescriptor*>(params.tensormaps) + kDescriptorsPerGroup * group;
    auto shape = cute::make_shape(m, n, cute::Int<1>{});
    build_tma_descriptor(params.tma_store_d,
                         cute::make_tensor(reinterpret_cast<ElementD const*>(ptr_d), cute::make_layout(shape, stride_d)),
                         smem_scratch, out[0]);
    build_tma_descriptor(params.tma_load_c,
                         cute::make_tensor(reinterpret_cast<ElementC const*>(ptr_d), cute::make_layout(shape, stride_d)),
                         smem_scratch, out[1]);
  }

 private:
  CUTLASS_DEVICE static cute::TmaDescriptor const* group_descriptor(cute::TmaDescriptor const* table, int32_t group) {
    return table + kDescriptorsPerGroup * group;
  }
};

}  // namespace moegemm::detail
