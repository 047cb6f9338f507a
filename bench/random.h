// Counter-based random data, identical on host and device: element `index`
// of the stream `seed` is a pure function of both. The GPU fills buffers with
// it and the host recomputes any element to check results without copying
// the inputs back.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define BENCH_HD __host__ __device__ __forceinline__
#else
#define BENCH_HD inline
#endif

namespace bench {

// splitmix64's finaliser.
BENCH_HD uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Seed of one tensor: (run seed, role, rotation set).
BENCH_HD uint64_t stream_seed(uint64_t base, uint32_t role, uint32_t set) {
  return mix64(base ^ mix64((static_cast<uint64_t>(role) << 32) | set));
}

// Uniform in [-1, 1): 24 random bits, exact in float.
BENCH_HD float uniform_pm1(uint64_t seed, uint64_t index) {
  const uint64_t h = mix64(seed ^ mix64(index));
  return static_cast<float>(h >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

BENCH_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

BENCH_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// Round to nearest even (inputs are finite here).
BENCH_HD uint16_t bf16_bits(float f) {
  const uint32_t u = float_bits(f);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

BENCH_HD float bf16_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// The BF16 value the GPU stores at `index` of a BF16 stream, as a float.
BENCH_HD float random_bf16_value(uint64_t seed, uint64_t index) {
  return bf16_to_float(bf16_bits(uniform_pm1(seed, index)));
}

}  // namespace bench
