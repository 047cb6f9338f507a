// Device-side harness of the general grouped GEMM tests (moegemm_gemm_list,
// moegemm_ragged_m): guarded device arenas, one list call and one ragged-M
// call set up end to end (fresh random inputs, NaN-poisoned or random initial
// outputs, every element checked against the float64 reference of
// gemm_reference.h, guard bytes and inputs checked afterwards), workspace
// and path helpers. Shared by moegemm_gpu_tests and moegemm_cublas_forced_tests.
#ifndef MOEGEMM_TESTS_GEMM_HARNESS_H_
#define MOEGEMM_TESTS_GEMM_HARNESS_H_

#include <cctype>
#include <cstring>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "gemm_reference.h"
#include "gpu_test_util.h"
#include "moegemm/moegemm.h"

namespace moegemm_test {

// ---------------------------------------------------------------------------
// Arena: one allocation holding a number of slots (matrices). Every byte that
// is not in a slot holds `fill`: for outputs a guard pattern that must survive
// the call, for inputs a value that shows when read (0x46 bytes: BF16 12672,
// FP16 6.27, FP32 12689.6). Separate slots start 256-byte aligned after a gap
// of kGap bytes; packed slots follow each other without a gap (one buffer
// cut into consecutive slices). `shift[i]` bytes are added in front of slot i
// (to misalign it). Empty slots get an address too (inside the gap).

class Arena {
 public:
  static constexpr size_t kGap = 512;
  static constexpr uint8_t kGuardFill = 0xA5;
  static constexpr uint8_t kInputFill = 0x46;

  Arena() = default;
  Arena(const std::vector<size_t>& slot_bytes, uint8_t fill, bool packed, const std::vector<size_t>& shift = {})
      : fill_(fill) {
    size_t off = kGap;
    for (size_t i = 0; i < slot_bytes.size(); ++i) {
      if (i > 0 && !packed) off = align256(off) + kGap;
      if (i < shift.size()) off += shift[i];
      offsets_.push_back(off);
      sizes_.push_back(slot_bytes[i]);
      off += slot_bytes[i];
    }
    image_.assign(align256(off) + kGap, fill);
    buffer_ = DeviceBuffer(image_.size());
  }
  Arena(Arena&&) = default;
  Arena& operator=(Arena&&) = default;

  size_t slots() const { return offsets_.size(); }
  char* ptr(size_t i) const { return buffer_.bytes_ptr() + offsets_[i]; }
  const Bytes& image() const { return image_; }

  void put(size_t i, const Bytes& b) {
    if (b.size() != sizes_[i]) throw TestError("test bug: Arena::put size");
    std::copy(b.begin(), b.end(), image_.begin() + static_cast<std::ptrdiff_t>(offsets_[i]));
  }
  void push() const { buffer_.upload(image_.data(), image_.size()); }
  Bytes pull() const {
    Bytes all(image_.size());
    buffer_.download(all.data(), all.size());
    return all;
  }
  Bytes slot(const Bytes& all, size_t i) const {
    return Bytes(all.begin() + static_cast<std::ptrdiff_t>(offsets_[i]),
                 all.begin() + static_cast<std::ptrdiff_t>(offsets_[i] + sizes_[i]));
  }

  // Every byte outside the slots still holds the fill (slots are in
  // increasing address order and do not overlap).
  ::testing::AssertionResult fill_intact(const Bytes& all, const std::string& what) const {
    size_t from = 0;
    for (size_t i = 0; i <= slots(); ++i) {
      const size_t to = i < slots() ? offsets_[i] : all.size();
      for (size_t b = from; b < to; ++b)
        if (all[b] != fill_) {
          auto f = ::testing::AssertionFailure() << what << ": byte " << b << " outside the slots was written (";
          if (i > 0) f << (b - (offsets_[i - 1] + sizes_[i - 1])) << " bytes past the end of slot " << (i - 1);
          else f << (to - b) << " bytes before slot 0";
          return f << ")";
        }
      if (i < slots()) from = offsets_[i] + sizes_[i];
    }
    return ::testing::AssertionSuccess();
  }

  // The whole allocation is as last pushed (inputs, or outputs of a failed call).
  ::testing::AssertionResult unchanged(const Bytes& all, const std::string& what) const {
    if (all == image_) return ::testing::AssertionSuccess();
    size_t b = 0;
    while (b < all.size() && all[b] == image_[b]) ++b;
    return ::testing::AssertionFailure() << what << " was written (first changed byte " << b << " of "
                                         << all.size() << ")";
  }

 private:
  static size_t align256(size_t v) { return (v + 255) / 256 * 256; }
  uint8_t fill_ = 0;
  std::vector<size_t> offsets_, sizes_;
  Bytes image_;
  DeviceBuffer buffer_;
};

inline HostMat mat_from(const Bytes& b, moegemm_dtype_t t, int64_t rows, int64_t cols) {
  HostMat m(t, rows, cols);
  if (b.size() != m.bytes.size()) throw TestError("test bug: mat_from size");
  m.bytes = b;
  return m;
}

// ---------------------------------------------------------------------------
// Paths

// MOEGEMM_USE_CUTLASS=0 sends every call to the cuBLAS path; the main suite
// then still passes (as a cross-check of path 3), expecting path 3 throughout.
// ("0" is the documented value; "false"/"off"/"no" are taken as 0 too.)
inline bool cutlass_disabled_by_env() {
  const char* e = std::getenv("MOEGEMM_USE_CUTLASS");
  if (e == nullptr) return false;
  std::string v(e);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "0" || v == "false" || v == "off" || v == "no";
}

inline moegemm_path_t expected_path(moegemm_path_t p) { return cutlass_disabled_by_env() ? MOEGEMM_PATH_CUBLAS : p; }

// "reason": "" for the uniform-K path, otherwise the rule that sent the call away.
inline ::testing::AssertionResult path_result(moegemm_status_t st, moegemm_path_t got, const char* reason,
                                              moegemm_path_t want) {
  if (st != MOEGEMM_STATUS_SUCCESS)
    return ::testing::AssertionFailure() << "path query returned " << moegemm_status_string(st) << ": "
                                         << moegemm_last_error();
  if (reason == nullptr) return ::testing::AssertionFailure() << "path query gave a NULL reason";
  if (got != want)
    return ::testing::AssertionFailure() << "path " << moegemm_path_name(got) << " (reason: \"" << reason
                                         << "\"), expected " << moegemm_path_name(want);
  // Path 1 says nothing unless its large groups run on cuBLAS beside it.
  if (want == MOEGEMM_PATH_UNIFORM_K && reason[0] != '\0' &&
      std::string(reason).rfind("uniform-K with large groups:", 0) != 0)
    return ::testing::AssertionFailure() << "uniform-K path with a non-empty reason \"" << reason << "\"";
  if (want != MOEGEMM_PATH_UNIFORM_K && reason[0] == '\0')
    return ::testing::AssertionFailure() << moegemm_path_name(got) << " with an empty reason";
  return ::testing::AssertionSuccess() << moegemm_path_name(got) << " (reason: \"" << reason << "\")";
}

// `got` starts as a path other than the one wanted: a query that does not
// write it fails.
inline moegemm_path_t other_path(moegemm_path_t p) {
  return p == MOEGEMM_PATH_CUBLAS ? MOEGEMM_PATH_UNIFORM_K : MOEGEMM_PATH_CUBLAS;
}

// The path query of each problem form, by overload.
inline moegemm_status_t query_path(const moegemm_gemm_list_t& p, moegemm_path_t* path, const char** reason) {
  return moegemm_gemm_list_path(&p, path, reason);
}
inline moegemm_status_t query_path(const moegemm_ragged_m_problem_t& p, moegemm_path_t* path, const char** reason) {
  return moegemm_ragged_m_path(&p, path, reason);
}

template <class Problem>
::testing::AssertionResult path_is(const Problem& p, moegemm_path_t want) {
  moegemm_path_t got = other_path(want);
  const char* reason = nullptr;
  const moegemm_status_t st = query_path(p, &got, &reason);
  return path_result(st, got, reason, want);
}
inline ::testing::AssertionResult list_path_is(const moegemm_gemm_list_t& p, moegemm_path_t want) {
  return path_is(p, want);
}
inline ::testing::AssertionResult ragged_path_is(const moegemm_ragged_m_problem_t& p, moegemm_path_t want) {
  return path_is(p, want);
}

inline std::string path_reason_list(const moegemm_gemm_list_t& p) {
  moegemm_path_t got;
  const char* reason = nullptr;
  if (moegemm_gemm_list_path(&p, &got, &reason) != MOEGEMM_STATUS_SUCCESS || reason == nullptr) return "";
  return reason;
}

// ---------------------------------------------------------------------------
// Workspaces and calls

inline Workspace list_workspace(const moegemm_gemm_list_t& p) {
  Workspace w;
  MOEGEMM_CHECK(moegemm_gemm_list_workspace_size(&p, &w.bytes));
  w.buffer = DeviceBuffer(w.bytes);
  return w;
}

inline Workspace ragged_workspace(const moegemm_ragged_m_problem_t& p) {
  Workspace w;
  MOEGEMM_CHECK(moegemm_ragged_m_workspace_size(&p, &w.bytes));
  w.buffer = DeviceBuffer(w.bytes);
  return w;
}

// The entry point of each problem form, by overload, for the helpers that
// serve both forms.
inline moegemm_status_t call_problem(const moegemm_gemm_list_t& p, void* ws, size_t bytes, cudaStream_t s) {
  return moegemm_gemm_list(&p, ws, bytes, s);
}
inline moegemm_status_t call_problem(const moegemm_ragged_m_problem_t& p, void* ws, size_t bytes, cudaStream_t s) {
  return moegemm_ragged_m(&p, ws, bytes, s);
}
inline const char* path_query_name(const moegemm_gemm_list_t&) { return "moegemm_gemm_list_path"; }
inline const char* path_query_name(const moegemm_ragged_m_problem_t&) { return "moegemm_ragged_m_path"; }

inline Workspace workspace_for(const moegemm_gemm_list_t& p) { return list_workspace(p); }
inline Workspace workspace_for(const moegemm_ragged_m_problem_t& p) { return ragged_workspace(p); }

// The call on `s` (its status and its launch checked); `enqueue_sync` also
// waits for it.
template <class Problem>
void enqueue(const Problem& p, const Workspace& ws, cudaStream_t s) {
  MOEGEMM_CHECK(call_problem(p, ws.get(), ws.bytes, s));
  CUDA_CHECK(cudaGetLastError());
}
template <class Problem>
void enqueue_sync(const Problem& p, const Workspace& ws, cudaStream_t s) {
  enqueue(p, ws, s);
  CUDA_CHECK(cudaStreamSynchronize(s));
}
inline void list_enqueue(const moegemm_gemm_list_t& p, const Workspace& ws, cudaStream_t s) { enqueue(p, ws, s); }
inline void list_sync(const moegemm_gemm_list_t& p, const Workspace& ws, cudaStream_t s) { enqueue_sync(p, ws, s); }
inline void ragged_enqueue(const moegemm_ragged_m_problem_t& p, const Workspace& ws, cudaStream_t s) {
  enqueue(p, ws, s);
}
inline void ragged_sync(const moegemm_ragged_m_problem_t& p, const Workspace& ws, cudaStream_t s) {
  enqueue_sync(p, ws, s);
}

// Stores an out-of-range value into a C enum field (as C code could), for the
// "unknown value" error cases, without an out-of-range conversion in C++.
template <class E>
void set_raw_enum(E* field, int value) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  std::memcpy(field, &value, sizeof value);
}

inline const char* op_name(moegemm_op_t o) { return o == MOEGEMM_OP_N ? "N" : (o == MOEGEMM_OP_T ? "T" : "op?"); }

inline std::vector<int64_t> same(int g, int64_t v) { return std::vector<int64_t>(static_cast<size_t>(g), v); }

// ---------------------------------------------------------------------------
// One moegemm_gemm_list call

enum class ListLayout {
  Separate,  // every matrix in its own slot, gaps between them
  Packed     // A_i (and B_i) consecutive slices of one buffer (A_{i+1} == A_i + size of A_i)
};

struct ListSpec {
  moegemm_op_t op_a = MOEGEMM_OP_N, op_b = MOEGEMM_OP_T;
  moegemm_dtype_t ab = MOEGEMM_DTYPE_BF16, d = MOEGEMM_DTYPE_BF16;
  std::vector<int64_t> m, n, k;  // one entry per group
  bool bias = false, gelu = false, accumulate = false;
  ListLayout layout = ListLayout::Separate;
  bool null_empty = false;  // NULL for every empty matrix (allowed by the header)
  size_t shift_a0 = 0;      // bytes added to A_0's address (breaks 16-byte alignment)
  size_t shift_bias0 = 0;   // bytes added to bias_0's address
  int num_streams = 0;
  int g() const { return static_cast<int>(m.size()); }
};

inline std::string describe(const ListSpec& s) {
  std::ostringstream os;
  os << "g=" << s.g() << " op_a=" << op_name(s.op_a) << " op_b=" << op_name(s.op_b) << " " << dt_name(s.ab) << "->"
     << dt_name(s.d) << " m=" << format_list(s.m) << " n=" << format_list(s.n) << " k=" << format_list(s.k)
     << (s.bias ? " bias" : "") << (s.gelu ? " gelu" : "") << (s.accumulate ? " accumulate" : " overwrite")
     << (s.layout == ListLayout::Packed ? " packed" : " separate") << (s.null_empty ? " null-empty" : "")
     << (s.shift_a0 ? " A0+" + std::to_string(s.shift_a0) + "B" : "")
     << (s.shift_bias0 ? " bias0+" + std::to_string(s.shift_bias0) + "B" : "") << " streams=" << s.num_streams;
  return os.str();
}

struct ListCall {
  ListSpec spec;
  std::vector<HostMat> A, B, bias, init_d, init_gi;
  Arena a_mem, b_mem, bias_mem, d_mem, gi_mem;
  std::vector<const void*> a_ptrs, b_ptrs, bias_ptrs;
  std::vector<void*> d_ptrs, gi_ptrs;
  moegemm_gemm_list_t problem{};

  ListCall(const ListSpec& s, std::mt19937_64& rng) : spec(s) {
    const int g = s.g();
    if (static_cast<int>(s.n.size()) != g || static_cast<int>(s.k.size()) != g) throw TestError("test bug: sizes");
    std::vector<size_t> a_bytes, b_bytes, bias_bytes, d_bytes;
    for (int i = 0; i < g; ++i) {
      const int64_t m = s.m[i], n = s.n[i], k = s.k[i];
      A.push_back(s.op_a == MOEGEMM_OP_N ? random_mat(rng, s.ab, m, k) : random_mat(rng, s.ab, k, m));
      B.push_back(s.op_b == MOEGEMM_OP_N ? random_mat(rng, s.ab, k, n) : random_mat(rng, s.ab, n, k));
      bias.push_back(s.bias ? random_mat(rng, s.d, 1, n) : HostMat());
      init_d.push_back(s.accumulate ? random_mat(rng, s.d, m, n) : poison_mat(s.d, m, n));
      init_gi.push_back(s.gelu ? poison_mat(s.d, m, n) : HostMat());
      a_bytes.push_back(A.back().bytes.size());
      b_bytes.push_back(B.back().bytes.size());
      bias_bytes.push_back(bias.back().bytes.size());
      d_bytes.push_back(init_d.back().bytes.size());
    }
    const bool packed = s.layout == ListLayout::Packed;
    a_mem = Arena(a_bytes, Arena::kInputFill, packed, {s.shift_a0});
    b_mem = Arena(b_bytes, Arena::kInputFill, packed);
    bias_mem = Arena(bias_bytes, Arena::kInputFill, false, {s.shift_bias0});
    d_mem = Arena(d_bytes, Arena::kGuardFill, false);
    gi_mem = Arena(s.gelu ? d_bytes : std::vector<size_t>(), Arena::kGuardFill, false);
    for (int i = 0; i < g; ++i) {
      a_mem.put(i, A[i].bytes);
      b_mem.put(i, B[i].bytes);
      bias_mem.put(i, bias[i].bytes);
      d_mem.put(i, init_d[i].bytes);
      if (s.gelu) gi_mem.put(i, init_gi[i].bytes);
      const bool null_a = s.null_empty && s.m[i] * s.k[i] == 0;
      const bool null_b = s.null_empty && s.k[i] * s.n[i] == 0;
      const bool null_d = s.null_empty && s.m[i] * s.n[i] == 0;
      a_ptrs.push_back(null_a ? nullptr : a_mem.ptr(i));
      b_ptrs.push_back(null_b ? nullptr : b_mem.ptr(i));
      bias_ptrs.push_back(s.null_empty && s.n[i] == 0 ? nullptr : bias_mem.ptr(i));
      d_ptrs.push_back(null_d ? nullptr : d_mem.ptr(i));
      gi_ptrs.push_back(!s.gelu || null_d ? nullptr : gi_mem.ptr(i));
    }
    a_mem.push();
    b_mem.push();
    bias_mem.push();
    reset();

    problem = moegemm_gemm_list_default();
    problem.num_groups = g;
    problem.op_a = s.op_a;
    problem.op_b = s.op_b;
    problem.ab_dtype = s.ab;
    problem.d_dtype = s.d;
    problem.m = spec.m.data();
    problem.n = spec.n.data();
    problem.k = spec.k.data();
    problem.a = a_ptrs.data();
    problem.b = b_ptrs.data();
    problem.d = d_ptrs.data();
    problem.bias = s.bias ? bias_ptrs.data() : nullptr;
    problem.gelu_input = s.gelu ? gi_ptrs.data() : nullptr;
    problem.accumulate = s.accumulate ? 1 : 0;
    problem.num_streams = s.num_streams;
  }
  ListCall(const ListCall&) = delete;
  ListCall& operator=(const ListCall&) = delete;

  // D (and gelu_input) back to their initial contents.
  void reset() const {
    d_mem.push();
    if (spec.gelu) gi_mem.push();
  }

  // Every element of every non-empty D_i (and gelu_input_i) against the
  // float64 reference; k_i = 0 and accumulating: bit-identical to before.
  // Then: guard bytes around/between the outputs, and the inputs unchanged.
  ::testing::AssertionResult check() const { return check(d_mem.pull()); }
  ::testing::AssertionResult check(const Bytes& d_all) const {
    const Bytes gi_all = spec.gelu ? gi_mem.pull() : Bytes();
    Mismatches mm;
    for (int i = 0; i < spec.g(); ++i) {
      const int64_t m = spec.m[i], n = spec.n[i], k = spec.k[i];
      if (m == 0 || n == 0) continue;
      const std::string gname = "group " + std::to_string(i) + " (m=" + std::to_string(m) + " n=" +
                                std::to_string(n) + " k=" + std::to_string(k) + ")";
      const HostMat got = mat_from(d_mem.slot(d_all, i), spec.d, m, n);
      if (spec.accumulate && k == 0) {
        compare_bits(gname + " D (k=0, accumulate: untouched)", got, init_d[i], 0, m, mm);
        continue;
      }
      const Ref ref = reference_gemm(spec.op_a, A[i], spec.op_b, B[i], m, n, k, spec.bias ? &bias[i] : nullptr,
                                     spec.accumulate ? &init_d[i] : nullptr);
      compare_to_ref(gname + " D", got, ref, spec.gelu, mm);
      if (spec.gelu) compare_to_ref(gname + " gelu_input", mat_from(gi_mem.slot(gi_all, i), spec.d, m, n), ref, false, mm);
    }
    ::testing::AssertionResult r = mm.result(describe(spec));
    if (!r) return r;
    if (auto f = d_mem.fill_intact(d_all, "D guard"); !f) return f;
    if (spec.gelu)
      if (auto f = gi_mem.fill_intact(gi_all, "gelu_input guard"); !f) return f;
    if (auto f = a_mem.unchanged(a_mem.pull(), "A"); !f) return f;
    if (auto f = b_mem.unchanged(b_mem.pull(), "B"); !f) return f;
    if (spec.bias)
      if (auto f = bias_mem.unchanged(bias_mem.pull(), "bias"); !f) return f;
    return ::testing::AssertionSuccess();
  }
};

// ---------------------------------------------------------------------------
// One moegemm_ragged_m call

enum class BKind { Contiguous, HostList, DeviceList };

inline const char* b_kind_name(BKind k) {
  switch (k) {
    case BKind::Contiguous: return "bcontig";
    case BKind::HostList: return "bhostlist";
    case BKind::DeviceList: return "bdevlist";
  }
  return "?";
}

struct RaggedSpec {
  int64_t T = 0, n = 64, k = 64;
  std::vector<int64_t> sizes;  // passed as is (device sizes may need clamping)
  moegemm_memory_t sizes_loc = MOEGEMM_MEMORY_HOST;
  moegemm_dtype_t ab = MOEGEMM_DTYPE_BF16, d = MOEGEMM_DTYPE_BF16;
  moegemm_op_t op_b = MOEGEMM_OP_T;
  BKind b_kind = BKind::Contiguous;
  bool accumulate = false;
  bool zero_unused_rows = false;  // rows past the groups must come back as zeros
  size_t shift_a = 0;             // bytes added to A's address
  // 0: every row of every group against the float64 reference. Otherwise
  // (overwriting calls too large for a full host reference) that many rows
  // of each group, first and last included, and every other row of the groups
  // checked as written (no NaN poison left).
  int64_t reference_rows_per_group = 0;
  int g() const { return static_cast<int>(sizes.size()); }
};

inline std::string describe(const RaggedSpec& s) {
  std::ostringstream os;
  os << "g=" << s.g() << " T=" << s.T << " n=" << s.n << " k=" << s.k << " op_b=" << op_name(s.op_b) << " "
     << dt_name(s.ab) << "->" << dt_name(s.d) << " sizes(" << (s.sizes_loc == MOEGEMM_MEMORY_DEVICE ? "device" : "host")
     << ")=" << format_list(s.sizes) << " " << b_kind_name(s.b_kind) << (s.accumulate ? " accumulate" : " overwrite")
     << (s.zero_unused_rows ? " zero-unused-rows" : "") << (s.shift_a ? " A+" + std::to_string(s.shift_a) + "B" : "");
  return os.str();
}

struct RaggedCall {
  RaggedSpec spec;
  std::vector<GroupSpan> spans;  // effective rows per group (clamping rule applied)
  int64_t used = 0;              // rows [used, T) of D must stay untouched (or become zeros)
  HostMat A, init_d;
  std::vector<HostMat> B;
  Arena a_mem, b_mem, d_mem;
  std::vector<const void*> b_ptrs;  // group -> B_i (HostList / DeviceList)
  DeviceBuffer dev_b_ptrs, dev_sizes;
  moegemm_ragged_m_problem_t problem{};

  RaggedCall(const RaggedSpec& s, std::mt19937_64& rng)
      : spec(s), spans(clamp_splits(s.sizes, s.T)), used(used_rows(spans)) {
    const int g = s.g();
    // A: random rows for the groups, large values in the rows past them.
    A = HostMat(s.ab, s.T, s.k);
    const HostMat live = random_mat(rng, s.ab, used, s.k), dead = big_mat(s.ab, s.T - used, s.k);
    std::copy(live.bytes.begin(), live.bytes.end(), A.bytes.begin());
    std::copy(dead.bytes.begin(), dead.bytes.end(), A.bytes.begin() + static_cast<std::ptrdiff_t>(live.bytes.size()));
    init_d = s.accumulate ? random_mat(rng, s.d, s.T, s.n) : poison_mat(s.d, s.T, s.n);
    for (int i = 0; i < g; ++i)
      B.push_back(s.op_b == MOEGEMM_OP_T ? random_mat(rng, s.ab, s.n, s.k) : random_mat(rng, s.ab, s.k, s.n));

    a_mem = Arena({A.bytes.size()}, Arena::kInputFill, false, {s.shift_a});
    a_mem.put(0, A.bytes);
    a_mem.push();
    d_mem = Arena({init_d.bytes.size()}, Arena::kGuardFill, false);
    d_mem.put(0, init_d.bytes);
    d_mem.push();

    const size_t b_one = static_cast<size_t>(s.n * s.k) * dt_bytes(s.ab);
    if (s.b_kind == BKind::Contiguous) {
      Bytes all;
      for (const HostMat& b : B) all.insert(all.end(), b.bytes.begin(), b.bytes.end());
      b_mem = Arena({all.size()}, Arena::kInputFill, false);
      b_mem.put(0, all);
    } else {
      // One slot per group, in shuffled order.
      std::vector<int> order(static_cast<size_t>(g));
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      b_mem = Arena(std::vector<size_t>(static_cast<size_t>(g), b_one), Arena::kInputFill, false);
      b_ptrs.resize(static_cast<size_t>(g));
      for (int slot = 0; slot < g; ++slot) {
        b_mem.put(slot, B[order[slot]].bytes);
        b_ptrs[order[slot]] = b_mem.ptr(slot);
      }
    }
    b_mem.push();

    problem = moegemm_ragged_m_problem_default();
    problem.num_groups = g;
    problem.total_rows = s.T;
    problem.n = s.n;
    problem.k = s.k;
    problem.ab_dtype = s.ab;
    problem.d_dtype = s.d;
    problem.a = a_mem.ptr(0);
    problem.op_b = s.op_b;
    switch (s.b_kind) {
      case BKind::Contiguous: problem.b = b_mem.ptr(0); break;
      case BKind::HostList:
        problem.b_ptrs = b_ptrs.data();
        problem.b_ptrs_location = MOEGEMM_MEMORY_HOST;
        break;
      case BKind::DeviceList:
        dev_b_ptrs = upload_vector(b_ptrs);
        problem.b_ptrs = static_cast<const void* const*>(dev_b_ptrs.get());
        problem.b_ptrs_location = MOEGEMM_MEMORY_DEVICE;
        break;
    }
    problem.d = d_mem.ptr(0);
    problem.group_sizes_location = s.sizes_loc;
    if (s.sizes_loc == MOEGEMM_MEMORY_DEVICE) {
      dev_sizes = upload_vector(s.sizes);
      problem.group_sizes = static_cast<const int64_t*>(dev_sizes.get());
    } else {
      problem.group_sizes = spec.sizes.data();
    }
    problem.accumulate = s.accumulate ? 1 : 0;
    problem.zero_unused_rows = s.zero_unused_rows ? 1 : 0;
  }
  RaggedCall(const RaggedCall&) = delete;
  RaggedCall& operator=(const RaggedCall&) = delete;

  void reset() const { d_mem.push(); }

  // New device sizes for the next launch (graph replays), same T. The rows of
  // A past the new total keep their values (random or large): what matters is
  // that D's rows past the new total stay untouched.
  void set_device_sizes(const std::vector<int64_t>& sizes) {
    if (spec.sizes_loc != MOEGEMM_MEMORY_DEVICE || static_cast<int>(sizes.size()) != spec.g())
      throw TestError("test bug: set_device_sizes");
    spec.sizes = sizes;
    spans = clamp_splits(sizes, spec.T);
    used = used_rows(spans);
    dev_sizes.upload(sizes.data(), sizes.size() * sizeof(int64_t));
  }

  // spec.reference_rows_per_group rows of group i (rows [r0, r1)), evenly
  // spaced from the first to the last, against the reference; every row of
  // the group written (the poison is NaN, the products of random data finite).
  void check_sampled_rows(const HostMat& got, int i, int64_t r0, int64_t r1, const std::string& where,
                          Mismatches& mm) const {
    if (spec.accumulate) throw TestError("test bug: sampled rows need an overwriting call (NaN poison)");
    const int64_t count = spec.reference_rows_per_group, size = r1 - r0;
    for (int64_t j = 0; j < count; ++j) {
      const int64_t r = r0 + (count == 1 ? 0 : j * (size - 1) / (count - 1));
      const Ref ref =
          reference_gemm(MOEGEMM_OP_N, slice_rows(A, r, r + 1), spec.op_b, B[i], 1, spec.n, spec.k, nullptr, nullptr);
      compare_to_ref(where + " row " + std::to_string(r), slice_rows(got, r, r + 1), ref, false, mm);
    }
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < spec.n; ++c) {
        const double v = got.at(static_cast<size_t>(r * spec.n + c));
        if (std::isnan(v)) mm.add(where + " (not written)", r, c, v, 0.0, -1.0);
      }
  }

  // Rows of every group against the float64 reference, rows [used, T)
  // bit-identical to before (all zero bits with zero_unused_rows), guard
  // bytes, and A, B, device sizes/pointer list unchanged.
  ::testing::AssertionResult check() const { return check(d_mem.pull()); }
  ::testing::AssertionResult check(const Bytes& d_all) const {
    const HostMat got = mat_from(d_mem.slot(d_all, 0), spec.d, spec.T, spec.n);
    Mismatches mm;
    for (int i = 0; i < spec.g(); ++i) {
      const GroupSpan sp = spans[i];
      if (sp.size == 0) continue;
      const int64_t r0 = sp.offset, r1 = sp.offset + sp.size;
      const std::string where =
          "group " + std::to_string(i) + " (rows " + std::to_string(r0) + ".." + std::to_string(r1) + ") D";
      const int64_t sampled = spec.reference_rows_per_group;
      if (sampled > 0 && sp.size > sampled) {
        check_sampled_rows(got, i, r0, r1, where, mm);
        continue;
      }
      const HostMat a = slice_rows(A, r0, r1), init = slice_rows(init_d, r0, r1);
      const Ref ref = reference_gemm(MOEGEMM_OP_N, a, spec.op_b, B[i], sp.size, spec.n, spec.k, nullptr,
                                     spec.accumulate ? &init : nullptr);
      compare_to_ref(where, slice_rows(got, r0, r1), ref, false, mm);
    }
    if (spec.zero_unused_rows)
      compare_bits("D rows past the groups (zeroed)", got, HostMat(spec.d, spec.T, spec.n), used, spec.T, mm);
    else
      compare_bits("D rows past the groups (untouched)", got, init_d, used, spec.T, mm);
    ::testing::AssertionResult r = mm.result(describe(spec));
    if (!r) return r;
    if (auto f = d_mem.fill_intact(d_all, "D guard"); !f) return f;
    if (auto f = a_mem.unchanged(a_mem.pull(), "A"); !f) return f;
    if (auto f = b_mem.unchanged(b_mem.pull(), "B"); !f) return f;
    if (spec.sizes_loc == MOEGEMM_MEMORY_DEVICE) {
      std::vector<int64_t> sizes(spec.sizes.size());
      dev_sizes.download(sizes.data(), sizes.size() * sizeof(int64_t));
      if (sizes != spec.sizes) return ::testing::AssertionFailure() << "the device group sizes were written";
    }
    if (spec.b_kind == BKind::DeviceList) {
      std::vector<const void*> ptrs(b_ptrs.size());
      dev_b_ptrs.download(ptrs.data(), ptrs.size() * sizeof(void*));
      if (ptrs != b_ptrs) return ::testing::AssertionFailure() << "the device B pointer list was written";
    }
    return ::testing::AssertionSuccess();
  }
};

// ---------------------------------------------------------------------------
// One call made from `s` (a ListCall or a RaggedCall): path asserted,
// workspace sized by the library, one run, full check.
template <class Call, class Spec, class Rng>
void run_and_check_call(const Spec& s, moegemm_path_t want, Rng& rng) {
  SCOPED_TRACE(describe(s));
  Call call(s, rng);
  ASSERT_TRUE(path_is(call.problem, expected_path(want)));
  const Workspace ws = workspace_for(call.problem);
  const Stream stream;
  enqueue_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check());
}

// ---------------------------------------------------------------------------
// Error cases: a call (list or ragged-M; `call` the valid one it was made
// from) that must fail with `want`, and its path query too when
// `problem_error`. Checks the status, that there is a message, that nothing
// failed on the device, and (once the device is idle) that D and its guards
// are unchanged.

template <class Problem, class Call>
void expect_call_fails(const Problem& bad, void* ws, size_t ws_bytes, bool problem_error, moegemm_status_t want,
                       const Stream& stream, Call& call) {
  if (problem_error) {
    moegemm_path_t path = MOEGEMM_PATH_UNIFORM_K;
    const char* reason = nullptr;
    const moegemm_status_t pst = query_path(bad, &path, &reason);
    EXPECT_EQ(pst, want) << path_query_name(bad) << ": " << moegemm_status_string(pst);
  }
  const moegemm_status_t st = call_problem(bad, ws, ws_bytes, stream.get());
  const std::string message = moegemm_last_error();
  EXPECT_EQ(st, want) << moegemm_status_string(st) << ": " << message;
  EXPECT_FALSE(message.empty()) << "moegemm_last_error() is empty after a failed call";
  CUDA_CHECK(cudaGetLastError());
  stream.sync();
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(call.d_mem.unchanged(call.d_mem.pull(), "D (with its guards) after a failed call"));
}

// ---------------------------------------------------------------------------
// Graph capture: runs `call` while `s` is captured (global mode) and always
// ends the capture. Returns the call's status (and its message).

struct Captured {
  moegemm_status_t status = MOEGEMM_STATUS_INTERNAL_ERROR;
  std::string message;
  cudaError_t end = cudaSuccess;
  GraphPtr graph;
};

template <class F>
Captured capture(cudaStream_t s, F call) {
  Captured c;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  c.status = call();
  c.message = moegemm_last_error();
  cudaGraph_t raw = nullptr;
  c.end = cudaStreamEndCapture(s, &raw);
  c.graph.reset(raw);
  return c;
}

// The call (list or ragged-M) captured on `stream`.
template <class Problem>
Captured capture_call(const Problem& p, const Workspace& ws, const Stream& stream) {
  return capture(stream.get(), [&] { return call_problem(p, ws.get(), ws.bytes, stream.get()); });
}

// A capture whose call succeeded, that ended cleanly (CUDA_CHECK: throws
// otherwise) and that holds a graph.
inline ::testing::AssertionResult captured_cleanly(const Captured& cap) {
  if (cap.status != MOEGEMM_STATUS_SUCCESS)
    return ::testing::AssertionFailure() << moegemm_status_string(cap.status) << ": " << cap.message;
  CUDA_CHECK(cap.end);
  if (cap.graph == nullptr) return ::testing::AssertionFailure() << "the capture holds no graph";
  return ::testing::AssertionSuccess();
}

inline GraphExecPtr instantiate(const GraphPtr& graph) {
  cudaGraphExec_t raw = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&raw, graph.get(), 0));
  return GraphExecPtr(raw);
}

inline void replay(const GraphExecPtr& exec, cudaStream_t s) {
  CUDA_CHECK(cudaGraphLaunch(exec.get(), s));
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace moegemm_test

#endif  // MOEGEMM_TESTS_GEMM_HARNESS_H_
