#include <vector>

#include "device.h"
#include "peers.h"

namespace bench {

namespace {

// One group's GEMM in cuBLAS's column-major terms:
//     C (m x n, ldc) = op_a(A) (m x k) * op_b(B) (k x n)   (+ C when accumulating)
//
// Every tensor is row-major: X [T, n], dY [T, m], W_i [m, n], D_i [m, n],
// Y [T, m], dX [T, n]. A row-major r x c matrix with ld c, read column-major,
// is its transpose (c x r, ld c). Group i holds the rows [off_i, off_i + k_i)
// of the token-major tensors. So:
//   wgrad  D_i^T (n x m)  = X_i^T (n x k)  * dY_i (k x m):   N, T  A = X_i, B = dY_i
//   fprop  Y_i^T (m x k)  = W_i (m x n)    * X_i^T (n x k):  T, N  A = W_i, B = X_i
//   dgrad  dX_i^T (n x k) = W_i^T (n x m)  * dY_i^T (m x k): N, N  A = W_i, B = dY_i
struct GroupGemm {
  cublasOperation_t op_a, op_b;
  int m, n, k;
  const void* a;
  int lda;
  const void* b;
  int ldb;
  void* c;
  int ldc;
};

// `elems` elements of `elem_bytes` bytes past `base`.
char* advance(const void* base, int64_t elems, size_t elem_bytes) {
  return static_cast<char*>(const_cast<void*>(base)) + elems * static_cast<int64_t>(elem_bytes);
}

// The g GEMMs of operand set `set`, empty groups included.
std::vector<GroupGemm> plan_gemms(const Workload& w, int set) {
  const ShapeSpec& s = w.spec();
  const Operands& op = w.operands(set);
  const int m = static_cast<int>(s.m), n = static_cast<int>(s.n);
  const size_t bf16 = 2, out = dtype_size(s.out);
  std::vector<GroupGemm> plan;
  int64_t off = 0;  // first token of group i
  for (int i = 0; i < s.g; ++i) {
    const int k = static_cast<int>(s.splits[static_cast<size_t>(i)]);
    const int64_t block = int64_t{i} * m * n;  // group i's [m, n] matrix of W or D
    switch (s.pass) {
      case Pass::kWgrad:
        plan.push_back({CUBLAS_OP_N, CUBLAS_OP_T, n, m, k, advance(op.x, off * n, bf16), n,
                        advance(op.dy, off * m, bf16), m, advance(op.out, block, out), n});
        break;
      case Pass::kFprop:
        plan.push_back({CUBLAS_OP_T, CUBLAS_OP_N, m, k, n, advance(op.w, block, bf16), n,
                        advance(op.x, off * n, bf16), n, advance(op.out, off * m, out), m});
        break;
      case Pass::kDgrad:
        plan.push_back({CUBLAS_OP_N, CUBLAS_OP_N, n, k, m, advance(op.w, block, bf16), n,
                        advance(op.dy, off * m, bf16), m, advance(op.out, off * n, out), n});
        break;
    }
    off += k;
  }
  return plan;
}

// A cuBLAS handle on one stream with its own workspace.
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) : workspace_(kWorkspaceBytes) {
    BENCH_CUBLAS(cublasCreate(&h_));
    try {
      BENCH_CUBLAS(cublasSetStream(h_, stream));
      BENCH_CUBLAS(cublasSetWorkspace(h_, workspace_.get(), kWorkspaceBytes));
    } catch (...) {
      cublasDestroy(h_);
      throw;
    }
  }
  ~CublasHandle() { cublasDestroy(h_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's recommendation for Hopper

  DeviceBuffer workspace_;
  cublasHandle_t h_ = nullptr;
};

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
      handles_.push_back(std::make_unique<CublasHandle>(s));
    }
    if (forked) BENCH_CUDA(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
  }

  ~CublasPeer() override {
    handles_.clear();
    for (cudaEvent_t e : joins_) cudaEventDestroy(e);
    if (fork_ != nullptr) cudaEventDestroy(fork_);
    for (cudaStream_t s : workers_) cudaStreamDestroy(s);
  }

  void prepare(const Workload& w) override {
    const ShapeSpec& s = w.spec();
    out_type_ = cuda_dtype(s.out);
    out_bytes_ = dtype_size(s.out);
    accumulate_ = s.accumulate;
    beta_ = s.accumulate ? 1.0f : 0.0f;
    plans_.clear();
    for (int set = 0; set < w.operand_sets(); ++set) plans_.push_back(plan_gemms(w, set));
  }

  void run(int set) override {
    if (!workers_.empty()) {
      BENCH_CUDA(cudaEventRecord(fork_, stream_));
      for (cudaStream_t s : workers_) BENCH_CUDA(cudaStreamWaitEvent(s, fork_, 0));
    }
    size_t next = 0;  // round-robin over the handles (= streams)
    for (const GroupGemm& p : plans_[static_cast<size_t>(set)]) {
      if (p.m == 0 || p.n == 0) continue;  // an empty output block (fprop, dgrad)
      if (p.k == 0) {                      // wgrad: D_i = 0
        if (!accumulate_)
          BENCH_CUDA(cudaMemset2DAsync(p.c, p.ldc * out_bytes_, 0, p.m * out_bytes_, p.n, stream_));
        continue;
      }
      cublasHandle_t h = handles_[next++ % handles_.size()]->get();
      BENCH_CUBLAS(cublasGemmEx(h, p.op_a, p.op_b, p.m, p.n, p.k, &alpha_, p.a, CUDA_R_16BF, p.lda, p.b,
                                CUDA_R_16BF, p.ldb, &beta_, p.c, out_type_, p.ldc, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      BENCH_CUDA(cudaEventRecord(joins_[i], workers_[i]));
      BENCH_CUDA(cudaStreamWaitEvent(stream_, joins_[i], 0));
    }
  }

 private:
  cudaStream_t stream_;
  std::vector<cudaStream_t> workers_;  // empty: everything on stream_
  std::vector<std::unique_ptr<CublasHandle>> handles_;
  cudaEvent_t fork_ = nullptr;
  std::vector<cudaEvent_t> joins_;

  std::vector<std::vector<GroupGemm>> plans_;  // per operand set
  cudaDataType_t out_type_ = CUDA_R_32F;
  size_t out_bytes_ = 4;
  bool accumulate_ = false;
  float alpha_ = 1.0f, beta_ = 0.0f;  // host scalars: read when a call is enqueued
};

// cublasGemmGroupedBatchedEx: its per-group arrays (operations, sizes, leading
// dimensions, alpha, beta, group sizes) live on the host, its matrix pointer
// arrays on the device. Every group is a group of one problem; groups with
// k = 0 (an empty wgrad group: D_i = beta D_i) or with an empty output (fprop,
// dgrad) are passed as they are: cuBLAS rejects only negative sizes.
class CublasGroupedPeer final : public Peer {
 public:
  explicit CublasGroupedPeer(cudaStream_t stream)
      : Peer(PeerInfo{"cublas_grouped"}), stream_(stream), handle_(stream) {}

  std::string not_applicable(const ShapeSpec& s) const override {
    if (s.out == OutDtype::kFp32) return "n/a (BF16->FP32 unsupported)";
    // The matrix pointers, on the device, cannot be checked by cuBLAS: a
    // misaligned one would fault. Every group's is 16-byte aligned when m, n are.
    if (s.m % 8 != 0 || s.n % 8 != 0) return "n/a (m, n not multiples of 8)";
    return "";
  }

  void prepare(const Workload& w) override {
    const ShapeSpec& s = w.spec();
    const size_t g = static_cast<size_t>(s.g);
    out_type_ = cuda_dtype(s.out);
    op_a_.clear();
    op_b_.clear();
    for (std::vector<int>* v : {&m_, &n_, &k_, &lda_, &ldb_, &ldc_}) v->clear();
    for (const GroupGemm& p : plan_gemms(w, 0)) {  // the same for every operand set
      op_a_.push_back(p.op_a);
      op_b_.push_back(p.op_b);
      m_.push_back(p.m);
      n_.push_back(p.n);
      k_.push_back(p.k);
      lda_.push_back(p.lda);
      ldb_.push_back(p.ldb);
      ldc_.push_back(p.ldc);
    }
    alpha_.assign(g, 1.0f);
    beta_.assign(g, s.accumulate ? 1.0f : 0.0f);
    group_size_.assign(g, 1);

    // Per operand set: g A pointers, g B pointers, g C pointers.
    std::vector<const void*> host;
    for (int set = 0; set < w.operand_sets(); ++set) {
      const std::vector<GroupGemm> plan = plan_gemms(w, set);
      for (const GroupGemm& p : plan) host.push_back(p.a);
      for (const GroupGemm& p : plan) host.push_back(p.b);
      for (const GroupGemm& p : plan) host.push_back(p.c);
    }
    pointers_ = DeviceBuffer(host.size() * sizeof(void*));
    BENCH_CUDA(
        cudaMemcpyAsync(pointers_.get(), host.data(), pointers_.bytes(), cudaMemcpyHostToDevice, stream_));
    BENCH_CUDA(cudaStreamSynchronize(stream_));  // `host` is pageable and about to go
  }

  void run(int set) override {
    const int g = static_cast<int>(m_.size());
    void* const* a = static_cast<void* const*>(pointers_.get()) + static_cast<size_t>(set) * 3 * m_.size();
    BENCH_CUBLAS(cublasGemmGroupedBatchedEx(handle_.get(), op_a_.data(), op_b_.data(), m_.data(), n_.data(),
                                            k_.data(), alpha_.data(), a, CUDA_R_16BF, lda_.data(), a + g,
                                            CUDA_R_16BF, ldb_.data(), beta_.data(), a + 2 * g, out_type_,
                                            ldc_.data(), g, group_size_.data(), CUBLAS_COMPUTE_32F));
  }

 private:
  cudaStream_t stream_;
  CublasHandle handle_;
  cudaDataType_t out_type_ = CUDA_R_16BF;
  std::vector<cublasOperation_t> op_a_, op_b_;
  std::vector<int> m_, n_, k_, lda_, ldb_, ldc_, group_size_;
  std::vector<float> alpha_, beta_;
  DeviceBuffer pointers_;  // device: per operand set, the A, B and C pointer arrays
};

// wgrad: moegemm_wgrad. fprop and dgrad: moegemm_ragged_m over the token
// buffer and the contiguous weights W [g, m, n] (m = F = out, n = H = in):
//   fprop  Y [T, F]  = X [T, H] . W_i^T   A = X,  op_b = T: B_i = W_i is [n = F, k = H]
//   dgrad  dX [T, H] = dY [T, F] . W_i    A = dY, op_b = N: B_i = W_i is [k = F, n = H]
class MoegemmPeer final : public Peer {
 public:
  MoegemmPeer(moegemm_wgrad_config_t config, moegemm_memory_t sizes, SharedWorkspace* workspace,
              cudaStream_t stream)
      : Peer(PeerInfo{"moegemm", true, config, sizes}), workspace_(workspace), stream_(stream) {}

  std::string not_applicable(const ShapeSpec& s) const override {
    if (s.pass != Pass::kWgrad && info_.config != MOEGEMM_WGRAD_CONFIG_AUTO)
      return "n/a (wgrad tile configuration; fprop/dgrad run in the auto peers)";
    return "";
  }

  // One problem struct per operand set, built before any timing.
  void prepare(const Workload& w) override {
    wgrad_.clear();
    ragged_.clear();
    path_.clear();
    path_reason_.clear();
    graph_na_.clear();
    if (w.spec().pass == Pass::kWgrad)
      prepare_wgrad(w);
    else
      prepare_ragged_m(w);
  }

  void run(int set) override {
    const size_t i = static_cast<size_t>(set);
    if (!wgrad_.empty())
      BENCH_MOEGEMM(moegemm_wgrad(&wgrad_[i], workspace_->get(), workspace_->bytes(), stream_));
    else
      BENCH_MOEGEMM(moegemm_ragged_m(&ragged_[i], workspace_->get(), workspace_->bytes(), stream_));
  }

  std::string resolved_config() const override {
    return wgrad_.empty() ? "" : short_config_name(moegemm_wgrad_choose_config(&wgrad_[0]));
  }
  std::string path() const override { return path_; }
  std::string path_reason() const override { return path_reason_; }
  std::string graph_not_applicable() const override { return graph_na_; }

 private:
  const int64_t* group_sizes(const Workload& w) const {
    return info_.sizes == MOEGEMM_MEMORY_HOST ? w.splits().data() : w.device_splits();
  }

  // A device array of g pointers into the contiguous output (the layout of
  // one parameter tensor per expert, as far as the kernel can tell).
  void* out_list(void* out, int g, int64_t group_bytes) {
    std::vector<void*> host(static_cast<size_t>(g));
    for (int i = 0; i < g; ++i) host[static_cast<size_t>(i)] = static_cast<char*>(out) + i * group_bytes;
    out_lists_.emplace_back(host.size() * sizeof(void*));
    BENCH_CUDA(cudaMemcpy(out_lists_.back().get(), host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice));
    return out_lists_.back().get();
  }

  void prepare_wgrad(const Workload& w) {
    const ShapeSpec& s = w.spec();
    out_lists_.clear();
    for (int set = 0; set < w.operand_sets(); ++set) {
      moegemm_wgrad_problem_t p = moegemm_wgrad_problem_default();
      p.num_groups = s.g;
      p.m = s.m;
      p.n = s.n;
      p.total_tokens = w.total_tokens();
      p.x = w.operands(set).x;
      p.dy = w.operands(set).dy;
      p.group_sizes = group_sizes(w);
      p.group_sizes_location = info_.sizes;
      p.out_dtype = moegemm_dtype(s.out);
      if (s.out_list) {
        p.out_ptrs = static_cast<void* const*>(
            out_list(w.operands(set).out, s.g, s.m * s.n * static_cast<int64_t>(dtype_size(s.out))));
        p.out_ptrs_location = MOEGEMM_MEMORY_DEVICE;
      } else {
        p.out = w.operands(set).out;
      }
      p.accumulate = s.accumulate ? 1 : 0;
      p.config = info_.config;
      wgrad_.push_back(p);
    }
    size_t bytes = 0;
    BENCH_MOEGEMM(moegemm_wgrad_workspace_size(&wgrad_[0], &bytes));
    workspace_->reserve(bytes);
  }

  void prepare_ragged_m(const Workload& w) {
    const ShapeSpec& s = w.spec();
    const bool fprop = s.pass == Pass::kFprop;
    for (int set = 0; set < w.operand_sets(); ++set) {
      const Operands& op = w.operands(set);
      moegemm_ragged_m_problem_t p = moegemm_ragged_m_problem_default();
      p.num_groups = s.g;
      p.total_rows = w.total_tokens();
      p.n = fprop ? s.m : s.n;
      p.k = fprop ? s.n : s.m;
      p.ab_dtype = MOEGEMM_DTYPE_BF16;
      p.d_dtype = moegemm_dtype(s.out);  // BF16: fprop and dgrad write the activations' type
      p.a = fprop ? op.x : op.dy;
      p.op_b = fprop ? MOEGEMM_OP_T : MOEGEMM_OP_N;
      p.b = op.w;
      p.b_ptrs = nullptr;
      p.d = op.out;
      p.group_sizes = group_sizes(w);
      p.group_sizes_location = info_.sizes;
      p.accumulate = s.accumulate ? 1 : 0;
      ragged_.push_back(p);
    }
    size_t bytes = 0;
    BENCH_MOEGEMM(moegemm_ragged_m_workspace_size(&ragged_[0], &bytes));
    workspace_->reserve(bytes);
    // Every operand set takes the same path: only the (aligned) pointers differ.
    moegemm_path_t path = MOEGEMM_PATH_CUBLAS;
    const char* reason = nullptr;
    BENCH_MOEGEMM(moegemm_ragged_m_path(&ragged_[0], &path, &reason));
    const char* name = moegemm_path_name(path);
    path_ = name != nullptr ? name : std::to_string(static_cast<int>(path));
    path_reason_ = reason != nullptr ? reason : "";  // thread-local: copied now
    // The cuBLAS path reads device split sizes back with a synchronisation,
    // which a stream capture refuses.
    if (path == MOEGEMM_PATH_CUBLAS && info_.sizes == MOEGEMM_MEMORY_DEVICE)
      graph_na_ = "n/a (cuBLAS path with device split sizes synchronises: not capturable)";
  }

  SharedWorkspace* workspace_;
  cudaStream_t stream_;
  std::vector<moegemm_wgrad_problem_t> wgrad_;      // wgrad: per operand set
  std::vector<DeviceBuffer> out_lists_;             // wgrad with --out-list: per operand set
  std::vector<moegemm_ragged_m_problem_t> ragged_;  // fprop, dgrad: per operand set
  std::string path_, path_reason_, graph_na_;
};

}  // namespace

const std::vector<std::string>& peer_names() {
  static const std::vector<std::string> names = {"cublas_ms4", "cublas_loop", "cublas_grouped", "moegemm"};
  return names;
}

std::unique_ptr<Peer> make_cublas_peer(const std::string& name, int num_streams, cudaStream_t stream) {
  return std::make_unique<CublasPeer>(name, num_streams, stream);
}

std::unique_ptr<Peer> make_cublas_grouped_peer(cudaStream_t stream) {
  return std::make_unique<CublasGroupedPeer>(stream);
}

void SharedWorkspace::reserve(size_t bytes) {
  if (bytes <= buffer_.bytes()) return;
  buffer_ = DeviceBuffer();  // free first: the old and the new need not fit together
  buffer_ = DeviceBuffer(bytes);
}

std::unique_ptr<Peer> make_moegemm_peer(moegemm_wgrad_config_t config, moegemm_memory_t sizes,
                                        SharedWorkspace* workspace, cudaStream_t stream) {
  return std::make_unique<MoegemmPeer>(config, sizes, workspace, stream);
}

}  // namespace bench
