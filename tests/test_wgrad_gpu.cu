// GPU tests of moegemm_wgrad(): every output element against a float64 host
// reference, over group counts, shapes (tile multiples and not), skewed and
// degenerate split sizes, both output types, overwrite and accumulate, host and
// device split sizes, the three output layouts and every tile configuration;
// plus determinism, the device split-size clamping rule, CUDA graph replay,
// workspace reuse across streams, and failed calls writing nothing.
//
// Every test is SKIPPED (never passed) without an SM90 device; see GpuTest.
// Data are fresh each run; a failure's trace prints the seed to rerun it with
// (MOEGEMM_TEST_SEED=<seed> ./moegemm_gpu_tests --gtest_filter=...).
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "gpu_test_util.h"
#include "moegemm/moegemm.h"
#include "moegemm/moegemm.hpp"

namespace moegemm_test {
namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

// AUTO and every concrete configuration the library offers.
const std::vector<moegemm_wgrad_config_t> kConfigs = [] {
  std::vector<moegemm_wgrad_config_t> all;
  for (int c = MOEGEMM_WGRAD_CONFIG_AUTO; c < MOEGEMM_WGRAD_CONFIG_COUNT_; ++c)
    all.push_back(static_cast<moegemm_wgrad_config_t>(c));
  return all;
}();
const moegemm_dtype_t kDtypes[] = {MOEGEMM_DTYPE_FP32, MOEGEMM_DTYPE_BF16};
const OutKind kOutKinds[] = {OutKind::Contiguous, OutKind::HostList, OutKind::DeviceList};

// Test-name-safe name of a configuration (the library's name).
std::string config_short(moegemm_wgrad_config_t c) { return moegemm_wgrad_config_name(c); }

const char* loc_short(moegemm_memory_t l) { return l == MOEGEMM_MEMORY_DEVICE ? "devsizes" : "hostsizes"; }

int64_t sum_of(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t k : v) s += k;
  return s;
}

// ---------------------------------------------------------------------------
// Split-size recipes (drawn fresh from the test's seed)

enum class SplitKind { Explicit, Skewed, Special, AllInOne, AllEmpty };

struct SplitSpec {
  SplitKind kind = SplitKind::Explicit;
  int64_t tokens = 0;           // sum of the sizes (Skewed, Special, AllInOne)
  std::vector<int64_t> sizes;   // Explicit
  int index = 0;                // AllInOne: the group holding every token
};

SplitSpec explicit_sizes(std::vector<int64_t> k) { return {SplitKind::Explicit, 0, std::move(k), 0}; }
SplitSpec skewed(int64_t tokens) { return {SplitKind::Skewed, tokens, {}, 0}; }
SplitSpec special(int64_t tokens) { return {SplitKind::Special, tokens, {}, 0}; }
SplitSpec all_in_one(int index, int64_t tokens) { return {SplitKind::AllInOne, tokens, {}, index}; }
SplitSpec all_empty() { return {SplitKind::AllEmpty, 0, {}, 0}; }

std::vector<int64_t> make_sizes(const SplitSpec& s, int g, std::mt19937_64& rng) {
  switch (s.kind) {
    case SplitKind::Explicit: return s.sizes;
    case SplitKind::Skewed: return skewed_split(rng, g, s.tokens);
    case SplitKind::Special: return special_split(rng, g, s.tokens);
    case SplitKind::AllInOne: {
      std::vector<int64_t> k(static_cast<size_t>(g), 0);
      k[s.index] = s.tokens;
      return k;
    }
    case SplitKind::AllEmpty: return std::vector<int64_t>(static_cast<size_t>(g), 0);
  }
  return {};
}

// ---------------------------------------------------------------------------
// 1. The main matrix: scenarios x configuration x output type x accumulate.
//    Output layout and split-size location rotate with the combination, so
//    each scenario and each configuration meets all three layouts and both
//    locations.

struct Scenario {
  std::string name;
  int g;
  int64_t m, n;
  SplitSpec split;
  int64_t pad;               // token rows past sum(k), to be ignored
  bool device_only = false;  // g > MOEGEMM_MAX_HOST_GROUPS: device sizes, no host list
};

// Σ g·m·n·k stays below ~1e9 per case (float64 reference on the host).
const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> s = {
      {"g1_k777", 1, 136, 64, explicit_sizes({777}), 0},
      {"g1_k1_padded", 1, 64, 8, explicit_sizes({1}), 5},
      {"g2_k1_k7", 2, 64, 136, explicit_sizes({1, 7}), 3},
      {"g7_empty_first_mid_last", 7, 136, 136, explicit_sizes({0, 1, 7, 65, 0, 129, 0}), 13},
      {"g16_special_512x512", 16, 512, 512, special(3000), 100},
      {"g64_skewed", 64, 136, 64, skewed(6000), 0},
      {"g128_skewed", 128, 64, 136, skewed(12000), 37},
      {"g7_skewed_8x8", 7, 8, 8, skewed(500), 1},
      {"g16_special_8x2048", 16, 8, 2048, special(1000), 0},
      {"g2_m7168", 2, 7168, 64, explicit_sizes({37, 91}), 11},
      {"g2_n7168", 2, 64, 7168, explicit_sizes({100, 3}), 0},
      {"g2_1024x2048", 2, 1024, 2048, explicit_sizes({200, 57}), 0},
      {"g4_2048x1024", 4, 2048, 1024, skewed(400), 0},
      {"g64_1024x136", 64, 1024, 136, skewed(1500), 9},
      {"g7_all_tokens_in_middle", 7, 136, 136, all_in_one(3, 1000), 20},
      {"g16_all_tokens_in_last", 16, 64, 64, all_in_one(15, 2000), 0},
      {"g16_all_tokens_in_first", 16, 136, 64, all_in_one(0, 1500), 0},
      {"g7_all_empty_T0", 7, 136, 64, all_empty(), 0},
      {"g5_all_empty_T100", 5, 64, 136, all_empty(), 100},
      {"g1_long_k16389", 1, 136, 136, explicit_sizes({16389}), 0},
      {"g33_skewed", 33, 64, 64, skewed(2000), 0},
      {"g300_skewed", 300, 8, 64, skewed(4000), 0},
      {"g1024_skewed", MOEGEMM_MAX_HOST_GROUPS, 8, 8, skewed(5000), 3},
      {"g2000_skewed_device_only", 2000, 8, 8, skewed(6000), 0, true},
  };
  return s;
}

struct MatrixParam {
  size_t scenario;
  moegemm_wgrad_config_t config;
  moegemm_dtype_t dtype;
  bool accumulate;
  OutKind out_kind;
  moegemm_memory_t sizes_loc;
};

std::vector<MatrixParam> matrix_params() {
  std::vector<MatrixParam> out;
  for (size_t si = 0; si < scenarios().size(); ++si) {
    int combo = 0;
    for (moegemm_wgrad_config_t cfg : kConfigs)
      for (moegemm_dtype_t dt : kDtypes)
        for (bool acc : {false, true}) {
          MatrixParam p{si, cfg, dt, acc, kOutKinds[(combo + si) % 3],
                        (combo / 3 + si) % 2 ? MOEGEMM_MEMORY_DEVICE : MOEGEMM_MEMORY_HOST};
          if (scenarios()[si].device_only) {
            p.sizes_loc = MOEGEMM_MEMORY_DEVICE;
            if (p.out_kind == OutKind::HostList) p.out_kind = OutKind::Contiguous;
          }
          out.push_back(p);
          ++combo;
        }
  }
  return out;
}

std::string matrix_name(const ::testing::TestParamInfo<MatrixParam>& i) {
  const MatrixParam& p = i.param;
  return scenarios()[p.scenario].name + "__" + config_short(p.config) + "_" + dtype_name(p.dtype) +
         (p.accumulate ? "_acc_" : "_over_") + out_kind_name(p.out_kind) + "_" + loc_short(p.sizes_loc);
}

void PrintTo(const MatrixParam& p, std::ostream* os) {
  *os << scenarios()[p.scenario].name << " " << config_short(p.config) << " " << dtype_name(p.dtype) << " "
      << (p.accumulate ? "accumulate" : "overwrite") << " " << out_kind_name(p.out_kind) << " "
      << loc_short(p.sizes_loc);
}

// A scenario's shape with freshly drawn split sizes (T includes its padding).
template <class Rng>
CaseSpec scenario_case(const Scenario& sc, Rng& rng) {
  CaseSpec s;
  s.g = sc.g;
  s.m = sc.m;
  s.n = sc.n;
  s.sizes = make_sizes(sc.split, sc.g, rng);
  s.T = sum_of(s.sizes) + sc.pad;
  return s;
}

class WgradMatrixTest : public GpuTest, public ::testing::WithParamInterface<MatrixParam> {};

TEST_P(WgradMatrixTest, MatchesFloat64Reference) {
  const MatrixParam& p = GetParam();
  CaseSpec s = scenario_case(scenarios()[p.scenario], rng_);
  s.sizes_loc = p.sizes_loc;
  s.out_kind = p.out_kind;
  s.dtype = p.dtype;
  s.accumulate = p.accumulate;
  s.config = p.config;
  SCOPED_TRACE(describe(s));

  WgradCall call(s, rng_);
  const Workspace ws = make_workspace(s.g);
  const Stream stream;
  wgrad_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check());
}

INSTANTIATE_TEST_SUITE_P(Scenarios, WgradMatrixTest, ::testing::ValuesIn(matrix_params()), matrix_name);

// ---------------------------------------------------------------------------
// 2. Determinism: the same inputs twice (second time on another stream) give
//    bit-identical outputs, overwriting and accumulating.

using DeterminismParam = std::tuple<size_t /*scenario*/, moegemm_wgrad_config_t, moegemm_dtype_t>;

class WgradDeterminismTest : public GpuTest, public ::testing::WithParamInterface<DeterminismParam> {};

TEST_P(WgradDeterminismTest, RepeatedRunsAreBitIdentical) {
  const auto [si, config, dtype] = GetParam();
  for (const bool acc : {false, true}) {
    CaseSpec s = scenario_case(scenarios()[si], rng_);
    s.sizes_loc = acc ? MOEGEMM_MEMORY_DEVICE : MOEGEMM_MEMORY_HOST;
    s.out_kind = acc ? OutKind::DeviceList : OutKind::Contiguous;
    s.dtype = dtype;
    s.accumulate = acc;
    s.config = config;
    SCOPED_TRACE(describe(s));

    WgradCall call(s, rng_);
    const Workspace ws = make_workspace(s.g);
    const Stream first_stream, second_stream;
    wgrad_sync(call.problem, ws, first_stream.get());
    const GroupBytes first = call.out.download();
    EXPECT_TRUE(call.check(first));
    call.reset_outputs();
    wgrad_sync(call.problem, ws, second_stream.get());
    EXPECT_TRUE(bit_identical(first, call.out.download(), "second run"));
  }
}

size_t scenario_index(const std::string& name) {
  for (size_t i = 0; i < scenarios().size(); ++i)
    if (scenarios()[i].name == name) return i;
  throw TestError("no scenario " + name);
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, WgradDeterminismTest,
    ::testing::Combine(::testing::Values(scenario_index("g128_skewed"), scenario_index("g16_special_512x512")),
                       ::testing::ValuesIn(kConfigs), ::testing::ValuesIn(kDtypes)),
    [](const ::testing::TestParamInfo<DeterminismParam>& i) {
      return scenarios()[std::get<0>(i.param)].name + "__" + config_short(std::get<1>(i.param)) + "_" +
             dtype_name(std::get<2>(i.param));
    });

// ---------------------------------------------------------------------------
// 3. Device split sizes are clamped (k < 0 -> 0, offsets capped at T, k capped
//    at T - offset): results follow the rule, nothing outside the outputs is
//    written (guards), inputs and sizes are left alone.

struct ClampPattern {
  const char* name;
  int g;
  int64_t m, n, T;
  std::vector<int64_t> sizes;  // empty: messy_device_split()
};

const std::vector<ClampPattern>& clamp_patterns() {
  static const std::vector<ClampPattern> p = {
      {"negatives_and_cut_group", 7, 136, 64, 300, {5, -3, 100, 7, -1000000000, 250, 30}},
      {"huge_first_group", 5, 64, 136, 77, {int64_t{1} << 62, 5, 7, -1, 3}},
      {"int64_extremes", 6, 136, 136, 129, {kI64Min, 60, kI64Max, -1, 3, kI64Max}},
      {"sum_past_T", 4, 64, 64, 100, {40, 40, 40, 40}},
      {"exact_T_with_negative", 5, 64, 136, 100, {10, -5, 20, 0, 70}},
      {"all_negative", 4, 64, 64, 50, {-1, -2, -3, kI64Min}},
      {"T0_positive_sizes", 3, 64, 64, 0, {5, -1, 7}},
      // Past 256 groups: the setup kernel scans the sizes in chunks.
      {"messy_600_groups", 600, 64, 64, 3000, {}},
  };
  return p;
}

using ClampParam = std::tuple<size_t /*pattern*/, moegemm_wgrad_config_t, bool /*accumulate*/>;

class WgradClampTest : public GpuTest, public ::testing::WithParamInterface<ClampParam> {};

TEST_P(WgradClampTest, DeviceSizesFollowTheClampingRule) {
  const auto [pi, config, acc] = GetParam();
  const ClampPattern& cp = clamp_patterns()[pi];
  const int rot = static_cast<int>(pi) + static_cast<int>(config) + (acc ? 1 : 0);
  CaseSpec s;
  s.g = cp.g;
  s.m = cp.m;
  s.n = cp.n;
  s.T = cp.T;
  s.sizes = cp.sizes.empty() ? messy_device_split(rng_, cp.g, cp.T) : cp.sizes;
  s.sizes_loc = MOEGEMM_MEMORY_DEVICE;
  s.out_kind = kOutKinds[rot % 3];
  s.dtype = kDtypes[rot % 2];
  s.accumulate = acc;
  s.config = config;
  SCOPED_TRACE(describe(s));

  WgradCall call(s, rng_);
  const Workspace ws = make_workspace(s.g);
  const Stream stream;
  wgrad_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check());  // includes the guard regions around every output

  std::vector<uint16_t> x(call.in.x.size()), dy(call.in.dy.size());
  std::vector<int64_t> sizes(s.sizes.size());
  call.x.download(x.data(), x.size() * 2);
  call.dy.download(dy.data(), dy.size() * 2);
  call.device_sizes.download(sizes.data(), sizes.size() * sizeof(int64_t));
  EXPECT_EQ(x, call.in.x) << "X was written";
  EXPECT_EQ(dy, call.in.dy) << "dY was written";
  EXPECT_EQ(sizes, s.sizes) << "the device split sizes were written";
}

INSTANTIATE_TEST_SUITE_P(Patterns, WgradClampTest,
                         ::testing::Combine(::testing::Range<size_t>(0, clamp_patterns().size()),
                                            ::testing::ValuesIn(kConfigs), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<ClampParam>& i) {
                           return std::string(clamp_patterns()[std::get<0>(i.param)].name) + "__" +
                                  config_short(std::get<1>(i.param)) +
                                  (std::get<2>(i.param) ? "_acc" : "_over");
                         });

// ---------------------------------------------------------------------------
// 4. CUDA graph: one call with device split sizes captured on a non-default
//    stream; each replay sees the split sizes of its time (same T).

using GraphParam = std::tuple<moegemm_wgrad_config_t, moegemm_dtype_t, bool /*accumulate*/>;

class WgradGraphTest : public GpuTest, public ::testing::WithParamInterface<GraphParam> {};

TEST_P(WgradGraphTest, ReplaysReadTheCurrentDeviceSizes) {
  const auto [config, dtype, acc] = GetParam();
  const int g = 16;
  const int64_t T = 3000;
  const std::vector<std::vector<int64_t>> splits = {
      skewed_split(rng_, g, T),
      special_split(rng_, g, T - 500),    // empty groups, rows [2500, 3000) unused
      messy_device_split(rng_, g, T),     // needs clamping
  };
  CaseSpec s;
  s.g = g;
  s.m = 136;
  s.n = 136;
  s.T = T;
  s.sizes = splits[0];
  s.sizes_loc = MOEGEMM_MEMORY_DEVICE;
  s.out_kind = kOutKinds[(static_cast<int>(config) + static_cast<int>(dtype) + (acc ? 1 : 0)) % 3];
  s.dtype = dtype;
  s.accumulate = acc;
  s.config = config;
  SCOPED_TRACE(describe(s));

  WgradCall call(s, rng_);
  const Workspace ws = make_workspace(g);
  const Stream stream;

  cudaGraph_t raw_graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  const moegemm_status_t st = moegemm_wgrad(&call.problem, ws.get(), ws.bytes, stream.get());
  const std::string message = moegemm_last_error();
  const cudaError_t end = cudaStreamEndCapture(stream.get(), &raw_graph);  // always end the capture
  GraphPtr graph(raw_graph);
  ASSERT_EQ(st, MOEGEMM_STATUS_SUCCESS) << moegemm_status_string(st) << ": " << message;
  CUDA_CHECK(end);
  ASSERT_TRUE(graph != nullptr);
  cudaGraphExec_t raw_exec = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&raw_exec, graph.get(), 0));
  GraphExecPtr exec(raw_exec);

  for (size_t r = 0; r < splits.size(); ++r) {
    SCOPED_TRACE("replay " + std::to_string(r) + ", device sizes " + format_sizes(splits[r]));
    call.set_device_sizes(splits[r]);
    call.reset_outputs();
    CUDA_CHECK(cudaGraphLaunch(exec.get(), stream.get()));
    CUDA_CHECK(cudaGetLastError());
    stream.sync();
    EXPECT_TRUE(call.check());
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, WgradGraphTest,
                         ::testing::Combine(::testing::ValuesIn(kConfigs), ::testing::ValuesIn(kDtypes),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<GraphParam>& i) {
                           return config_short(std::get<0>(i.param)) + "_" +
                                  dtype_name(std::get<1>(i.param)) + (std::get<2>(i.param) ? "_acc" : "_over");
                         });

// ---------------------------------------------------------------------------
// 5. Workspace reuse and streams

class WgradStreamTest : public GpuTest {
 protected:
  // A case with T = sum of the clamped sizes + pad.
  CaseSpec make_case(int g, int64_t m, int64_t n, const SplitSpec& split, int64_t pad, moegemm_dtype_t dtype,
                     bool acc, moegemm_wgrad_config_t config, OutKind out, moegemm_memory_t loc) {
    CaseSpec s;
    s.g = g;
    s.m = m;
    s.n = n;
    s.sizes = make_sizes(split, g, rng_);
    s.T = sum_of(s.sizes) + pad;
    s.dtype = dtype;
    s.accumulate = acc;
    s.config = config;
    s.out_kind = out;
    s.sizes_loc = loc;
    return s;
  }
};

// One workspace sized for the largest g serves calls with other g, other
// configurations, output types and accumulate flags, alternating between two
// streams (ordered by an event, as the API requires for a shared workspace).
TEST_F(WgradStreamTest, OneWorkspaceServesCallsWithDifferentGroupCounts) {
  const auto H = MOEGEMM_MEMORY_HOST, D = MOEGEMM_MEMORY_DEVICE;
  const auto F = MOEGEMM_DTYPE_FP32, B = MOEGEMM_DTYPE_BF16;
  const auto A = MOEGEMM_WGRAD_CONFIG_AUTO, P = MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1,
             C = MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
  const std::vector<CaseSpec> specs = {
      make_case(128, 64, 136, skewed(4000), 0, F, false, A, OutKind::Contiguous, H),
      make_case(7, 136, 64, explicit_sizes({0, 1, 7, 65, 0, 129, 0}), 4, B, true, P, OutKind::DeviceList, D),
      make_case(64, 136, 136, skewed(3000), 0, F, true, C, OutKind::HostList, D),
      make_case(1, 512, 64, explicit_sizes({900}), 0, B, false, C, OutKind::Contiguous, H),
      make_case(16, 64, 512, special(2000), 10, F, false, P, OutKind::DeviceList, H),
      make_case(128, 64, 64, skewed(2000), 0, B, true, A, OutKind::Contiguous, D),
      make_case(2, 136, 136, explicit_sizes({33, 0}), 0, F, true, P, OutKind::HostList, H),
      make_case(128, 64, 136, skewed(4000), 0, F, false, A, OutKind::Contiguous, H),  // same shape as the first
  };
  int max_g = 0;
  for (const CaseSpec& s : specs) max_g = std::max(max_g, s.g);
  const Workspace ws = make_workspace(max_g);

  std::vector<std::unique_ptr<WgradCall>> calls;
  for (const CaseSpec& s : specs) calls.push_back(std::make_unique<WgradCall>(s, rng_));
  const Stream s1, s2;
  const Event done;
  for (size_t i = 0; i < calls.size(); ++i) {
    const cudaStream_t st = i % 2 ? s2.get() : s1.get();
    if (i > 0) CUDA_CHECK(cudaStreamWaitEvent(st, done.get(), 0));
    wgrad_enqueue(calls[i]->problem, ws, st);
    CUDA_CHECK(cudaEventRecord(done.get(), st));
  }
  s1.sync();
  s2.sync();
  for (size_t i = 0; i < calls.size(); ++i) {
    SCOPED_TRACE("call " + std::to_string(i) + ": " + describe(calls[i]->spec));
    EXPECT_TRUE(calls[i]->check());
  }
}

// The workspace is the caller's: whatever it held before (zeros, all ones,
// random bytes, or an earlier call's arguments) must not change the result.
// Each pattern: a call with host sizes, then one with device sizes on the
// same workspace.
TEST_F(WgradStreamTest, PriorContentsOfTheWorkspaceDoNotMatter) {
  const auto H = MOEGEMM_MEMORY_HOST, D = MOEGEMM_MEMORY_DEVICE;
  const auto F = MOEGEMM_DTYPE_FP32, B = MOEGEMM_DTYPE_BF16;
  const auto A = MOEGEMM_WGRAD_CONFIG_AUTO;
  const Workspace ws = make_workspace(16);
  const Stream stream;
  std::vector<unsigned char> bytes(ws.bytes);
  for (int pattern = 0; pattern < 3; ++pattern) {
    SCOPED_TRACE("workspace pattern " + std::to_string(pattern));
    for (size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = pattern == 0 ? 0x00 : pattern == 1 ? 0xFF : static_cast<unsigned char>(rng_() >> 24);
    CUDA_CHECK(cudaMemcpy(ws.get(), bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
    for (const CaseSpec& s : {make_case(16, 136, 64, special(1500), 3, F, false, A, OutKind::Contiguous, H),
                              make_case(9, 64, 136, skewed(900), 0, B, false, A, OutKind::HostList, D)}) {
      SCOPED_TRACE(describe(s));
      WgradCall call(s, rng_);
      wgrad_sync(call.problem, ws, stream.get());
      EXPECT_TRUE(call.check());
    }
  }
}

// The one-launch kernel keeps its group tables in shared memory, for up to
// 256 groups; a request for it with more is served by the ping-pong kernel.
// Both sides of that boundary, with host and device split sizes, overwriting
// and accumulating (m = 64: the cluster's second CTA has no rows of its own).
TEST_F(WgradStreamTest, OneLaunchServesUpToItsGroupTableSize) {
  const auto O = MOEGEMM_WGRAD_CONFIG_ONELAUNCH_128x128x64_C2x1;
  const Workspace ws = make_workspace(257);
  const Stream stream;
  for (int g : {256, 257})
    for (moegemm_memory_t loc : {MOEGEMM_MEMORY_HOST, MOEGEMM_MEMORY_DEVICE})
      for (bool acc : {false, true}) {
        const CaseSpec s =
            make_case(g, 64, 136, skewed(20 * int64_t{g}), 5, MOEGEMM_DTYPE_FP32, acc, O, OutKind::Contiguous, loc);
        SCOPED_TRACE(describe(s));
        WgradCall call(s, rng_);
        wgrad_sync(call.problem, ws, stream.get());
        EXPECT_TRUE(call.check());
      }
}

// Calls with separate workspaces run concurrently on two streams.
TEST_F(WgradStreamTest, IndependentCallsOverlapOnTwoStreams) {
  WgradCall a(make_case(16, 512, 512, skewed(3000), 7, MOEGEMM_DTYPE_FP32, false, MOEGEMM_WGRAD_CONFIG_AUTO,
                        OutKind::Contiguous, MOEGEMM_MEMORY_HOST),
              rng_);
  WgradCall b(make_case(64, 136, 136, skewed(5000), 0, MOEGEMM_DTYPE_BF16, true,
                        MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1, OutKind::DeviceList, MOEGEMM_MEMORY_DEVICE),
              rng_);
  const Workspace ws_a = make_workspace(a.spec.g), ws_b = make_workspace(b.spec.g);
  const Stream s1, s2;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    wgrad_enqueue(a.problem, ws_a, s1.get());
    wgrad_enqueue(b.problem, ws_b, s2.get());
    s1.sync();
    s2.sync();
    EXPECT_TRUE(a.check()) << describe(a.spec);
    EXPECT_TRUE(b.check()) << describe(b.spec);
    a.reset_outputs();
    b.reset_outputs();
  }
}

// ---------------------------------------------------------------------------
// 6. Failed calls write nothing: the output keeps its poison bit for bit, and
//    the same call made valid again succeeds.

struct BadCall {
  moegemm_wgrad_problem_t p;
  void* ws;
  size_t ws_bytes;
  const WgradCall* call;
  std::vector<int64_t> sizes;  // storage for mutated host arrays
  std::vector<void*> ptrs;
  DeviceBuffer extra;
};

struct ErrorCase {
  const char* name;
  moegemm_status_t status;
  const char* message_names;  // expected in moegemm_last_error()
  OutKind out_kind;
  moegemm_dtype_t dtype;
  void (*mutate)(BadCall&);
};

void set_host_sizes(BadCall& b, std::vector<int64_t> k) {
  b.sizes = std::move(k);
  b.p.group_sizes = b.sizes.data();
}

// The valid call these start from: g=4, host sizes {50, 0, 120, 30}, T=230.
const std::vector<ErrorCase>& error_cases() {
  const auto INV = MOEGEMM_STATUS_INVALID_ARGUMENT, MIS = MOEGEMM_STATUS_MISALIGNED;
  const auto F = MOEGEMM_DTYPE_FP32, B = MOEGEMM_DTYPE_BF16;
  const OutKind C = OutKind::Contiguous, L = OutKind::HostList;
  static const std::vector<ErrorCase> cases = {
      {"workspace_too_small", MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, "workspace_bytes", C, F,
       [](BadCall& b) { b.ws_bytes -= 1; }},
      {"workspace_null", INV, "workspace", C, B, [](BadCall& b) { b.ws = nullptr; }},
      {"workspace_misaligned", MIS, "workspace", C, F,
       [](BadCall& b) {
         b.extra = DeviceBuffer(b.ws_bytes + 256);
         b.ws = b.extra.bytes_ptr() + 128;
       }},
      {"x_misaligned", MIS, "x:", C, B, [](BadCall& b) { b.p.x = static_cast<const char*>(b.p.x) + 2; }},
      {"dy_misaligned", MIS, "dy:", C, F, [](BadCall& b) { b.p.dy = static_cast<const char*>(b.p.dy) + 2; }},
      {"x_null", INV, "x:", C, B, [](BadCall& b) { b.p.x = nullptr; }},
      {"out_misaligned", MIS, "out:", C, F, [](BadCall& b) { b.p.out = static_cast<char*>(b.p.out) + 8; }},
      {"host_size_negative", INV, "group_sizes[1]", C, B, [](BadCall& b) { set_host_sizes(b, {50, -1, 120, 30}); }},
      {"host_sizes_past_T", INV, "group_sizes", L, F, [](BadCall& b) { set_host_sizes(b, {50, 0, 151, 30}); }},
      // Documented: "host: every k_i >= 0 and sum(k_i) <= T". The running sum
      // must not wrap around to a negative value and pass.
      {"host_sizes_sum_overflows_int64", INV, "group_sizes", C, B,
       [](BadCall& b) { set_host_sizes(b, {50, kI64Max, 120, 30}); }},
      {"host_list_null_entry", INV, "out_ptrs[1]", L, F,
       [](BadCall& b) {
         b.ptrs = b.call->out.host_ptrs();
         b.ptrs[1] = nullptr;
         b.p.out_ptrs = b.ptrs.data();
       }},
      {"host_list_misaligned_entry", MIS, "out_ptrs[2]", L, B,
       [](BadCall& b) {
         b.ptrs = b.call->out.host_ptrs();
         b.ptrs[2] = static_cast<char*>(b.ptrs[2]) + 4;
         b.p.out_ptrs = b.ptrs.data();
       }},
      {"out_and_out_ptrs", INV, "out/out_ptrs", L, F, [](BadCall& b) { b.p.out = b.call->out.group_ptr(0); }},
      {"no_output", INV, "out/out_ptrs", C, B, [](BadCall& b) { b.p.out = nullptr; }},
      {"unknown_config", INV, "config", C, F,
       [](BadCall& b) { b.p.config = MOEGEMM_WGRAD_CONFIG_COUNT_; }},
      {"unknown_dtype", INV, "out_dtype", C, B, [](BadCall& b) { b.p.out_dtype = static_cast<moegemm_dtype_t>(7); }},
      {"m_not_multiple_of_8", MIS, "m:", C, F, [](BadCall& b) { b.p.m = 60; }},
      {"zero_groups", INV, "num_groups", C, B, [](BadCall& b) { b.p.num_groups = 0; }},
  };
  return cases;
}

class WgradErrorTest : public GpuTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(WgradErrorTest, FailsAndWritesNothing) {
  const ErrorCase& ec = GetParam();
  CaseSpec s;
  s.g = 4;
  s.m = 64;
  s.n = 136;
  s.sizes = {50, 0, 120, 30};
  s.T = 230;
  s.out_kind = ec.out_kind;
  s.dtype = ec.dtype;
  SCOPED_TRACE(describe(s));

  WgradCall call(s, rng_);  // outputs poisoned with NaN
  const Workspace ws = make_workspace(s.g);
  const Stream stream;
  BadCall bad{call.problem, ws.get(), ws.bytes, &call, {}, {}, {}};
  ec.mutate(bad);

  const moegemm_status_t st = moegemm_wgrad(&bad.p, bad.ws, bad.ws_bytes, stream.get());
  const std::string message = moegemm_last_error();
  EXPECT_EQ(st, ec.status) << moegemm_status_string(st) << ": " << message;
  EXPECT_NE(message.find(ec.message_names), std::string::npos)
      << "moegemm_last_error() = \"" << message << "\" does not name " << ec.message_names;
  CUDA_CHECK(cudaGetLastError());
  stream.sync();
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(bit_identical(call.out.download(), call.initial, "outputs after a failed call"));
  EXPECT_TRUE(call.out.guards_intact());

  wgrad_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check()) << "the valid call after the failed one";
}

void PrintTo(const ErrorCase& e, std::ostream* os) { *os << e.name; }

INSTANTIATE_TEST_SUITE_P(Cases, WgradErrorTest, ::testing::ValuesIn(error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& i) { return std::string(i.param.name); });

// ---------------------------------------------------------------------------
// 7. A device pointer list cannot be checked on the host: a NULL or
//    misaligned entry makes its group a no-op (src/kernels/wgrad_sm90.cuh),
//    never a fault; the other groups are computed as usual.

using DtypeAccParam = std::tuple<moegemm_dtype_t, bool>;

class WgradDeviceListTest : public GpuTest, public ::testing::WithParamInterface<DtypeAccParam> {};

TEST_P(WgradDeviceListTest, NullOrMisalignedEntrySkipsOnlyItsGroup) {
  const auto [dtype, acc] = GetParam();
  CaseSpec s;
  s.g = 6;
  s.m = 136;
  s.n = 64;
  s.sizes = {30, 40, 0, 25, 60, 10};
  s.T = 170;
  s.sizes_loc = MOEGEMM_MEMORY_DEVICE;
  s.out_kind = OutKind::DeviceList;
  s.dtype = dtype;
  s.accumulate = acc;
  SCOPED_TRACE(describe(s));

  WgradCall call(s, rng_);
  OutputSet decoy(OutKind::Contiguous, dtype, 1, s.m, s.n, rng_);
  const GroupBytes decoy_init = poisoned_outputs(dtype, 1, s.m, s.n);
  decoy.upload(decoy_init);
  std::vector<void*> ptrs = call.out.host_ptrs();
  ptrs[1] = nullptr;
  ptrs[3] = static_cast<char*>(decoy.group_ptr(0)) + 4;
  const DeviceBuffer device_ptrs = upload_vector(ptrs);
  moegemm_wgrad_problem_t p = call.problem;
  p.out_ptrs = static_cast<void* const*>(device_ptrs.get());

  const Workspace ws = make_workspace(s.g);
  const Stream stream;
  wgrad_sync(p, ws, stream.get());

  const GroupBytes got = call.out.download();
  Expectation e = call.expectation();
  e.groups = {0, 2, 4, 5};
  EXPECT_TRUE(verify_wgrad(call.in, e, got));
  EXPECT_EQ(got[1], call.initial[1]) << "group 1 (NULL entry): its real buffer was written";
  EXPECT_EQ(got[3], call.initial[3]) << "group 3 (misaligned entry): its real buffer was written";
  EXPECT_TRUE(bit_identical(decoy.download(), decoy_init, "memory behind the misaligned entry"));
  EXPECT_TRUE(call.out.guards_intact());
  EXPECT_TRUE(decoy.guards_intact());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, WgradDeviceListTest,
                         ::testing::Combine(::testing::ValuesIn(kDtypes), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<DtypeAccParam>& i) {
                           return std::string(dtype_name(std::get<0>(i.param))) +
                                  (std::get<1>(i.param) ? "_acc" : "_over");
                         });

// ---------------------------------------------------------------------------
// 8. Workspace size query and the C++ wrapper

class WgradWorkspaceTest : public GpuTest {};

// "Depends only on num_groups and the device, so one allocation serves every
// call with at most that many groups."
TEST_F(WgradWorkspaceTest, SizeDependsOnlyOnGroupCount) {
  size_t prev = 0;
  for (int g : {1, 2, 7, 16, 64, 128, 257, 1024, 4096}) {
    moegemm_wgrad_problem_t q = moegemm_wgrad_problem_default();
    q.num_groups = g;
    size_t bytes = 0;
    MOEGEMM_CHECK(moegemm_wgrad_workspace_size(&q, &bytes));
    EXPECT_GT(bytes, 0u) << "g=" << g;
    EXPECT_GE(bytes, prev) << "g=" << g << ": smaller than for fewer groups";
    prev = bytes;
  }
  moegemm_wgrad_problem_t base = moegemm_wgrad_problem_default();
  base.num_groups = 16;
  size_t base_bytes = 0;
  MOEGEMM_CHECK(moegemm_wgrad_workspace_size(&base, &base_bytes));
  std::vector<std::function<void(moegemm_wgrad_problem_t&)>> variations = {
      [](moegemm_wgrad_problem_t& q) {
        q.m = 7168;
        q.n = 4096;
        q.total_tokens = 1 << 20;
      },
      [](moegemm_wgrad_problem_t& q) { q.out_dtype = MOEGEMM_DTYPE_BF16; },
      [](moegemm_wgrad_problem_t& q) { q.accumulate = 1; },
      [](moegemm_wgrad_problem_t& q) { q.config = MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1; },
      [](moegemm_wgrad_problem_t& q) { q.config = MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1; },
      [](moegemm_wgrad_problem_t& q) { q.group_sizes_location = MOEGEMM_MEMORY_DEVICE; },
      [](moegemm_wgrad_problem_t& q) { q.out_ptrs_location = MOEGEMM_MEMORY_DEVICE; },
  };
  for (size_t v = 0; v < variations.size(); ++v) {
    moegemm_wgrad_problem_t q = base;
    variations[v](q);
    size_t bytes = 0;
    MOEGEMM_CHECK(moegemm_wgrad_workspace_size(&q, &bytes));
    EXPECT_EQ(bytes, base_bytes) << "variation " << v;
  }
}

TEST_F(WgradWorkspaceTest, CppWrapperRunsAndThrowsOnError) {
  CaseSpec s;
  s.g = 3;
  s.m = 64;
  s.n = 64;
  s.sizes = {10, 0, 21};
  s.T = 40;
  SCOPED_TRACE(describe(s));
  WgradCall call(s, rng_);
  const size_t bytes = moegemm::wgrad_workspace_size(call.problem);
  const DeviceBuffer ws(bytes);
  const Stream stream;
  moegemm::wgrad(call.problem, ws.get(), bytes, stream.get());
  CUDA_CHECK(cudaGetLastError());
  stream.sync();
  EXPECT_TRUE(call.check());
  try {
    moegemm::wgrad(call.problem, ws.get(), bytes - 1, stream.get());
    ADD_FAILURE() << "no moegemm::Error thrown for a too-small workspace";
  } catch (const moegemm::Error& e) {
    EXPECT_EQ(e.status(), MOEGEMM_STATUS_WORKSPACE_TOO_SMALL);
    EXPECT_NE(std::string(e.what()).find("workspace_bytes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moegemm_test
