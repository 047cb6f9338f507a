// Device memory and the bench's own small kernels (random fill, gather,
// delay). They are built with PTX as well, so they run on any GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.h"

namespace bench {

// Owner of one cudaMalloc allocation (move-only). Zero bytes: no allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// BF16 values random_bf16_value(seed, i), i < count.
void fill_random_bf16(void* dst, size_t count, uint64_t seed, cudaStream_t stream);
// FP32 values uniform_pm1(seed, i), or BF16 as above: the initial outputs.
void fill_random(void* dst, size_t count, OutDtype dtype, uint64_t seed, cudaStream_t stream);

// src[index[j]] as float, j < indices.size() (synchronises the stream).
std::vector<float> gather(const void* src, OutDtype dtype, const std::vector<uint64_t>& indices,
                          cudaStream_t stream);

// Keeps the stream busy for about `microseconds` without touching memory.
void gpu_delay(cudaStream_t stream, unsigned microseconds);

}  // namespace bench
