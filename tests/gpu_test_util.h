// CUDA-side helpers of the GPU tests: checked CUDA calls, RAII device
// memory/streams/events/graphs, guarded output buffers in the three output
// layouts, one wgrad call set up end to end, and the test fixture that skips
// without an SM90 device.
#ifndef MOEGEMM_TESTS_GPU_TEST_UTIL_H_
#define MOEGEMM_TESTS_GPU_TEST_UTIL_H_

#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "moegemm/moegemm.h"
#include "wgrad_reference.h"

namespace moegemm_test {

// ---------------------------------------------------------------------------
// Checked calls. A failure throws; GoogleTest reports the exception as a
// failure of the running test, and RAII members release what was allocated.

struct TestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void cuda_check(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess)
    throw TestError(std::string(file) + ":" + std::to_string(line) + ": " + expr + " failed: " +
                    cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}
#define CUDA_CHECK(expr) ::moegemm_test::cuda_check((expr), #expr, __FILE__, __LINE__)

inline void moegemm_check(moegemm_status_t st, const char* expr, const char* file, int line) {
  if (st != MOEGEMM_STATUS_SUCCESS)
    throw TestError(std::string(file) + ":" + std::to_string(line) + ": " + expr + " returned " +
                    moegemm_status_string(st) + ": " + moegemm_last_error());
}
#define MOEGEMM_CHECK(expr) ::moegemm_test::moegemm_check((expr), #expr, __FILE__, __LINE__)

// ---------------------------------------------------------------------------
// RAII

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) CUDA_CHECK(cudaMalloc(&ptr_, bytes));
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  char* bytes_ptr() const { return static_cast<char*>(ptr_); }
  size_t size() const { return bytes_; }

  // Copies complete before these return (the stream is synchronised), so
  // they are ordered with work on any stream, blocking or not.
  void upload(const void* src, size_t bytes, size_t offset = 0, cudaStream_t s = nullptr) const {
    if (bytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(bytes_ptr() + offset, src, bytes, cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
  }
  void download(void* dst, size_t bytes, size_t offset = 0, cudaStream_t s = nullptr) const {
    if (bytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, bytes_ptr() + offset, bytes, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

template <class T>
DeviceBuffer upload_vector(const std::vector<T>& v) {
  DeviceBuffer b(v.size() * sizeof(T));
  b.upload(v.data(), b.size());
  return b;
}

class Stream {
 public:
  explicit Stream(unsigned flags = cudaStreamNonBlocking) { CUDA_CHECK(cudaStreamCreateWithFlags(&s_, flags)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void sync() const { CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  Event() { CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming)); }
  ~Event() { cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

struct GraphDeleter {
  void operator()(cudaGraph_t g) const { cudaGraphDestroy(g); }
};
struct GraphExecDeleter {
  void operator()(cudaGraphExec_t g) const { cudaGraphExecDestroy(g); }
};
using GraphPtr = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, GraphDeleter>;
using GraphExecPtr = std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, GraphExecDeleter>;

// ---------------------------------------------------------------------------
// Outputs

enum class OutKind { Contiguous, HostList, DeviceList };

inline const char* out_kind_name(OutKind k) {
  switch (k) {
    case OutKind::Contiguous: return "contig";
    case OutKind::HostList: return "hostlist";
    case OutKind::DeviceList: return "devlist";
  }
  return "?";
}

// The g outputs of a call, in one of the three layouts: a contiguous
// [g, m, n] buffer, or one cudaMalloc per group handed out in shuffled order
// through a host or device pointer list. Every allocation carries guard
// regions before and after the payload, filled with kGuardByte, so a write
// outside the outputs is caught.
class OutputSet {
 public:
  static constexpr size_t kGuardBytes = 1024;  // multiple of 256: payloads stay 256-byte aligned
  static constexpr uint8_t kGuardByte = 0xA5;

  OutputSet(OutKind kind, moegemm_dtype_t dtype, int g, int64_t m, int64_t n, std::mt19937_64& rng)
      : kind_(kind), dtype_(dtype), g_(g), group_bytes_(static_cast<size_t>(m * n) * elem_bytes(dtype)) {
    const int blocks = kind == OutKind::Contiguous ? 1 : g;
    const size_t payload = kind == OutKind::Contiguous ? group_bytes_ * static_cast<size_t>(g) : group_bytes_;
    for (int b = 0; b < blocks; ++b) {
      blocks_.emplace_back(payload + 2 * kGuardBytes);
      CUDA_CHECK(cudaMemset(blocks_.back().get(), kGuardByte, blocks_.back().size()));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<int> order(static_cast<size_t>(g));
    std::iota(order.begin(), order.end(), 0);
    if (kind != OutKind::Contiguous) std::shuffle(order.begin(), order.end(), rng);
    ptrs_.resize(static_cast<size_t>(g));
    for (int i = 0; i < g; ++i)
      ptrs_[i] = kind == OutKind::Contiguous
                     ? blocks_[0].bytes_ptr() + kGuardBytes + static_cast<size_t>(i) * group_bytes_
                     : blocks_[order[i]].bytes_ptr() + kGuardBytes;
    if (kind == OutKind::DeviceList) device_ptrs_ = upload_vector(ptrs_);
  }

  OutKind kind() const { return kind_; }
  moegemm_dtype_t dtype() const { return dtype_; }
  size_t group_bytes() const { return group_bytes_; }
  void* group_ptr(int i) const { return ptrs_[i]; }
  const std::vector<void*>& host_ptrs() const { return ptrs_; }

  // Sets out / out_ptrs / out_ptrs_location / out_dtype of `p`.
  void attach(moegemm_wgrad_problem_t* p) const {
    p->out_dtype = dtype_;
    p->out = nullptr;
    p->out_ptrs = nullptr;
    switch (kind_) {
      case OutKind::Contiguous: p->out = ptrs_[0]; break;
      case OutKind::HostList:
        p->out_ptrs = ptrs_.data();
        p->out_ptrs_location = MOEGEMM_MEMORY_HOST;
        break;
      case OutKind::DeviceList:
        p->out_ptrs = static_cast<void* const*>(device_ptrs_.get());
        p->out_ptrs_location = MOEGEMM_MEMORY_DEVICE;
        break;
    }
  }

  void upload(const GroupBytes& values) const {
    for (int i = 0; i < g_; ++i) {
      CUDA_CHECK(cudaMemcpy(ptrs_[i], values[i].data(), group_bytes_, cudaMemcpyHostToDevice));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
  }

  GroupBytes download() const {
    GroupBytes out(static_cast<size_t>(g_), Bytes(group_bytes_));
    for (int i = 0; i < g_; ++i)
      CUDA_CHECK(cudaMemcpy(out[i].data(), ptrs_[i], group_bytes_, cudaMemcpyDeviceToHost));
    return out;
  }

  ::testing::AssertionResult guards_intact() const {
    for (size_t b = 0; b < blocks_.size(); ++b) {
      const DeviceBuffer& blk = blocks_[b];
      Bytes all(blk.size());
      blk.download(all.data(), all.size());
      for (size_t i = 0; i < kGuardBytes; ++i) {
        if (all[i] != kGuardByte)
          return ::testing::AssertionFailure() << "write before output allocation " << b << " at byte -"
                                               << (kGuardBytes - i);
        if (all[all.size() - kGuardBytes + i] != kGuardByte)
          return ::testing::AssertionFailure() << "write past the end of output allocation " << b
                                               << " at byte +" << i;
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  OutKind kind_;
  moegemm_dtype_t dtype_;
  int g_;
  size_t group_bytes_;
  std::vector<DeviceBuffer> blocks_;
  std::vector<void*> ptrs_;  // group -> payload
  DeviceBuffer device_ptrs_;
};

inline ::testing::AssertionResult bit_identical(const GroupBytes& a, const GroupBytes& b, const char* what) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << what << ": group counts differ";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    size_t j = 0;
    while (j < a[i].size() && j < b[i].size() && a[i][j] == b[i][j]) ++j;
    return ::testing::AssertionFailure() << what << ": group " << i << " differs first at byte " << j;
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// Workspace and calls

struct Workspace {
  DeviceBuffer buffer;
  size_t bytes = 0;
  void* get() const { return buffer.get(); }
};

// Sized with moegemm_wgrad_workspace_size() for `num_groups` (it depends on
// nothing else).
inline Workspace make_workspace(int num_groups) {
  moegemm_wgrad_problem_t q = moegemm_wgrad_problem_default();
  q.num_groups = num_groups;
  Workspace w;
  MOEGEMM_CHECK(moegemm_wgrad_workspace_size(&q, &w.bytes));
  w.buffer = DeviceBuffer(w.bytes);
  return w;
}

// moegemm_wgrad() must succeed and leave no launch error.
inline void wgrad_enqueue(const moegemm_wgrad_problem_t& p, const Workspace& ws, cudaStream_t s) {
  MOEGEMM_CHECK(moegemm_wgrad(&p, ws.get(), ws.bytes, s));
  CUDA_CHECK(cudaGetLastError());
}

// ... and then run to completion without a fault.
inline void wgrad_sync(const moegemm_wgrad_problem_t& p, const Workspace& ws, cudaStream_t s) {
  wgrad_enqueue(p, ws, s);
  CUDA_CHECK(cudaStreamSynchronize(s));
}

// ---------------------------------------------------------------------------
// One wgrad call, set up end to end.

struct CaseSpec {
  int g = 1;
  int64_t m = 64, n = 64;
  std::vector<int64_t> sizes;  // passed as is (device sizes may need clamping)
  int64_t T = 0;
  moegemm_memory_t sizes_loc = MOEGEMM_MEMORY_HOST;
  OutKind out_kind = OutKind::Contiguous;
  moegemm_dtype_t dtype = MOEGEMM_DTYPE_FP32;
  bool accumulate = false;
  moegemm_wgrad_config_t config = MOEGEMM_WGRAD_CONFIG_AUTO;
};

inline std::string describe(const CaseSpec& s) {
  std::ostringstream os;
  os << "g=" << s.g << " m=" << s.m << " n=" << s.n << " T=" << s.T << " sizes("
     << (s.sizes_loc == MOEGEMM_MEMORY_DEVICE ? "device" : "host") << ")=" << format_sizes(s.sizes)
     << " out=" << out_kind_name(s.out_kind) << " " << dtype_name(s.dtype)
     << (s.accumulate ? " accumulate" : " overwrite") << " config=" << moegemm_wgrad_config_name(s.config);
  return os.str();
}

// Inputs with padding rows past the (clamped) sum, outputs with guards,
// initial output values (NaN poison, or random when accumulating), and the
// problem pointing at all of it. The workspace is the caller's.
struct WgradCall {
  CaseSpec spec;
  std::vector<GroupSpan> spans;  // effective rows per group (clamping rule applied)
  HostInputs in;
  DeviceBuffer x, dy;            // null when T == 0 (allowed by the API)
  DeviceBuffer device_sizes;
  OutputSet out;
  GroupBytes initial;
  moegemm_wgrad_problem_t problem{};

  WgradCall(const CaseSpec& s, std::mt19937_64& rng)
      : spec(s),
        spans(clamp_splits(s.sizes, s.T)),
        in(make_inputs(rng, s.T, s.m, s.n, used_rows(spans))),
        x(upload_vector(in.x)),
        dy(upload_vector(in.dy)),
        out(s.out_kind, s.dtype, s.g, s.m, s.n, rng),
        initial(s.accumulate ? random_outputs(s.dtype, s.g, s.m, s.n, rng) : poisoned_outputs(s.dtype, s.g, s.m, s.n)) {
    if (static_cast<int>(s.sizes.size()) != s.g) throw TestError("test bug: sizes.size() != g");
    problem = moegemm_wgrad_problem_default();
    problem.num_groups = s.g;
    problem.m = s.m;
    problem.n = s.n;
    problem.total_tokens = s.T;
    problem.x = x.get();
    problem.dy = dy.get();
    problem.group_sizes_location = s.sizes_loc;
    if (s.sizes_loc == MOEGEMM_MEMORY_DEVICE) {
      device_sizes = upload_vector(s.sizes);
      problem.group_sizes = static_cast<const int64_t*>(device_sizes.get());
    } else {
      problem.group_sizes = spec.sizes.data();
    }
    out.attach(&problem);
    problem.accumulate = s.accumulate ? 1 : 0;
    problem.config = s.config;
    reset_outputs();
  }
  WgradCall(const WgradCall&) = delete;
  WgradCall& operator=(const WgradCall&) = delete;

  void reset_outputs() const { out.upload(initial); }

  // Device split sizes for the next launch (graph replays): same T.
  void set_device_sizes(const std::vector<int64_t>& sizes) {
    if (spec.sizes_loc != MOEGEMM_MEMORY_DEVICE || static_cast<int>(sizes.size()) != spec.g)
      throw TestError("test bug: set_device_sizes");
    spec.sizes = sizes;
    spans = clamp_splits(sizes, spec.T);
    device_sizes.upload(sizes.data(), sizes.size() * sizeof(int64_t));
  }

  Expectation expectation() const {
    Expectation e;
    e.dtype = spec.dtype;
    e.accumulate = spec.accumulate;
    e.spans = spans;
    e.initial = &initial;
    return e;
  }

  // Every element against the reference, and the guard regions.
  ::testing::AssertionResult check() const { return check(out.download()); }
  ::testing::AssertionResult check(const GroupBytes& got) const {
    ::testing::AssertionResult r = verify_wgrad(in, expectation(), got);
    if (!r) return r;
    return out.guards_intact();
  }
};

// ---------------------------------------------------------------------------
// Fixture: skips without an SM90 device; fresh seed per test, in the trace
// of every failure (rerun with MOEGEMM_TEST_SEED=<seed>).

inline std::string seed_message(uint64_t seed) {
  return "seed " + std::to_string(seed) + " (rerun with MOEGEMM_TEST_SEED=" + std::to_string(seed) + ")";
}

class GpuTest : public ::testing::Test {
 protected:
  GpuTest() : seed_(fresh_seed()), rng_(seed_), seed_trace_(__FILE__, __LINE__, seed_message(seed_)) {}

  void SetUp() override {
    if (moegemm_device_supported() == 0) GTEST_SKIP() << "no SM90 GPU";
    RecordProperty("seed", std::to_string(seed_));
  }

  // Asynchronous faults are charged to the test that caused them.
  void TearDown() override {
    if (IsSkipped()) return;
    const cudaError_t sync = cudaDeviceSynchronize();
    EXPECT_EQ(sync, cudaSuccess) << "cudaDeviceSynchronize: " << cudaGetErrorString(sync);
    const cudaError_t last = cudaGetLastError();
    EXPECT_EQ(last, cudaSuccess) << "cudaGetLastError: " << cudaGetErrorString(last);
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  ::testing::ScopedTrace seed_trace_;
};

}  // namespace moegemm_test

#endif  // MOEGEMM_TESTS_GPU_TEST_UTIL_H_
