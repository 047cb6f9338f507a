#include <algorithm>

#include "random.h"
#include "workload.h"

namespace bench {

namespace {
constexpr int kMaxTimingSets = 64;
}

size_t Workload::set_bytes() const {
  const size_t inputs = static_cast<size_t>(total_tokens_) * static_cast<size_t>(spec_.m + spec_.n) * 2;
  return inputs + out_bytes();
}

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

  const size_t x_elems = static_cast<size_t>(total_tokens_ * spec_.n);
  const size_t dy_elems = static_cast<size_t>(total_tokens_ * spec_.m);
  for (int s = 0; s < sets; ++s) {
    xs_.emplace_back(x_elems * 2);
    dys_.emplace_back(dy_elems * 2);
    outs_.emplace_back(out_bytes());
    fill_random_bf16(xs_.back().get(), x_elems, this->seed(Role::kX, s), stream);
    fill_random_bf16(dys_.back().get(), dy_elems, this->seed(Role::kDy, s), stream);
    fill_random(outs_.back().get(), out_elems(), spec_.out, this->seed(Role::kOut, s), stream);
    operands_.push_back(Operands{xs_.back().get(), dys_.back().get(), outs_.back().get()});
  }
  reference_out_ = DeviceBuffer(out_bytes());
  operands_.push_back(Operands{xs_[0].get(), dys_[0].get(), reference_out_.get()});
  BENCH_CUDA(cudaStreamSynchronize(stream));  // the host split sizes above were pageable
}

void Workload::fill_output(int set, uint64_t seed, cudaStream_t stream) const {
  fill_random(operands(set).out, out_elems(), spec_.out, seed, stream);
}

}  // namespace bench
