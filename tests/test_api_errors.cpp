// The public C API's error paths and helpers. Validation runs before any
// device access, so everything here passes on a machine without a GPU; where
// the outcome depends on the device, only what holds on both is asserted.
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "host_test_util.h"
#include "moegemm/moegemm.h"
#include "moegemm/moegemm.hpp"

namespace moegemm_test {
namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

// ---------------------------------------------------------------------------
// moegemm_wgrad() on invalid problems: status + moegemm_last_error()

struct ApiCase {
  const char* name;
  moegemm_status_t status;
  const char* message_names;  // expected in moegemm_last_error()
  void (*mutate)(ValidProblem&);
};

void PrintTo(const ApiCase& c, std::ostream* os) { *os << c.name; }

const std::vector<ApiCase>& api_cases() {
  const auto INV = MOEGEMM_STATUS_INVALID_ARGUMENT, MIS = MOEGEMM_STATUS_MISALIGNED;
  static const std::vector<ApiCase> cases = {
      {"zero_groups", INV, "num_groups", [](ValidProblem& v) { v.p.num_groups = 0; }},
      {"m_zero", INV, "m:", [](ValidProblem& v) { v.p.m = 0; }},
      {"n_too_large", INV, "n:", [](ValidProblem& v) { v.p.n = int64_t{1} << 31; }},
      {"m_not_multiple_of_8", MIS, "m:", [](ValidProblem& v) { v.p.m = 60; }},
      {"n_not_multiple_of_8", MIS, "n:", [](ValidProblem& v) { v.p.n = 132; }},
      {"total_tokens_negative", INV, "total_tokens", [](ValidProblem& v) { v.p.total_tokens = -1; }},
      {"unknown_dtype", INV, "out_dtype", [](ValidProblem& v) { v.p.out_dtype = static_cast<moegemm_dtype_t>(3); }},
      {"unknown_config", INV, "config",
       [](ValidProblem& v) { v.p.config = static_cast<moegemm_wgrad_config_t>(MOEGEMM_WGRAD_CONFIG_COUNT_); }},
      {"unknown_sizes_location", INV, "group_sizes_location",
       [](ValidProblem& v) { v.p.group_sizes_location = static_cast<moegemm_memory_t>(9); }},
      {"x_null", INV, "x:", [](ValidProblem& v) { v.p.x = nullptr; }},
      {"dy_misaligned", MIS, "dy:", [](ValidProblem& v) { v.p.dy = plus_bytes(v.dy, 2); }},
      {"group_sizes_null", INV, "group_sizes", [](ValidProblem& v) { v.p.group_sizes = nullptr; }},
      {"host_size_negative", INV, "group_sizes[2]", [](ValidProblem& v) { v.set_sizes({50, 0, -4, 30}); }},
      {"host_sizes_past_T", INV, "group_sizes", [](ValidProblem& v) { v.set_sizes({50, 0, 151, 30}); }},
      {"host_sizes_sum_overflows_int64", INV, "group_sizes",
       [](ValidProblem& v) { v.set_sizes({50, kI64Max, 120, 30}); }},
      {"host_sizes_over_max_groups", INV, "group_sizes",
       [](ValidProblem& v) { v.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS + 1, 0)); }},
      {"out_and_out_ptrs", INV, "out/out_ptrs",
       [](ValidProblem& v) {
         v.use_out_list(MOEGEMM_MEMORY_HOST);
         v.p.out = v.out;
       }},
      {"no_output", INV, "out/out_ptrs", [](ValidProblem& v) { v.p.out = nullptr; }},
      {"out_misaligned", MIS, "out:", [](ValidProblem& v) { v.p.out = v.out + 8; }},
      {"out_ptrs_location_unknown", INV, "out_ptrs_location",
       [](ValidProblem& v) { v.use_out_list(static_cast<moegemm_memory_t>(7)); }},
      {"host_out_ptr_null", INV, "out_ptrs[1]",
       [](ValidProblem& v) {
         v.use_out_list(MOEGEMM_MEMORY_HOST);
         v.ptrs[1] = nullptr;
       }},
      {"host_out_ptr_misaligned", MIS, "out_ptrs[3]",
       [](ValidProblem& v) {
         v.use_out_list(MOEGEMM_MEMORY_HOST);
         v.ptrs[3] = static_cast<unsigned char*>(v.ptrs[3]) + 4;
       }},
      {"host_out_ptrs_over_max_groups", INV, "out_ptrs",
       [](ValidProblem& v) {
         v.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS + 1, 0));
         v.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
         v.use_out_list(MOEGEMM_MEMORY_HOST);
       }},
      {"device_out_ptrs_misaligned", MIS, "out_ptrs",
       [](ValidProblem& v) {
         v.use_out_list(MOEGEMM_MEMORY_DEVICE);
         v.p.out_ptrs = reinterpret_cast<void* const*>(plus_bytes(v.ptrs.data(), 4));
       }},
  };
  return cases;
}

class ApiErrorTest : public ::testing::TestWithParam<ApiCase> {};

TEST_P(ApiErrorTest, ReportsStatusAndNamesTheArgument) {
  const ApiCase& c = GetParam();
  ValidProblem v;
  c.mutate(v);
  // No workspace either: argument errors are reported before anything else.
  const moegemm_status_t st = moegemm_wgrad(&v.p, nullptr, 0, nullptr);
  const std::string message = moegemm_last_error();
  EXPECT_EQ(st, c.status) << moegemm_status_string(st) << ": " << message;
  EXPECT_TRUE(names(message, c.message_names));
}

INSTANTIATE_TEST_SUITE_P(Cases, ApiErrorTest, ::testing::ValuesIn(api_cases()),
                         [](const ::testing::TestParamInfo<ApiCase>& i) { return std::string(i.param.name); });

TEST(ApiErrors, NullProblem) {
  EXPECT_EQ(moegemm_wgrad(nullptr, nullptr, 0, nullptr), MOEGEMM_STATUS_INVALID_ARGUMENT);
  EXPECT_TRUE(names(moegemm_last_error(), "problem"));
}

// A valid problem gets past validation: without a GPU it stops at the device
// check; with one, at the workspace check (no workspace is given), so no
// kernel is ever launched on these host pointers.
TEST(ApiErrors, ValidProblemStopsAtDeviceOrWorkspace) {
  ValidProblem v;
  const bool gpu = moegemm_device_supported() != 0;
  for (bool host_list : {false, true}) {
    if (host_list) v.use_out_list(MOEGEMM_MEMORY_HOST);
    const moegemm_status_t st = moegemm_wgrad(&v.p, nullptr, 0, nullptr);
    const std::string message = moegemm_last_error();
    EXPECT_NE(st, MOEGEMM_STATUS_SUCCESS);
    EXPECT_EQ(st, gpu ? MOEGEMM_STATUS_WORKSPACE_TOO_SMALL : MOEGEMM_STATUS_UNSUPPORTED_DEVICE)
        << moegemm_status_string(st) << ": " << message;
    EXPECT_FALSE(message.empty());
    if (gpu) {
      EXPECT_TRUE(names(message, "workspace_bytes"));
    }
  }
}

TEST(ApiErrors, WorkspaceSizeQuery) {
  ValidProblem v;
  size_t bytes = 12345;
  EXPECT_EQ(moegemm_wgrad_workspace_size(&v.p, nullptr), MOEGEMM_STATUS_INVALID_ARGUMENT);
  EXPECT_TRUE(names(moegemm_last_error(), "workspace_bytes"));
  EXPECT_EQ(moegemm_wgrad_workspace_size(nullptr, &bytes), MOEGEMM_STATUS_INVALID_ARGUMENT);
  EXPECT_TRUE(names(moegemm_last_error(), "problem"));
  v.p.num_groups = 0;
  EXPECT_EQ(moegemm_wgrad_workspace_size(&v.p, &bytes), MOEGEMM_STATUS_INVALID_ARGUMENT);
  EXPECT_TRUE(names(moegemm_last_error(), "num_groups"));
  EXPECT_EQ(bytes, 12345u) << "written on failure";

  v.p.num_groups = 4;
  const moegemm_status_t st = moegemm_wgrad_workspace_size(&v.p, &bytes);
  if (moegemm_device_supported() != 0) {
    EXPECT_EQ(st, MOEGEMM_STATUS_SUCCESS) << moegemm_last_error();
    EXPECT_GT(bytes, 0u);
  } else {
    EXPECT_EQ(st, MOEGEMM_STATUS_UNSUPPORTED_DEVICE);
    EXPECT_FALSE(std::string(moegemm_last_error()).empty());
    EXPECT_EQ(bytes, 12345u) << "written on failure";
  }
}

TEST(ApiErrors, DeviceSupportedIsABoolean) {
  const int s = moegemm_device_supported();
  EXPECT_TRUE(s == 0 || s == 1) << s;
  EXPECT_EQ(moegemm_device_supported(), s) << "not stable across calls";
}

// ---------------------------------------------------------------------------
// moegemm_last_error()

TEST(ApiErrors, LastErrorNamesTheLatestFailure) {
  ValidProblem v;
  v.p.num_groups = 0;
  EXPECT_NE(moegemm_wgrad(&v.p, nullptr, 0, nullptr), MOEGEMM_STATUS_SUCCESS);
  EXPECT_TRUE(names(moegemm_last_error(), "num_groups"));
  v.p.num_groups = 4;
  v.p.m = 12;
  EXPECT_NE(moegemm_wgrad(&v.p, nullptr, 0, nullptr), MOEGEMM_STATUS_SUCCESS);
  EXPECT_TRUE(names(moegemm_last_error(), "m:"));
}

TEST(ApiErrors, LastErrorIsPerThread) {
  ValidProblem here;
  here.p.num_groups = 0;
  ASSERT_EQ(moegemm_wgrad(&here.p, nullptr, 0, nullptr), MOEGEMM_STATUS_INVALID_ARGUMENT);
  std::string other_message;
  std::thread other([&other_message] {
    ValidProblem there;
    there.p.out_dtype = static_cast<moegemm_dtype_t>(5);
    moegemm_wgrad(&there.p, nullptr, 0, nullptr);
    other_message = moegemm_last_error();
  });
  other.join();
  EXPECT_TRUE(names(other_message, "out_dtype"));
  EXPECT_TRUE(names(moegemm_last_error(), "num_groups")) << "overwritten by another thread";
}

// ---------------------------------------------------------------------------
// Names and defaults

TEST(ApiHelpers, StatusStrings) {
  const std::vector<std::pair<moegemm_status_t, const char*>> all = {
      {MOEGEMM_STATUS_SUCCESS, "MOEGEMM_STATUS_SUCCESS"},
      {MOEGEMM_STATUS_INVALID_ARGUMENT, "MOEGEMM_STATUS_INVALID_ARGUMENT"},
      {MOEGEMM_STATUS_MISALIGNED, "MOEGEMM_STATUS_MISALIGNED"},
      {MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, "MOEGEMM_STATUS_WORKSPACE_TOO_SMALL"},
      {MOEGEMM_STATUS_UNSUPPORTED_DEVICE, "MOEGEMM_STATUS_UNSUPPORTED_DEVICE"},
      {MOEGEMM_STATUS_CUDA_ERROR, "MOEGEMM_STATUS_CUDA_ERROR"},
      {MOEGEMM_STATUS_INTERNAL_ERROR, "MOEGEMM_STATUS_INTERNAL_ERROR"},
  };
  for (const auto& [status, name] : all) EXPECT_STREQ(moegemm_status_string(status), name);
  EXPECT_STREQ(moegemm_status_string(static_cast<moegemm_status_t>(99)), "MOEGEMM_STATUS_UNKNOWN");
  EXPECT_STREQ(moegemm_status_string(static_cast<moegemm_status_t>(-1)), "MOEGEMM_STATUS_UNKNOWN");
}

TEST(ApiHelpers, ConfigNames) {
  EXPECT_STREQ(moegemm_wgrad_config_name(MOEGEMM_WGRAD_CONFIG_AUTO), "auto");
  const std::string pp = moegemm_wgrad_config_name(MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1);
  const std::string co = moegemm_wgrad_config_name(MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1);
  EXPECT_TRUE(names(pp, "pingpong"));
  EXPECT_TRUE(names(pp, "128x128x64"));
  EXPECT_TRUE(names(co, "cooperative"));
  EXPECT_TRUE(names(co, "256x128x64"));
  std::set<std::string> distinct;
  for (int c = 0; c < MOEGEMM_WGRAD_CONFIG_COUNT_; ++c)
    distinct.insert(moegemm_wgrad_config_name(static_cast<moegemm_wgrad_config_t>(c)));
  EXPECT_EQ(distinct.size(), static_cast<size_t>(MOEGEMM_WGRAD_CONFIG_COUNT_));
  EXPECT_STREQ(moegemm_wgrad_config_name(MOEGEMM_WGRAD_CONFIG_COUNT_), "unknown");
  EXPECT_STREQ(moegemm_wgrad_config_name(static_cast<moegemm_wgrad_config_t>(-1)), "unknown");
}

TEST(ApiHelpers, ProblemDefault) {
  const moegemm_wgrad_problem_t p = moegemm_wgrad_problem_default();
  EXPECT_EQ(p.num_groups, 0);
  EXPECT_EQ(p.m, 0);
  EXPECT_EQ(p.n, 0);
  EXPECT_EQ(p.total_tokens, 0);
  EXPECT_EQ(p.x, nullptr);
  EXPECT_EQ(p.dy, nullptr);
  EXPECT_EQ(p.group_sizes, nullptr);
  EXPECT_EQ(p.group_sizes_location, MOEGEMM_MEMORY_HOST);
  EXPECT_EQ(p.out, nullptr);
  EXPECT_EQ(p.out_ptrs, nullptr);
  EXPECT_EQ(p.out_ptrs_location, MOEGEMM_MEMORY_HOST);
  EXPECT_EQ(p.out_dtype, MOEGEMM_DTYPE_FP32);
  EXPECT_EQ(p.accumulate, 0);
  EXPECT_EQ(p.config, MOEGEMM_WGRAD_CONFIG_AUTO);
}

// ---------------------------------------------------------------------------
// C++ wrapper (moegemm.hpp)

TEST(CppWrapper, ErrorsBecomeExceptions) {
  EXPECT_NO_THROW(moegemm::check(MOEGEMM_STATUS_SUCCESS));
  ValidProblem v;
  v.p.num_groups = 0;
  try {
    moegemm::wgrad(v.p, nullptr, 0, nullptr);
    ADD_FAILURE() << "no exception";
  } catch (const moegemm::Error& e) {
    EXPECT_EQ(e.status(), MOEGEMM_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(names(e.what(), "MOEGEMM_STATUS_INVALID_ARGUMENT"));
    EXPECT_TRUE(names(e.what(), "num_groups"));
  }
  EXPECT_THROW(moegemm::wgrad_workspace_size(v.p), moegemm::Error);
}

}  // namespace
}  // namespace moegemm_test
