// The problems to benchmark: the seed grid, the large shapes, custom shapes
// and the anchors file's exact problems, each with its split sizes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anchors.h"
#include "common.h"
#include "options.h"

namespace bench {

struct ShapeSpec {
  std::string set;  // "seed", "large", "custom" or "anchors:<the file's set>"
  int g = 0;
  int64_t m = 0, n = 0;
  std::vector<int64_t> splits;  // k_i, i < g
  OutDtype out = OutDtype::kFp32;
  bool accumulate = false;
  const AnchorRow* anchor = nullptr;  // set when the problem comes from the anchors file

  int64_t total_tokens() const;
};

// g ragged split sizes summing to `total` (Dirichlet(1) proportions, largest
// remainder rounding), then nudged by single tokens so that no non-empty
// group is a multiple of 8 tokens (g >= 2). Deterministic in `seed`.
std::vector<int64_t> ragged_splits(int g, int64_t total, uint64_t seed);

// Every problem the options select, in run order. `anchors` may be null
// (anchors set skipped).
std::vector<ShapeSpec> build_shapes(const Options& opt, const Anchors* anchors);

}  // namespace bench
