#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "device.h"
#include "random.h"
#include "verify.h"

namespace bench {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxSampledGroups = 64;

__device__ float load(const void* p, bool bf16, size_t i) {
  return bf16 ? bf16_to_float(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}

// result[0]: max |test - ref| (float bits), [1]: max |ref| (float bits),
// [2]: entries where either is NaN/Inf. Non-negative floats order like their bits.
__global__ void compare_kernel(const void* test, const void* ref, size_t count, bool bf16, unsigned* result) {
  float max_diff = 0, max_ref = 0;
  unsigned nonfinite = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float t = load(test, bf16, i), r = load(ref, bf16, i);
    if (!isfinite(t) || !isfinite(r)) {
      ++nonfinite;
      continue;
    }
    max_diff = fmaxf(max_diff, fabsf(t - r));
    max_ref = fmaxf(max_ref, fabsf(r));
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    max_diff = fmaxf(max_diff, __shfl_xor_sync(0xffffffffu, max_diff, offset));
    max_ref = fmaxf(max_ref, __shfl_xor_sync(0xffffffffu, max_ref, offset));
    nonfinite += __shfl_xor_sync(0xffffffffu, nonfinite, offset);
  }
  if (threadIdx.x % 32 == 0) {
    atomicMax(&result[0], __float_as_uint(max_diff));
    atomicMax(&result[1], __float_as_uint(max_ref));
    atomicAdd(&result[2], nonfinite);
  }
}

struct Sample {
  int group;
  int64_t row, col;  // in the group's block of the output
};

// Group i's block of the output: `rows` x `cols`, row-major from element `base`.
struct Block {
  int64_t base, rows, cols;
};

Block output_block(const ShapeSpec& s, const std::vector<int64_t>& offsets, int i) {
  const int64_t k = s.splits[static_cast<size_t>(i)], off = offsets[static_cast<size_t>(i)];
  switch (s.pass) {
    case Pass::kFprop:
      return {off * s.m, k, s.m};
    case Pass::kDgrad:
      return {off * s.n, k, s.n};
    default:
      return {int64_t{i} * s.m * s.n, s.m, s.n};
  }
}

// Per sampled group with a non-empty block: two corners and two pseudo-random entries.
std::vector<Sample> choose_samples(const ShapeSpec& s, const std::vector<int64_t>& offsets, uint64_t seed) {
  std::vector<Sample> samples;
  const int stride = std::max(1, (s.g + kMaxSampledGroups - 1) / kMaxSampledGroups);
  for (int i = 0; i < s.g; i += stride) {
    const Block b = output_block(s, offsets, i);
    if (b.rows == 0 || b.cols == 0) continue;
    samples.push_back({i, 0, 0});
    samples.push_back({i, b.rows - 1, b.cols - 1});
    for (uint64_t j = 0; j < 2; ++j) {
      const uint64_t h = mix64(seed ^ mix64((static_cast<uint64_t>(i) << 8) | j));
      samples.push_back({i, static_cast<int64_t>(h % static_cast<uint64_t>(b.rows)),
                         static_cast<int64_t>((h >> 32) % static_cast<uint64_t>(b.cols))});
    }
  }
  return samples;
}

// The exact value of a sampled entry (without the initial output), in double
// from the counter-based BF16 inputs of seeds x, dy, w.
double exact_entry(const ShapeSpec& s, const std::vector<int64_t>& offsets, const Sample& p, uint64_t x,
                   uint64_t dy, uint64_t w) {
  auto v = [](uint64_t seed, int64_t index) {
    return static_cast<double>(random_bf16_value(seed, static_cast<uint64_t>(index)));
  };
  const int64_t off = offsets[static_cast<size_t>(p.group)];
  const int64_t weight = int64_t{p.group} * s.m * s.n;  // W_i
  double sum = 0;
  switch (s.pass) {
    case Pass::kFprop:  // Y[t, f] = sum_h X[t, h] W_i[f, h]
      for (int64_t h = 0; h < s.n; ++h) sum += v(x, (off + p.row) * s.n + h) * v(w, weight + p.col * s.n + h);
      break;
    case Pass::kDgrad:  // dX[t, h] = sum_f dY[t, f] W_i[f, h]
      for (int64_t f = 0; f < s.m; ++f)
        sum += v(dy, (off + p.row) * s.m + f) * v(w, weight + f * s.n + p.col);
      break;
    default:  // D_i[f, h] = sum_t dY[t, f] X[t, h]
      for (int64_t t = off; t < offsets[static_cast<size_t>(p.group) + 1]; ++t)
        sum += v(x, t * s.n + p.col) * v(dy, t * s.m + p.row);
  }
  return sum;
}

}  // namespace

double tolerance(OutDtype dtype, double max_abs_ref) {
  return (dtype == OutDtype::kFp32 ? 1e-3 : 1e-2) * max_abs_ref + 1e-5;
}

CheckResult compare_outputs(const void* test, const void* ref, size_t count, OutDtype dtype,
                            cudaStream_t stream) {
  DeviceBuffer d_result(3 * sizeof(unsigned));
  BENCH_CUDA(cudaMemsetAsync(d_result.get(), 0, d_result.bytes(), stream));
  if (count > 0) {
    const size_t blocks = std::min<size_t>((count + kThreads - 1) / kThreads, 4096);
    compare_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        test, ref, count, dtype == OutDtype::kBf16, static_cast<unsigned*>(d_result.get()));
    BENCH_CUDA(cudaGetLastError());
  }
  unsigned result[3] = {0, 0, 0};
  BENCH_CUDA(cudaMemcpyAsync(result, d_result.get(), sizeof result, cudaMemcpyDeviceToHost, stream));
  BENCH_CUDA(cudaStreamSynchronize(stream));
  CheckResult c;
  c.done = true;
  c.max_abs_diff = bits_float(result[0]);
  c.max_abs_ref = bits_float(result[1]);
  c.nonfinite = result[2];
  c.tolerance = tolerance(dtype, c.max_abs_ref);
  c.pass = c.nonfinite == 0 && c.max_abs_diff <= c.tolerance;
  return c;
}

CheckResult spot_check(const Workload& w, int set, uint64_t initial_out_seed, cudaStream_t stream) {
  const ShapeSpec& s = w.spec();
  const void* out = w.operands(set).out;
  // The whole output against itself: its largest magnitude (the tolerance's
  // scale) and any NaN/Inf.
  CheckResult c = compare_outputs(out, out, w.out_elems(), s.out, stream);

  std::vector<int64_t> offsets(s.splits.size() + 1, 0);
  for (size_t i = 0; i < s.splits.size(); ++i) offsets[i + 1] = offsets[i] + s.splits[i];
  const std::vector<Sample> samples = choose_samples(s, offsets, w.seed(Role::kOut, set) ^ 0x5A5A);
  std::vector<uint64_t> index;
  for (const Sample& p : samples) {
    const Block b = output_block(s, offsets, p.group);
    index.push_back(static_cast<uint64_t>(b.base + p.row * b.cols + p.col));
  }
  const std::vector<float> got = gather(out, s.out, index, stream);

  const int data_set = set == w.reference_set() ? 0 : set;  // the reference reads set 0's inputs
  const uint64_t x_seed = w.seed(Role::kX, data_set), dy_seed = w.seed(Role::kDy, data_set);
  const uint64_t w_seed = w.seed(Role::kW, data_set);
  double max_diff = 0;
  for (size_t j = 0; j < samples.size(); ++j) {
    double exact = exact_entry(s, offsets, samples[j], x_seed, dy_seed, w_seed);
    if (s.accumulate)
      exact += s.out == OutDtype::kFp32 ? uniform_pm1(initial_out_seed, index[j])
                                        : random_bf16_value(initial_out_seed, index[j]);
    const double diff = std::fabs(static_cast<double>(got[j]) - exact);
    max_diff = std::isfinite(diff) ? std::max(max_diff, diff) : std::numeric_limits<double>::infinity();
  }
  c.samples = static_cast<int>(samples.size());
  c.max_abs_diff = max_diff;
  c.pass = c.nonfinite == 0 && max_diff <= c.tolerance;
  return c;
}

}  // namespace bench
