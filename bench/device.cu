#include <algorithm>
#include <utility>

#include "device.h"
#include "random.h"

namespace bench {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) BENCH_CUDA(cudaMalloc(&ptr_, bytes));
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);  // nothing to do about a failure here
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

namespace {

constexpr int kThreads = 256;

unsigned grid_for(size_t count) {
  const size_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<size_t>(std::max<size_t>(blocks, 1), 65536));
}

__global__ void fill_bf16_kernel(uint16_t* dst, size_t count, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] = bf16_bits(uniform_pm1(seed, i));
}

__global__ void fill_f32_kernel(float* dst, size_t count, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] = uniform_pm1(seed, i);
}

__global__ void gather_kernel(const void* src, bool bf16, const uint64_t* index, float* out, int count) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= count) return;
  out[j] = bf16 ? bf16_to_float(static_cast<const uint16_t*>(src)[index[j]])
                : static_cast<const float*>(src)[index[j]];
}

__global__ void delay_kernel(unsigned long long ns) {
  unsigned long long start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

}  // namespace

void fill_random_bf16(void* dst, size_t count, uint64_t seed, cudaStream_t stream) {
  if (count == 0) return;
  fill_bf16_kernel<<<grid_for(count), kThreads, 0, stream>>>(static_cast<uint16_t*>(dst), count, seed);
  BENCH_CUDA(cudaGetLastError());
}

void fill_random(void* dst, size_t count, OutDtype dtype, uint64_t seed, cudaStream_t stream) {
  if (dtype == OutDtype::kBf16) return fill_random_bf16(dst, count, seed, stream);
  if (count == 0) return;
  fill_f32_kernel<<<grid_for(count), kThreads, 0, stream>>>(static_cast<float*>(dst), count, seed);
  BENCH_CUDA(cudaGetLastError());
}

std::vector<float> gather(const void* src, OutDtype dtype, const std::vector<uint64_t>& indices,
                          cudaStream_t stream) {
  const int count = static_cast<int>(indices.size());
  std::vector<float> values(indices.size());
  if (count == 0) return values;
  DeviceBuffer d_index(indices.size() * sizeof(uint64_t));
  DeviceBuffer d_values(indices.size() * sizeof(float));
  BENCH_CUDA(cudaMemcpyAsync(d_index.get(), indices.data(), d_index.bytes(), cudaMemcpyHostToDevice, stream));
  gather_kernel<<<(count + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      src, dtype == OutDtype::kBf16, static_cast<const uint64_t*>(d_index.get()),
      static_cast<float*>(d_values.get()), count);
  BENCH_CUDA(cudaGetLastError());
  BENCH_CUDA(
      cudaMemcpyAsync(values.data(), d_values.get(), d_values.bytes(), cudaMemcpyDeviceToHost, stream));
  BENCH_CUDA(cudaStreamSynchronize(stream));
  return values;
}

void gpu_delay(cudaStream_t stream, unsigned microseconds) {
  delay_kernel<<<1, 1, 0, stream>>>(1000ull * microseconds);
  BENCH_CUDA(cudaGetLastError());
}

}  // namespace bench
