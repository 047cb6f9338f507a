// GPU tests of moegemm_gemm_list() (the list form of the general grouped
// GEMM) on each of its three paths, every output element against a float64
// host reference (tests/gemm_reference.h states the tolerance):
//
//   1. uniform-K SM90 kernel: forward (op_a N, op_b T) and dgrad (N, N)
//      layouts, BF16/FP16 in, same type or FP32 out, overwrite/accumulate,
//      ragged m_i with empty groups first/middle/last, 1, 7, non-multiples of
//      128, k in {8, 64, 136, 1024}, n in {8, 136, 512, 2048} (and mixed n_i),
//      g in {1, 3, 8, 32};
//   2. variable-K wgrad kernel: op_a T, op_b N, A_i/B_i consecutive slices of
//      one buffer, ragged k_i with empty groups, FP32/BF16 out;
//   3. multi-stream cuBLASLt: bias, GELU (+ the pre-activation output), k_i = 0
//      groups, m_i/n_i = 0 groups, NULL pointers for empty matrices, FP32 and
//      FP16 inputs, all four op combinations, non-contiguous wgrad slices,
//      misaligned pointers, explicit stream counts;
//
// every call's path asserted first with moegemm_gemm_list_path(); plus CUDA
// graph capture and replay on each path, determinism of path 1, two
// concurrent cuBLAS-path calls, and failed calls writing nothing.
//
// Every test is SKIPPED (never passed) without an SM90 device (GpuTest).
// Outputs start as NaN (overwrite) or random values (accumulate), surrounded
// by guard bytes; inputs are fresh random values each run (the seed is in
// every failure's trace: MOEGEMM_TEST_SEED=<seed> reruns it).
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "gemm_harness.h"
#include "gemm_reference.h"
#include "gpu_test_util.h"
#include "moegemm/moegemm.h"

namespace moegemm_test {
namespace {

constexpr moegemm_op_t N = MOEGEMM_OP_N, T = MOEGEMM_OP_T;
constexpr moegemm_dtype_t F32 = MOEGEMM_DTYPE_FP32, BF = MOEGEMM_DTYPE_BF16, FP = MOEGEMM_DTYPE_FP16;

class ListTest : public GpuTest {
 protected:
  // Path asserted, workspace sized by the library, one run, full check.
  void run_and_check(const ListSpec& s, moegemm_path_t want) { run_and_check_call<ListCall>(s, want, rng_); }
};

// ---------------------------------------------------------------------------
// 1. Path 1 (uniform K): scenarios x layout x input type x output type;
//    accumulate alternates so that each combination meets both.

struct UniformScenario {
  std::string name;
  std::function<std::vector<int64_t>(std::mt19937_64&)> m;  // per-group rows
  std::vector<int64_t> n;                                   // one value (all groups) or one per group
  int64_t k;
};

std::function<std::vector<int64_t>(std::mt19937_64&)> fixed(std::vector<int64_t> v) {
  return [v](std::mt19937_64&) { return v; };
}

// Host reference cost: sum(m)·n·k stays below ~1e8 per case.
const std::vector<UniformScenario>& uniform_scenarios() {
  static const std::vector<UniformScenario> s = {
      {"g1_m200_k64_n136", fixed({200}), {136}, 64},
      {"g3_m0_7_130_k8_n8", fixed({0, 7, 130}), {8}, 8},
      {"g8_empty_first_mid_last_k136_n512", fixed({0, 1, 7, 129, 0, 300, 64, 0}), {512}, 136},
      // Skewed sizes with planted 0 (first, middle, last), 1, 7 and 129.
      {"g32_special_k64_n512", [](std::mt19937_64& rng) { return special_split(rng, 32, 1500); }, {512}, 64},
      {"g3_k1024_n136", fixed({257, 0, 100}), {136}, 1024},
      {"g8_k136_n2048", fixed({1, 0, 7, 40, 129, 0, 33, 90}), {2048}, 136},
      {"g1_m33_k1024_n2048", fixed({33}), {2048}, 1024},
      // 9 groups of at most 64 rows, n = 2048: 144 tiles of 128x128 (more than
      // a wave on 132 SMs), 72 of 64x256: AUTO takes ping-pong 64x256 with op_b
      // T and the unclustered cooperative tile with op_b N (config_select.h).
      {"g9_m64max_k64_n2048", fixed({64, 1, 40, 64, 17, 64, 33, 64, 60}), {2048}, 64},
      // Per-group n_i (each a multiple of 8, one of them 0: a skipped group).
      {"g8_mixed_n_k64", fixed({5, 130, 0, 64, 17, 1, 200, 9}), {8, 136, 512, 64, 0, 2048, 136, 8}, 64},
  };
  return s;
}

struct UniformParam {
  size_t scenario;
  moegemm_op_t op_b;   // T: forward, N: dgrad
  moegemm_dtype_t ab;  // BF16 or FP16
  bool d_fp32;         // D FP32, or the input type
  bool accumulate;
};

std::vector<UniformParam> uniform_params() {
  std::vector<UniformParam> out;
  for (size_t si = 0; si < uniform_scenarios().size(); ++si) {
    int combo = 0;
    for (moegemm_op_t op_b : {T, N})
      for (moegemm_dtype_t ab : {BF, FP})
        for (bool d_fp32 : {false, true}) {
          out.push_back({si, op_b, ab, d_fp32, (combo + si) % 2 == 1});
          ++combo;
        }
  }
  return out;
}

std::string uniform_name(const ::testing::TestParamInfo<UniformParam>& i) {
  const UniformParam& p = i.param;
  return uniform_scenarios()[p.scenario].name + "__" + (p.op_b == T ? "fwd_" : "dgrad_") + dt_name(p.ab) + "_to_" +
         (p.d_fp32 ? "fp32" : dt_name(p.ab)) + (p.accumulate ? "_acc" : "_over");
}

void PrintTo(const UniformParam& p, std::ostream* os) {
  *os << uniform_scenarios()[p.scenario].name << " op_b=" << op_name(p.op_b) << " " << dt_name(p.ab)
      << (p.d_fp32 ? "->fp32" : "->same") << (p.accumulate ? " accumulate" : " overwrite");
}

ListSpec uniform_spec(const UniformScenario& sc, std::mt19937_64& rng) {
  ListSpec s;
  s.m = sc.m(rng);
  const int g = s.g();
  s.n = sc.n.size() == 1 ? same(g, sc.n[0]) : sc.n;
  s.k = same(g, sc.k);
  return s;
}

class ListUniformKTest : public ListTest, public ::testing::WithParamInterface<UniformParam> {};

TEST_P(ListUniformKTest, MatchesFloat64Reference) {
  const UniformParam& p = GetParam();
  ListSpec s = uniform_spec(uniform_scenarios()[p.scenario], rng_);
  s.op_a = N;
  s.op_b = p.op_b;
  s.ab = p.ab;
  s.d = p.d_fp32 ? F32 : p.ab;
  s.accumulate = p.accumulate;
  run_and_check(s, MOEGEMM_PATH_UNIFORM_K);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ListUniformKTest, ::testing::ValuesIn(uniform_params()), uniform_name);

// ---------------------------------------------------------------------------
// 2. Path 2 (variable K): the wgrad layout over one token buffer.

struct VariableScenario {
  std::string name;
  int64_t m, n;
  std::function<std::vector<int64_t>(std::mt19937_64&)> k;
};

const std::vector<VariableScenario>& variable_scenarios() {
  static const std::vector<VariableScenario> s = {
      {"g1_k300_m64_n136", 64, 136, fixed({300})},
      {"g4_k0_37_0_129_m136_n64", 136, 64, fixed({0, 37, 0, 129})},
      {"g16_special_m64_n64", 64, 64, [](std::mt19937_64& rng) { return special_split(rng, 16, 2000); }},
  };
  return s;
}

using VariableParam = std::tuple<size_t /*scenario*/, moegemm_dtype_t /*d*/, bool /*accumulate*/>;

class ListVariableKTest : public ListTest, public ::testing::WithParamInterface<VariableParam> {};

TEST_P(ListVariableKTest, MatchesFloat64Reference) {
  const auto [si, d, acc] = GetParam();
  const VariableScenario& sc = variable_scenarios()[si];
  ListSpec s;
  s.k = sc.k(rng_);
  const int g = static_cast<int>(s.k.size());
  s.m = same(g, sc.m);
  s.n = same(g, sc.n);
  s.op_a = T;
  s.op_b = N;
  s.ab = BF;
  s.d = d;
  s.accumulate = acc;
  s.layout = ListLayout::Packed;
  run_and_check(s, MOEGEMM_PATH_VARIABLE_K);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ListVariableKTest,
                         ::testing::Combine(::testing::Range<size_t>(0, variable_scenarios().size()),
                                            ::testing::Values(F32, BF), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<VariableParam>& i) {
                           return variable_scenarios()[std::get<0>(i.param)].name + "__" +
                                  dt_name(std::get<1>(i.param)) + (std::get<2>(i.param) ? "_acc" : "_over");
                         });

// ---------------------------------------------------------------------------
// 3. Path 3 (cuBLAS): everything the fast paths do not take. Each case names
//    the rule that sends it there.

struct CublasCase {
  std::string name;
  ListSpec spec;
};

ListSpec mk(moegemm_op_t op_a, moegemm_op_t op_b, moegemm_dtype_t ab, moegemm_dtype_t d, std::vector<int64_t> m,
            std::vector<int64_t> n, std::vector<int64_t> k) {
  ListSpec s;
  s.op_a = op_a;
  s.op_b = op_b;
  s.ab = ab;
  s.d = d;
  const int g = static_cast<int>(m.size());
  s.m = std::move(m);
  s.n = n.size() == 1 && g > 1 ? same(g, n[0]) : std::move(n);
  s.k = k.size() == 1 && g > 1 ? same(g, k[0]) : std::move(k);
  return s;
}

template <class F>
ListSpec with(ListSpec s, F f) {
  f(s);
  return s;
}

const auto kBias = [](ListSpec& s) { s.bias = true; };
const auto kGelu = [](ListSpec& s) { s.gelu = true; };
const auto kBiasGelu = [](ListSpec& s) { s.bias = s.gelu = true; };
const auto kAcc = [](ListSpec& s) { s.accumulate = true; };
const auto kPacked = [](ListSpec& s) { s.layout = ListLayout::Packed; };

std::vector<int64_t> cycle_sizes(int g, int64_t mod, int64_t mul) {
  std::vector<int64_t> v;
  for (int i = 0; i < g; ++i) v.push_back((i * mul) % mod);
  return v;
}

const std::vector<CublasCase>& cublas_cases() {
  static const std::vector<CublasCase> c = {
      // Epilogues (bias / GELU rule out the fast paths).
      {"bias_fwd_bf16", with(mk(N, T, BF, BF, {37, 0, 100}, {64}, {64}), kBias)},
      {"bias_dgrad_fp16_to_fp32", with(mk(N, N, FP, F32, {1, 50, 7, 0}, {136}, {72}), kBias)},
      {"gelu_fwd_bf16", with(mk(N, T, BF, BF, {64, 3, 0}, {64}, {128}), kGelu)},
      {"gelu_dgrad_fp16_to_fp32", with(mk(N, N, FP, F32, {20, 0, 9}, {24}, {40}), kGelu)},
      {"bias_gelu_fwd_bf16", with(mk(N, T, BF, BF, {0, 33, 1, 70, 0}, {72}, {64}), kBiasGelu)},
      {"bias_gelu_fp16_mixed_n", with(mk(N, T, FP, FP, {16, 5}, {40, 56}, {32, 32}), kBiasGelu)},
      {"bias_gelu_fp32_TT", with(mk(T, T, F32, F32, {12, 30, 0}, {24, 8, 16}, {9, 33, 5}), kBiasGelu)},
      // k_i = 0: zeros, bias, GELU(bias), untouched when accumulating.
      {"k0_groups_zeros", mk(N, T, BF, F32, {20, 30, 10, 5}, {64}, {64, 0, 32, 0})},
      {"k0_groups_bias", with(mk(N, N, BF, BF, {10, 12, 8}, {48}, {0, 16, 0}), kBias)},
      {"k0_groups_bias_gelu", with(mk(N, T, FP, F32, {7, 9, 11}, {24}, {0, 8, 0}), kBiasGelu)},
      {"k0_groups_gelu", with(mk(N, T, BF, BF, {6, 6}, {16}, {0, 24}), kGelu)},
      {"k0_groups_accumulate", with(mk(N, T, BF, BF, {10, 20, 30, 5}, {64}, {0, 64, 0, 8}), kAcc)},
      {"all_k0", mk(N, T, BF, BF, {10, 20, 5}, {64}, {0})},  // uniform k = 0: rule k >= 1
      {"all_k0_accumulate", with(mk(N, N, FP, F32, {10, 0, 5}, {32}, {0}), kAcc)},
      // m_i = 0 / n_i = 0 groups are skipped; NULL pointers for empty matrices.
      {"m0_n0_groups_bias", with(mk(N, T, BF, BF, {0, 20, 5, 0}, {16, 0, 24, 8}, {32}), kBias)},
      {"null_empty_pointers_bias",
       with(mk(N, T, BF, F32, {0, 20, 7, 0, 9}, {16, 24, 0, 0, 8}, {32, 0, 16, 8, 24}),
            [](ListSpec& s) { s.bias = s.null_empty = true; })},
      {"null_empty_pointers_ragged_k",
       with(mk(N, N, FP, FP, {0, 20, 13, 6}, {16, 24, 8, 0}, {8, 0, 16, 24}), [](ListSpec& s) { s.null_empty = true; })},
      // FP32 inputs, all four op combinations.
      {"fp32_NN", mk(N, N, F32, F32, {17, 0, 40}, {24, 9, 33}, {13, 20, 1})},
      {"fp32_NT", mk(N, T, F32, F32, {5, 64}, {64, 7}, {64, 64})},
      {"fp32_TN", mk(T, N, F32, F32, {24, 24, 24}, {16}, {10, 0, 31})},
      {"fp32_TT", mk(T, T, F32, F32, {33, 1}, {9, 17}, {40, 3})},
      {"fp32_accumulate", with(mk(N, N, F32, F32, {20, 30}, {24, 40}, {16, 48}), kAcc)},
      // BF16 / FP16: shapes off the fast paths' rules, all four op combinations.
      {"bf16_NN_k12", mk(N, N, BF, BF, {20, 33}, {16, 24}, {12})},
      {"bf16_NT_n12", mk(N, T, BF, F32, {31, 7}, {12, 20}, {64})},
      {"bf16_k12_uniform_fwd", mk(N, T, BF, BF, {10, 20, 30}, {64}, {12})},
      {"bf16_ragged_k_fwd", mk(N, T, BF, BF, {30, 40, 50}, {64}, {64, 128, 8})},
      {"bf16_TT", mk(T, T, BF, BF, {40, 8}, {24, 64}, {16, 72})},
      {"bf16_k13_accumulate", with(mk(N, T, BF, BF, {25, 0, 40}, {32}, {13}), kAcc)},
      {"fp16_TT", mk(T, T, FP, FP, {9, 30}, {17, 8}, {25, 8})},
      {"fp16_NN_n20", mk(N, N, FP, FP, {11, 64}, {20}, {32})},
      // The wgrad layout off path 2: slices not consecutive, FP16, m % 8 != 0.
      {"wgrad_noncontiguous_slices_fp32_out", mk(T, N, BF, F32, {64, 64, 64, 64}, {136}, {30, 0, 77, 5})},
      {"wgrad_noncontiguous_slices_bf16_acc", with(mk(T, N, BF, BF, {136, 136}, {64}, {9, 100}), kAcc)},
      {"wgrad_packed_fp16", with(mk(T, N, FP, F32, {64, 64, 64}, {64}, {20, 0, 45}), kPacked)},
      {"wgrad_packed_m12", with(mk(T, N, BF, F32, {12, 12}, {64}, {10, 20}), kPacked)},
      // Path 1 but for A_0 not 16-byte aligned (2 bytes off: still element-aligned).
      {"misaligned_a_pointer", with(mk(N, T, BF, BF, {30, 20, 10}, {64}, {64}), [](ListSpec& s) { s.shift_a0 = 2; })},
      // A bias vector only element-aligned (2 bytes off 16).
      // Stream counts of the cuBLAS path.
      {"streams_1", with(mk(N, T, BF, BF, {3, 40, 0, 9, 22, 1, 15, 30}, {32}, {24}),
                         [](ListSpec& s) { s.bias = true; s.num_streams = 1; })},
      {"streams_3_gelu", with(mk(N, N, FP, FP, {3, 40, 0, 9, 22, 1, 15}, {24}, {40}),
                              [](ListSpec& s) { s.gelu = true; s.num_streams = 3; })},
      {"streams_16_g32", with(mk(N, N, FP, F32, cycle_sizes(32, 50, 37), {24}, {40}),
                              [](ListSpec& s) { s.bias = true; s.num_streams = 16; })},
      {"default_streams_g32_ragged_k", mk(N, T, BF, F32, cycle_sizes(32, 40, 13), {16}, cycle_sizes(32, 64, 9))},
  };
  return c;
}

class ListCublasTest : public ListTest, public ::testing::WithParamInterface<CublasCase> {};

TEST_P(ListCublasTest, MatchesFloat64Reference) { run_and_check(GetParam().spec, MOEGEMM_PATH_CUBLAS); }

void PrintTo(const CublasCase& c, std::ostream* os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(Cases, ListCublasTest, ::testing::ValuesIn(cublas_cases()),
                         [](const ::testing::TestParamInfo<CublasCase>& i) { return i.param.name; });

// ---------------------------------------------------------------------------
// 4. CUDA graphs: "no allocation; no host synchronisation" — one call per
//    path captured (global mode), replayed twice, each replay checked.

struct GraphCase {
  std::string name;
  ListSpec spec;
  moegemm_path_t path;
};

const std::vector<GraphCase>& graph_cases() {
  static const std::vector<GraphCase> c = {
      {"uniform_k_fwd_bf16", mk(N, T, BF, BF, {0, 77, 1, 130, 0, 64, 9, 0}, {136}, {64}), MOEGEMM_PATH_UNIFORM_K},
      {"uniform_k_dgrad_fp16_to_fp32_acc", with(mk(N, N, FP, F32, {50, 0, 129}, {64}, {136}), kAcc),
       MOEGEMM_PATH_UNIFORM_K},
      {"variable_k_wgrad", with(mk(T, N, BF, F32, {64, 64, 64, 64}, {136}, {0, 100, 7, 60}), kPacked),
       MOEGEMM_PATH_VARIABLE_K},
      {"cublas_bias_gelu_4_streams", with(mk(N, T, BF, BF, {0, 33, 1, 70, 5, 18, 0, 40}, {72}, {24}), kBiasGelu),
       MOEGEMM_PATH_CUBLAS},
      {"cublas_k0_accumulate", with(mk(N, T, FP, F32, {20, 9, 31}, {24}, {0, 16, 40}), kAcc), MOEGEMM_PATH_CUBLAS},
  };
  return c;
}

class ListGraphTest : public ListTest, public ::testing::WithParamInterface<GraphCase> {};

TEST_P(ListGraphTest, CapturedCallReplays) {
  const GraphCase& gc = GetParam();
  SCOPED_TRACE(describe(gc.spec));
  ListCall call(gc.spec, rng_);
  ASSERT_TRUE(list_path_is(call.problem, expected_path(gc.path)));
  const Workspace ws = list_workspace(call.problem);
  const Stream stream;
  Captured cap = capture_call(call.problem, ws, stream);
  ASSERT_TRUE(captured_cleanly(cap));
  const GraphExecPtr exec = instantiate(cap.graph);
  // Capturing runs nothing.
  EXPECT_TRUE(call.d_mem.unchanged(call.d_mem.pull(), "D after capture alone"));
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE("replay " + std::to_string(r));
    call.reset();
    replay(exec, stream.get());
    EXPECT_TRUE(call.check());
  }
}

void PrintTo(const GraphCase& c, std::ostream* os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(Paths, ListGraphTest, ::testing::ValuesIn(graph_cases()),
                         [](const ::testing::TestParamInfo<GraphCase>& i) { return i.param.name; });

// ---------------------------------------------------------------------------
// 5. Determinism of path 1 (same inputs, second run on another stream), and
//    two cuBLAS-path calls in flight at once on two streams (the path's
//    internal streams and events are shared between calls).

class ListStreamTest : public ListTest {};

TEST_F(ListStreamTest, UniformKRunsAreBitIdentical) {
  const std::vector<ListSpec> specs = {
      mk(N, T, BF, BF, {0, 1, 7, 129, 0, 300, 64, 0}, {512}, {136}),
      with(mk(N, N, FP, F32, {257, 0, 100}, {136}, {1024}), kAcc),
  };
  for (const ListSpec& s : specs) {
    SCOPED_TRACE(describe(s));
    ListCall call(s, rng_);
    ASSERT_TRUE(list_path_is(call.problem, expected_path(MOEGEMM_PATH_UNIFORM_K)));
    const Workspace ws = list_workspace(call.problem);
    const Stream s1, s2;
    list_sync(call.problem, ws, s1.get());
    const Bytes first = call.d_mem.pull();
    EXPECT_TRUE(call.check(first));
    call.reset();
    list_sync(call.problem, ws, s2.get());
    EXPECT_TRUE(call.d_mem.pull() == first) << "second run differs from the first";
  }
}

TEST_F(ListStreamTest, TwoCublasCallsOnTwoStreams) {
  ListCall a(with(mk(N, T, BF, BF, {40, 0, 17, 33, 64, 2}, {48}, {24}), kBiasGelu), rng_);
  ListCall b(with(mk(N, N, FP, F32, {9, 30, 0, 71, 5}, {24}, {0, 40, 8, 16, 32}), kAcc), rng_);
  ASSERT_TRUE(list_path_is(a.problem, MOEGEMM_PATH_CUBLAS));
  ASSERT_TRUE(list_path_is(b.problem, MOEGEMM_PATH_CUBLAS));
  const Workspace wa = list_workspace(a.problem), wb = list_workspace(b.problem);
  const Stream s1, s2;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    list_enqueue(a.problem, wa, s1.get());
    list_enqueue(b.problem, wb, s2.get());
    s1.sync();
    s2.sync();
    EXPECT_TRUE(a.check()) << describe(a.spec);
    EXPECT_TRUE(b.check()) << describe(b.spec);
    a.reset();
    b.reset();
  }
}

// ---------------------------------------------------------------------------
// 6. Failed calls write nothing: outputs and guards bit-identical to before,
//    the documented status, a message; moegemm_gemm_list_path() reports the
//    same status for an invalid problem; the same call made valid succeeds.

struct ListBad {
  moegemm_gemm_list_t p;
  void* ws;
  size_t ws_bytes;
  const ListCall* call;
  std::vector<int64_t> sizes;  // storage for mutated host arrays
  std::vector<const void*> cptrs;
  std::vector<void*> ptrs;
  DeviceBuffer extra;
  bool not_applicable = false;
};

enum class ListBase { Uniform, Variable, Cublas };

struct ListErrorCase {
  const char* name;
  moegemm_status_t status;
  ListBase base;
  bool problem_error;  // the problem itself is invalid (the path query fails too)
  void (*mutate)(ListBad&);
};

ListSpec list_base(ListBase b) {
  switch (b) {
    case ListBase::Uniform: return mk(N, T, BF, BF, {50, 0, 77}, {64}, {64});
    case ListBase::Variable: return with(mk(T, N, BF, F32, {64, 64, 64}, {64}, {30, 0, 50}), kPacked);
    case ListBase::Cublas: return with(mk(N, T, BF, BF, {50, 0, 77}, {64}, {64}), kBiasGelu);
  }
  return {};
}

moegemm_path_t base_path(ListBase b) {
  switch (b) {
    case ListBase::Uniform: return MOEGEMM_PATH_UNIFORM_K;
    case ListBase::Variable: return MOEGEMM_PATH_VARIABLE_K;
    case ListBase::Cublas: return MOEGEMM_PATH_CUBLAS;
  }
  return MOEGEMM_PATH_CUBLAS;
}

void too_small(ListBad& b) {
  if (b.ws_bytes == 0) b.not_applicable = true;
  else b.ws_bytes -= 1;
}

const std::vector<ListErrorCase>& list_error_cases() {
  const auto INV = MOEGEMM_STATUS_INVALID_ARGUMENT;
  const auto U = ListBase::Uniform, V = ListBase::Variable, C = ListBase::Cublas;
  static const std::vector<ListErrorCase> c = {
      {"workspace_too_small_uniform_k", MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, U, false, too_small},
      {"workspace_too_small_variable_k", MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, V, false, too_small},
      {"workspace_too_small_cublas", MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, C, false, too_small},
      {"workspace_misaligned", MOEGEMM_STATUS_MISALIGNED, C, false,
       [](ListBad& b) {
         b.extra = DeviceBuffer(b.ws_bytes + 256);
         b.ws = b.extra.bytes_ptr() + 128;
       }},
      {"workspace_null", INV, C, false, [](ListBad& b) { b.ws = nullptr; }},
      {"bias_gelu_with_accumulate", INV, C, true, [](ListBad& b) { b.p.accumulate = 1; }},
      {"bias_with_accumulate", INV, C, true,
       [](ListBad& b) {
         b.p.gelu_input = nullptr;
         b.p.accumulate = 1;
       }},
      {"gelu_with_accumulate", INV, C, true,
       [](ListBad& b) {
         b.p.bias = nullptr;
         b.p.accumulate = 1;
       }},
      {"zero_groups", INV, U, true, [](ListBad& b) { b.p.num_groups = 0; }},
      {"d_bf16_with_fp16_inputs", INV, U, true,
       [](ListBad& b) {
         b.p.ab_dtype = MOEGEMM_DTYPE_FP16;
         b.p.d_dtype = MOEGEMM_DTYPE_BF16;
       }},
      {"d_bf16_with_fp32_inputs", INV, C, true, [](ListBad& b) { b.p.ab_dtype = MOEGEMM_DTYPE_FP32; }},
      {"unknown_dtype", INV, U, true, [](ListBad& b) { set_raw_enum(&b.p.ab_dtype, 7); }},
      {"unknown_op", INV, U, true, [](ListBad& b) { set_raw_enum(&b.p.op_a, 2); }},
      {"negative_m", INV, U, true,
       [](ListBad& b) {
         b.sizes = {50, -1, 77};
         b.p.m = b.sizes.data();
       }},
      {"negative_k", INV, C, true,
       [](ListBad& b) {
         b.sizes = {64, -64, 64};
         b.p.k = b.sizes.data();
       }},
      {"null_m_array", INV, U, true, [](ListBad& b) { b.p.m = nullptr; }},
      {"null_a_array", INV, V, true, [](ListBad& b) { b.p.a = nullptr; }},
      {"null_a_for_nonempty_matrix", INV, U, true,
       [](ListBad& b) {
         b.cptrs = b.call->a_ptrs;
         b.cptrs[2] = nullptr;
         b.p.a = b.cptrs.data();
       }},
      {"null_d_for_nonempty_matrix", INV, C, true,
       [](ListBad& b) {
         b.ptrs = b.call->d_ptrs;
         b.ptrs[0] = nullptr;
         b.p.d = b.ptrs.data();
       }},
      // Pointers not even aligned to their element size.
      {"a_not_element_aligned", MOEGEMM_STATUS_MISALIGNED, U, true,
       [](ListBad& b) {
         b.cptrs = b.call->a_ptrs;
         b.cptrs[0] = static_cast<const char*>(b.cptrs[0]) + 1;
         b.p.a = b.cptrs.data();
       }},
      // cuBLASLt's fused bias epilogue needs a 16-byte aligned bias.
      {"bias_not_16_byte_aligned", MOEGEMM_STATUS_MISALIGNED, C, true,
       [](ListBad& b) {
         b.cptrs = b.call->bias_ptrs;
         b.cptrs[0] = static_cast<const char*>(b.cptrs[0]) + 2;
         b.p.bias = b.cptrs.data();
       }},
      {"fp32_d_not_element_aligned", MOEGEMM_STATUS_MISALIGNED, V, true,
       [](ListBad& b) {
         b.ptrs = b.call->d_ptrs;
         b.ptrs[2] = static_cast<char*>(b.ptrs[2]) + 2;
         b.p.d = b.ptrs.data();
       }},
  };
  return c;
}

class ListErrorTest : public ListTest, public ::testing::WithParamInterface<ListErrorCase> {};

TEST_P(ListErrorTest, FailsAndWritesNothing) {
  const ListErrorCase& ec = GetParam();
  const ListSpec s = list_base(ec.base);
  SCOPED_TRACE(describe(s));
  ListCall call(s, rng_);  // outputs poisoned with NaN
  ASSERT_TRUE(list_path_is(call.problem, expected_path(base_path(ec.base))));
  const Workspace ws = list_workspace(call.problem);
  const Stream stream;
  ListBad bad{call.problem, ws.get(), ws.bytes, &call, {}, {}, {}, {}, false};
  ec.mutate(bad);
  if (bad.not_applicable) GTEST_SKIP() << "this path needs no workspace: nothing can be too small";

  expect_call_fails(bad.p, bad.ws, bad.ws_bytes, ec.problem_error, ec.status, stream, call);
  if (s.gelu) {
    EXPECT_TRUE(call.gi_mem.unchanged(call.gi_mem.pull(), "gelu_input after a failed call"));
  }

  list_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check()) << "the valid call after the failed one";
}

void PrintTo(const ListErrorCase& e, std::ostream* os) { *os << e.name; }

INSTANTIATE_TEST_SUITE_P(Cases, ListErrorTest, ::testing::ValuesIn(list_error_cases()),
                         [](const ::testing::TestParamInfo<ListErrorCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace moegemm_test
