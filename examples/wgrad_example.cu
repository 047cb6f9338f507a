// Minimal use of moegemm_wgrad(): 4 experts with ragged token counts (one of
// them empty), split sizes on the device, FP32 output. Checks the result
// against a float64 host computation and prints the largest error.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "moegemm/moegemm.h"

#define CUDA_OK(x)                                                                   \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

int main() {
  if (!moegemm_device_supported()) {
    std::printf("wgrad_example: no SM90 GPU here (%s)\n", moegemm_last_error());
    return 0;
  }
  const int g = 4;
  const int64_t m = 256, n = 384;
  const std::vector<int64_t> sizes = {300, 0, 77, 129};  // ragged, one empty
  int64_t T = 0;
  for (int64_t k : sizes) T += k;

  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::vector<__nv_bfloat16> x(T * n), dy(T * m);
  for (auto& v : x) v = __float2bfloat16(uni(rng));
  for (auto& v : dy) v = __float2bfloat16(uni(rng));

  __nv_bfloat16 *d_x, *d_dy;
  float* d_out;
  int64_t* d_sizes;
  CUDA_OK(cudaMalloc(&d_x, x.size() * sizeof(x[0])));
  CUDA_OK(cudaMalloc(&d_dy, dy.size() * sizeof(dy[0])));
  CUDA_OK(cudaMalloc(&d_out, g * m * n * sizeof(float)));
  CUDA_OK(cudaMalloc(&d_sizes, g * sizeof(int64_t)));
  CUDA_OK(cudaMemcpy(d_x, x.data(), x.size() * sizeof(x[0]), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_dy, dy.data(), dy.size() * sizeof(dy[0]), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_sizes, sizes.data(), g * sizeof(int64_t), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemset(d_out, 0xff, g * m * n * sizeof(float)));  // NaN poison

  moegemm_wgrad_problem_t p = moegemm_wgrad_problem_default();
  p.num_groups = g;
  p.m = m;
  p.n = n;
  p.total_tokens = T;
  p.x = d_x;
  p.dy = d_dy;
  p.group_sizes = d_sizes;
  p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  p.out = d_out;

  size_t ws_bytes = 0;
  if (moegemm_wgrad_workspace_size(&p, &ws_bytes) != MOEGEMM_STATUS_SUCCESS) {
    std::fprintf(stderr, "workspace size: %s\n", moegemm_last_error());
    return 1;
  }
  void* ws;
  CUDA_OK(cudaMalloc(&ws, ws_bytes));
  if (moegemm_wgrad(&p, ws, ws_bytes, /*stream=*/0) != MOEGEMM_STATUS_SUCCESS) {
    std::fprintf(stderr, "moegemm_wgrad: %s\n", moegemm_last_error());
    return 1;
  }
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaDeviceSynchronize());

  std::vector<float> out(g * m * n);
  CUDA_OK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  double max_err = 0;
  int64_t off = 0;
  for (int i = 0; i < g; ++i) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double ref = 0;
        for (int64_t t = off; t < off + sizes[i]; ++t)
          ref += double(__bfloat162float(dy[t * m + r])) * double(__bfloat162float(x[t * n + c]));
        const double got = out[(i * m + r) * n + c];
        const double err = std::isnan(got) ? INFINITY : std::fabs(got - ref);
        max_err = err > max_err ? err : max_err;
      }
    off += sizes[i];
  }
  std::printf("wgrad_example: g=%d m=%ld n=%ld T=%ld workspace=%zu B, max |err| = %.3g -> %s\n", g,
              long(m), long(n), long(T), ws_bytes, max_err, max_err < 1e-3 ? "OK" : "FAILED");
  cudaFree(ws); cudaFree(d_x); cudaFree(d_dy); cudaFree(d_out); cudaFree(d_sizes);
  return max_err < 1e-3 ? 0 : 1;
}
