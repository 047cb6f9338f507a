// One test per rule of src/dispatch.cpp and src/env.cpp, called directly (no
// GPU): validation of the general grouped GEMM (the status code, and that the
// message names the offending argument), the path choice in the order that
// moegemm.h documents (the path, and the rule its reason names), the helpers
// the paths use, the environment parser, and the C API's path queries.
//
// Device pointers here are fake, aligned host addresses that nothing
// dereferences: validation and path choice only compare them and check their
// alignment. What the host does read (the size arrays, host pointer lists and
// host group sizes) lives in real host memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "dispatch.h"
#include "env.h"
#include "host_test_util.h"
#include "moegemm/moegemm.h"

namespace moegemm_test {
namespace {

using moegemm::detail::clamp_group_sizes;
using moegemm::detail::DispatchEnv;
using moegemm::detail::DispatchFacts;
using moegemm::detail::ListStorage;
using moegemm::detail::parse_dispatch_env;
using moegemm::detail::PathChoice;
using moegemm::detail::ragged_m_as_list;
using moegemm::detail::validate_gemm_list;
using moegemm::detail::validate_ragged_m;
using moegemm::detail::WgradBuffers;
using moegemm::detail::wgrad_buffers_of_list;

constexpr auto kInvalid = MOEGEMM_STATUS_INVALID_ARGUMENT;
constexpr auto kMisaligned = MOEGEMM_STATUS_MISALIGNED;
constexpr auto kUniformK = MOEGEMM_PATH_UNIFORM_K;
constexpr auto kVariableK = MOEGEMM_PATH_VARIABLE_K;
constexpr auto kCublas = MOEGEMM_PATH_CUBLAS;
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t k2Pow31 = int64_t{1} << 31;

using DtypePair = std::pair<moegemm_dtype_t, moegemm_dtype_t>;

// A fake device address (256-byte aligned when `address` is).
void* fake(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

// `p` moved by `bytes`, without pointer arithmetic on a fake address.
template <typename T>
T* moved(T* p, std::ptrdiff_t bytes) {
  return reinterpret_cast<T*>(reinterpret_cast<std::uintptr_t>(p) + bytes);
}

// Where the fake buffers start; every group's matrix is 1 MiB after the previous one.
constexpr std::uintptr_t kA = 0x10000000, kB = 0x20000000, kD = 0x30000000, kBias = 0x40000000,
                         kGelu = 0x50000000, kBList = 0x60000000, kGroupStride = 0x100000;

// The path, and a reason that names every one of `what` ("" for the uniform-K path).
::testing::AssertionResult takes(const PathChoice& c, moegemm_path_t path, std::vector<std::string> what = {}) {
  if (c.path != path)
    return ::testing::AssertionFailure() << "path " << moegemm_path_name(c.path) << " (expected "
                                         << moegemm_path_name(path) << "), reason \"" << c.reason << "\"";
  if (path == MOEGEMM_PATH_UNIFORM_K && !c.reason.empty())
    return ::testing::AssertionFailure() << "uniform-K path with reason \"" << c.reason << "\"";
  if (path != MOEGEMM_PATH_UNIFORM_K && c.reason.empty())
    return ::testing::AssertionFailure() << moegemm_path_name(path) << " path without a reason";
  for (const std::string& w : what)
    if (::testing::AssertionResult r = names(c.reason, w); !r) return r;
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// The problems

// List form, forward layout (op_a N, op_b T): g = 4, m = {32, 0, 48, 16}
// (group 1 empty, its pointers NULL), n = 128 and k = 64 for every group,
// BF16 A and B, FP32 D, every pointer 256-byte aligned. Valid, and on SM90
// it takes the uniform-K path. Not copyable: `p` points into it.
struct ListProblem {
  std::vector<int64_t> m, n, k;
  std::vector<const void*> a, b, bias;
  std::vector<void*> d, gelu;
  moegemm_gemm_list_t p{};

  ListProblem() {
    m = {32, 0, 48, 16};
    n.assign(4, 128);
    k.assign(4, 64);
    a = {fake(kA), nullptr, fake(kA + 2 * kGroupStride), fake(kA + 3 * kGroupStride)};
    b = {fake(kB), nullptr, fake(kB + 2 * kGroupStride), fake(kB + 3 * kGroupStride)};
    d = {fake(kD), nullptr, fake(kD + 2 * kGroupStride), fake(kD + 3 * kGroupStride)};
    p.op_a = MOEGEMM_OP_N;
    p.op_b = MOEGEMM_OP_T;
    p.ab_dtype = MOEGEMM_DTYPE_BF16;
    p.d_dtype = MOEGEMM_DTYPE_FP32;
    sync();
  }
  ListProblem(const ListProblem&) = delete;
  ListProblem& operator=(const ListProblem&) = delete;

  // Points `p` at the arrays again (after they were resized or reassigned).
  void sync() {
    p.num_groups = static_cast<int>(m.size());
    p.m = m.data();
    p.n = n.data();
    p.k = k.data();
    p.a = a.data();
    p.b = b.data();
    p.d = d.data();
    if (p.bias != nullptr) p.bias = bias.data();
    if (p.gelu_input != nullptr) p.gelu_input = gelu.data();
  }

  // g groups like group 0.
  void resize(int g) {
    m.assign(g, 32);
    n.assign(g, 128);
    k.assign(g, 64);
    a.assign(g, fake(kA));
    b.assign(g, fake(kB));
    d.assign(g, fake(kD));
    sync();
  }

  // A bias pointer per non-empty group (NULL for the empty ones).
  void add_bias() {
    bias.assign(m.size(), nullptr);
    for (size_t i = 0; i < m.size(); ++i)
      if (m[i] != 0) bias[i] = fake(kBias + i * kGroupStride);
    p.bias = bias.data();
  }
  void add_gelu() {
    gelu.assign(m.size(), nullptr);
    for (size_t i = 0; i < m.size(); ++i)
      if (m[i] != 0) gelu[i] = fake(kGelu + i * kGroupStride);
    p.gelu_input = gelu.data();
  }

  // The wgrad layout (op_a T, op_b N, BF16 A and B, FP32 D) with m = 64 and
  // n = 128 for every group and k_i = tokens[i]: A_i and B_i consecutive
  // slices of the token buffers at kA ([T, m]) and kB ([T, n]); the groups
  // with k_i = 0 have NULL A_i and B_i. On SM90 it takes the variable-K path.
  static constexpr int64_t kWgradM = 64, kWgradN = 128;
  void make_wgrad(const std::vector<int64_t>& tokens) {
    const size_t g = tokens.size();
    m.assign(g, kWgradM);
    n.assign(g, kWgradN);
    k = tokens;
    a.assign(g, nullptr);
    b.assign(g, nullptr);
    d.resize(g);
    int64_t off = 0;
    for (size_t i = 0; i < g; ++i) {
      if (k[i] > 0) {
        a[i] = fake(kA + off * kWgradM * 2);
        b[i] = fake(kB + off * kWgradN * 2);
      }
      d[i] = fake(kD + i * kGroupStride);
      off += k[i];
    }
    p.op_a = MOEGEMM_OP_T;
    p.op_b = MOEGEMM_OP_N;
    p.ab_dtype = MOEGEMM_DTYPE_BF16;
    p.d_dtype = MOEGEMM_DTYPE_FP32;
    sync();
  }
};

// Ragged-M form, forward (op_b T): g = 4, T = 230, host group sizes
// {50, 0, 120, 30}, n = 128, k = 64, BF16 A, B and D, contiguous B. Valid,
// and on SM90 it takes the uniform-K path. Not copyable: `p` points into it.
struct RaggedProblem {
  std::vector<int64_t> sizes{50, 0, 120, 30};
  std::vector<const void*> b_list;
  moegemm_ragged_m_problem_t p{};

  RaggedProblem() {
    p.num_groups = 4;
    p.total_rows = 230;
    p.n = 128;
    p.k = 64;
    p.ab_dtype = MOEGEMM_DTYPE_BF16;
    p.d_dtype = MOEGEMM_DTYPE_BF16;
    p.a = fake(kA);
    p.op_b = MOEGEMM_OP_T;
    p.b = fake(kB);
    p.b_ptrs_location = MOEGEMM_MEMORY_HOST;
    p.d = fake(kD);
    p.group_sizes = sizes.data();
    p.group_sizes_location = MOEGEMM_MEMORY_HOST;
  }
  RaggedProblem(const RaggedProblem&) = delete;
  RaggedProblem& operator=(const RaggedProblem&) = delete;

  // Group sizes (host or device array); num_groups follows their count.
  void set_sizes(std::vector<int64_t> s) {
    sizes = std::move(s);
    p.group_sizes = sizes.data();
    p.num_groups = static_cast<int>(sizes.size());
  }

  // A list of num_groups B pointers (256-byte aligned) instead of `b`.
  void use_b_list(moegemm_memory_t location) {
    b_list.resize(static_cast<size_t>(p.num_groups));
    for (size_t i = 0; i < b_list.size(); ++i) b_list[i] = fake(kBList + i * kGroupStride);
    p.b = nullptr;
    p.b_ptrs = b_list.data();
    p.b_ptrs_location = location;
  }
};

// ---------------------------------------------------------------------------
// validate_gemm_list

class GemmListValidate : public ::testing::Test {
 protected:
  moegemm::detail::Check validate() const { return validate_gemm_list(&l.p); }

  // `field` (an enum of l.p) set to each of `values` fails, naming `name`.
  template <typename E>
  void expect_unknown_rejected(E& field, std::initializer_list<int> values, const std::string& name) {
    for (int v : values) {
      field = static_cast<E>(v);
      EXPECT_TRUE(fails_with(validate(), kInvalid, name + ":")) << name << "=" << v;
    }
  }

  // Group 2's entry of `sizes` (l.m, l.n or l.k, named `name`) set to each of
  // `bad` fails; 2^31 - 1 passes.
  void expect_group_size_range(std::vector<int64_t>& sizes, const std::string& name,
                               std::initializer_list<int64_t> bad) {
    for (int64_t v : bad) {
      sizes[2] = v;
      EXPECT_TRUE(fails_with(validate(), kInvalid, name + "[2]:")) << name << "[2]=" << v;
    }
    sizes[2] = k2Pow31 - 1;
    EXPECT_TRUE(passes(validate()));
  }

  ListProblem l;
};

TEST_F(GemmListValidate, ValidListPasses) {
  EXPECT_TRUE(passes(validate()));
  l.make_wgrad({50, 0, 120, 30});
  EXPECT_TRUE(passes(validate()));
}

TEST_F(GemmListValidate, ProblemMustNotBeNull) {
  EXPECT_TRUE(fails_with(validate_gemm_list(nullptr), kInvalid, "problem:"));
}

TEST_F(GemmListValidate, NumGroupsMustBePositive) {
  for (int g : {0, -1, std::numeric_limits<int>::min()}) {
    l.p.num_groups = g;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "num_groups:")) << "g=" << g;
  }
  l.resize(1);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(GemmListValidate, NumGroupsAtMostMaxHostGroups) {
  l.resize(MOEGEMM_MAX_HOST_GROUPS + 1);
  const moegemm::detail::Check c = validate();
  EXPECT_TRUE(fails_with(c, kInvalid, "num_groups:"));
  EXPECT_TRUE(names(c.message, std::to_string(MOEGEMM_MAX_HOST_GROUPS)));
  l.resize(MOEGEMM_MAX_HOST_GROUPS);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(GemmListValidate, OpAMustBeKnown) { expect_unknown_rejected(l.p.op_a, {2, -1}, "op_a"); }

TEST_F(GemmListValidate, OpBMustBeKnown) { expect_unknown_rejected(l.p.op_b, {2, -1}, "op_b"); }

TEST_F(GemmListValidate, AbDtypeMustBeKnown) { expect_unknown_rejected(l.p.ab_dtype, {3, -1}, "ab_dtype"); }

TEST_F(GemmListValidate, DDtypeMustBeKnown) { expect_unknown_rejected(l.p.d_dtype, {3, -1}, "d_dtype"); }

TEST_F(GemmListValidate, DDtypeMustBeFp32OrAbDtype) {
  const auto F32 = MOEGEMM_DTYPE_FP32, B16 = MOEGEMM_DTYPE_BF16, F16 = MOEGEMM_DTYPE_FP16;
  for (auto [ab, d] : std::vector<DtypePair>{{B16, F16}, {F16, B16}, {F32, B16}, {F32, F16}}) {
    l.p.ab_dtype = ab;
    l.p.d_dtype = d;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "d_dtype:")) << "ab=" << ab << " d=" << d;
  }
  for (auto [ab, d] : std::vector<DtypePair>{{B16, B16}, {B16, F32}, {F16, F16}, {F16, F32}, {F32, F32}}) {
    l.p.ab_dtype = ab;
    l.p.d_dtype = d;
    EXPECT_TRUE(passes(validate())) << "ab=" << ab << " d=" << d;
  }
}

TEST_F(GemmListValidate, NumStreamsMustBeInRange) {
  for (int s : {-1, 17, std::numeric_limits<int>::max()}) {
    l.p.num_streams = s;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "num_streams:")) << "num_streams=" << s;
  }
  for (int s : {0, 1, 4, 16}) {
    l.p.num_streams = s;
    EXPECT_TRUE(passes(validate())) << "num_streams=" << s;
  }
}

TEST_F(GemmListValidate, MArrayMustNotBeNull) {
  l.p.m = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "m:"));
}

TEST_F(GemmListValidate, NArrayMustNotBeNull) {
  l.p.n = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "n:"));
}

TEST_F(GemmListValidate, KArrayMustNotBeNull) {
  l.p.k = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "k:"));
}

TEST_F(GemmListValidate, AArrayMustNotBeNull) {
  l.p.a = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "a:"));
}

TEST_F(GemmListValidate, BArrayMustNotBeNull) {
  l.p.b = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "b:"));
}

TEST_F(GemmListValidate, DArrayMustNotBeNull) {
  l.p.d = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "d:"));
}

TEST_F(GemmListValidate, AccumulateCannotBeCombinedWithBias) {
  l.p.accumulate = 1;
  EXPECT_TRUE(passes(validate()));
  l.add_bias();
  EXPECT_TRUE(fails_with(validate(), kInvalid, "accumulate:"));
}

TEST_F(GemmListValidate, AccumulateCannotBeCombinedWithGeluInput) {
  l.p.accumulate = 1;
  l.add_gelu();
  EXPECT_TRUE(fails_with(validate(), kInvalid, "accumulate:"));
}

TEST_F(GemmListValidate, GroupMMustBeInRange) {
  expect_group_size_range(l.m, "m", {int64_t{-1}, k2Pow31, kI64Max, kI64Min});
}

TEST_F(GemmListValidate, GroupNMustBeInRange) {
  expect_group_size_range(l.n, "n", {int64_t{-1}, k2Pow31, kI64Max});
}

TEST_F(GemmListValidate, GroupKMustBeInRange) {
  expect_group_size_range(l.k, "k", {int64_t{-1}, k2Pow31, kI64Max});
}

// Sizes are checked in empty groups too.
TEST_F(GemmListValidate, SizesOfEmptyGroupsAreChecked) {
  l.k[1] = -1;  // m[1] = 0
  EXPECT_TRUE(fails_with(validate(), kInvalid, "k[1]:"));
  l.k[1] = 64;
  l.n[1] = k2Pow31;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "n[1]:"));
}

TEST_F(GemmListValidate, EmptyGroupsMayHaveNullPointers) {
  // Group 1 has m = 0 and NULL a, b and d already; group 3 gets n = 0.
  l.n[3] = 0;
  l.a[3] = l.b[3] = nullptr;
  l.d[3] = nullptr;
  EXPECT_TRUE(passes(validate()));
  l.add_bias();  // NULL for group 1
  l.bias[3] = nullptr;
  EXPECT_TRUE(passes(validate()));
  l.p.bias = nullptr;
  l.add_gelu();
  l.gelu[3] = nullptr;
  EXPECT_TRUE(passes(validate()));
  // Misaligned pointers are not looked at either.
  l.a[1] = moved(l.a[2], 1);
  l.d[3] = moved(l.d[2], 1);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(GemmListValidate, AllGroupsEmptyPasses) {
  l.m.assign(4, 0);
  l.a.assign(4, nullptr);
  l.b.assign(4, nullptr);
  l.d.assign(4, nullptr);
  l.sync();
  EXPECT_TRUE(passes(validate()));
}

TEST_F(GemmListValidate, DMustNotBeNullInNonEmptyGroup) {
  l.d[2] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "d[2]:"));
}

TEST_F(GemmListValidate, DMustBeAlignedToItsElementSize) {
  l.d[2] = moved(l.d[2], 2);  // FP32
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "d[2]:"));
  l.d[2] = moved(l.d[2], 2);
  EXPECT_TRUE(passes(validate()));
  l.p.d_dtype = MOEGEMM_DTYPE_BF16;
  l.d[2] = moved(l.d[2], 1);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "d[2]:"));
  l.d[2] = moved(l.d[2], 1);
  EXPECT_TRUE(passes(validate()));
}

// k_i = 0 writes D_i = 0: A_i and B_i are not needed.
TEST_F(GemmListValidate, KZeroGroupNeedsOnlyD) {
  l.k[2] = 0;
  l.a[2] = l.b[2] = nullptr;
  EXPECT_TRUE(passes(validate()));
  l.a[2] = moved(fake(kA), 1);
  EXPECT_TRUE(passes(validate()));
  l.d[2] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "d[2]:"));
}

TEST_F(GemmListValidate, AMustNotBeNullInNonEmptyGroup) {
  l.a[2] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "a[2]:"));
}

TEST_F(GemmListValidate, BMustNotBeNullInNonEmptyGroup) {
  l.b[3] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "b[3]:"));
}

TEST_F(GemmListValidate, AMustBeAlignedToItsElementSize) {
  l.a[2] = moved(l.a[2], 1);  // BF16
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "a[2]:"));
  l.a[2] = moved(l.a[2], 1);
  EXPECT_TRUE(passes(validate()));
  l.p.ab_dtype = l.p.d_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "a[2]:"));
}

TEST_F(GemmListValidate, BMustBeAlignedToItsElementSize) {
  l.b[3] = moved(l.b[3], 1);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "b[3]:"));
  l.b[3] = moved(l.b[3], 1);
  EXPECT_TRUE(passes(validate()));
  l.p.ab_dtype = l.p.d_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "b[3]:"));
}

TEST_F(GemmListValidate, ValidEpiloguesPass) {
  l.add_bias();
  EXPECT_TRUE(passes(validate()));
  l.add_gelu();
  EXPECT_TRUE(passes(validate()));
  l.p.bias = nullptr;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(GemmListValidate, BiasEntryMustNotBeNullInNonEmptyGroup) {
  l.add_bias();
  l.bias[2] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "bias[2]:"));
}

TEST_F(GemmListValidate, BiasEntryMustBe16ByteAligned) {
  l.add_bias();
  l.bias[2] = moved(l.bias[2], 4);  // aligned to FP32 D's elements, not to 16 bytes
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "bias[2]:"));
  EXPECT_TRUE(names(validate().message, "16-byte"));
  l.bias[2] = moved(l.bias[2], 12);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(GemmListValidate, GeluInputEntryMustNotBeNullInNonEmptyGroup) {
  l.add_gelu();
  l.gelu[3] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "gelu_input[3]:"));
}

TEST_F(GemmListValidate, GeluInputEntryMustBe16ByteAligned) {
  l.add_gelu();
  for (int off : {4, 8}) {
    l.gelu[2] = moved(fake(kGelu + 2 * kGroupStride), off);
    EXPECT_TRUE(fails_with(validate(), kMisaligned, "gelu_input[2]:")) << "gelu_input[2]+" << off;
  }
}

TEST_F(GemmListValidate, GeluInputNeedsNMultipleOf8) {
  l.n[2] = 12;
  EXPECT_TRUE(passes(validate())) << "without gelu_input";
  l.add_gelu();
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "n[2]:"));
}

// ---------------------------------------------------------------------------
// validate_ragged_m

class RaggedValidate : public ::testing::Test {
 protected:
  moegemm::detail::Check validate() const { return validate_ragged_m(&r.p); }
  RaggedProblem r;
};

TEST_F(RaggedValidate, ValidProblemPasses) {
  EXPECT_TRUE(passes(validate()));
  r.p.op_b = MOEGEMM_OP_N;
  EXPECT_TRUE(passes(validate()));
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_FP16;
  EXPECT_TRUE(passes(validate()));
  r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(passes(validate()));
  r.p.ab_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(passes(validate()));
  r.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(passes(validate()));
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  EXPECT_TRUE(passes(validate()));
  r.use_b_list(MOEGEMM_MEMORY_DEVICE);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, ProblemMustNotBeNull) {
  EXPECT_TRUE(fails_with(validate_ragged_m(nullptr), kInvalid, "problem:"));
}

TEST_F(RaggedValidate, NumGroupsMustBePositive) {
  for (int g : {0, -1, std::numeric_limits<int>::min()}) {
    r.p.num_groups = g;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "num_groups:")) << "g=" << g;
  }
}

TEST_F(RaggedValidate, TotalRowsMustBeInRange) {
  for (int64_t t : {int64_t{-1}, k2Pow31, kI64Max}) {
    r.p.total_rows = t;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "total_rows:")) << "T=" << t;
  }
  r.p.total_rows = k2Pow31 - 1;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, NMustBeInRange) {
  for (int64_t n : {int64_t{0}, int64_t{-1}, k2Pow31, kI64Max}) {
    r.p.n = n;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "n:")) << "n=" << n;
  }
  r.p.n = 1;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, KMustBeInRange) {
  for (int64_t k : {int64_t{0}, int64_t{-1}, k2Pow31, kI64Max}) {
    r.p.k = k;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "k:")) << "k=" << k;
  }
  r.p.k = k2Pow31 - 1;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, AbDtypeMustBeKnown) {
  r.p.ab_dtype = static_cast<moegemm_dtype_t>(3);
  EXPECT_TRUE(fails_with(validate(), kInvalid, "ab_dtype:"));
}

TEST_F(RaggedValidate, DDtypeMustBeKnown) {
  r.p.d_dtype = static_cast<moegemm_dtype_t>(-1);
  EXPECT_TRUE(fails_with(validate(), kInvalid, "d_dtype:"));
}

TEST_F(RaggedValidate, DDtypeMustBeFp32OrAbDtype) {
  r.p.d_dtype = MOEGEMM_DTYPE_FP16;  // ab BF16
  EXPECT_TRUE(fails_with(validate(), kInvalid, "d_dtype:"));
  r.p.ab_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "d_dtype:"));
}

TEST_F(RaggedValidate, OpBMustBeKnown) {
  r.p.op_b = static_cast<moegemm_op_t>(2);
  EXPECT_TRUE(fails_with(validate(), kInvalid, "op_b:"));
}

TEST_F(RaggedValidate, GroupSizesLocationMustBeKnown) {
  r.p.group_sizes_location = static_cast<moegemm_memory_t>(2);
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes_location:"));
}

TEST_F(RaggedValidate, ZeroUnusedRowsIsAFlagForOverwritingCalls) {
  r.p.zero_unused_rows = 1;
  EXPECT_TRUE(passes(validate()));
  r.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(passes(validate()));
  for (int v : {2, -1}) {
    r.p.zero_unused_rows = v;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "zero_unused_rows: must be 0 or 1")) << v;
  }
  r.p.zero_unused_rows = 1;
  r.p.accumulate = 1;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "zero_unused_rows: must be 0 when accumulate"));
  r.p.zero_unused_rows = 0;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, AMustNotBeNullWhenThereAreRows) {
  r.p.a = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "a:"));
}

TEST_F(RaggedValidate, DMustNotBeNullWhenThereAreRows) {
  r.p.d = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "d:"));
}

TEST_F(RaggedValidate, AAndDMayBeNullWithoutRows) {
  r.set_sizes({0, 0, 0, 0});
  r.p.total_rows = 0;
  r.p.a = nullptr;
  r.p.d = nullptr;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, AMustBeAlignedToItsElementSize) {
  r.p.a = moved(r.p.a, 1);  // BF16
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "a:"));
  r.p.a = moved(r.p.a, 1);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, DMustBeAlignedToItsElementSize) {
  r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  r.p.d = moved(r.p.d, 2);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "d:"));
  r.p.d = moved(r.p.d, 2);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, ExactlyOneOfBAndBPtrs) {
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  r.p.b = fake(kB);
  moegemm::detail::Check c = validate();
  EXPECT_TRUE(fails_with(c, kInvalid, "b/b_ptrs:"));
  EXPECT_TRUE(names(c.message, "both"));
  r.p.b = nullptr;
  r.p.b_ptrs = nullptr;
  c = validate();
  EXPECT_TRUE(fails_with(c, kInvalid, "b/b_ptrs:"));
  EXPECT_TRUE(names(c.message, "neither"));
}

TEST_F(RaggedValidate, BMustBeAlignedToItsElementSize) {
  r.p.b = moved(r.p.b, 1);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "b:"));
}

TEST_F(RaggedValidate, BPtrsLocationMustBeKnown) {
  r.use_b_list(static_cast<moegemm_memory_t>(3));
  EXPECT_TRUE(fails_with(validate(), kInvalid, "b_ptrs_location:"));
}

TEST_F(RaggedValidate, HostBPtrsAllowAtMostMaxHostGroups) {
  r.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS + 1, 0));
  r.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;  // else the sizes are rejected first
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  EXPECT_TRUE(fails_with(validate(), kInvalid, "b_ptrs:"));
  r.use_b_list(MOEGEMM_MEMORY_DEVICE);
  EXPECT_TRUE(passes(validate()));
  r.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS, 0));
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, HostBPtrEntryMustNotBeNull) {
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  r.b_list[2] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "b_ptrs[2]:"));
}

TEST_F(RaggedValidate, HostBPtrEntryMustBeAlignedToItsElementSize) {
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  r.b_list[3] = moved(r.b_list[3], 1);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "b_ptrs[3]:"));
  r.b_list[3] = moved(r.b_list[3], 1);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, DeviceBPtrsArrayMustBe8ByteAligned) {
  r.use_b_list(MOEGEMM_MEMORY_DEVICE);
  r.p.b_ptrs = moved(r.b_list.data(), 4);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "b_ptrs:"));
}

// Entries of a device pointer list are not read by the host.
TEST_F(RaggedValidate, DeviceBPtrEntriesAreNotChecked) {
  r.use_b_list(MOEGEMM_MEMORY_DEVICE);
  r.b_list[0] = nullptr;
  r.b_list[2] = moved(r.b_list[2], 1);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, GroupSizesMustNotBeNull) {
  r.p.group_sizes = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes:"));
  r.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes:"));
}

TEST_F(RaggedValidate, DeviceGroupSizesMustBe8ByteAligned) {
  r.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  r.p.group_sizes = moved(r.sizes.data(), 4);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "group_sizes:"));
}

// Device group sizes cannot be read by the host: any values pass (they are
// clamped). The array here is host memory holding bad values.
TEST_F(RaggedValidate, DeviceGroupSizesAreNotChecked) {
  r.set_sizes({-5, kI64Max, kI64Min, 1000000});
  r.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(passes(validate()));
  r.set_sizes(std::vector<int64_t>(5000, 0));
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, HostGroupSizesAllowAtMostMaxHostGroups) {
  r.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS + 1, 0));
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes:"));
  r.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS, 0));
  EXPECT_TRUE(passes(validate()));
}

TEST_F(RaggedValidate, HostGroupSizeMustBeNonNegative) {
  r.set_sizes({50, 0, -1, 30});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes[2]:"));
  r.set_sizes({kI64Min, 0, 0, 0});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes[0]:"));
}

TEST_F(RaggedValidate, HostGroupSizesMustSumToAtMostTotalRows) {
  r.set_sizes({50, 0, 151, 30});  // 231 > 230
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes:"));
  r.set_sizes({50, kI64Max, 120, 30});  // the running sum must not wrap around
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes:"));
  r.set_sizes({1, kI64Max, kI64Max, 0});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes:"));
  r.set_sizes({50, 0, 150, 30});  // exactly T
  EXPECT_TRUE(passes(validate()));
  r.set_sizes({1, 0, 0, 2});  // rows past the sum are not touched
  EXPECT_TRUE(passes(validate()));
}

// ---------------------------------------------------------------------------
// choose_list_path: the rules of moegemm.h, in order

class ListPath : public ::testing::Test {
 protected:
  // After sync(): tests assign whole size vectors.
  PathChoice choose() {
    l.sync();
    return choose_list_path(l.p, facts);
  }
  ListProblem l;
  DispatchFacts facts{/*sm90=*/true, /*use_cutlass=*/true};
};

TEST_F(ListPath, NotSm90TakesCublasFirst) {
  facts.sm90 = false;
  EXPECT_TRUE(takes(choose(), kCublas, {"SM90"}));
  // Before every other rule.
  facts.use_cutlass = false;
  l.add_bias();
  const PathChoice c = choose();
  EXPECT_TRUE(takes(c, kCublas, {"SM90"}));
  EXPECT_EQ(c.reason.find("MOEGEMM_USE_CUTLASS"), std::string::npos) << c.reason;
  l.p.bias = nullptr;
  l.make_wgrad({50, 0, 120, 30});
  EXPECT_TRUE(takes(choose(), kCublas, {"SM90"}));
}

TEST_F(ListPath, UseCutlassOffTakesCublas) {
  facts.use_cutlass = false;
  EXPECT_TRUE(takes(choose(), kCublas, {"MOEGEMM_USE_CUTLASS=0"}));
  l.add_bias();
  EXPECT_TRUE(takes(choose(), kCublas, {"MOEGEMM_USE_CUTLASS=0"}));
  l.p.bias = nullptr;
  l.make_wgrad({50, 0, 120, 30});
  EXPECT_TRUE(takes(choose(), kCublas, {"MOEGEMM_USE_CUTLASS=0"}));
}

TEST_F(ListPath, BiasTakesCublas) {
  l.add_bias();
  EXPECT_TRUE(takes(choose(), kCublas, {"bias/GELU"}));
}

TEST_F(ListPath, GeluInputTakesCublas) {
  l.add_gelu();
  EXPECT_TRUE(takes(choose(), kCublas, {"bias/GELU"}));
}

// An epilogue sends a list that the variable-K path would take to cuBLAS as well.
TEST_F(ListPath, EpilogueOnWgradLayoutTakesCublas) {
  l.make_wgrad({50, 0, 120, 30});
  l.add_bias();
  EXPECT_TRUE(takes(choose(), kCublas, {"bias/GELU"}));
}

TEST_F(ListPath, ValidListTakesUniformK) {
  EXPECT_TRUE(takes(choose(), kUniformK));
  l.p.op_b = MOEGEMM_OP_N;  // dgrad layout
  EXPECT_TRUE(takes(choose(), kUniformK));
  l.p.accumulate = 1;
  l.p.num_streams = 7;
  EXPECT_TRUE(takes(choose(), kUniformK));
  const auto F32 = MOEGEMM_DTYPE_FP32, B16 = MOEGEMM_DTYPE_BF16, F16 = MOEGEMM_DTYPE_FP16;
  for (auto [ab, d] : std::vector<DtypePair>{{B16, B16}, {F16, F16}, {F16, F32}}) {
    l.p.ab_dtype = ab;
    l.p.d_dtype = d;
    EXPECT_TRUE(takes(choose(), kUniformK)) << "ab=" << ab << " d=" << d;
  }
}

// Uniform-K rule: A and B both BF16 or both FP16.
TEST_F(ListPath, UniformKRuleAbDtype) {
  l.p.ab_dtype = l.p.d_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: ab_dtype is FP32", "BF16 or FP16"}));
}

// Uniform-K rule: op_a == N.
TEST_F(ListPath, UniformKRuleOpA) {
  l.p.op_a = MOEGEMM_OP_T;  // op_b T: not the wgrad layout either
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: op_a is T"}));
}

// Uniform-K rule: the same k for every group, empty groups included.
TEST_F(ListPath, UniformKRuleSameK) {
  l.k[2] = 32;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k differs between groups", "k[0] = 64", "k[2] = 32"}));
  l.k[2] = 64;
  l.k[1] = 0;  // m[1] = 0
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k differs between groups", "k[1] = 0"}));
}

// Uniform-K rule: k >= 1.
TEST_F(ListPath, UniformKRuleKNotZero) {
  l.k.assign(4, 0);
  l.a.assign(4, nullptr);
  l.b.assign(4, nullptr);
  l.sync();
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k is 0"}));
}

// Uniform-K rule: k % 8 == 0.
TEST_F(ListPath, UniformKRuleKMultipleOf8) {
  l.k.assign(4, 60);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k = 60 is not a multiple of 8"}));
}

// Uniform-K rule: every n_i % 8 == 0, empty groups included.
TEST_F(ListPath, UniformKRuleNMultipleOf8) {
  l.n[2] = 132;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: n[2] = 132 is not a multiple of 8"}));
  l.n[2] = 128;
  l.n[1] = 12;  // m[1] = 0
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: n[1] = 12 is not a multiple of 8"}));
}

// Uniform-K rule: 16-byte aligned pointers (of the non-empty groups).
TEST_F(ListPath, UniformKRuleAAligned) {
  l.a[2] = moved(l.a[2], 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: a[2] is not 16-byte aligned"}));
}

TEST_F(ListPath, UniformKRuleBAligned) {
  l.b[3] = moved(l.b[3], 2);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: b[3] is not 16-byte aligned"}));
}

TEST_F(ListPath, UniformKRuleDAligned) {
  l.d[0] = moved(l.d[0], 4);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: d[0] is not 16-byte aligned"}));
}

TEST_F(ListPath, UniformKIgnoresPointersOfEmptyGroups) {
  l.a[1] = moved(fake(kA), 2);  // m[1] = 0
  l.b[1] = moved(fake(kB), 2);
  l.d[1] = moved(fake(kD), 4);
  l.n[3] = 0;
  l.a[3] = moved(l.a[3], 2);
  l.d[3] = nullptr;
  EXPECT_TRUE(takes(choose(), kUniformK));
}

// Breaking every uniform-K rule, then repairing them one by one: the reason
// names the first rule still broken, in the order of moegemm.h.
TEST_F(ListPath, UniformKRulesAreCheckedInOrder) {
  l.p.ab_dtype = l.p.d_dtype = MOEGEMM_DTYPE_FP32;
  l.p.op_a = MOEGEMM_OP_T;
  l.k = {64, 64, 32, 64};
  l.n[2] = 132;
  l.a[2] = moved(l.a[2], 8);
  l.b[2] = moved(l.b[2], 8);
  l.d[2] = moved(l.d[2], 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: ab_dtype"}));
  l.p.ab_dtype = MOEGEMM_DTYPE_BF16;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: op_a"}));
  l.p.op_a = MOEGEMM_OP_N;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k differs"}));
  l.k.assign(4, 60);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k = 60"}));
  l.k.assign(4, 64);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: n[2]"}));
  l.n[2] = 128;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: a[2]"}));
  l.a[2] = moved(l.a[2], 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: b[2]"}));
  l.b[2] = moved(l.b[2], 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: d[2]"}));
  l.d[2] = moved(l.d[2], 8);
  EXPECT_TRUE(takes(choose(), kUniformK));
}

// The wgrad layout fails the uniform-K rules (op_a T) and takes the
// variable-K path, whose reason tells why not uniform-K.
TEST_F(ListPath, WgradListTakesVariableK) {
  l.make_wgrad({50, 0, 120, 30});
  PathChoice c = choose();
  EXPECT_TRUE(takes(c, kVariableK, {"uniform-K: op_a is T"}));
  EXPECT_EQ(c.reason.find("variable-K"), std::string::npos) << c.reason;
  l.p.d_dtype = MOEGEMM_DTYPE_BF16;
  l.p.accumulate = 1;
  EXPECT_TRUE(takes(choose(), kVariableK));
}

// Variable-K rule: the wgrad layout, op_a = T and op_b = N.
TEST_F(ListPath, VariableKRuleWgradLayout) {
  l.make_wgrad({50, 0, 120, 30});
  l.p.op_b = MOEGEMM_OP_T;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: op_a is T", "variable-K: not the wgrad layout"}));
  l.p.op_a = MOEGEMM_OP_N;
  l.p.op_b = MOEGEMM_OP_N;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k differs", "variable-K: not the wgrad layout"}));
}

// Variable-K rule: BF16 A and B.
TEST_F(ListPath, VariableKRuleBf16) {
  l.make_wgrad({50, 0, 120, 30});
  l.p.ab_dtype = MOEGEMM_DTYPE_FP16;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: op_a is T", "variable-K: ab_dtype is FP16"}));
  l.p.ab_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: ab_dtype is FP32", "variable-K: ab_dtype is FP32"}));
}

// Variable-K rule: the same m for every group.
TEST_F(ListPath, VariableKRuleSameM) {
  l.make_wgrad({50, 0, 120, 30});
  l.m[2] = 72;
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: m differs between groups", "m[0] = 64", "m[2] = 72"}));
}

// Variable-K rule: the same n for every group.
TEST_F(ListPath, VariableKRuleSameN) {
  l.make_wgrad({50, 0, 120, 30});
  l.n[3] = 136;
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: n differs between groups", "n[0] = 128", "n[3] = 136"}));
}

// Variable-K rule: m and n >= 1 (the cuBLAS path skips such groups).
TEST_F(ListPath, VariableKRuleMAndNNotZero) {
  l.make_wgrad({50, 0, 120, 30});
  l.m.assign(4, 0);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: m or n is 0"}));
  l.m.assign(4, 64);
  l.n.assign(4, 0);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: m or n is 0"}));
}

// Variable-K rule: m % 8 == 0.
TEST_F(ListPath, VariableKRuleMMultipleOf8) {
  l.make_wgrad({50, 0, 120, 30});
  l.m.assign(4, 60);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: m = 60 is not a multiple of 8"}));
}

// Variable-K rule: n % 8 == 0.
TEST_F(ListPath, VariableKRuleNMultipleOf8) {
  l.make_wgrad({50, 0, 120, 30});
  l.n.assign(4, 132);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: n = 132 is not a multiple of 8"}));
}

// Variable-K rule: sum(k_i) < 2^31 (moegemm_wgrad's total_tokens).
TEST_F(ListPath, VariableKRuleTokensBelow2Pow31) {
  l.make_wgrad({int64_t{1} << 30, 0, int64_t{1} << 30, 0});
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: the k_i sum to 2^31 or more"}));
  l.make_wgrad({int64_t{1} << 30, 0, (int64_t{1} << 30) - 1, 0});
  EXPECT_TRUE(takes(choose(), kVariableK));
}

// Variable-K rule: 16-byte aligned D_i.
TEST_F(ListPath, VariableKRuleDAligned) {
  l.make_wgrad({50, 0, 120, 30});
  l.d[2] = moved(l.d[2], 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: d[2] is not 16-byte aligned"}));
}

// Variable-K rule: 16-byte aligned token buffers. The message names the
// group whose pointer starts them.
TEST_F(ListPath, VariableKRuleTokenBuffersAligned) {
  l.make_wgrad({0, 50, 0, 30});
  for (int i : {1, 3}) l.a[i] = moved(l.a[i], 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: a[1]", "16-byte aligned"}));
  for (int i : {1, 3}) l.a[i] = moved(l.a[i], -8);
  for (int i : {1, 3}) l.b[i] = moved(l.b[i], 2);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: b[1]", "16-byte aligned"}));
}

// Variable-K rule: A_i consecutive slices of one buffer.
TEST_F(ListPath, VariableKRuleAConsecutiveSlices) {
  l.make_wgrad({50, 0, 120, 30});
  l.a[2] = moved(l.a[2], 16);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: a[2]", "row 50", "consecutive slices"}));
  // Slices in another order.
  l.make_wgrad({50, 0, 120, 30});
  std::swap(l.a[0], l.a[3]);  // a[0] now starts the buffer: a[2] is the first one off
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: a[2]", "consecutive slices"}));
}

// Variable-K rule: B_i consecutive slices of one buffer.
TEST_F(ListPath, VariableKRuleBConsecutiveSlices) {
  l.make_wgrad({50, 0, 120, 30});
  l.b[3] = moved(l.b[3], -16);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: b[3]", "row 170", "consecutive slices"}));
}

// Groups with k_i = 0 own no rows: their pointers, NULL or not, are not part
// of the chain.
TEST_F(ListPath, VariableKAllowsEmptyGroupsInBetween) {
  l.make_wgrad({50, 0, 0, 30, 0, 12});
  EXPECT_TRUE(takes(choose(), kVariableK));
  l.a[1] = moved(fake(kA), 2);
  l.b[2] = fake(kB + 4096);
  EXPECT_TRUE(takes(choose(), kVariableK));
  l.a[5] = moved(l.a[5], 16);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: a[5]", "row 80"}));
}

TEST_F(ListPath, VariableKAllowsLeadingEmptyGroups) {
  l.make_wgrad({0, 0, 40, 24});
  EXPECT_TRUE(takes(choose(), kVariableK));
  l.a[3] = moved(l.a[3], 16);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: a[3]", "row 40", "a[2] starts"}));
}

// No tokens at all: moegemm_wgrad() writes zeros (T = 0, no token buffer).
TEST_F(ListPath, VariableKTakesAllEmptyGroups) {
  l.make_wgrad({0, 0, 0, 0});
  EXPECT_TRUE(takes(choose(), kVariableK, {"uniform-K: op_a is T"}));
}

TEST_F(ListPath, VariableKRulesAreCheckedInOrder) {
  l.make_wgrad({50, 0, 120, 30});
  l.p.op_b = MOEGEMM_OP_T;
  l.p.ab_dtype = MOEGEMM_DTYPE_FP16;
  l.p.d_dtype = MOEGEMM_DTYPE_FP32;
  l.m[2] = 72;
  l.a[2] = moved(l.a[2], 16);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: not the wgrad layout"}));
  l.p.op_b = MOEGEMM_OP_N;
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: ab_dtype"}));
  l.p.ab_dtype = MOEGEMM_DTYPE_BF16;
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: m differs"}));
  l.m.assign(4, 60);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: m = 60"}));
  l.m.assign(4, 64);
  l.d[1] = moved(l.d[1], 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: d[1]"}));
  l.d[1] = moved(l.d[1], -8);
  EXPECT_TRUE(takes(choose(), kCublas, {"variable-K: a[2]"}));
  l.a[2] = moved(l.a[2], -16);
  EXPECT_TRUE(takes(choose(), kVariableK));
}

// Neither kernel: the reason names the broken rule of each, uniform-K first.
TEST_F(ListPath, FallthroughNamesBothRules) {
  l.p.ab_dtype = l.p.d_dtype = MOEGEMM_DTYPE_FP32;
  const PathChoice c = choose();
  EXPECT_TRUE(takes(c, kCublas, {"uniform-K: ab_dtype is FP32", "variable-K: not the wgrad layout"}));
  EXPECT_EQ(c.reason.rfind("uniform-K: ", 0), 0u) << c.reason;
  EXPECT_LT(c.reason.find("uniform-K:"), c.reason.find("; variable-K:")) << c.reason;
}

// ---------------------------------------------------------------------------
// choose_ragged_m_path

class RaggedPath : public ::testing::Test {
 protected:
  PathChoice choose() const { return choose_ragged_m_path(r.p, facts); }
  RaggedProblem r;
  DispatchFacts facts{/*sm90=*/true, /*use_cutlass=*/true};
};

TEST_F(RaggedPath, NotSm90TakesCublasFirst) {
  facts.sm90 = false;
  facts.use_cutlass = false;
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  const PathChoice c = choose();
  EXPECT_TRUE(takes(c, kCublas, {"SM90"}));
  EXPECT_EQ(c.reason.find("MOEGEMM_USE_CUTLASS"), std::string::npos) << c.reason;
}

TEST_F(RaggedPath, UseCutlassOffTakesCublas) {
  facts.use_cutlass = false;
  EXPECT_TRUE(takes(choose(), kCublas, {"MOEGEMM_USE_CUTLASS=0"}));
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(takes(choose(), kCublas, {"MOEGEMM_USE_CUTLASS=0"}));
}

TEST_F(RaggedPath, ValidProblemTakesUniformK) {
  EXPECT_TRUE(takes(choose(), kUniformK));
  r.p.op_b = MOEGEMM_OP_N;
  r.p.accumulate = 1;
  EXPECT_TRUE(takes(choose(), kUniformK));
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_FP16;
  EXPECT_TRUE(takes(choose(), kUniformK));
  r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  EXPECT_TRUE(takes(choose(), kUniformK));
  r.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(takes(choose(), kUniformK));
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  EXPECT_TRUE(takes(choose(), kUniformK));
  // A device list's entries are not read by the host.
  r.use_b_list(MOEGEMM_MEMORY_DEVICE);
  r.b_list[1] = moved(r.b_list[1], 2);
  EXPECT_TRUE(takes(choose(), kUniformK));
}

TEST_F(RaggedPath, NoRowsTakesUniformK) {
  r.set_sizes({0, 0, 0, 0});
  r.p.total_rows = 0;
  r.p.a = nullptr;
  r.p.d = nullptr;
  EXPECT_TRUE(takes(choose(), kUniformK));
}

// Uniform-K rule: A and B both BF16 or both FP16. There is no variable-K
// path for this form, so the reason names uniform-K only.
TEST_F(RaggedPath, UniformKRuleAbDtype) {
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  const PathChoice c = choose();
  EXPECT_TRUE(takes(c, kCublas, {"uniform-K: ab_dtype is FP32", "BF16 or FP16"}));
  EXPECT_EQ(c.reason.find("variable-K"), std::string::npos) << c.reason;
}

TEST_F(RaggedPath, UniformKRuleKMultipleOf8) {
  r.p.k = 60;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k = 60 is not a multiple of 8"}));
}

TEST_F(RaggedPath, UniformKRuleNMultipleOf8) {
  r.p.n = 132;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: n = 132 is not a multiple of 8"}));
}

TEST_F(RaggedPath, UniformKRuleAAligned) {
  r.p.a = moved(r.p.a, 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: a is not 16-byte aligned"}));
}

TEST_F(RaggedPath, UniformKRuleDAligned) {
  r.p.d = moved(r.p.d, 2);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: d is not 16-byte aligned"}));
}

TEST_F(RaggedPath, UniformKRuleBAligned) {
  r.p.b = moved(r.p.b, 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: b is not 16-byte aligned"}));
}

TEST_F(RaggedPath, UniformKRuleHostBPtrsAligned) {
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  r.b_list[2] = moved(r.b_list[2], 4);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: b_ptrs[2] is not 16-byte aligned"}));
}

TEST_F(RaggedPath, UniformKRulesAreCheckedInOrder) {
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  r.p.k = 60;
  r.p.n = 132;
  r.p.a = moved(r.p.a, 8);
  r.p.d = moved(r.p.d, 8);
  r.p.b = moved(r.p.b, 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: ab_dtype"}));
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_BF16;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: k = 60"}));
  r.p.k = 64;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: n = 132"}));
  r.p.n = 128;
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: a is"}));
  r.p.a = moved(r.p.a, 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: d is"}));
  r.p.d = moved(r.p.d, 8);
  EXPECT_TRUE(takes(choose(), kCublas, {"uniform-K: b is"}));
  r.p.b = moved(r.p.b, 8);
  EXPECT_TRUE(takes(choose(), kUniformK));
}

// ---------------------------------------------------------------------------
// wgrad_buffers_of_list

TEST(WgradBuffersOfList, StartAtTheFirstGroup) {
  ListProblem l;
  l.make_wgrad({50, 0, 120, 30});
  const WgradBuffers w = wgrad_buffers_of_list(l.p);
  EXPECT_EQ(w.dy, fake(kA));
  EXPECT_EQ(w.x, fake(kB));
  EXPECT_EQ(w.total_tokens, 200);
}

// The first non-empty group starts the buffers, whatever the pointers of the
// empty groups before it.
TEST(WgradBuffersOfList, LeadingEmptyGroups) {
  ListProblem l;
  l.make_wgrad({0, 0, 40, 24});
  ASSERT_EQ(l.a[2], fake(kA));
  l.a[0] = fake(kA + 4096);
  l.b[1] = fake(kB + 4096);
  const WgradBuffers w = wgrad_buffers_of_list(l.p);
  EXPECT_EQ(w.dy, fake(kA));
  EXPECT_EQ(w.x, fake(kB));
  EXPECT_EQ(w.total_tokens, 64);
}

TEST(WgradBuffersOfList, AllGroupsEmpty) {
  ListProblem l;
  l.make_wgrad({0, 0, 0});
  const WgradBuffers w = wgrad_buffers_of_list(l.p);
  EXPECT_EQ(w.dy, nullptr);
  EXPECT_EQ(w.x, nullptr);
  EXPECT_EQ(w.total_tokens, 0);
}

// ---------------------------------------------------------------------------
// clamp_group_sizes: the device's rule for split sizes, on the host

std::vector<int64_t> clamp(const std::vector<int64_t>& sizes, int64_t total) {
  return clamp_group_sizes(sizes.data(), static_cast<int>(sizes.size()), total);
}

TEST(ClampGroupSizes, NegativeSizesCountAsZero) {
  EXPECT_EQ(clamp({-5, 10, kI64Min, 20}, 100), (std::vector<int64_t>{0, 10, 0, 20}));
}

TEST(ClampGroupSizes, SumPastTotalIsClampedAndLaterGroupsAreEmpty) {
  EXPECT_EQ(clamp({50, 100, 30, 7}, 120), (std::vector<int64_t>{50, 70, 0, 0}));
  EXPECT_EQ(clamp({kI64Max, 5, kI64Max}, 10), (std::vector<int64_t>{10, 0, 0}));
  EXPECT_EQ(clamp({3, 4}, 0), (std::vector<int64_t>{0, 0}));
}

TEST(ClampGroupSizes, ValidSizesAreKept) {
  EXPECT_EQ(clamp({50, 0, 120, 30}, 200), (std::vector<int64_t>{50, 0, 120, 30}));
  EXPECT_EQ(clamp({50, 0, 120, 30}, 230), (std::vector<int64_t>{50, 0, 120, 30}));  // padding
  EXPECT_TRUE(clamp({}, 10).empty());
}

// ---------------------------------------------------------------------------
// ragged_m_as_list: the ragged-M problem as a list, for the cuBLAS path

TEST(RaggedMAsList, ContiguousB) {
  RaggedProblem r;
  r.p.d_dtype = MOEGEMM_DTYPE_FP32;
  r.p.accumulate = 1;
  ListStorage storage;
  const moegemm_gemm_list_t l = ragged_m_as_list(r.p, r.sizes.data(), nullptr, &storage);
  ASSERT_EQ(l.num_groups, 4);
  EXPECT_EQ(l.op_a, MOEGEMM_OP_N);
  EXPECT_EQ(l.op_b, MOEGEMM_OP_T);
  EXPECT_EQ(l.ab_dtype, MOEGEMM_DTYPE_BF16);
  EXPECT_EQ(l.d_dtype, MOEGEMM_DTYPE_FP32);
  EXPECT_EQ(l.accumulate, 1);
  EXPECT_EQ(l.bias, nullptr);
  EXPECT_EQ(l.gelu_input, nullptr);
  EXPECT_EQ(l.num_streams, 0);
  EXPECT_EQ(l.m, storage.m.data());
  const int64_t offsets[] = {0, 50, 50, 170};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(l.m[i], r.sizes[i]) << i;
    EXPECT_EQ(l.n[i], 128) << i;
    EXPECT_EQ(l.k[i], 64) << i;
    EXPECT_EQ(l.a[i], fake(kA + offsets[i] * 64 * 2)) << i;   // BF16 rows of k
    EXPECT_EQ(l.d[i], fake(kD + offsets[i] * 128 * 4)) << i;  // FP32 rows of n
    EXPECT_EQ(l.b[i], fake(kB + i * 128 * 64 * 2)) << i;      // [g, n, k] BF16
  }
  EXPECT_TRUE(passes(validate_gemm_list(&l)));
}

TEST(RaggedMAsList, BList) {
  RaggedProblem r;
  r.p.op_b = MOEGEMM_OP_N;
  r.p.ab_dtype = r.p.d_dtype = MOEGEMM_DTYPE_FP16;
  r.use_b_list(MOEGEMM_MEMORY_HOST);
  ListStorage storage;
  const moegemm_gemm_list_t l = ragged_m_as_list(r.p, r.sizes.data(), r.b_list.data(), &storage);
  ASSERT_EQ(l.num_groups, 4);
  EXPECT_EQ(l.op_b, MOEGEMM_OP_N);
  EXPECT_EQ(l.ab_dtype, MOEGEMM_DTYPE_FP16);
  EXPECT_EQ(l.d_dtype, MOEGEMM_DTYPE_FP16);
  EXPECT_EQ(l.accumulate, 0);
  const int64_t offsets[] = {0, 50, 50, 170};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(l.b[i], r.b_list[i]) << i;
    EXPECT_EQ(l.a[i], fake(kA + offsets[i] * 64 * 2)) << i;
    EXPECT_EQ(l.d[i], fake(kD + offsets[i] * 128 * 2)) << i;  // FP16 rows of n
  }
  EXPECT_TRUE(passes(validate_gemm_list(&l)));
}

// Clamped device sizes (their sum may stay below T) give the same layout.
TEST(RaggedMAsList, ClampedSizes) {
  RaggedProblem r;
  const std::vector<int64_t> sizes = clamp({-3, 100, 500, 9}, 230);
  ListStorage storage;
  const moegemm_gemm_list_t l = ragged_m_as_list(r.p, sizes.data(), nullptr, &storage);
  EXPECT_EQ((std::vector<int64_t>(l.m, l.m + 4)), (std::vector<int64_t>{0, 100, 130, 0}));
  EXPECT_EQ(l.a[2], fake(kA + 100 * 64 * 2));
  EXPECT_EQ(l.d[3], fake(kD + 230 * 128 * 2));
  EXPECT_TRUE(passes(validate_gemm_list(&l)));
}

// ---------------------------------------------------------------------------
// parse_dispatch_env

TEST(ParseDispatchEnv, DefaultsWhenUnset) {
  const DispatchEnv e = parse_dispatch_env(nullptr, nullptr, nullptr);
  EXPECT_TRUE(e.use_cutlass);
  EXPECT_FALSE(e.warn_fallback);
  EXPECT_EQ(e.num_streams, 4);
  EXPECT_EQ(e.problems, "");
}

TEST(ParseDispatchEnv, TrueSpellings) {
  for (const char* v : {"1", "true", "TRUE", "True", "on", "ON", "yes", "Yes"}) {
    const DispatchEnv e = parse_dispatch_env(v, v, nullptr);
    EXPECT_TRUE(e.use_cutlass) << v;
    EXPECT_TRUE(e.warn_fallback) << v;
    EXPECT_EQ(e.problems, "") << v;
  }
}

TEST(ParseDispatchEnv, FalseSpellings) {
  for (const char* v : {"0", "false", "FALSE", "False", "off", "Off", "no", "NO"}) {
    const DispatchEnv e = parse_dispatch_env(v, v, nullptr);
    EXPECT_FALSE(e.use_cutlass) << v;
    EXPECT_FALSE(e.warn_fallback) << v;
    EXPECT_EQ(e.problems, "") << v;
  }
}

TEST(ParseDispatchEnv, MalformedUseCutlassKeepsDefault) {
  for (const char* v : {"", "2", "-1", "maybe", "tru", " 1", "1 ", "00"}) {
    const DispatchEnv e = parse_dispatch_env(v, nullptr, nullptr);
    EXPECT_TRUE(e.use_cutlass) << '"' << v << '"';
    EXPECT_TRUE(names(e.problems, std::string("MOEGEMM_USE_CUTLASS=\"") + v + "\""));
    EXPECT_EQ(e.problems.find("MOEGEMM_WARN_FALLBACK"), std::string::npos) << e.problems;
  }
}

TEST(ParseDispatchEnv, MalformedWarnFallbackKeepsDefault) {
  for (const char* v : {"", "2", "enable", "y"}) {
    const DispatchEnv e = parse_dispatch_env(nullptr, v, nullptr);
    EXPECT_FALSE(e.warn_fallback) << '"' << v << '"';
    EXPECT_TRUE(names(e.problems, std::string("MOEGEMM_WARN_FALLBACK=\"") + v + "\""));
  }
}

TEST(ParseDispatchEnv, EveryMalformedValueIsNamed) {
  const DispatchEnv e = parse_dispatch_env("x", "y", "z");
  EXPECT_TRUE(e.use_cutlass);
  EXPECT_FALSE(e.warn_fallback);
  EXPECT_EQ(e.num_streams, 4);
  EXPECT_TRUE(names(e.problems, "MOEGEMM_USE_CUTLASS=\"x\""));
  EXPECT_TRUE(names(e.problems, "MOEGEMM_WARN_FALLBACK=\"y\""));
  EXPECT_TRUE(names(e.problems, "MOEGEMM_NUM_STREAMS=\"z\""));
  EXPECT_TRUE(names(e.problems, "; "));
  // A valid value next to a malformed one is still taken.
  const DispatchEnv f = parse_dispatch_env("0", "y", "8");
  EXPECT_FALSE(f.use_cutlass);
  EXPECT_EQ(f.num_streams, 8);
  EXPECT_TRUE(names(f.problems, "MOEGEMM_WARN_FALLBACK"));
  EXPECT_EQ(f.problems.find("MOEGEMM_USE_CUTLASS"), std::string::npos) << f.problems;
  EXPECT_EQ(f.problems.find("MOEGEMM_NUM_STREAMS"), std::string::npos) << f.problems;
}

TEST(ParseDispatchEnv, NumStreamsFrom1To16) {
  for (int s = 1; s <= 16; ++s) {
    const DispatchEnv e = parse_dispatch_env(nullptr, nullptr, std::to_string(s).c_str());
    EXPECT_EQ(e.num_streams, s);
    EXPECT_EQ(e.problems, "") << s;
  }
}

TEST(ParseDispatchEnv, MalformedNumStreamsKeepsDefault) {
  for (const char* v : {"0", "17", "abc", "4x", "", "-1", "4.5", "99999999999999999999"}) {
    const DispatchEnv e = parse_dispatch_env(nullptr, nullptr, v);
    EXPECT_EQ(e.num_streams, 4) << '"' << v << '"';
    EXPECT_TRUE(names(e.problems, std::string("MOEGEMM_NUM_STREAMS=\"") + v + "\""));
    EXPECT_TRUE(names(e.problems, "[1, 16]"));
  }
}

// ---------------------------------------------------------------------------
// The C API: moegemm_gemm_list_path, moegemm_ragged_m_path, moegemm_path_name.
//
// These tests run both on a machine without a GPU and on an SM90 one: the
// path a valid problem takes depends on moegemm_device_supported() (and on
// MOEGEMM_USE_CUTLASS in this process's environment), so the expectation
// branches on it.

// The path a valid problem that the uniform-K (or variable-K) kernel can take
// gets here, and the rule its reason must name otherwise.
struct ExpectedPath {
  bool kernels;        // SM90 and MOEGEMM_USE_CUTLASS not 0
  const char* reason;  // when not
};
ExpectedPath expected_path() {
  if (moegemm_device_supported() == 0) return {false, "SM90"};
  if (!parse_dispatch_env(std::getenv("MOEGEMM_USE_CUTLASS"), nullptr, nullptr).use_cutlass)
    return {false, "MOEGEMM_USE_CUTLASS=0"};
  return {true, ""};
}

const moegemm_path_t kUnwritten = static_cast<moegemm_path_t>(3);
const char* const kUnwrittenReason = "unwritten";

// Neither output of a path query written (both preset to the values above).
::testing::AssertionResult unwritten(moegemm_path_t path, const char* reason) {
  if (path != kUnwritten) return ::testing::AssertionFailure() << "path written: " << path;
  if (reason != kUnwrittenReason) return ::testing::AssertionFailure() << "reason written: " << reason;
  return ::testing::AssertionSuccess();
}

// `query` (moegemm_gemm_list_path or moegemm_ragged_m_path) given NULL for
// the problem, then for the path (`p` valid): kInvalid, the message naming
// the argument, neither output written.
template <class Problem>
void expect_null_arguments_rejected(moegemm_status_t (*query)(const Problem*, moegemm_path_t*, const char**),
                                    const Problem& p) {
  moegemm_path_t path = kUnwritten;
  const char* reason = kUnwrittenReason;
  EXPECT_EQ(query(nullptr, &path, &reason), kInvalid);
  EXPECT_TRUE(names(moegemm_last_error(), "problem:"));
  EXPECT_EQ(query(&p, nullptr, &reason), kInvalid);
  EXPECT_TRUE(names(moegemm_last_error(), "path:"));
  EXPECT_TRUE(unwritten(path, reason));
}

// `query` on the valid problem `p`: success, no message, and the path (with
// its reason) that `want` predicts for the uniform-K layout.
template <class Problem>
void expect_valid_forward_path(moegemm_status_t (*query)(const Problem*, moegemm_path_t*, const char**),
                               const Problem& p, const ExpectedPath& want, moegemm_path_t* path,
                               const char** reason) {
  ASSERT_EQ(query(&p, path, reason), MOEGEMM_STATUS_SUCCESS) << moegemm_last_error();
  EXPECT_STREQ(moegemm_last_error(), "");
  ASSERT_NE(*reason, nullptr);
  if (want.kernels) {
    EXPECT_EQ(*path, kUniformK) << moegemm_path_name(*path) << ": " << *reason;
    EXPECT_STREQ(*reason, "");
  } else {
    EXPECT_EQ(*path, kCublas) << moegemm_path_name(*path);
    EXPECT_TRUE(names(*reason, want.reason));
  }
}

TEST(GemmListPathApi, NullArguments) {
  ListProblem l;
  expect_null_arguments_rejected(moegemm_gemm_list_path, l.p);
}

TEST(GemmListPathApi, InvalidProblemReportsItsStatus) {
  ListProblem l;
  moegemm_path_t path = kUnwritten;
  const char* reason = kUnwrittenReason;
  l.p.num_groups = 0;
  EXPECT_EQ(moegemm_gemm_list_path(&l.p, &path, &reason), kInvalid);
  EXPECT_TRUE(names(moegemm_last_error(), "num_groups:"));
  l.p.num_groups = 4;
  l.d[2] = moved(l.d[2], 2);
  EXPECT_EQ(moegemm_gemm_list_path(&l.p, &path, &reason), kMisaligned);
  EXPECT_TRUE(names(moegemm_last_error(), "d[2]:"));
  EXPECT_TRUE(unwritten(path, reason));
}

TEST(GemmListPathApi, ValidProblem) {
  const ExpectedPath want = expected_path();
  ListProblem l;
  moegemm_path_t path = kUnwritten;
  const char* reason = kUnwrittenReason;
  ASSERT_NO_FATAL_FAILURE(expect_valid_forward_path(moegemm_gemm_list_path, l.p, want, &path, &reason));
  // The wgrad layout.
  l.make_wgrad({50, 0, 120, 30});
  ASSERT_EQ(moegemm_gemm_list_path(&l.p, &path, &reason), MOEGEMM_STATUS_SUCCESS) << moegemm_last_error();
  EXPECT_EQ(path, want.kernels ? kVariableK : kCublas) << moegemm_path_name(path) << ": " << reason;
  // The reason is optional.
  path = kUnwritten;
  EXPECT_EQ(moegemm_gemm_list_path(&l.p, &path, nullptr), MOEGEMM_STATUS_SUCCESS) << moegemm_last_error();
  EXPECT_EQ(path, want.kernels ? kVariableK : kCublas);
}

TEST(RaggedMPathApi, NullArguments) {
  RaggedProblem r;
  expect_null_arguments_rejected(moegemm_ragged_m_path, r.p);
}

TEST(RaggedMPathApi, InvalidProblemReportsItsStatus) {
  RaggedProblem r;
  moegemm_path_t path = kUnwritten;
  const char* reason = kUnwrittenReason;
  r.set_sizes({50, 0, 151, 30});
  EXPECT_EQ(moegemm_ragged_m_path(&r.p, &path, &reason), kInvalid);
  EXPECT_TRUE(names(moegemm_last_error(), "group_sizes:"));
  r.set_sizes({50, 0, 120, 30});
  r.p.a = moved(r.p.a, 1);
  EXPECT_EQ(moegemm_ragged_m_path(&r.p, &path, &reason), kMisaligned);
  EXPECT_TRUE(names(moegemm_last_error(), "a:"));
  EXPECT_TRUE(unwritten(path, reason));
}

TEST(RaggedMPathApi, ValidProblem) {
  const ExpectedPath want = expected_path();
  RaggedProblem r;
  moegemm_path_t path = kUnwritten;
  const char* reason = kUnwrittenReason;
  ASSERT_NO_FATAL_FAILURE(expect_valid_forward_path(moegemm_ragged_m_path, r.p, want, &path, &reason));
  path = kUnwritten;
  EXPECT_EQ(moegemm_ragged_m_path(&r.p, &path, nullptr), MOEGEMM_STATUS_SUCCESS) << moegemm_last_error();
  EXPECT_EQ(path, want.kernels ? kUniformK : kCublas);
}

TEST(PathNameApi, EveryPath) {
  EXPECT_STREQ(moegemm_path_name(MOEGEMM_PATH_UNIFORM_K), "uniform_k");
  EXPECT_STREQ(moegemm_path_name(MOEGEMM_PATH_VARIABLE_K), "variable_k");
  EXPECT_STREQ(moegemm_path_name(MOEGEMM_PATH_CUBLAS), "cublas");
  EXPECT_STREQ(moegemm_path_name(static_cast<moegemm_path_t>(3)), "unknown");
  EXPECT_STREQ(moegemm_path_name(static_cast<moegemm_path_t>(-1)), "unknown");
}

TEST(DispatchEnvLargeGroups, Parsed) {
  using moegemm::detail::parse_dispatch_env;
  EXPECT_TRUE(parse_dispatch_env(nullptr, nullptr, nullptr).large_groups_cublas);
  EXPECT_FALSE(parse_dispatch_env(nullptr, nullptr, nullptr, nullptr, "0").large_groups_cublas);
  EXPECT_TRUE(parse_dispatch_env(nullptr, nullptr, nullptr, nullptr, "on").large_groups_cublas);
  const auto bad = parse_dispatch_env(nullptr, nullptr, nullptr, nullptr, "sometimes");
  EXPECT_TRUE(bad.large_groups_cublas);
  EXPECT_TRUE(names(bad.problems, "MOEGEMM_LARGE_GROUPS_CUBLAS"));
}

// Both parts keep all g slots; a group is in exactly one of them.
TEST(SplitLargeGroups, EachGroupInExactlyOnePart) {
  using moegemm::detail::ListStorage;
  using moegemm::detail::split_large_groups;
  auto P = [](uintptr_t v) { return reinterpret_cast<void*>(v); };
  const int64_t m[] = {3072, 40, 0, 3071, 512};
  const int64_t n[] = {2048, 2048, 2048, 2048, 2048};
  const int64_t k[] = {7168, 7168, 7168, 7168, 7168};  // long k: 512 rows x 2048 is large
  const void* a[] = {P(0x1000), P(0x2000), P(0x3000), P(0x4000), P(0x5000)};
  const void* b[] = {P(0x11000), P(0x12000), P(0x13000), P(0x14000), P(0x15000)};
  void* d[] = {P(0x21000), P(0x22000), P(0x23000), P(0x24000), P(0x25000)};
  moegemm_gemm_list_t p = moegemm_gemm_list_default();
  p.num_groups = 5;
  p.op_b = MOEGEMM_OP_T;
  p.m = m;
  p.n = n;
  p.k = k;
  p.a = a;
  p.b = b;
  p.d = d;
  p.accumulate = 1;
  ListStorage ls, rs;
  moegemm_gemm_list_t large{}, rest{};
  EXPECT_EQ(split_large_groups(p, &ls, &large, &rs, &rest), 3);  // groups 0, 3, 4
  const int64_t large_m[] = {3072, 0, 0, 3071, 512};
  const int64_t rest_m[] = {0, 40, 0, 0, 0};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(large.m[i], large_m[i]) << i;
    EXPECT_EQ(rest.m[i], rest_m[i]) << i;
    for (const moegemm_gemm_list_t* l : {&large, &rest}) {
      EXPECT_EQ(l->n[i], n[i]);
      EXPECT_EQ(l->k[i], k[i]);
      EXPECT_EQ(l->a[i], a[i]);
      EXPECT_EQ(l->b[i], b[i]);
      EXPECT_EQ(l->d[i], d[i]);
    }
  }
  for (const moegemm_gemm_list_t* l : {&large, &rest}) {
    EXPECT_EQ(l->num_groups, 5);
    EXPECT_EQ(l->op_b, MOEGEMM_OP_T);
    EXPECT_EQ(l->accumulate, 1);
  }
  const int64_t k512[] = {512, 512, 512, 512, 512};  // the 6 Mi rule only: group 0 alone
  p.k = k512;
  EXPECT_EQ(split_large_groups(p, &ls, &large, &rs, &rest), 1);
}

}  // namespace
}  // namespace moegemm_test

namespace moegemm_test {
namespace {

TEST(DispatchEnvTile, UniformKTileParsed) {
  using moegemm::detail::parse_dispatch_env;
  using moegemm::detail::UniformKTile;
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr).uniform_k_tile, UniformKTile::kAuto);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "auto").uniform_k_tile, UniformKTile::kAuto);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "pingpong").uniform_k_tile, UniformKTile::kPingpong128x128);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "pingpong-1x4").uniform_k_tile,
            UniformKTile::kPingpong128x128Cluster1x4);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "cooperative").uniform_k_tile,
            UniformKTile::kCooperative128x256);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "cooperative-nocluster").uniform_k_tile,
            UniformKTile::kCooperative128x256NoCluster);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "pingpong-64x256").uniform_k_tile,
            UniformKTile::kPingpong64x256);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "onelaunch").uniform_k_tile,
            UniformKTile::kOneLaunch128x128);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "cutlass").uniform_k_tile, UniformKTile::kAutoCutlass);
  EXPECT_EQ(parse_dispatch_env(nullptr, nullptr, nullptr, "onelaunch-1x4").uniform_k_tile,
            UniformKTile::kOneLaunch128x128Cluster1x4);
  const auto bad = parse_dispatch_env(nullptr, nullptr, nullptr, "fast");
  EXPECT_EQ(bad.uniform_k_tile, UniformKTile::kAuto);
  EXPECT_TRUE(names(bad.problems, "MOEGEMM_UNIFORM_K_TILE"));
}

}  // namespace
}  // namespace moegemm_test
