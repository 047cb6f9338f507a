// Host-only pieces of the GPU tests (no CUDA calls): BF16 conversion, random
// data, split sizes and their documented clamping rule, and the float64
// reference that every output element of moegemm_wgrad() is checked against.
#ifndef MOEGEMM_TESTS_WGRAD_REFERENCE_H_
#define MOEGEMM_TESTS_WGRAD_REFERENCE_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "moegemm/moegemm.h"

namespace moegemm_test {

// ---------------------------------------------------------------------------
// Element types

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bf16_to_float(uint16_t b) { return bits_to_float(static_cast<uint32_t>(b) << 16); }

// Round to nearest even (what __float2bfloat16_rn does).
inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

constexpr uint32_t kNanFp32 = 0x7fc00000u;
constexpr uint16_t kNanBf16 = 0x7fc0u;

inline size_t elem_bytes(moegemm_dtype_t t) { return t == MOEGEMM_DTYPE_BF16 ? 2 : 4; }
inline const char* dtype_name(moegemm_dtype_t t) { return t == MOEGEMM_DTYPE_BF16 ? "bf16" : "fp32"; }

inline uint32_t elem_bits(moegemm_dtype_t t, const uint8_t* base, size_t i) {
  if (t == MOEGEMM_DTYPE_BF16) {
    uint16_t b;
    std::memcpy(&b, base + 2 * i, 2);
    return b;
  }
  uint32_t u;
  std::memcpy(&u, base + 4 * i, 4);
  return u;
}

inline double elem_value(moegemm_dtype_t t, const uint8_t* base, size_t i) {
  const uint32_t b = elem_bits(t, base, i);
  return t == MOEGEMM_DTYPE_BF16 ? bf16_to_float(static_cast<uint16_t>(b)) : bits_to_float(b);
}

using Bytes = std::vector<uint8_t>;
using GroupBytes = std::vector<Bytes>;  // one row-major [m, n] output per group

// ---------------------------------------------------------------------------
// Random data

// MOEGEMM_TEST_SEED=<n> reruns a failure with the seed its trace printed.
inline uint64_t fresh_seed() {
  if (const char* s = std::getenv("MOEGEMM_TEST_SEED"); s != nullptr && *s != '\0')
    return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// Uniform in [-1, 1], rounded to BF16, never zero.
inline uint16_t random_bf16(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (;;) {
    const uint16_t b = float_to_bf16(u(rng));
    if ((b & 0x7fffu) != 0) return b;
  }
}

inline float random_fp32(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (;;) {
    const float f = u(rng);
    if (f != 0.0f) return f;
  }
}

// X [T, n] and dY [T, m] as BF16 bits. Rows [used_rows, T) are padding the
// kernel must ignore: they hold large values (+-16384) so that reading them
// cannot go unnoticed.
struct HostInputs {
  int64_t T = 0, m = 0, n = 0;
  std::vector<uint16_t> x, dy;
};

inline HostInputs make_inputs(std::mt19937_64& rng, int64_t T, int64_t m, int64_t n, int64_t used_rows) {
  HostInputs in;
  in.T = T;
  in.m = m;
  in.n = n;
  in.x.resize(static_cast<size_t>(T * n));
  in.dy.resize(static_cast<size_t>(T * m));
  const uint16_t big = float_to_bf16(16384.0f), neg_big = float_to_bf16(-16384.0f);
  auto fill = [&](std::vector<uint16_t>& v, int64_t cols) {
    for (int64_t r = 0; r < T; ++r)
      for (int64_t c = 0; c < cols; ++c)
        v[static_cast<size_t>(r * cols + c)] = r < used_rows ? random_bf16(rng) : ((r + c) % 2 ? big : neg_big);
  };
  fill(in.x, n);
  fill(in.dy, m);
  return in;
}

// Overwrite runs start from NaN everywhere: an element left unwritten fails.
inline GroupBytes poisoned_outputs(moegemm_dtype_t t, int g, int64_t m, int64_t n) {
  const size_t count = static_cast<size_t>(m * n);
  Bytes one(count * elem_bytes(t));
  for (size_t i = 0; i < count; ++i) {
    if (t == MOEGEMM_DTYPE_BF16) std::memcpy(one.data() + 2 * i, &kNanBf16, 2);
    else std::memcpy(one.data() + 4 * i, &kNanFp32, 4);
  }
  return GroupBytes(static_cast<size_t>(g), one);
}

// Accumulate runs start from random non-zero values of the output type.
inline GroupBytes random_outputs(moegemm_dtype_t t, int g, int64_t m, int64_t n, std::mt19937_64& rng) {
  const size_t count = static_cast<size_t>(m * n);
  GroupBytes out(static_cast<size_t>(g), Bytes(count * elem_bytes(t)));
  for (Bytes& b : out)
    for (size_t i = 0; i < count; ++i) {
      if (t == MOEGEMM_DTYPE_BF16) {
        const uint16_t v = random_bf16(rng);
        std::memcpy(b.data() + 2 * i, &v, 2);
      } else {
        const float v = random_fp32(rng);
        std::memcpy(b.data() + 4 * i, &v, 4);
      }
    }
  return out;
}

// ---------------------------------------------------------------------------
// Split sizes

// Zipf-like sizes with exponential noise, in random order, summing to
// `total`: a few groups take most tokens, many get a handful or none.
inline std::vector<int64_t> skewed_split(std::mt19937_64& rng, int g, int64_t total) {
  std::exponential_distribution<double> noise(1.0);
  std::vector<double> w(static_cast<size_t>(g));
  for (int i = 0; i < g; ++i) w[i] = (noise(rng) + 1e-3) / std::pow(i + 1.0, 1.1);
  std::shuffle(w.begin(), w.end(), rng);
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<int64_t> k(static_cast<size_t>(g));
  int64_t assigned = 0;
  for (int i = 0; i < g; ++i) {
    k[i] = static_cast<int64_t>(std::floor(static_cast<double>(total) * w[i] / sum));
    assigned += k[i];
  }
  std::uniform_int_distribution<int> pick(0, g - 1);
  for (; assigned < total; ++assigned) ++k[pick(rng)];
  return k;
}

// Skewed sizes with planted edge cases (needs g >= 8, total >= 137): empty
// first, middle and last groups, and groups of 1, 7 and 129 tokens.
inline std::vector<int64_t> special_split(std::mt19937_64& rng, int g, int64_t total) {
  const int mid = g / 2;
  const std::vector<std::pair<int, int64_t>> planted = {{0, 0}, {mid, 0}, {g - 1, 0}, {1, 1}, {2, 7}, {3, 129}};
  int64_t rest = total;
  for (const auto& p : planted) rest -= p.second;
  const std::vector<int64_t> free_sizes = skewed_split(rng, g - static_cast<int>(planted.size()), rest);
  std::vector<int64_t> k(static_cast<size_t>(g), -1);
  for (const auto& p : planted) k[p.first] = p.second;
  size_t next = 0;
  for (int64_t& v : k)
    if (v < 0) v = free_sizes[next++];
  return k;
}

// Device split sizes that need the clamping rule: negative values, a huge
// value, and a running sum that passes `T` about two thirds of the way.
inline std::vector<int64_t> messy_device_split(std::mt19937_64& rng, int g, int64_t T) {
  std::vector<int64_t> k = skewed_split(rng, g, T + T / 2);
  std::uniform_int_distribution<int> pick(0, g - 1);
  k[pick(rng)] = -7;
  k[pick(rng)] = std::numeric_limits<int64_t>::min();
  k[pick(rng)] = int64_t{1} << 40;
  return k;
}

struct GroupSpan {
  int64_t offset = 0, size = 0;
};

// The documented rule for device split sizes (host ones never need it):
// k_i < 0 counts as 0; off_i is capped at T and k_i at T - off_i.
inline std::vector<GroupSpan> clamp_splits(const std::vector<int64_t>& sizes, int64_t T) {
  std::vector<GroupSpan> spans(sizes.size());
  int64_t off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t k = std::max<int64_t>(sizes[i], 0);
    spans[i].offset = std::min(off, T);
    spans[i].size = std::min(k, T - spans[i].offset);
    off = spans[i].offset + spans[i].size;
  }
  return spans;
}

inline int64_t used_rows(const std::vector<GroupSpan>& spans) {
  return spans.empty() ? 0 : spans.back().offset + spans.back().size;
}

inline std::string format_sizes(const std::vector<int64_t>& sizes, size_t max_shown = 24) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < sizes.size() && i < max_shown; ++i) os << (i ? ", " : "") << sizes[i];
  if (sizes.size() > max_shown) os << ", ... (" << sizes.size() << " groups)";
  os << "]";
  return os.str();
}

// ---------------------------------------------------------------------------
// float64 reference and comparison

// |out - ref| <= tol. S = sum over k of |dY[k][r]| * |X[k][c]|.
//   FP32 out: 1e-5 * S, plus 2^-22 * |ref| for the final rounding of
//             (init + product) to FP32 when accumulating (without it a
//             product tiny next to the initial value could not pass).
//   BF16 out: 2^-8 * |ref| (the output rounding) + 1e-5 * S.
// NaN never passes (the comparison is false).
inline double tolerance(moegemm_dtype_t t, double ref, double abs_sum) {
  if (t == MOEGEMM_DTYPE_BF16) return std::ldexp(std::fabs(ref), -8) + 1e-5 * abs_sum + 1e-30;
  return 1e-5 * abs_sum + std::ldexp(std::fabs(ref), -22) + 1e-30;
}

struct Expectation {
  moegemm_dtype_t dtype = MOEGEMM_DTYPE_FP32;
  bool accumulate = false;
  std::vector<GroupSpan> spans;   // effective rows of each group (already clamped)
  const GroupBytes* initial = nullptr;  // outputs before the call (required when accumulating)
  std::vector<int> groups;        // groups to check; empty: all
};

// Checks every element of every checked group:
//   k_i = 0: exactly 0 when overwriting; bit-identical to the initial value
//            when accumulating.
//   k_i > 0: within tolerance() of (initial +) dY_i^T X_i computed in float64
//            from the very BF16 values uploaded.
inline ::testing::AssertionResult verify_wgrad(const HostInputs& in, const Expectation& e, const GroupBytes& got) {
  const int64_t m = in.m, n = in.n;
  const size_t g = e.spans.size();
  if (got.size() != g)
    return ::testing::AssertionFailure() << "got " << got.size() << " outputs, expected " << g;
  if (e.accumulate && (e.initial == nullptr || e.initial->size() != g))
    return ::testing::AssertionFailure() << "test bug: accumulate needs the initial outputs";
  const size_t group_bytes = static_cast<size_t>(m * n) * elem_bytes(e.dtype);
  for (size_t i = 0; i < g; ++i)
    if (got[i].size() != group_bytes)
      return ::testing::AssertionFailure() << "output " << i << " has " << got[i].size() << " bytes";

  // Inputs once as doubles (and |X|), row-major like on the device.
  std::vector<double> xd(in.x.size()), xa(in.x.size()), dyd(in.dy.size());
  for (size_t i = 0; i < in.x.size(); ++i) {
    xd[i] = bf16_to_float(in.x[i]);
    xa[i] = std::fabs(xd[i]);
  }
  for (size_t i = 0; i < in.dy.size(); ++i) dyd[i] = bf16_to_float(in.dy[i]);

  std::vector<int> groups = e.groups;
  if (groups.empty()) {
    groups.resize(g);
    std::iota(groups.begin(), groups.end(), 0);
  }

  // Work items: (group, block of output rows), spread over threads.
  constexpr int64_t kRows = 16;
  struct Item {
    int group;
    int64_t r0, r1;
  };
  std::vector<Item> items;
  for (int i : groups)
    for (int64_t r = 0; r < m; r += kRows) items.push_back({i, r, std::min(r + kRows, m)});

  std::atomic<size_t> next{0};
  std::atomic<int64_t> bad{0};
  std::mutex mu;
  std::vector<std::string> reports;
  constexpr size_t kMaxReports = 10;
  auto report = [&](int grp, int64_t r, int64_t c, double v, double ref, double tol, double s) {
    if (bad.fetch_add(1) >= static_cast<int64_t>(kMaxReports)) return;
    std::lock_guard<std::mutex> lock(mu);
    std::ostringstream os;
    os.precision(10);
    os << "group " << grp << " (k=" << e.spans[grp].size << ") [" << r << ", " << c << "]: got " << v
       << ", expected " << ref << " (tol " << tol << ", sum|ab| " << s << ")";
    reports.push_back(os.str());
  };

  auto worker = [&]() {
    std::vector<double> acc(static_cast<size_t>(kRows * n)), sab(static_cast<size_t>(kRows * n));
    for (size_t w; (w = next.fetch_add(1)) < items.size();) {
      const Item it = items[w];
      const GroupSpan span = e.spans[it.group];
      const uint8_t* out = got[it.group].data();
      const uint8_t* init = e.accumulate ? (*e.initial)[it.group].data() : nullptr;
      if (span.size == 0) {
        for (int64_t r = it.r0; r < it.r1; ++r)
          for (int64_t c = 0; c < n; ++c) {
            const size_t idx = static_cast<size_t>(r * n + c);
            const bool ok = e.accumulate ? elem_bits(e.dtype, out, idx) == elem_bits(e.dtype, init, idx)
                                         : elem_value(e.dtype, out, idx) == 0.0;
            if (!ok)
              report(it.group, r, c, elem_value(e.dtype, out, idx),
                     e.accumulate ? elem_value(e.dtype, init, idx) : 0.0, 0.0, 0.0);
          }
        continue;
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      std::fill(sab.begin(), sab.end(), 0.0);
      for (int64_t t = span.offset; t < span.offset + span.size; ++t) {
        const double* xr = &xd[static_cast<size_t>(t * n)];
        const double* xar = &xa[static_cast<size_t>(t * n)];
        const double* dyr = &dyd[static_cast<size_t>(t * m)];
        for (int64_t r = it.r0; r < it.r1; ++r) {
          const double a = dyr[r], aa = std::fabs(a);
          double* accr = &acc[static_cast<size_t>((r - it.r0) * n)];
          double* sabr = &sab[static_cast<size_t>((r - it.r0) * n)];
          for (int64_t c = 0; c < n; ++c) {
            accr[c] += a * xr[c];
            sabr[c] += aa * xar[c];
          }
        }
      }
      for (int64_t r = it.r0; r < it.r1; ++r)
        for (int64_t c = 0; c < n; ++c) {
          const size_t idx = static_cast<size_t>(r * n + c);
          const size_t local = static_cast<size_t>((r - it.r0) * n + c);
          const double ref = (init != nullptr ? elem_value(e.dtype, init, idx) : 0.0) + acc[local];
          const double tol = tolerance(e.dtype, ref, sab[local]);
          const double v = elem_value(e.dtype, out, idx);
          if (!(std::fabs(v - ref) <= tol)) report(it.group, r, c, v, ref, tol, sab[local]);
        }
    }
  };

  const size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::min<size_t>({hw, size_t{16}, items.size()});
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();

  if (bad.load() == 0) return ::testing::AssertionSuccess();
  auto fail = ::testing::AssertionFailure();
  fail << bad.load() << " wrong element(s) (" << dtype_name(e.dtype) << (e.accumulate ? ", accumulate" : "")
       << ", m=" << m << " n=" << n << "):";
  for (const std::string& s : reports) fail << "\n  " << s;
  return fail;
}

}  // namespace moegemm_test

#endif  // MOEGEMM_TESTS_WGRAD_REFERENCE_H_
