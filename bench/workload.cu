#include <algorithm>

#include "random.h"
#include "workload.h"

namespace bench {

namespace {
constexpr int kMaxTimingSets = 64;
}

size_t Workload::set_bytes() const { return static_cast<size_t>(spec_.input_elems()) * 2 + out_bytes(); }

uint64_t Workload::seed(Role role, int set) const {
  return stream_seed(seed_, static_cast<uint32_t>(role), static_cast<uint32_t>(set));
}

Workload::Workload(const ShapeSpec& spec, const WorkloadLimits& limits, uint64_t seed, cudaStream_t stream)
    : spec_(spec), total_tokens_(spec.total_tokens()), seed_(seed) {
  // Rotation: the smallest count whose total exceeds 2x L2, within the memory cap.
  const size_t per_set = std::max<size_t>(set_bytes(), 1);
  int sets = static_cast<int>(std::min<size_t>(2 * limits.l2_bytes / per_set + 1, kMaxTimingSets));
  while (sets > 1 && static_cast<size_t>(sets) * per_set + out_bytes() > limits.memory_cap) --sets;

  d_splits_ = DeviceBuffer(spec_.splits.size() * sizeof(int64_t));
  BENCH_CUDA(cudaMemcpyAsync(d_splits_.get(), spec_.splits.data(), d_splits_.bytes(), cudaMemcpyHostToDevice,
                             stream));

  // An input the pass does not use has 0 elements: no allocation, a null pointer.
  auto add_input = [&](std::vector<DeviceBuffer>& sets_of, int64_t elems, Role role, int s) {
    sets_of.emplace_back(static_cast<size_t>(elems) * 2);
    fill_random_bf16(sets_of.back().get(), static_cast<size_t>(elems), this->seed(role, s), stream);
    return sets_of.back().get();
  };
  for (int s = 0; s < sets; ++s) {
    const void* x = add_input(xs_, spec_.x_elems(), Role::kX, s);
    const void* dy = add_input(dys_, spec_.dy_elems(), Role::kDy, s);
    const void* w = add_input(ws_, spec_.w_elems(), Role::kW, s);
    outs_.emplace_back(out_bytes());
    fill_random(outs_.back().get(), out_elems(), spec_.out, this->seed(Role::kOut, s), stream);
    operands_.push_back(Operands{x, dy, w, outs_.back().get()});
  }
  reference_out_ = DeviceBuffer(out_bytes());
  operands_.push_back(Operands{xs_[0].get(), dys_[0].get(), ws_[0].get(), reference_out_.get()});
  BENCH_CUDA(cudaStreamSynchronize(stream));  // the host split sizes above were pageable
}

void Workload::fill_output(int set, uint64_t seed, cudaStream_t stream) const {
  fill_random(operands(set).out, out_elems(), spec_.out, seed, stream);
}

}  // namespace bench
