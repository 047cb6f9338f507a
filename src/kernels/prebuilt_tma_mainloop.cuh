// A CUTLASS SM90 ptr-array mainloop whose per-group TMA descriptors are built
// ahead of time (by moegemm's setup kernel) instead of inside the GEMM.
//
// CUTLASS's grouped mainloop rewrites its TMA descriptors whenever a CTA moves
// to a tile of another group: copy to shared memory, replace address, dims and
// strides, copy back to global memory with a release fence, acquire before use.
// With ragged, small K every tile of a CTA is in another group, so that chain
// sits in front of nearly every tile's first load. Here the setup kernel
// writes one A and one B descriptor per group into the mainloop's workspace
// (interleaved: A_0, B_0, A_1, B_1, ...) and the producer only picks the
// group's pair and issues an acquire fence on it.
#pragma once

#include <cute/tensor.hpp>

namespace moegemm::detail {

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
    build_descriptor(params.tma_load_a, cute::make_tensor(reinterpret_cast<InternalElementA const*>(ptr_a), cute::make_shape(m, k, cute::Int<1>{}), stride_a),
                     smem_scratch, out[0]);
    build_descriptor(params.tma_load_b, cute::make_tensor(reinterpret_cast<InternalElementB const*>(ptr_b), cute::make_shape(n, k, cute::Int<1>{}), stride_b),
                     smem_scratch, out[1]);
  }

 private:
  template <class Tma, class Tensor>
  CUTLASS_DEVICE static void build_descriptor(Tma const& tma, Tensor const& tensor,
                                              cute::TmaDescriptor& scratch, cute::TmaDescriptor& out) {
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
};

}  // namespace moegemm::detail
