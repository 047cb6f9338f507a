// Host-only pieces of the general grouped GEMM tests (no CUDA calls): FP16
// conversion, dense host matrices of any moegemm dtype, random data, and the
// float64 reference of
//
//     D[m, n]  (+)=  op_a(A) · op_b(B)   (+ bias, then GELU tanh-approx)
//
// (row-major, dense) with the tolerances every output element is held to.
//
// Tolerance (stated once, used everywhere). Inputs are generated in their own
// type (BF16/FP16 values are exactly representable; FP32 too), and the
// reference is computed in float64 from exactly those values, so the only
// errors left are the device's accumulation order and the final rounding:
//
//   |out - ref| <= 1e-5 * S  +  R(ref)
//
//   S = sum over k of |a|·|b|  (+ |bias|): the scale of the accumulation
//       error. Products of BF16/FP16 values are exact in FP32, and each FP32
//       addition adds at most 2^-24·(partial sum) <= 2^-24·S; 1e-5·S leaves a
//       margin of ~170x over one ulp-of-S and is the bound
//       tests/wgrad_reference.h already holds moegemm_wgrad() to, up to
//       k = 16k. FP32 *inputs* are held to the same bound: moegemm.h says
//       nothing of TF32, so FP32 inputs must be computed in FP32; an
//       implementation that silently used TF32 (error ~2^-11·S) fails here.
//   R   = the rounding of the output: FP32 2^-22·|ref|, BF16 2^-8·|ref|,
//         FP16 2^-10·|ref| + 2^-24 (FP16 subnormal spacing) — each twice the
//         half-ulp of round-to-nearest.
//   Accumulating into BF16/FP16 adds R(product): cuBLASLt rounds the new
//   product to the output type before it adds the old value (measured on
//   H200: up to ~3 output ulps of small results), so one more rounding of the
//   product is allowed there.
//
// GELU (tanh approximation, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))):
//   D = GELU(pre) is held to 1.13·(tolerance of pre, including the rounding
//   of pre to the output type, in case GELU is taken of the rounded value)
//   + 1e-3·|pre| (a fast tanh, e.g. tanh.approx.f32 with ~2^-11 relative
//   error, in front of 0.5x) + R(GELU(ref)). 1.13 bounds |GELU'(x)|. This
//   still tells GELU from ReLU, from no activation or from a missing bias
//   (errors of 1e-1 and more on random data), not the erf form from tanh.
// NaN never passes (every comparison is written so that NaN is false).
#ifndef MOEGEMM_TESTS_GEMM_REFERENCE_H_
#define MOEGEMM_TESTS_GEMM_REFERENCE_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "moegemm/moegemm.h"
#include "wgrad_reference.h"

namespace moegemm_test {

// ---------------------------------------------------------------------------
// FP16 (IEEE binary16)

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Round to nearest even (what __float2half_rn does), subnormals included.
inline uint16_t float_to_fp16(float f) {
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: inf
  if (a < 0x38800000u) {                                               // < 2^-14: subnormal
    const float scaled = bits_to_float(a) * 16777216.0f;               // exact (power of two)
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  uint32_t h = ((((a >> 23) - 127u + 15u)) << 10) | ((a & 0x7fffffu) >> 13);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

// ---------------------------------------------------------------------------
// Every moegemm dtype (wgrad_reference.h's elem_* know FP32 and BF16 only)

inline size_t dt_bytes(moegemm_dtype_t t) { return t == MOEGEMM_DTYPE_FP32 ? 4 : 2; }

inline const char* dt_name(moegemm_dtype_t t) {
  switch (t) {
    case MOEGEMM_DTYPE_FP32: return "fp32";
    case MOEGEMM_DTYPE_BF16: return "bf16";
    case MOEGEMM_DTYPE_FP16: return "fp16";
  }
  return "dtype?";
}

inline uint32_t dt_bits(moegemm_dtype_t t, const uint8_t* base, size_t i) {
  if (t == MOEGEMM_DTYPE_FP32) {
    uint32_t u;
    std::memcpy(&u, base + 4 * i, 4);
    return u;
  }
  uint16_t b;
  std::memcpy(&b, base + 2 * i, 2);
  return b;
}

inline double dt_decode(moegemm_dtype_t t, uint32_t bits) {
  switch (t) {
    case MOEGEMM_DTYPE_FP32: return bits_to_float(bits);
    case MOEGEMM_DTYPE_BF16: return bf16_to_float(static_cast<uint16_t>(bits));
    case MOEGEMM_DTYPE_FP16: return fp16_to_float(static_cast<uint16_t>(bits));
  }
  return std::nan("");
}

inline uint32_t dt_encode(moegemm_dtype_t t, float v) {
  switch (t) {
    case MOEGEMM_DTYPE_FP32: return float_to_bits(v);
    case MOEGEMM_DTYPE_BF16: return float_to_bf16(v);
    case MOEGEMM_DTYPE_FP16: return float_to_fp16(v);
  }
  return 0;
}

inline void dt_store_bits(moegemm_dtype_t t, uint8_t* base, size_t i, uint32_t bits) {
  if (t == MOEGEMM_DTYPE_FP32) {
    std::memcpy(base + 4 * i, &bits, 4);
  } else {
    const uint16_t b = static_cast<uint16_t>(bits);
    std::memcpy(base + 2 * i, &b, 2);
  }
}

inline uint32_t dt_nan_bits(moegemm_dtype_t t) {
  switch (t) {
    case MOEGEMM_DTYPE_FP32: return kNanFp32;
    case MOEGEMM_DTYPE_BF16: return kNanBf16;
    case MOEGEMM_DTYPE_FP16: return 0x7e00u;
  }
  return 0;
}

// Uniform in [-1, 1], rounded to `t`, never zero.
inline uint32_t random_bits(moegemm_dtype_t t, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (;;) {
    const uint32_t b = dt_encode(t, u(rng));
    if (dt_decode(t, b) != 0.0) return b;
  }
}

// ---------------------------------------------------------------------------
// Dense row-major host matrix of any dtype

struct HostMat {
  moegemm_dtype_t dtype = MOEGEMM_DTYPE_FP32;
  int64_t rows = 0, cols = 0;
  Bytes bytes;

  HostMat() = default;
  HostMat(moegemm_dtype_t t, int64_t r, int64_t c)
      : dtype(t), rows(r), cols(c), bytes(static_cast<size_t>(r * c) * dt_bytes(t)) {}

  size_t count() const { return static_cast<size_t>(rows * cols); }
  uint32_t bits(size_t i) const { return dt_bits(dtype, bytes.data(), i); }
  double at(size_t i) const { return dt_decode(dtype, bits(i)); }
  double get(int64_t r, int64_t c) const { return at(static_cast<size_t>(r * cols + c)); }
  void set_bits(size_t i, uint32_t b) { dt_store_bits(dtype, bytes.data(), i, b); }
};

inline HostMat random_mat(std::mt19937_64& rng, moegemm_dtype_t t, int64_t rows, int64_t cols) {
  HostMat m(t, rows, cols);
  for (size_t i = 0; i < m.count(); ++i) m.set_bits(i, random_bits(t, rng));
  return m;
}

// NaN everywhere: an element left unwritten fails the comparison.
inline HostMat poison_mat(moegemm_dtype_t t, int64_t rows, int64_t cols) {
  HostMat m(t, rows, cols);
  for (size_t i = 0; i < m.count(); ++i) m.set_bits(i, dt_nan_bits(t));
  return m;
}

// Large values (+-4096) for input rows that must not be read: a read shows.
inline HostMat big_mat(moegemm_dtype_t t, int64_t rows, int64_t cols) {
  HostMat m(t, rows, cols);
  for (size_t i = 0; i < m.count(); ++i) m.set_bits(i, dt_encode(t, i % 2 ? 4096.0f : -4096.0f));
  return m;
}

// Rows [r0, r1) as a matrix of their own.
inline HostMat slice_rows(const HostMat& m, int64_t r0, int64_t r1) {
  HostMat s(m.dtype, r1 - r0, m.cols);
  const size_t row_bytes = static_cast<size_t>(m.cols) * dt_bytes(m.dtype);
  if (!s.bytes.empty()) std::memcpy(s.bytes.data(), m.bytes.data() + static_cast<size_t>(r0) * row_bytes, s.bytes.size());
  return s;
}

// ---------------------------------------------------------------------------
// Threads

template <class F>
void parallel_for(size_t count, F f) {
  const size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::min<size_t>({hw, size_t{16}, count});
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    for (size_t i; (i = next.fetch_add(1)) < count;) f(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
}

// ---------------------------------------------------------------------------
// float64 reference

inline double gelu_tanh(double x) {
  const double c = 0.7978845608028654;  // sqrt(2 / pi)
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

struct Ref {
  int64_t m = 0, n = 0;
  std::vector<double> pre;  // op_a(A)·op_b(B) + bias (+ initial D when accumulating), [m, n]
  std::vector<double> mag;  // sum |a||b| + |bias|  (the scale of the accumulation error)
  std::vector<double> product;  // pre without the initial D (only when accumulating)
};

// op_a == N: A is [m, k]; T: [k, m].  op_b == N: B is [k, n]; T: [n, k].
// `bias` (1 x n, or NULL) is added to every row; `init` ([m, n] or NULL) is
// the output before an accumulating call.
inline Ref reference_gemm(moegemm_op_t op_a, const HostMat& A, moegemm_op_t op_b, const HostMat& B, int64_t m,
                          int64_t n, int64_t k, const HostMat* bias, const HostMat* init) {
  Ref r;
  r.m = m;
  r.n = n;
  r.pre.assign(static_cast<size_t>(m * n), 0.0);
  r.mag.assign(static_cast<size_t>(m * n), 0.0);
  if (init != nullptr) r.product.assign(static_cast<size_t>(m * n), 0.0);
  // op_a(A) as [m][k] and op_b(B)^T as [n][k], both contiguous in k.
  std::vector<double> a(static_cast<size_t>(m * k)), bt(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t kk = 0; kk < k; ++kk) a[static_cast<size_t>(i * k + kk)] = op_a == MOEGEMM_OP_N ? A.get(i, kk) : A.get(kk, i);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk) bt[static_cast<size_t>(j * k + kk)] = op_b == MOEGEMM_OP_N ? B.get(kk, j) : B.get(j, kk);
  parallel_for(static_cast<size_t>(m), [&](size_t i) {
    const double* ar = &a[i * static_cast<size_t>(k)];
    for (int64_t j = 0; j < n; ++j) {
      const double* br = &bt[static_cast<size_t>(j * k)];
      double s = 0.0, sa = 0.0;
      for (int64_t kk = 0; kk < k; ++kk) {
        const double p = ar[kk] * br[kk];
        s += p;
        sa += std::fabs(p);
      }
      if (bias != nullptr) {
        const double bv = bias->at(static_cast<size_t>(j));
        s += bv;
        sa += std::fabs(bv);
      }
      const size_t idx = i * static_cast<size_t>(n) + static_cast<size_t>(j);
      if (init != nullptr) {
        r.product[idx] = s;
        s += init->at(idx);
      }
      r.pre[idx] = s;
      r.mag[idx] = sa;
    }
  });
  return r;
}

// ---------------------------------------------------------------------------
// Tolerances (see the top of this file)

constexpr double kAccumRel = 1e-5;
constexpr double kGeluApproxRel = 1e-3;
constexpr double kGeluSlope = 1.13;  // >= max |GELU'(x)| (1.1289 at x ~ 2.42)

inline double rounding_tol(moegemm_dtype_t t, double ref) {
  const double a = std::fabs(ref);
  switch (t) {
    case MOEGEMM_DTYPE_FP32: return std::ldexp(a, -22) + 1e-30;
    case MOEGEMM_DTYPE_BF16: return std::ldexp(a, -8) + 1e-30;
    case MOEGEMM_DTYPE_FP16: return std::ldexp(a, -10) + std::ldexp(1.0, -24);
  }
  return 0.0;
}

inline double pre_tol(moegemm_dtype_t d, double pre, double mag) { return kAccumRel * mag + rounding_tol(d, pre); }

inline double gelu_tol(moegemm_dtype_t d, double pre, double mag) {
  const double pre_err = kAccumRel * mag + (d == MOEGEMM_DTYPE_FP32 ? 0.0 : rounding_tol(d, pre));
  return kGeluSlope * pre_err + kGeluApproxRel * std::fabs(pre) + rounding_tol(d, gelu_tanh(pre));
}

// ---------------------------------------------------------------------------
// Comparisons: failures are counted, the first few reported.

class Mismatches {
 public:
  void add(const std::string& where, int64_t r, int64_t c, double got, double want, double tol) {
    std::lock_guard<std::mutex> lock(mu_);
    if (count_++ >= kMaxReports) return;
    std::ostringstream os;
    os.precision(10);
    os << where << " [" << r << ", " << c << "]: got " << got << ", expected " << want;
    if (tol >= 0) os << " (tol " << tol << ")";
    else os << " (bit-identical)";
    reports_.push_back(os.str());
  }
  void note(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (count_++ >= kMaxReports) return;
    reports_.push_back(s);
  }
  int64_t count() const { return count_; }
  ::testing::AssertionResult result(const std::string& what) const {
    if (count_ == 0) return ::testing::AssertionSuccess();
    auto f = ::testing::AssertionFailure();
    f << what << ": " << count_ << " mismatch(es):";
    for (const std::string& s : reports_) f << "\n  " << s;
    return f;
  }

 private:
  static constexpr int64_t kMaxReports = 12;
  std::mutex mu_;
  int64_t count_ = 0;
  std::vector<std::string> reports_;
};

// got[i] within pre_tol of ref.pre (or, with `gelu`, within gelu_tol of
// GELU(ref.pre)). `got` is [ref.m, ref.n] of the output dtype.
inline void compare_to_ref(const std::string& where, const HostMat& got, const Ref& ref, bool gelu, Mismatches& mm) {
  if (got.rows != ref.m || got.cols != ref.n) {
    mm.note(where + ": test bug: shape mismatch");
    return;
  }
  for (int64_t r = 0; r < ref.m; ++r)
    for (int64_t c = 0; c < ref.n; ++c) {
      const size_t i = static_cast<size_t>(r * ref.n + c);
      const double v = got.at(i);
      const double want = gelu ? gelu_tanh(ref.pre[i]) : ref.pre[i];
      double tol = gelu ? gelu_tol(got.dtype, ref.pre[i], ref.mag[i]) : pre_tol(got.dtype, ref.pre[i], ref.mag[i]);
      if (!ref.product.empty() && got.dtype != MOEGEMM_DTYPE_FP32) tol += rounding_tol(got.dtype, ref.product[i]);
      if (!(std::fabs(v - want) <= tol)) mm.add(where, r, c, v, want, tol);
    }
}

// Rows [r0, r1) of `got` bit-identical to those of `want` (same shape/dtype).
inline void compare_bits(const std::string& where, const HostMat& got, const HostMat& want, int64_t r0, int64_t r1,
                         Mismatches& mm) {
  if (got.cols != want.cols || got.dtype != want.dtype || got.rows < r1 || want.rows < r1) {
    mm.note(where + ": test bug: shape mismatch");
    return;
  }
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < got.cols; ++c) {
      const size_t i = static_cast<size_t>(r * got.cols + c);
      if (got.bits(i) != want.bits(i)) mm.add(where, r, c, got.at(i), want.at(i), -1.0);
    }
}

inline std::string format_list(const std::vector<int64_t>& v) { return format_sizes(v, 40); }

}  // namespace moegemm_test

#endif  // MOEGEMM_TESTS_GEMM_REFERENCE_H_
