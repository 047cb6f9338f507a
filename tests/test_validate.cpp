// One test per rule of src/validate.cpp, called directly (no GPU): the status
// code, and that the message names the offending argument.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host_test_util.h"
#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm_test {
namespace {

using moegemm::detail::Check;
using moegemm::detail::validate_wgrad_problem;
using moegemm::detail::validate_workspace;

constexpr auto kOk = MOEGEMM_STATUS_SUCCESS;
constexpr auto kInvalid = MOEGEMM_STATUS_INVALID_ARGUMENT;
constexpr auto kMisaligned = MOEGEMM_STATUS_MISALIGNED;
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t k2Pow31 = int64_t{1} << 31;

class ValidateProblemTest : public ::testing::Test {
 protected:
  Check validate() const { return validate_wgrad_problem(&v.p); }
  ValidProblem v;
};

TEST_F(ValidateProblemTest, ValidProblemPasses) { EXPECT_TRUE(passes(validate())); }

TEST_F(ValidateProblemTest, ProblemMustNotBeNull) {
  EXPECT_TRUE(fails_with(validate_wgrad_problem(nullptr), kInvalid, "problem"));
}

TEST_F(ValidateProblemTest, NumGroupsMustBePositive) {
  for (int g : {0, -1, std::numeric_limits<int>::min()}) {
    v.p.num_groups = g;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "num_groups:")) << "g=" << g;
  }
}

TEST_F(ValidateProblemTest, MMustBeInRange) {
  for (int64_t m : {int64_t{0}, int64_t{-8}, k2Pow31, kI64Max}) {
    v.p.m = m;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "m:")) << "m=" << m;
  }
}

TEST_F(ValidateProblemTest, NMustBeInRange) {
  for (int64_t n : {int64_t{0}, int64_t{-8}, k2Pow31, kI64Max}) {
    v.p.n = n;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "n:")) << "n=" << n;
  }
}

TEST_F(ValidateProblemTest, MMustBeMultipleOf8) {
  for (int64_t m : {1, 4, 60, 135}) {
    v.p.m = m;
    EXPECT_TRUE(fails_with(validate(), kMisaligned, "m:")) << "m=" << m;
  }
}

TEST_F(ValidateProblemTest, NMustBeMultipleOf8) {
  for (int64_t n : {2, 7, 130}) {
    v.p.n = n;
    EXPECT_TRUE(fails_with(validate(), kMisaligned, "n:")) << "n=" << n;
  }
}

TEST_F(ValidateProblemTest, LargestMAndNAreAccepted) {
  v.p.m = k2Pow31 - 8;
  v.p.n = k2Pow31 - 8;
  EXPECT_TRUE(passes(validate()));
  v.p.m = v.p.n = 8;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, TotalTokensMustBeInRange) {
  for (int64_t t : {int64_t{-1}, k2Pow31, kI64Max}) {
    v.p.total_tokens = t;
    EXPECT_TRUE(fails_with(validate(), kInvalid, "total_tokens:")) << "T=" << t;
  }
  v.p.total_tokens = k2Pow31 - 1;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, OutDtypeMustBeKnown) {
  for (int d : {2, -1, 100}) {
    v.p.out_dtype = static_cast<moegemm_dtype_t>(d);
    EXPECT_TRUE(fails_with(validate(), kInvalid, "out_dtype:")) << "dtype=" << d;
  }
  v.p.out_dtype = MOEGEMM_DTYPE_BF16;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, ConfigMustBeKnown) {
  for (int c : {-1, static_cast<int>(MOEGEMM_WGRAD_CONFIG_COUNT_), 99}) {
    v.p.config = static_cast<moegemm_wgrad_config_t>(c);
    EXPECT_TRUE(fails_with(validate(), kInvalid, "config:")) << "config=" << c;
  }
  for (int c = MOEGEMM_WGRAD_CONFIG_AUTO; c < MOEGEMM_WGRAD_CONFIG_COUNT_; ++c) {
    v.p.config = static_cast<moegemm_wgrad_config_t>(c);
    EXPECT_TRUE(passes(validate())) << "config=" << c;
  }
}

TEST_F(ValidateProblemTest, GroupSizesLocationMustBeKnown) {
  v.p.group_sizes_location = static_cast<moegemm_memory_t>(2);
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes_location"));
}

TEST_F(ValidateProblemTest, XAndDyRequiredWhenThereAreTokens) {
  v.p.x = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "x:"));
  v.p.x = v.x;
  v.p.dy = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "dy:"));
}

TEST_F(ValidateProblemTest, XAndDyMayBeNullWithoutTokens) {
  v.set_sizes({0, 0, 0, 0});
  v.p.total_tokens = 0;
  v.p.x = nullptr;
  v.p.dy = nullptr;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, XAndDyMustBe16ByteAligned) {
  for (size_t off : {2, 8}) {
    v.p.x = plus_bytes(v.x, off);
    EXPECT_TRUE(fails_with(validate(), kMisaligned, "x:")) << "x+" << off;
    v.p.x = v.x;
    v.p.dy = plus_bytes(v.dy, off);
    EXPECT_TRUE(fails_with(validate(), kMisaligned, "dy:")) << "dy+" << off;
    v.p.dy = v.dy;
  }
}

TEST_F(ValidateProblemTest, GroupSizesMustNotBeNull) {
  v.p.group_sizes = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes"));
  v.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes"));
}

TEST_F(ValidateProblemTest, HostGroupSizesAllowAtMostMaxHostGroups) {
  v.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS + 1, 0));
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes"));
  v.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS, 0));
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, DeviceGroupSizesAllowMoreGroups) {
  v.set_sizes(std::vector<int64_t>(5000, 0));
  v.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, HostGroupSizeMustBeNonNegative) {
  v.set_sizes({50, 0, -1, 30});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes[2]"));
  v.set_sizes({std::numeric_limits<int64_t>::min(), 0, 0, 0});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes[0]"));
}

TEST_F(ValidateProblemTest, HostGroupSizesMustSumToAtMostT) {
  v.set_sizes({50, 0, 151, 30});  // 231 > 230
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes"));
  v.set_sizes({kI64Max, 0, 0, 0});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes"));
  v.set_sizes({50, 0, 150, 30});  // exactly T
  EXPECT_TRUE(passes(validate()));
  v.set_sizes({1, 0, 0, 2});      // rows past sum(k) are padding
  EXPECT_TRUE(passes(validate()));
}

// The running sum must not wrap around: 50 + INT64_MAX is not <= 230.
TEST_F(ValidateProblemTest, HostGroupSizesSumMustNotOverflow) {
  v.set_sizes({50, kI64Max, 120, 30});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes"));
  v.set_sizes({1, kI64Max, kI64Max, 0});
  EXPECT_TRUE(fails_with(validate(), kInvalid, "group_sizes"));
}

// Device split sizes cannot be read by the host: any values pass (they are
// clamped on the device). The array here is host memory holding bad values.
TEST_F(ValidateProblemTest, DeviceGroupSizesMustBe8ByteAligned) {
  v.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  v.p.group_sizes = reinterpret_cast<const int64_t*>(reinterpret_cast<const char*>(v.sizes.data()) + 4);
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "group_sizes"));
}

TEST_F(ValidateProblemTest, DeviceGroupSizesAreNotChecked) {
  v.set_sizes({-5, kI64Max, std::numeric_limits<int64_t>::min(), 1000000});
  v.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, ExactlyOneOfOutAndOutPtrs) {
  v.use_out_list(MOEGEMM_MEMORY_HOST);
  v.p.out = v.out;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "out/out_ptrs"));
  v.p.out = nullptr;
  v.p.out_ptrs = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "out/out_ptrs"));
}

TEST_F(ValidateProblemTest, OutMustBe16ByteAligned) {
  for (size_t off : {4, 8}) {
    v.p.out = v.out + off;
    EXPECT_TRUE(fails_with(validate(), kMisaligned, "out:")) << "out+" << off;
  }
}

TEST_F(ValidateProblemTest, OutPtrsLocationMustBeKnown) {
  v.use_out_list(static_cast<moegemm_memory_t>(5));
  EXPECT_TRUE(fails_with(validate(), kInvalid, "out_ptrs_location"));
}

TEST_F(ValidateProblemTest, HostOutPtrsAllowAtMostMaxHostGroups) {
  v.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS + 1, 0));
  v.p.group_sizes_location = MOEGEMM_MEMORY_DEVICE;  // else the sizes are rejected first
  v.use_out_list(MOEGEMM_MEMORY_HOST);
  EXPECT_TRUE(fails_with(validate(), kInvalid, "out_ptrs"));
  v.set_sizes(std::vector<int64_t>(MOEGEMM_MAX_HOST_GROUPS, 0));
  v.use_out_list(MOEGEMM_MEMORY_HOST);
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, HostOutPtrEntryMustNotBeNull) {
  v.use_out_list(MOEGEMM_MEMORY_HOST);
  v.ptrs[1] = nullptr;
  EXPECT_TRUE(fails_with(validate(), kInvalid, "out_ptrs[1]"));
}

TEST_F(ValidateProblemTest, HostOutPtrEntryMustBe16ByteAligned) {
  v.use_out_list(MOEGEMM_MEMORY_HOST);
  v.ptrs[1] = static_cast<unsigned char*>(v.ptrs[1]) + 8;
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "out_ptrs[1]"));
}

TEST_F(ValidateProblemTest, DeviceOutPtrsArrayMustBe8ByteAligned) {
  v.use_out_list(MOEGEMM_MEMORY_DEVICE);
  v.p.out_ptrs = reinterpret_cast<void* const*>(plus_bytes(v.ptrs.data(), 4));
  EXPECT_TRUE(fails_with(validate(), kMisaligned, "out_ptrs"));
}

// Entries of a device pointer list are not read by the host.
TEST_F(ValidateProblemTest, DeviceOutPtrEntriesAreNotChecked) {
  v.use_out_list(MOEGEMM_MEMORY_DEVICE);
  v.ptrs[0] = nullptr;
  v.ptrs[2] = static_cast<unsigned char*>(v.ptrs[2]) + 2;
  EXPECT_TRUE(passes(validate()));
}

TEST_F(ValidateProblemTest, ValidOutPtrListsPass) {
  v.use_out_list(MOEGEMM_MEMORY_HOST);
  EXPECT_TRUE(passes(validate()));
  v.use_out_list(MOEGEMM_MEMORY_DEVICE);
  EXPECT_TRUE(passes(validate()));
}

// ---------------------------------------------------------------------------
// validate_workspace

TEST(ValidateWorkspace, MustBeLargeEnough) {
  alignas(256) static unsigned char ws[1024];
  EXPECT_TRUE(fails_with(validate_workspace(ws, 511, 512), MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, "workspace_bytes"));
  EXPECT_TRUE(fails_with(validate_workspace(ws, 0, 512), MOEGEMM_STATUS_WORKSPACE_TOO_SMALL, "workspace_bytes"));
  EXPECT_TRUE(passes(validate_workspace(ws, 512, 512)));
  EXPECT_TRUE(passes(validate_workspace(ws, 1024, 512)));
}

TEST(ValidateWorkspace, MustNotBeNullWhenNeeded) {
  EXPECT_TRUE(fails_with(validate_workspace(nullptr, 512, 512), kInvalid, "workspace"));
  EXPECT_TRUE(passes(validate_workspace(nullptr, 0, 0)));
}

TEST(ValidateWorkspace, MustBe256ByteAligned) {
  alignas(256) static unsigned char ws[2048];
  for (size_t off : {16, 128, 255}) {
    EXPECT_TRUE(fails_with(validate_workspace(ws + off, 1024, 512), kMisaligned, "workspace"))
        << "workspace+" << off;
  }
  EXPECT_TRUE(passes(validate_workspace(ws + 256, 1024, 512)));
}

}  // namespace
}  // namespace moegemm_test
