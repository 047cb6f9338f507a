// One problem's data on the GPU. Timed calls rotate over `timing_sets()`
// copies of the pass's inputs (two of X, dY, W) and of its output, enough to
// cover more than twice the L2 cache, so that no call finds its operands left
// in L2 by the previous one.
// One more operand set, reference_set(), reads set 0's inputs and writes a
// separate output: the correctness check's reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "device.h"
#include "shapes.h"

namespace bench {

// Null where the pass does not use the tensor.
struct Operands {
  const void* x;   // BF16 [T, n]     (fprop, wgrad)
  const void* dy;  // BF16 [T, m]     (dgrad, wgrad)
  const void* w;   // BF16 [g, m, n]  (fprop, dgrad)
  void* out;       // of the output type: wgrad [g, m, n], fprop [T, m], dgrad [T, n]
};

enum class Role : uint32_t { kX = 1, kDy = 2, kOut = 3, kW = 4 };

struct WorkloadLimits {
  size_t l2_bytes = 0;    // rotation covers more than 2x this
  size_t memory_cap = 0;  // total bytes allowed when rotating (one set is always allowed)
};

class Workload {
 public:
  // Allocates and fills every set with random data (stream-ordered on `stream`).
  Workload(const ShapeSpec& spec, const WorkloadLimits& limits, uint64_t seed, cudaStream_t stream);

  const ShapeSpec& spec() const { return spec_; }
  int64_t total_tokens() const { return total_tokens_; }
  const std::vector<int64_t>& splits() const { return spec_.splits; }  // host
  const int64_t* device_splits() const { return static_cast<const int64_t*>(d_splits_.get()); }

  int timing_sets() const { return static_cast<int>(outs_.size()); }
  int operand_sets() const { return timing_sets() + 1; }
  int reference_set() const { return timing_sets(); }
  const Operands& operands(int set) const { return operands_[static_cast<size_t>(set)]; }

  size_t out_elems() const { return static_cast<size_t>(spec_.out_elems()); }
  size_t out_bytes() const { return out_elems() * dtype_size(spec_.out); }
  size_t set_bytes() const;  // bytes of one rotation set (inputs, output)

  // Seed of the random data of a tensor; the host can recompute any element
  // (random.h): inputs of set s are random_bf16_value(seed(kX/kDy/kW, s), i).
  uint64_t seed(Role role, int set) const;
  // Overwrites the output of operand set `set` with random values of `seed`.
  void fill_output(int set, uint64_t seed, cudaStream_t stream) const;

 private:
  ShapeSpec spec_;
  int64_t total_tokens_ = 0;
  uint64_t seed_ = 0;
  DeviceBuffer d_splits_;
  std::vector<DeviceBuffer> xs_, dys_, ws_, outs_;
  DeviceBuffer reference_out_;
  std::vector<Operands> operands_;
};

}  // namespace bench
