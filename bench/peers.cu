#include <vector>

#include "device.h"
#include "peers.h"

namespace bench {

namespace {

// cuBLAS is column-major. D_i is row-major m x n, i.e. column-major n x m
// with ld n, and
//     D_i^T (n x m) = X_i^T (n x k) * dY_i (k x m).
// X_i (k x n row-major, ld n) read column-major is exactly X_i^T (n x k, ld n):
// op N. dY_i (k x m row-major, ld m) read column-major is dY_i^T (m x k, ld m):
// op T gives dY_i. So: gemm(N, T, M = n, N = m, K = k_i, A = X_i, lda = n,
// B = dY_i, ldb = m, C = D_i, ldc = n).
class CublasPeer final : public Peer {
 public:
  CublasPeer(const std::string& name, int num_streams, cudaStream_t stream)
      : Peer(PeerInfo{name}), stream_(stream) {
    const bool forked = num_streams > 1;
    for (int i = 0; i < num_streams; ++i) {
      cudaStream_t s = stream;
      if (forked) {
        BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        workers_.push_back(s);
        cudaEvent_t join;
        BENCH_CUDA(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
        joins_.push_back(join);
      }
      cublasHandle_t h;
      BENCH_CUBLAS(cublasCreate(&h));
      handles_.push_back(h);
      BENCH_CUBLAS(cublasSetStream(h, s));
      workspaces_.emplace_back(kWorkspaceBytes);
      BENCH_CUBLAS(cublasSetWorkspace(h, workspaces_.back().get(), kWorkspaceBytes));
    }
    if (forked) BENCH_CUDA(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
  }

  ~CublasPeer() override {
    for (cublasHandle_t h : handles_) cublasDestroy(h);
    for (cudaEvent_t e : joins_) cudaEventDestroy(e);
    if (fork_ != nullptr) cudaEventDestroy(fork_);
    for (cudaStream_t s : workers_) cudaStreamDestroy(s);
  }

  void prepare(const Workload& w) override {
    w_ = &w;
    const ShapeSpec& s = w.spec();
    m_ = static_cast<int>(s.m);
    n_ = static_cast<int>(s.n);
    out_type_ = cuda_dtype(s.out);
    group_bytes_ = w.group_out_elems() * dtype_size(s.out);
    beta_ = s.accumulate ? 1.0f : 0.0f;
  }

  void run(int set) override {
    const Operands& op = w_->operands(set);
    const auto* x = static_cast<const uint16_t*>(op.x);  // BF16 elements
    const auto* dy = static_cast<const uint16_t*>(op.dy);
    auto* out = static_cast<char*>(op.out);
    const std::vector<int64_t>& k = w_->splits();
    const bool accumulate = w_->spec().accumulate;

    if (!workers_.empty()) {
      BENCH_CUDA(cudaEventRecord(fork_, stream_));
      for (cudaStream_t s : workers_) BENCH_CUDA(cudaStreamWaitEvent(s, fork_, 0));
    }
    int64_t offset = 0;
    size_t next = 0;  // round-robin over the handles (= streams)
    for (size_t i = 0; i < k.size(); ++i) {
      char* d = out + i * group_bytes_;
      if (k[i] == 0) {
        if (!accumulate) BENCH_CUDA(cudaMemsetAsync(d, 0, group_bytes_, stream_));
        continue;
      }
      cublasHandle_t h = handles_[next++ % handles_.size()];
      BENCH_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, n_, m_, static_cast<int>(k[i]), &alpha_,
                                x + offset * n_, CUDA_R_16BF, n_, dy + offset * m_, CUDA_R_16BF, m_, &beta_,
                                d, out_type_, n_, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      offset += k[i];
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      BENCH_CUDA(cudaEventRecord(joins_[i], workers_[i]));
      BENCH_CUDA(cudaStreamWaitEvent(stream_, joins_[i], 0));
    }
  }

 private:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's recommendation for Hopper

  cudaStream_t stream_;
  std::vector<cudaStream_t> workers_;  // empty: everything on stream_
  std::vector<cublasHandle_t> handles_;
  std::vector<DeviceBuffer> workspaces_;
  cudaEvent_t fork_ = nullptr;
  std::vector<cudaEvent_t> joins_;

  const Workload* w_ = nullptr;
  int m_ = 0, n_ = 0;
  cudaDataType_t out_type_ = CUDA_R_32F;
  size_t group_bytes_ = 0;
  float alpha_ = 1.0f, beta_ = 0.0f;  // host scalars: read when a call is enqueued
};

class MoegemmPeer final : public Peer {
 public:
  MoegemmPeer(moegemm_wgrad_config_t config, moegemm_memory_t sizes, void* workspace, size_t workspace_bytes,
              cudaStream_t stream)
      : Peer(PeerInfo{"moegemm", true, config, sizes}),
        workspace_(workspace),
        workspace_bytes_(workspace_bytes),
        stream_(stream) {}

  // One problem struct per operand set, built before any timing.
  void prepare(const Workload& w) override {
    const ShapeSpec& s = w.spec();
    problems_.clear();
    for (int set = 0; set < w.operand_sets(); ++set) {
      moegemm_wgrad_problem_t p = moegemm_wgrad_problem_default();
      p.num_groups = s.g;
      p.m = s.m;
      p.n = s.n;
      p.total_tokens = w.total_tokens();
      p.x = w.operands(set).x;
      p.dy = w.operands(set).dy;
      p.group_sizes = info_.sizes == MOEGEMM_MEMORY_HOST ? w.splits().data() : w.device_splits();
      p.group_sizes_location = info_.sizes;
      p.out = w.operands(set).out;
      p.out_dtype = moegemm_dtype(s.out);
      p.accumulate = s.accumulate ? 1 : 0;
      p.config = info_.config;
      problems_.push_back(p);
    }
  }

  void run(int set) override {
    BENCH_MOEGEMM(moegemm_wgrad(&problems_[static_cast<size_t>(set)], workspace_, workspace_bytes_, stream_));
  }

  std::string resolved_config() const override {
    return problems_.empty() ? "" : short_config_name(moegemm_wgrad_choose_config(&problems_[0]));
  }

 private:
  void* workspace_;
  size_t workspace_bytes_;
  cudaStream_t stream_;
  std::vector<moegemm_wgrad_problem_t> problems_;
};

}  // namespace

std::unique_ptr<Peer> make_cublas_peer(const std::string& name, int num_streams, cudaStream_t stream) {
  return std::make_unique<CublasPeer>(name, num_streams, stream);
}

std::unique_ptr<Peer> make_moegemm_peer(moegemm_wgrad_config_t config, moegemm_memory_t sizes,
                                        void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  return std::make_unique<MoegemmPeer>(config, sizes, workspace, workspace_bytes, stream);
}

}  // namespace bench
