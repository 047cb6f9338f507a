// moegemm_cublas_forced_tests: MOEGEMM_USE_CUTLASS=0 ("always take the
// cuBLAS path") is read once per process, so it gets an executable of its
// own; ctest runs it with the variable set (tests/CMakeLists.txt). Calls that
// would otherwise take the uniform-K or the variable-K path must report and
// take the cuBLAS path, naming the variable as the reason, and still compute
// the right thing (float64 reference, guards, inputs unchanged).
//
// Every test is SKIPPED without an SM90 device (GpuTest): elsewhere the fast
// paths are never taken, so forcing them off proves nothing.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "gemm_harness.h"
#include "gemm_reference.h"
#include "gpu_test_util.h"
#include "moegemm/moegemm.h"

namespace moegemm_test {
namespace {

class CublasForcedTest : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(cutlass_disabled_by_env())
        << "run through ctest, or with MOEGEMM_USE_CUTLASS=0 in the environment (got "
        << (std::getenv("MOEGEMM_USE_CUTLASS") ? std::getenv("MOEGEMM_USE_CUTLASS") : "unset") << ")";
  }

  // Path 3, with a reason that names the variable.
  static ::testing::AssertionResult forced(moegemm_status_t st, moegemm_path_t path, const char* reason) {
    ::testing::AssertionResult r = path_result(st, path, reason, MOEGEMM_PATH_CUBLAS);
    if (!r) return r;
    if (std::string(reason).find("MOEGEMM_USE_CUTLASS") == std::string::npos)
      return ::testing::AssertionFailure() << "reason \"" << reason << "\" does not name MOEGEMM_USE_CUTLASS";
    return r;
  }

  // The call made from `s` (a ListCall or a RaggedCall) reports the forced
  // path and computes the right thing.
  template <class Call, class Spec>
  void run_forced(const Spec& s) {
    SCOPED_TRACE(describe(s));
    Call call(s, rng_);
    moegemm_path_t path = MOEGEMM_PATH_UNIFORM_K;
    const char* reason = nullptr;
    const moegemm_status_t st = query_path(call.problem, &path, &reason);
    ASSERT_TRUE(forced(st, path, reason));
    const Workspace ws = workspace_for(call.problem);
    const Stream stream;
    enqueue_sync(call.problem, ws, stream.get());
    EXPECT_TRUE(call.check());
  }
};

ListSpec list_spec(moegemm_op_t op_a, moegemm_op_t op_b, moegemm_dtype_t ab, moegemm_dtype_t d,
                   std::vector<int64_t> m, std::vector<int64_t> n, std::vector<int64_t> k, bool packed, bool acc) {
  ListSpec s;
  s.op_a = op_a;
  s.op_b = op_b;
  s.ab = ab;
  s.d = d;
  s.m = std::move(m);
  s.n = std::move(n);
  s.k = std::move(k);
  s.layout = packed ? ListLayout::Packed : ListLayout::Separate;
  s.accumulate = acc;
  return s;
}

// Forward layout, one k (multiple of 8), n % 8 == 0, BF16/FP16: path 1 otherwise.
TEST_F(CublasForcedTest, UniformKListTakesCublas) {
  const std::vector<ListSpec> specs = {
      list_spec(MOEGEMM_OP_N, MOEGEMM_OP_T, MOEGEMM_DTYPE_BF16, MOEGEMM_DTYPE_BF16, {0, 77, 1, 130, 0, 64},
                same(6, 136), same(6, 64), false, false),
      list_spec(MOEGEMM_OP_N, MOEGEMM_OP_N, MOEGEMM_DTYPE_FP16, MOEGEMM_DTYPE_FP32, {50, 0, 129}, same(3, 64),
                same(3, 136), false, true),
  };
  for (const ListSpec& s : specs) ASSERT_NO_FATAL_FAILURE(run_forced<ListCall>(s));
}

// Wgrad layout over one token buffer, BF16: path 2 otherwise.
TEST_F(CublasForcedTest, VariableKListTakesCublas) {
  const ListSpec s = list_spec(MOEGEMM_OP_T, MOEGEMM_OP_N, MOEGEMM_DTYPE_BF16, MOEGEMM_DTYPE_FP32, same(4, 64),
                               same(4, 136), {0, 100, 7, 60}, true, false);
  run_forced<ListCall>(s);
}

// Ragged-M forward and dgrad with path-1 shapes, host sizes and device sizes
// (the latter copied and synchronised outside capture, clamped).
TEST_F(CublasForcedTest, RaggedMTakesCublas) {
  std::vector<RaggedSpec> specs(3);
  specs[0].T = 530;
  specs[0].n = 136;
  specs[0].k = 64;
  specs[0].sizes = {0, 1, 7, 129, 0, 300, 64, 0};
  specs[0].op_b = MOEGEMM_OP_T;
  specs[1].T = 310;
  specs[1].n = 64;
  specs[1].k = 136;
  specs[1].sizes = {0, 257, 3, 40};
  specs[1].op_b = MOEGEMM_OP_N;
  specs[1].ab = MOEGEMM_DTYPE_FP16;
  specs[1].d = MOEGEMM_DTYPE_FP32;
  specs[1].accumulate = true;
  specs[1].b_kind = BKind::HostList;
  specs[2].T = 300;
  specs[2].n = 64;
  specs[2].k = 64;
  specs[2].sizes = {5, -3, 100, 7, -1000000000, 250, 30};  // needs clamping
  specs[2].sizes_loc = MOEGEMM_MEMORY_DEVICE;
  specs[2].op_b = MOEGEMM_OP_T;
  for (const RaggedSpec& s : specs) ASSERT_NO_FATAL_FAILURE(run_forced<RaggedCall>(s));
}

}  // namespace
}  // namespace moegemm_test
