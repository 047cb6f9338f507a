// The problems to benchmark: the seed grid, the large shapes, the fwd grid
// (fprop/dgrad), custom shapes and the anchors file's exact problems, each
// with its split sizes and pass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anchors.h"
#include "common.h"
#include "options.h"

namespace bench {

struct ShapeSpec {
  std::string set;  // "seed", "large", "fwd", "custom" or "anchors:<the file's set>"
  Pass pass = Pass::kWgrad;
  int g = 0;
  int64_t m = 0, n = 0;
  std::vector<int64_t> splits;  // k_i, i < g
  OutDtype out = OutDtype::kFp32;
  bool accumulate = false;
  bool out_list = false;  // moegemm's wgrad D as a device list of g pointers (see --out-list)
  const AnchorRow* anchor = nullptr;  // set when the problem comes from the anchors file

  int64_t total_tokens() const;
  // Elements of each tensor of the pass (see Pass; 0 for one it does not use):
  // X [T, n], dY [T, m], W [g, m, n] (BF16) and the output.
  int64_t x_elems() const;
  int64_t dy_elems() const;
  int64_t w_elems() const;
  int64_t out_elems() const;  // wgrad [g, m, n], fprop [T, m], dgrad [T, n]
  int64_t input_elems() const { return x_elems() + dy_elems() + w_elems(); }
};

// g split sizes summing to `total` after `spec` (proportions from the
// distribution, largest remainder rounding), then nudged by single tokens
// between non-empty groups so that none is a multiple of 8 tokens (at least
// two non-empty groups). An explicit list is returned as given.
// Deterministic in `seed`.
std::vector<int64_t> generate_splits(const SplitSpec& spec, int g, int64_t total, uint64_t seed);

// The generator of the seed and large grids and of --shape: Dirichlet(1).
std::vector<int64_t> ragged_splits(int g, int64_t total, uint64_t seed);

// Every problem the options select, in run order. `anchors` may be null
// (anchors set skipped).
std::vector<ShapeSpec> build_shapes(const Options& opt, const Anchors* anchors);

}  // namespace bench
