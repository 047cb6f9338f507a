#include <algorithm>
#include <utility>

#include "device.h"
#include "random.h"
#include "timing.h"

namespace bench {

namespace {
constexpr unsigned kReplayDelayUs = 50;
}

Stats summarize(std::vector<double> samples_us) {
  Stats s;
  if (samples_us.empty()) return s;
  std::sort(samples_us.begin(), samples_us.end());
  const size_t n = samples_us.size();
  s.count = static_cast<int>(n);
  s.min_us = samples_us.front();
  s.max_us = samples_us.back();
  s.median_us = n % 2 == 1 ? samples_us[n / 2] : 0.5 * (samples_us[n / 2 - 1] + samples_us[n / 2]);
  return s;
}

Graph::~Graph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
}
Graph::Graph(Graph&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}
Graph& Graph::operator=(Graph&& other) noexcept {
  if (this != &other) {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

Graph capture_graph(cudaStream_t stream, const std::function<void()>& enqueue) {
  BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue();
  } catch (...) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream, &partial);
    if (partial != nullptr) cudaGraphDestroy(partial);
    cudaGetLastError();  // the failure is reported by the rethrow
    throw;
  }
  cudaGraph_t graph = nullptr;
  BENCH_CUDA(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  BENCH_CUDA(err);
  return Graph(exec);
}

Timer::Timer(cudaStream_t stream, int warmup, int repeat)
    : stream_(stream), warmup_(warmup), repeat_(repeat), start_(repeat, nullptr), stop_(repeat, nullptr) {
  for (int i = 0; i < repeat; ++i) {
    BENCH_CUDA(cudaEventCreate(&start_[i]));
    BENCH_CUDA(cudaEventCreate(&stop_[i]));
  }
}

Timer::~Timer() {
  for (cudaEvent_t e : start_)
    if (e != nullptr) cudaEventDestroy(e);
  for (cudaEvent_t e : stop_)
    if (e != nullptr) cudaEventDestroy(e);
}

std::vector<double> Timer::collect(int count) {
  BENCH_CUDA(cudaStreamSynchronize(stream_));
  std::vector<double> us(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start_[i], stop_[i]));
    us[static_cast<size_t>(i)] = 1000.0 * ms;
  }
  return us;
}

std::vector<double> Timer::eager_samples(const std::function<void(int)>& call, int warmup, int count,
                                         int first_call) {
  count = std::min(count, repeat_);
  for (int i = 0; i < warmup; ++i) call(first_call + i);
  for (int i = 0; i < count; ++i) {
    BENCH_CUDA(cudaStreamSynchronize(stream_));  // idle GPU: the interval starts with the host call
    BENCH_CUDA(cudaEventRecord(start_[i], stream_));
    call(first_call + warmup + i);
    BENCH_CUDA(cudaEventRecord(stop_[i], stream_));
  }
  return collect(count);
}

Stats Timer::eager(const std::function<void(int)>& call) {
  return summarize(eager_samples(call, warmup_, repeat_, 0));
}

std::vector<double> Timer::replay_samples(const std::vector<Graph>& graphs, int warmup, int count,
                                          int first_call) {
  if (graphs.empty()) return {};
  count = std::min(count, repeat_);
  const size_t sets = graphs.size();
  for (int i = 0; i < warmup; ++i) BENCH_CUDA(cudaGraphLaunch(graphs[(first_call + i) % sets].get(), stream_));
  BENCH_CUDA(cudaStreamSynchronize(stream_));
  for (int i = 0; i < count; ++i) {
    gpu_delay(stream_, kReplayDelayUs);
    BENCH_CUDA(cudaEventRecord(start_[i], stream_));
    BENCH_CUDA(cudaGraphLaunch(graphs[(first_call + warmup + i) % sets].get(), stream_));
    BENCH_CUDA(cudaEventRecord(stop_[i], stream_));
  }
  return collect(count);
}

Ceilings measure_ceilings(cudaStream_t stream) {
  constexpr int kRepeat = 10, kWarmup = 3;
  Ceilings c;
  Timer timer(stream, kWarmup, kRepeat);

  // Copy bandwidth: 1 GiB device to device; it reads and writes 1 GiB each.
  c.copy_bytes = size_t{1} << 30;
  {
    DeviceBuffer src(c.copy_bytes), dst(c.copy_bytes);
    BENCH_CUDA(cudaMemsetAsync(src.get(), 1, c.copy_bytes, stream));
    c.copy = timer.eager([&](int) {
      BENCH_CUDA(cudaMemcpyAsync(dst.get(), src.get(), c.copy_bytes, cudaMemcpyDeviceToDevice, stream));
    });
    c.copy_TBps = 2.0 * static_cast<double>(c.copy_bytes) / (c.copy.median_us * 1e-6) / 1e12;
  }

  // Peak BF16 rate: an 8192^3 GEMM on random data, BF16 in and out, FP32 compute.
  c.gemm_size = 8192;
  {
    const int n = c.gemm_size;
    const size_t elems = static_cast<size_t>(n) * n;
    DeviceBuffer a(elems * 2), b(elems * 2), d(elems * 2), workspace(size_t{32} << 20);
    fill_random_bf16(a.get(), elems, mix64(0xA), stream);
    fill_random_bf16(b.get(), elems, mix64(0xB), stream);
    cublasHandle_t h;
    BENCH_CUBLAS(cublasCreate(&h));
    try {
      BENCH_CUBLAS(cublasSetStream(h, stream));
      BENCH_CUBLAS(cublasSetWorkspace(h, workspace.get(), workspace.bytes()));
      const float alpha = 1.0f, beta = 0.0f;
      c.gemm = timer.eager([&](int) {
        BENCH_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.get(), CUDA_R_16BF, n,
                                  b.get(), CUDA_R_16BF, n, &beta, d.get(), CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
      });
    } catch (...) {
      cublasDestroy(h);
      throw;
    }
    BENCH_CUBLAS(cublasDestroy(h));
    c.gemm_TFLOPs = 2.0 * n * static_cast<double>(n) * n / (c.gemm.median_us * 1e-6) / 1e12;
  }
  return c;
}

}  // namespace bench
