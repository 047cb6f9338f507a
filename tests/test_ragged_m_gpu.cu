// GPU tests of moegemm_ragged_m() (the ragged-M form: one token buffer, one
// weight per group) for forward (op_b T) and dgrad (op_b N), every output
// row against a float64 host reference (tests/gemm_reference.h states the
// tolerance):
//
//   - path 1 over shapes and group sizes (empty groups first/middle/last,
//     1, 7, non-multiples of 128), BF16/FP16 in, same type or FP32 out,
//     overwrite/accumulate, B contiguous or as a host/device pointer list,
//     host or device group sizes;
//   - device group sizes that need clamping (negative, past T, int64
//     extremes): results follow the documented rule, rows past the clamped
//     total untouched;
//   - rows of D past sum(m_i) never touched (bit-identical), guards intact,
//     inputs unchanged;
//   - the cuBLAS path (k or n not a multiple of 8, FP32 inputs, misaligned A)
//     with host sizes, and with device sizes outside stream capture (copied
//     and synchronised, clamped); inside capture it must fail with
//     MOEGEMM_STATUS_INVALID_ARGUMENT and write nothing;
//   - a CUDA graph captured once and replayed with different device sizes;
//   - determinism; failed calls write nothing.
//
// Every test is SKIPPED (never passed) without an SM90 device (GpuTest).
#include <algorithm>
#include <cstdlib>
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
constexpr moegemm_memory_t HOST = MOEGEMM_MEMORY_HOST, DEV = MOEGEMM_MEMORY_DEVICE;
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
const BKind kBKinds[] = {BKind::Contiguous, BKind::HostList, BKind::DeviceList};

int64_t sum_of(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

class RaggedTest : public GpuTest {
 protected:
  void run_and_check(const RaggedSpec& s, moegemm_path_t want) { run_and_check_call<RaggedCall>(s, want, rng_); }

  // Captures one call (path `want`) into a CUDA graph and checks two replays.
  void expect_captured_replays_match(const RaggedSpec& s, moegemm_path_t want) {
    SCOPED_TRACE(describe(s));
    RaggedCall call(s, rng_);
    ASSERT_TRUE(ragged_path_is(call.problem, want));
    const Workspace ws = ragged_workspace(call.problem);
    const Stream stream;
    Captured cap = capture_call(call.problem, ws, stream);
    ASSERT_TRUE(captured_cleanly(cap));
    const GraphExecPtr exec = instantiate(cap.graph);
    for (int r = 0; r < 2; ++r) {
      SCOPED_TRACE("replay " + std::to_string(r));
      call.reset();
      replay(exec, stream.get());
      EXPECT_TRUE(call.check());
    }
  }
};

RaggedSpec rs(int64_t T_rows, int64_t n, int64_t k, std::vector<int64_t> sizes, moegemm_op_t op_b, moegemm_dtype_t ab,
              moegemm_dtype_t d) {
  RaggedSpec s;
  s.T = T_rows;
  s.n = n;
  s.k = k;
  s.sizes = std::move(sizes);
  s.op_b = op_b;
  s.ab = ab;
  s.d = d;
  return s;
}

template <class F>
RaggedSpec with(RaggedSpec s, F f) {
  f(s);
  return s;
}

// ---------------------------------------------------------------------------
// 1. Path 1: scenarios x op_b x (input, output) types. B layout, size
//    location and accumulate rotate with the combination, so that every
//    scenario meets all three B layouts and both size locations.

struct Scenario {
  std::string name;
  int64_t n, k;
  std::function<std::vector<int64_t>(std::mt19937_64&)> sizes;
  int64_t pad;  // rows of A/D past sum(m_i)
};

std::function<std::vector<int64_t>(std::mt19937_64&)> fixed(std::vector<int64_t> v) {
  return [v](std::mt19937_64&) { return v; };
}

// Host reference cost: sum(m)·n·k below ~1e8 per case.
const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> s = {
      {"g1_m190_k64_n136", 136, 64, fixed({190}), 10},
      {"g8_empty_first_mid_last_k136_n512", 512, 136, fixed({0, 1, 7, 129, 0, 300, 64, 0}), 29},
      {"g32_special_k64_n136", 136, 64, [](std::mt19937_64& rng) { return special_split(rng, 32, 2000); }, 37},
      {"g4_k1024_n64", 64, 1024, fixed({0, 257, 3, 40}), 0},
      {"g3_k8_n2048", 2048, 8, fixed({50, 0, 90}), 10},
      // Groups ending at and around 64- and 128-row tile edges, an odd count
      // of 128-column tiles (n = 264) and a k tail.
      {"g6_tile_edges_k40_n264", 264, 40, fixed({64, 128, 129, 63, 1, 191}), 5},
      // The most groups the one-launch kernel serves, mostly tiny.
      {"g256_small_k72_n72", 72, 72,
       [](std::mt19937_64& rng) {
         std::vector<int64_t> v(256);
         for (auto& x : v) x = static_cast<int64_t>(rng() % 21);
         return v;
       },
       3},
  };
  return s;
}

struct TypePair {
  moegemm_dtype_t ab, d;
};
const TypePair kTypes[] = {{BF, BF}, {BF, F32}, {FP, FP}, {FP, F32}};

struct MatrixParam {
  size_t scenario;
  moegemm_op_t op_b;
  TypePair types;
  BKind b_kind;
  moegemm_memory_t sizes_loc;
  bool accumulate;
};

std::vector<MatrixParam> matrix_params() {
  std::vector<MatrixParam> out;
  for (size_t si = 0; si < scenarios().size(); ++si) {
    int c = 0;
    for (moegemm_op_t op_b : {T, N})
      for (const TypePair& tp : kTypes) {
        out.push_back({si, op_b, tp, kBKinds[(c + si) % 3], (c / 2 + si) % 2 ? DEV : HOST, (c + si) % 2 == 1});
        ++c;
      }
  }
  return out;
}

std::string matrix_name(const ::testing::TestParamInfo<MatrixParam>& i) {
  const MatrixParam& p = i.param;
  return scenarios()[p.scenario].name + "__" + (p.op_b == T ? "fwd_" : "dgrad_") + dt_name(p.types.ab) + "_to_" +
         dt_name(p.types.d) + "_" + b_kind_name(p.b_kind) + (p.sizes_loc == DEV ? "_devsizes" : "_hostsizes") +
         (p.accumulate ? "_acc" : "_over");
}

void PrintTo(const MatrixParam& p, std::ostream* os) { *os << scenarios()[p.scenario].name; }

class RaggedMatrixTest : public RaggedTest, public ::testing::WithParamInterface<MatrixParam> {};

TEST_P(RaggedMatrixTest, MatchesFloat64Reference) {
  const MatrixParam& p = GetParam();
  const Scenario& sc = scenarios()[p.scenario];
  RaggedSpec s;
  s.sizes = sc.sizes(rng_);
  s.T = sum_of(s.sizes) + sc.pad;
  s.n = sc.n;
  s.k = sc.k;
  s.op_b = p.op_b;
  s.ab = p.types.ab;
  s.d = p.types.d;
  s.b_kind = p.b_kind;
  s.sizes_loc = p.sizes_loc;
  s.accumulate = p.accumulate;
  run_and_check(s, MOEGEMM_PATH_UNIFORM_K);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, RaggedMatrixTest, ::testing::ValuesIn(matrix_params()), matrix_name);

// ---------------------------------------------------------------------------
// 2. Device group sizes that need the clamping rule (m_i < 0 counts as 0,
//    offsets capped at T, m_i at T - offset), on path 1.

struct ClampPattern {
  const char* name;
  int64_t T;
  std::vector<int64_t> sizes;
};

const std::vector<ClampPattern>& clamp_patterns() {
  static const std::vector<ClampPattern> p = {
      {"negatives_and_cut_group", 300, {5, -3, 100, 7, -1000000000, 250, 30}},
      {"int64_extremes", 129, {kI64Min, 60, kI64Max, -1, 3, kI64Max}},
      {"sum_past_T", 100, {40, 40, 40, 40}},
      {"all_negative", 50, {-1, -2, -3, kI64Min}},
      {"T0_positive_sizes", 0, {5, -1, 7}},
  };
  return p;
}

using ClampParam = std::tuple<size_t /*pattern*/, moegemm_op_t>;

class RaggedClampTest : public RaggedTest, public ::testing::WithParamInterface<ClampParam> {};

TEST_P(RaggedClampTest, DeviceSizesFollowTheClampingRule) {
  const auto [pi, op_b] = GetParam();
  const ClampPattern& cp = clamp_patterns()[pi];
  const int rot = static_cast<int>(pi) + (op_b == N ? 1 : 0);
  const TypePair tp = kTypes[rot % 4];
  RaggedSpec s = rs(cp.T, rot % 2 ? 136 : 64, 64, cp.sizes, op_b, tp.ab, tp.d);
  s.sizes_loc = DEV;
  s.b_kind = kBKinds[rot % 3];
  s.accumulate = rot % 2 == 0;
  run_and_check(s, MOEGEMM_PATH_UNIFORM_K);
}

INSTANTIATE_TEST_SUITE_P(Patterns, RaggedClampTest,
                         ::testing::Combine(::testing::Range<size_t>(0, clamp_patterns().size()),
                                            ::testing::Values(T, N)),
                         [](const ::testing::TestParamInfo<ClampParam>& i) {
                           return std::string(clamp_patterns()[std::get<0>(i.param)].name) +
                                  (std::get<1>(i.param) == T ? "__fwd" : "__dgrad");
                         });

// Nothing to compute: D is left exactly as it was.
TEST_F(RaggedTest, AllGroupsEmptyLeavesDUntouched) {
  run_and_check(rs(50, 64, 64, {0, 0, 0}, T, BF, BF), MOEGEMM_PATH_UNIFORM_K);
  run_and_check(with(rs(0, 136, 64, {0, 0}, N, FP, F32), [](RaggedSpec& s) { s.accumulate = true; }),
                MOEGEMM_PATH_UNIFORM_K);
}

// Large groups (m_i * n >= 6 Mi) run as cuBLAS GEMMs on side streams beside
// the grouped kernel, which takes the others: both parts, each B layout and
// size location, overwrite and accumulate. With device sizes the grouped
// kernel takes every group; so does the one-launch kernel where AUTO takes it
// with k <= 1024 (overwriting, contiguous B), unless MOEGEMM_UNIFORM_K_TILE
// asks for the CUTLASS kernels. With k = 1032 the one-launch kernel takes
// the groups beside the large ones straight from the ragged call.
enum class Split { kYes, kNo, kUnlessOneLaunchTakesAll };

struct LargeGroupCase {
  std::string name;
  RaggedSpec spec;
  Split split;  // whether the path's reason must announce the large groups
};

// Whether this process lets AUTO's one-launch kernel take a whole short-k call.
bool onelaunch_may_take_all() {
  const char* tile = std::getenv("MOEGEMM_UNIFORM_K_TILE");
  return tile == nullptr || std::string(tile).empty() || std::string(tile) == "auto" ||
         std::string(tile) == "onelaunch" || std::string(tile) == "onelaunch-1x4";
}

const std::vector<LargeGroupCase>& large_group_cases() {
  auto large = [](moegemm_op_t op_b, moegemm_dtype_t d, std::vector<int64_t> sizes, BKind b, bool acc,
                  int64_t k = 16) {
    const int64_t rows = sum_of(sizes) + 5;  // before `sizes` is moved from
    return with(rs(rows, 2048, k, std::move(sizes), op_b, BF, d), [&](RaggedSpec& s) {
      s.b_kind = b;
      s.accumulate = acc;
    });
  };
  using S = Split;
  static const std::vector<LargeGroupCase> c = {
      {"fwd_bf16_one_large_contiguous_b", large(T, BF, {3100, 40, 0, 7}, BKind::Contiguous, false),
       S::kUnlessOneLaunchTakesAll},
      {"dgrad_bf16_to_fp32_one_large_host_list_acc", large(N, F32, {9, 3200, 130}, BKind::HostList, true), S::kYes},
      {"fwd_bf16_to_fp32_all_large", large(T, F32, {3073, 3100}, BKind::Contiguous, false),
       S::kUnlessOneLaunchTakesAll},
      {"dgrad_bf16_large_first_and_last_acc", large(N, BF, {3300, 1, 200, 3090}, BKind::Contiguous, true), S::kYes},
      {"fwd_bf16_one_large_k1032", large(T, BF, {3100, 40, 0, 7}, BKind::Contiguous, false, 1032), S::kYes},
      {"dgrad_bf16_large_in_the_middle_k1032", large(N, BF, {40, 3100, 7, 0, 9}, BKind::Contiguous, false, 1032),
       S::kYes},
      {"fwd_bf16_device_sizes_stay_grouped",
       with(large(T, BF, {3100, 40, 0, 7}, BKind::Contiguous, false), [](RaggedSpec& s) { s.sizes_loc = DEV; }),
       S::kNo},
      {"dgrad_bf16_device_b_list_stays_grouped", large(N, BF, {3100, 40}, BKind::DeviceList, false), S::kNo},
  };
  return c;
}

class RaggedLargeGroupTest : public RaggedTest, public ::testing::WithParamInterface<LargeGroupCase> {};

TEST_P(RaggedLargeGroupTest, MatchesFloat64Reference) {
  const LargeGroupCase& c = GetParam();
  RaggedCall call(c.spec, rng_);
  moegemm_path_t path = MOEGEMM_PATH_CUBLAS;
  const char* reason = nullptr;
  ASSERT_EQ(moegemm_ragged_m_path(&call.problem, &path, &reason), MOEGEMM_STATUS_SUCCESS);
  EXPECT_EQ(path, MOEGEMM_PATH_UNIFORM_K);
  ASSERT_NE(reason, nullptr);
  const bool split = c.split == Split::kYes || (c.split == Split::kUnlessOneLaunchTakesAll && !onelaunch_may_take_all());
  EXPECT_EQ(std::string(reason).find("side streams") != std::string::npos, split) << reason;
  run_and_check(c.spec, MOEGEMM_PATH_UNIFORM_K);
}

void PrintTo(const LargeGroupCase& c, std::ostream* os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(Cases, RaggedLargeGroupTest, ::testing::ValuesIn(large_group_cases()),
                         [](const ::testing::TestParamInfo<LargeGroupCase>& i) { return i.param.name; });

// zero_unused_rows: the rows of D past the groups come back as zeros (they
// start as poison), on every path and size location, with a short, a long,
// no and an all-rows tail.
struct ZeroCase {
  std::string name;
  RaggedSpec spec;
  moegemm_path_t path;
};

std::vector<ZeroCase> zero_cases() {
  auto z = [](RaggedSpec s, moegemm_memory_t loc) {
    s.zero_unused_rows = true;
    s.sizes_loc = loc;
    return s;
  };
  const moegemm_path_t U = MOEGEMM_PATH_UNIFORM_K, C = MOEGEMM_PATH_CUBLAS;
  return {
      {"fwd_bf16_device_sizes_short_tail", z(rs(300, 136, 64, {0, 120, 7, 100}, T, BF, BF), DEV), U},
      {"dgrad_bf16_to_fp32_device_sizes_long_tail", z(rs(5000, 256, 64, {3, 40, 0, 17}, N, BF, F32), DEV), U},
      {"fwd_fp16_device_sizes_all_empty", z(rs(200, 64, 32, {0, 0, 0}, T, FP, FP), DEV), U},
      {"fwd_bf16_device_sizes_no_tail", z(rs(227, 136, 64, {0, 120, 7, 100}, T, BF, BF), DEV), U},
      {"dgrad_bf16_device_sizes_clamped_to_t", z(rs(300, 64, 64, {100, 400, 9}, N, BF, BF), DEV), U},
      {"dgrad_bf16_host_sizes", z(rs(300, 136, 64, {0, 120, 7, 100}, N, BF, BF), HOST), U},
      {"fwd_bf16_host_sizes_large_group_split", z(rs(3300, 2048, 1032, {3100, 40, 0, 7}, T, BF, BF), HOST), U},
      {"fwd_fp16_to_fp32_cublas_device_sizes", z(rs(300, 40, 20, {0, 120, 1, 100}, T, FP, F32), DEV), C},
      {"dgrad_fp16_cublas_host_sizes", z(rs(300, 40, 20, {0, 120, 1, 100}, N, FP, FP), HOST), C},
  };
}

class RaggedZeroUnusedTest : public RaggedTest, public ::testing::WithParamInterface<ZeroCase> {};

TEST_P(RaggedZeroUnusedTest, RowsPastTheGroupsAreZero) { run_and_check(GetParam().spec, GetParam().path); }

void PrintTo(const ZeroCase& c, std::ostream* os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(Cases, RaggedZeroUnusedTest, ::testing::ValuesIn(zero_cases()),
                         [](const ::testing::TestParamInfo<ZeroCase>& i) { return i.param.name; });

// Shapes for which the CUTLASS part of the tile rule (config_select.h) picks
// each tile on this GPU (in the device check's run with
// MOEGEMM_UNIFORM_K_TILE=cutlass; by default the overwriting ones, k = 72,
// take the one-launch kernel), built from its SM count (a host test checks
// the rule itself), n = 2048:
//   - host sizes, sm_count / 8 groups of at most 128 rows: 16 tiles of
//     128x128 per group (more than one wave), 8 of 128x256 (one wave): the
//     unclustered cooperative tile;
//   - device sizes, sm_count / 12 groups: g + g / 2 row tiles estimated, so
//     at most one wave of 128x256 tiles against two of 128x128: the
//     clustered cooperative tile;
//   - device sizes, sm_count / 8 groups: three waves of 128x128 tiles
//     against two of 128x256, and n = 4096 with 3 row tiles: ping-pong with
//     the 1x4 cluster.
// (n not a multiple of 512, as in most other tests: ping-pong with the 1x2 cluster.)
struct TileCase {
  std::string name;
  RaggedSpec spec;
};

int current_sm_count() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    return 0;
  return sms;
}

// `groups` groups of 1 to 128 rows (one row tile each).
std::vector<int64_t> one_row_tile_groups(int groups) {
  std::vector<int64_t> sizes;
  for (int i = 0; i < std::max(groups, 1); ++i) sizes.push_back(1 + (i * 37) % 128);
  return sizes;
}

std::vector<TileCase> tile_cases() {
  const int sms = current_sm_count();
  const std::vector<int64_t> eighth = one_row_tile_groups(sms / 8), twelfth = one_row_tile_groups(sms / 12);
  auto groups = [&](const std::vector<int64_t>& sizes, moegemm_op_t op_b, moegemm_dtype_t d, bool acc,
                    moegemm_memory_t loc) {
    return with(rs(sum_of(sizes) + 3, 2048, 72, sizes, op_b, BF, d), [&](RaggedSpec& s) {
      s.accumulate = acc;
      s.sizes_loc = loc;
    });
  };
  auto fp16 = [](RaggedSpec s) {
    s.ab = FP;
    s.d = FP;
    return s;
  };
  return {
      {"unclustered_fwd_bf16", groups(eighth, T, BF, false, HOST)},
      {"unclustered_dgrad_bf16_to_fp32_acc", groups(eighth, N, F32, true, HOST)},
      {"unclustered_dgrad_fp16", fp16(groups(eighth, N, FP, false, HOST))},
      {"cooperative_fwd_bf16_to_fp32", groups(twelfth, T, F32, false, DEV)},
      {"cooperative_dgrad_bf16_acc_fp32", groups(twelfth, N, F32, true, DEV)},
      {"cooperative_fwd_fp16", fp16(groups(twelfth, T, FP, false, DEV))},
      {"pingpong_1x4_fwd_bf16_to_fp32", groups(eighth, T, F32, false, DEV)},
      {"pingpong_1x4_dgrad_bf16", rs(120, 4096, 40, {5, 70, 0, 33}, N, BF, BF)},
      {"pingpong_1x4_fwd_bf16_to_fp32_acc", with(rs(120, 4096, 40, {5, 70, 0, 33}, T, BF, F32), [](RaggedSpec& s) {
         s.accumulate = true;
       })},
      {"pingpong_1x4_dgrad_fp16", fp16(rs(120, 4096, 40, {5, 70, 0, 33}, N, FP, FP))},
  };
}

class RaggedTileTest : public RaggedTest, public ::testing::WithParamInterface<TileCase> {};

TEST_P(RaggedTileTest, MatchesFloat64Reference) { run_and_check(GetParam().spec, MOEGEMM_PATH_UNIFORM_K); }

void PrintTo(const TileCase& c, std::ostream* os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(Cases, RaggedTileTest, ::testing::ValuesIn(tile_cases()),
                         [](const ::testing::TestParamInfo<TileCase>& i) { return i.param.name; });

// With long k, at least 16 groups and at least 6 waves of 128x256 tiles
// (kUniformKKeepMinGroups, kUniformKCooperativeMinWaves) the grouped kernel
// keeps the large groups (uniform_k_keeps_large_groups, config_select.h)
// unless MOEGEMM_UNIFORM_K_TILE forces a tile: n = 1024, k = 4096, 16 groups
// of 13 row tiles (on an H100), each above the 1024 rows from which the
// long-k rule calls a group large at this n. Such a call is >= 200 GFLOP,
// minutes for a float64 reference on the host: 9 rows per group against it,
// every row of the groups checked as written. Under a forced tile only the
// path's reason is checked (the split itself is RaggedLargeGroupTest's).
TEST_F(RaggedTest, LongKManyWavesKeepsTheLargeGroups) {
  const int sms = current_sm_count();
  ASSERT_GT(sms, 0);
  const int64_t row_tiles = (6 * int64_t{sms} + 3) / 4;  // 6 waves, 4 tiles of 128x256 per row tile
  const int64_t per_group = (row_tiles + 15) / 16;
  std::vector<int64_t> sizes;
  for (int i = 0; i < 16; ++i) sizes.push_back(per_group * 128 - 1 - 3 * i);  // per_group row tiles each
  const char* tile = std::getenv("MOEGEMM_UNIFORM_K_TILE");
  const bool tile_auto =
      tile == nullptr || std::string(tile).empty() || std::string(tile) == "auto" || std::string(tile) == "cutlass";
  const RaggedSpec s = with(rs(sum_of(sizes) + 5, 1024, 4096, sizes, T, BF, BF),
                            [](RaggedSpec& x) { x.reference_rows_per_group = 9; });
  SCOPED_TRACE(describe(s));

  // The path query reads no data: unfilled buffers of the right sizes.
  const DeviceBuffer a(static_cast<size_t>(s.T * s.k) * 2), b(static_cast<size_t>(s.g() * s.n * s.k) * 2),
      d(static_cast<size_t>(s.T * s.n) * 2);
  moegemm_ragged_m_problem_t p = moegemm_ragged_m_problem_default();
  p.num_groups = s.g();
  p.total_rows = s.T;
  p.n = s.n;
  p.k = s.k;
  p.ab_dtype = p.d_dtype = BF;
  p.a = a.get();
  p.op_b = T;
  p.b = b.get();
  p.d = d.get();
  p.group_sizes = s.sizes.data();
  p.group_sizes_location = HOST;
  moegemm_path_t path = MOEGEMM_PATH_CUBLAS;
  const char* reason = nullptr;
  ASSERT_EQ(moegemm_ragged_m_path(&p, &path, &reason), MOEGEMM_STATUS_SUCCESS) << moegemm_last_error();
  EXPECT_EQ(path, MOEGEMM_PATH_UNIFORM_K);
  ASSERT_NE(reason, nullptr);
  EXPECT_EQ(std::string(reason).find("kept in the grouped kernel") != std::string::npos, tile_auto) << reason;
  EXPECT_EQ(std::string(reason).find("side streams") != std::string::npos, !tile_auto) << reason;
  if (!tile_auto) return;
  RaggedCall call(s, rng_);
  const Workspace ws = workspace_for(call.problem);
  const Stream stream;
  enqueue_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check());
}

// The split call (side streams forked from the caller's) can be captured.
TEST_F(RaggedTest, LargeGroupSplitCanBeCaptured) {
  RaggedSpec s = rs(3100 + 40 + 7, 2048, 1032, {3100, 40, 7}, T, BF, BF);  // k > 1024: split
  expect_captured_replays_match(s, MOEGEMM_PATH_UNIFORM_K);
}

// ---------------------------------------------------------------------------
// 3. The cuBLAS path: host sizes, and device sizes outside capture (copied
//    to the host and synchronised; the clamping rule still holds).

struct CublasCase {
  std::string name;
  RaggedSpec spec;
};

const std::vector<CublasCase>& cublas_cases() {
  static const std::vector<CublasCase> c = {
      {"k12_fwd_bf16_host_sizes", rs(300, 64, 12, {0, 100, 1, 150}, T, BF, BF)},
      {"k20_dgrad_fp16_to_fp32_host_sizes_acc",
       with(rs(200, 40, 20, {70, 0, 129}, N, FP, F32), [](RaggedSpec& s) {
         s.accumulate = true;
         s.b_kind = BKind::HostList;
       })},
      {"n13_fwd_bf16_to_fp32_host_sizes", rs(100, 13, 64, {30, 30, 30}, T, BF, F32)},
      {"fp32_inputs_fwd_host_sizes", rs(150, 64, 64, {50, 0, 99}, T, F32, F32)},
      {"fp32_inputs_dgrad_device_sizes_clamped",
       with(rs(120, 24, 40, {-5, 100, 50, 30}, N, F32, F32), [](RaggedSpec& s) {
         s.sizes_loc = DEV;
         s.b_kind = BKind::HostList;
       })},
      {"k12_fwd_bf16_device_sizes", with(rs(300, 64, 12, {10, 200, 0, 60}, T, BF, BF), [](RaggedSpec& s) { s.sizes_loc = DEV; })},
      {"k12_dgrad_bf16_device_sizes_clamped_acc",
       with(rs(200, 32, 12, {150, -1, 100, 7, kI64Max}, N, BF, BF), [](RaggedSpec& s) {
         s.sizes_loc = DEV;
         s.accumulate = true;
       })},
      {"k12_fp16_host_b_list", with(rs(90, 32, 12, {30, 0, 59}, T, FP, FP), [](RaggedSpec& s) { s.b_kind = BKind::HostList; })},
      // Path-1 shape but A 2 bytes off 16-byte alignment.
      {"misaligned_a_falls_back", with(rs(200, 64, 64, {50, 0, 120}, T, BF, BF), [](RaggedSpec& s) { s.shift_a = 2; })},
  };
  return c;
}

class RaggedCublasTest : public RaggedTest, public ::testing::WithParamInterface<CublasCase> {};

TEST_P(RaggedCublasTest, MatchesFloat64Reference) { run_and_check(GetParam().spec, MOEGEMM_PATH_CUBLAS); }

void PrintTo(const CublasCase& c, std::ostream* os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(Cases, RaggedCublasTest, ::testing::ValuesIn(cublas_cases()),
                         [](const ::testing::TestParamInfo<CublasCase>& i) { return i.param.name; });

// ---------------------------------------------------------------------------
// 4. Stream capture

class RaggedCaptureTest : public RaggedTest, public ::testing::WithParamInterface<moegemm_op_t> {};

// The cuBLAS path with device sizes must read them on the host: while the
// stream is captured it fails with MOEGEMM_STATUS_INVALID_ARGUMENT, leaves
// the capture usable, and nothing it could have enqueued writes D.
TEST_P(RaggedCaptureTest, CublasPathWithDeviceSizesFailsInsideCapture) {
  RaggedSpec s = rs(200, 64, 12, {60, 0, 100}, GetParam(), BF, BF);
  s.sizes_loc = DEV;
  SCOPED_TRACE(describe(s));
  RaggedCall call(s, rng_);
  ASSERT_TRUE(ragged_path_is(call.problem, MOEGEMM_PATH_CUBLAS));
  const Workspace ws = ragged_workspace(call.problem);
  const Stream stream;
  Captured cap = capture_call(call.problem, ws, stream);
  EXPECT_EQ(cap.status, MOEGEMM_STATUS_INVALID_ARGUMENT) << moegemm_status_string(cap.status) << ": " << cap.message;
  EXPECT_FALSE(cap.message.empty()) << "moegemm_last_error() is empty after the failed call";
  CUDA_CHECK(cap.end);  // the library must not have invalidated the capture
  CUDA_CHECK(cudaGetLastError());
  if (cap.graph != nullptr) {
    const GraphExecPtr exec = instantiate(cap.graph);
    replay(exec, stream.get());
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(call.d_mem.unchanged(call.d_mem.pull(), "D (with its guards) after the failed captured call"));

  // Outside capture the same call works.
  ragged_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check());
}

INSTANTIATE_TEST_SUITE_P(OpB, RaggedCaptureTest, ::testing::Values(T, N),
                         [](const ::testing::TestParamInfo<moegemm_op_t>& i) {
                           return std::string(i.param == T ? "fwd" : "dgrad");
                         });

// With host sizes the cuBLAS path needs no synchronisation and can be captured.
TEST_F(RaggedTest, CublasPathWithHostSizesCanBeCaptured) {
  RaggedSpec s = rs(250, 40, 20, {0, 120, 1, 100}, T, FP, F32);
  expect_captured_replays_match(s, MOEGEMM_PATH_CUBLAS);
}

// Path 1 with device sizes: captured once, each replay reads the sizes of
// its time (same T): skewed, with empty groups and unused rows, and sizes
// that need clamping.
struct GraphParam {
  const char* name;
  moegemm_op_t op_b;
  TypePair types;
  BKind b_kind;
  bool accumulate;
  bool zero_unused_rows = false;
};

class RaggedGraphTest : public RaggedTest, public ::testing::WithParamInterface<GraphParam> {};

TEST_P(RaggedGraphTest, ReplaysReadTheCurrentDeviceSizes) {
  const GraphParam& p = GetParam();
  const int g = 16;
  const int64_t T_rows = 1500;
  const std::vector<std::vector<int64_t>> splits = {
      skewed_split(rng_, g, T_rows),
      special_split(rng_, g, T_rows - 300),  // empty groups, rows [1200, 1500) unused
      messy_device_split(rng_, g, T_rows),   // needs clamping
  };
  RaggedSpec s = rs(T_rows, 136, 64, splits[0], p.op_b, p.types.ab, p.types.d);
  s.sizes_loc = DEV;
  s.b_kind = p.b_kind;
  s.accumulate = p.accumulate;
  s.zero_unused_rows = p.zero_unused_rows;
  SCOPED_TRACE(describe(s));
  RaggedCall call(s, rng_);
  ASSERT_TRUE(ragged_path_is(call.problem, expected_path(MOEGEMM_PATH_UNIFORM_K)));
  if (expected_path(MOEGEMM_PATH_UNIFORM_K) != MOEGEMM_PATH_UNIFORM_K)
    GTEST_SKIP() << "MOEGEMM_USE_CUTLASS=0: device sizes on the cuBLAS path cannot be captured";
  const Workspace ws = ragged_workspace(call.problem);
  const Stream stream;
  Captured cap = capture_call(call.problem, ws, stream);
  ASSERT_TRUE(captured_cleanly(cap));
  const GraphExecPtr exec = instantiate(cap.graph);
  for (size_t r = 0; r < splits.size(); ++r) {
    SCOPED_TRACE("replay " + std::to_string(r) + ", device sizes " + format_list(splits[r]));
    call.set_device_sizes(splits[r]);
    call.reset();
    replay(exec, stream.get());
    EXPECT_TRUE(call.check());
  }
}

void PrintTo(const GraphParam& p, std::ostream* os) { *os << p.name; }

INSTANTIATE_TEST_SUITE_P(Cases, RaggedGraphTest,
                         ::testing::Values(GraphParam{"fwd_bf16_devlist", T, {BF, BF}, BKind::DeviceList, false},
                                           GraphParam{"dgrad_fp16_to_fp32_contig_acc", N, {FP, F32}, BKind::Contiguous, true},
                                           GraphParam{"fwd_bf16_to_fp32_hostlist_acc", T, {BF, F32}, BKind::HostList, true},
                                           GraphParam{"dgrad_fp16_devlist", N, {FP, FP}, BKind::DeviceList, false},
                                           GraphParam{"fwd_bf16_devlist_zero_unused", T, {BF, BF}, BKind::DeviceList,
                                                      false, true},
                                           GraphParam{"dgrad_bf16_to_fp32_contig_zero_unused", N, {BF, F32},
                                                      BKind::Contiguous, false, true}),
                         [](const ::testing::TestParamInfo<GraphParam>& i) { return std::string(i.param.name); });

// ---------------------------------------------------------------------------
// 5. Determinism: the same call twice (second time on another stream).

TEST_F(RaggedTest, RepeatedRunsAreBitIdentical) {
  const std::vector<RaggedSpec> specs = {
      with(rs(700, 512, 136, {0, 1, 7, 129, 0, 300, 64, 0}, T, BF, BF), [](RaggedSpec& s) { s.sizes_loc = DEV; }),
      with(rs(400, 136, 1024, {0, 257, 3, 40}, N, FP, F32), [](RaggedSpec& s) {
        s.accumulate = true;
        s.b_kind = BKind::HostList;
      }),
  };
  for (const RaggedSpec& s : specs) {
    SCOPED_TRACE(describe(s));
    RaggedCall call(s, rng_);
    ASSERT_TRUE(ragged_path_is(call.problem, expected_path(MOEGEMM_PATH_UNIFORM_K)));
    const Workspace ws = ragged_workspace(call.problem);
    const Stream s1, s2;
    ragged_sync(call.problem, ws, s1.get());
    const Bytes first = call.d_mem.pull();
    EXPECT_TRUE(call.check(first));
    call.reset();
    ragged_sync(call.problem, ws, s2.get());
    EXPECT_TRUE(call.d_mem.pull() == first) << "second run differs from the first";
  }
}

// ---------------------------------------------------------------------------
// 6. Failed calls write nothing.

struct RaggedBad {
  moegemm_ragged_m_problem_t p;
  void* ws;
  size_t ws_bytes;
  const RaggedCall* call;
  std::vector<int64_t> sizes;
  std::vector<const void*> ptrs;
  DeviceBuffer extra;
  bool not_applicable = false;
};

enum class RaggedBase { Uniform, Cublas };

struct RaggedErrorCase {
  const char* name;
  moegemm_status_t status;
  RaggedBase base;
  bool problem_error;
  void (*mutate)(RaggedBad&);
};

RaggedSpec ragged_base(RaggedBase b) {
  return b == RaggedBase::Uniform ? rs(200, 64, 64, {50, 0, 120}, T, BF, BF) : rs(200, 64, 12, {50, 0, 120}, T, BF, BF);
}

void set_sizes(RaggedBad& b, std::vector<int64_t> v) {
  b.sizes = std::move(v);
  b.p.group_sizes = b.sizes.data();
}

void ragged_too_small(RaggedBad& b) {
  if (b.ws_bytes == 0) b.not_applicable = true;
  else b.ws_bytes -= 1;
}

void device_b_list_with_null_entry(RaggedBad& b) {
  const size_t one = static_cast<size_t>(64 * 12) * 2;
  for (int i = 0; i < 3; ++i) b.ptrs.push_back(static_cast<const char*>(b.p.b) + i * one);
  b.ptrs[2] = nullptr;
  b.extra = DeviceBuffer(b.ptrs.size() * sizeof(void*));
  b.extra.upload(b.ptrs.data(), b.ptrs.size() * sizeof(void*));
  b.p.b = nullptr;
  b.p.b_ptrs = reinterpret_cast<const void* const*>(b.extra.get());
  b.p.b_ptrs_location = MOEGEMM_MEMORY_DEVICE;
}

const std::vector<RaggedErrorCase>& ragged_error_cases() {
  const auto INV = MOEGEMM_STATUS_INVALID_ARGUMENT;
  const auto U = RaggedBase::Uniform, C = RaggedBase::Cublas;
  static const std::vector<RaggedErrorCase> c = {
      {"workspace_too_small_uniform_k", MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, U, false, ragged_too_small},
      {"workspace_too_small_cublas", MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, C, false, ragged_too_small},
      {"workspace_misaligned", MOEGEMM_STATUS_MISALIGNED, C, false,
       [](RaggedBad& b) {
         b.extra = DeviceBuffer(b.ws_bytes + 256);
         b.ws = b.extra.bytes_ptr() + 128;
       }},
      {"workspace_null", INV, C, false, [](RaggedBad& b) { b.ws = nullptr; }},
      {"host_size_negative", INV, U, true, [](RaggedBad& b) { set_sizes(b, {50, -1, 120}); }},
      {"host_sizes_past_T", INV, U, true, [](RaggedBad& b) { set_sizes(b, {50, 0, 151}); }},
      {"host_sizes_sum_overflows_int64", INV, C, true, [](RaggedBad& b) { set_sizes(b, {50, kI64Max, 120}); }},
      {"device_sizes_misaligned", MOEGEMM_STATUS_MISALIGNED, U, true,
       [](RaggedBad& b) {
         b.extra = DeviceBuffer(64);
         b.extra.upload(b.call->spec.sizes.data(), 3 * sizeof(int64_t), 4);
         b.p.group_sizes = reinterpret_cast<const int64_t*>(b.extra.bytes_ptr() + 4);
         b.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
       }},
      {"group_sizes_null", INV, U, true, [](RaggedBad& b) { b.p.group_sizes = nullptr; }},
      {"b_and_b_ptrs", INV, U, true,
       [](RaggedBad& b) {
         const size_t one = static_cast<size_t>(64 * 64) * 2;
         for (int i = 0; i < 3; ++i) b.ptrs.push_back(static_cast<const char*>(b.p.b) + i * one);
         b.p.b_ptrs = b.ptrs.data();
         b.p.b_ptrs_location = MOEGEMM_MEMORY_HOST;
       }},
      {"neither_b_nor_b_ptrs", INV, U, true, [](RaggedBad& b) { b.p.b = nullptr; }},
      {"k_zero", INV, U, true, [](RaggedBad& b) { b.p.k = 0; }},
      {"n_zero", INV, C, true, [](RaggedBad& b) { b.p.n = 0; }},
      {"negative_total_rows", INV, U, true, [](RaggedBad& b) { b.p.total_rows = -1; }},
      {"zero_groups", INV, U, true, [](RaggedBad& b) { b.p.num_groups = 0; }},
      {"d_bf16_with_fp16_inputs", INV, U, true, [](RaggedBad& b) { b.p.ab_dtype = MOEGEMM_DTYPE_FP16; }},
      {"unknown_op_b", INV, U, true, [](RaggedBad& b) { set_raw_enum(&b.p.op_b, 2); }},
      {"a_null", INV, U, true, [](RaggedBad& b) { b.p.a = nullptr; }},
      {"d_null", INV, C, true, [](RaggedBad& b) { b.p.d = nullptr; }},
      {"a_not_element_aligned", MOEGEMM_STATUS_MISALIGNED, U, true,
       [](RaggedBad& b) { b.p.a = static_cast<const char*>(b.p.a) + 1; }},
      // Only the cuBLAS path (k = 12) reads a device B list on the host: a
      // NULL entry for a group with rows (group 2: 120) is refused there.
      {"device_b_ptrs_null_entry_cublas", INV, C, false, device_b_list_with_null_entry},
      // zero_unused_rows (rows [170, 200) past the groups): a flag for
      // overwriting calls; a call refused late (the device B list read on the
      // host) still writes no zeros.
      {"zero_unused_rows_not_a_flag", INV, U, true, [](RaggedBad& b) { b.p.zero_unused_rows = 2; }},
      {"zero_unused_rows_with_accumulate", INV, U, true,
       [](RaggedBad& b) {
         b.p.zero_unused_rows = 1;
         b.p.accumulate = 1;
       }},
      {"zero_unused_rows_device_b_ptrs_null_entry_cublas", INV, C, false,
       [](RaggedBad& b) {
         device_b_list_with_null_entry(b);
         b.p.zero_unused_rows = 1;
       }},
      {"zero_unused_rows_host_sizes_past_T", INV, U, true,
       [](RaggedBad& b) {
         set_sizes(b, {50, 0, 151});
         b.p.zero_unused_rows = 1;
       }},
  };
  return c;
}

class RaggedErrorTest : public RaggedTest, public ::testing::WithParamInterface<RaggedErrorCase> {};

TEST_P(RaggedErrorTest, FailsAndWritesNothing) {
  const RaggedErrorCase& ec = GetParam();
  const RaggedSpec s = ragged_base(ec.base);
  SCOPED_TRACE(describe(s));
  RaggedCall call(s, rng_);  // D poisoned with NaN
  ASSERT_TRUE(ragged_path_is(call.problem, expected_path(ec.base == RaggedBase::Uniform ? MOEGEMM_PATH_UNIFORM_K
                                                                                        : MOEGEMM_PATH_CUBLAS)));
  const Workspace ws = ragged_workspace(call.problem);
  const Stream stream;
  RaggedBad bad{call.problem, ws.get(), ws.bytes, &call, {}, {}, {}, false};
  ec.mutate(bad);
  if (bad.not_applicable) GTEST_SKIP() << "this path needs no workspace: nothing can be too small";

  expect_call_fails(bad.p, bad.ws, bad.ws_bytes, ec.problem_error, ec.status, stream, call);

  ragged_sync(call.problem, ws, stream.get());
  EXPECT_TRUE(call.check()) << "the valid call after the failed one";
}

void PrintTo(const RaggedErrorCase& e, std::ostream* os) { *os << e.name; }

INSTANTIATE_TEST_SUITE_P(Cases, RaggedErrorTest, ::testing::ValuesIn(ragged_error_cases()),
                         [](const ::testing::TestParamInfo<RaggedErrorCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace moegemm_test
