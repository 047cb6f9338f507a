// CUDA-event timing: every timed call gets its own event pair; the result is
// the median and the min/max over the calls. Also the GPU's ceilings (copy
// bandwidth, peak BF16 tensor-core rate) that the efficiency figures use.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

#include "common.h"

namespace bench {

struct Stats {
  double median_us = std::numeric_limits<double>::quiet_NaN();
  double min_us = std::numeric_limits<double>::quiet_NaN();
  double max_us = std::numeric_limits<double>::quiet_NaN();
  int count = 0;
  bool valid() const { return count > 0; }
};

Stats summarize(std::vector<double> samples_us);

// An instantiated CUDA graph (move-only).
class Graph {
 public:
  Graph() = default;
  explicit Graph(cudaGraphExec_t exec) : exec_(exec) {}
  ~Graph();
  Graph(Graph&& other) noexcept;
  Graph& operator=(Graph&& other) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  cudaGraphExec_t get() const { return exec_; }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

// Captures what `enqueue` puts on `stream` (and on streams it forks from it).
// On failure the capture is ended and the error rethrown.
Graph capture_graph(cudaStream_t stream, const std::function<void()>& enqueue);

class Timer {
 public:
  Timer(cudaStream_t stream, int warmup, int repeat);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Eager: each call starts on an idle GPU, with events recorded just before
  // and after the host call, so the interval holds the host's cost of
  // building and launching the call plus the GPU time. call(i) is the i-th
  // call (warm-up calls first), for rotating operand sets.
  Stats eager(const std::function<void(int call)>& call);
  // `count` (<= repeat) timed eager calls after `warmup` untimed ones, numbered
  // from `first_call`; the samples in µs (for timings pooled over rounds).
  std::vector<double> eager_samples(const std::function<void(int call)>& call, int warmup, int count,
                                    int first_call);

  // `count` (<= repeat) timed replays of graphs[i % size] after `warmup`
  // untimed ones, numbered from `first_call`: a GPU-side delay before each
  // start event lets the host enqueue the launch before the interval begins,
  // so it measures GPU time alone.
  std::vector<double> replay_samples(const std::vector<Graph>& graphs, int warmup, int count, int first_call);

 private:
  std::vector<double> collect(int count);

  cudaStream_t stream_;
  int warmup_, repeat_;
  std::vector<cudaEvent_t> start_, stop_;
};

struct Ceilings {
  double copy_TBps = 0;    // device-to-device copy, bytes read + written
  double gemm_TFLOPs = 0;  // cublasGemmEx BF16 in, FP32 compute
  Stats copy, gemm;
  size_t copy_bytes = 0;  // one copy's size (it moves twice that)
  int gemm_size = 0;      // the GEMM is gemm_size^3
};

Ceilings measure_ceilings(cudaStream_t stream);

}  // namespace bench
