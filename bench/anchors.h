// Reference peer timings (shared/anchors/wgrad-h100.jsonl): one JSON object
// per line; the first holds the ceilings of the run that produced them, every
// other one a shape with its exact split sizes and the peers' timings.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common.h"

namespace bench {

struct AnchorRow {
  std::string set;  // "seed", "uniform", "zeros", "large", ...
  int g = 0;
  int64_t m = 0, n = 0;
  OutDtype out = OutDtype::kFp32;
  std::vector<int64_t> splits;
  std::map<std::string, double> values;  // every other numeric field; null fields are absent

  double value(const std::string& key) const;  // NaN when absent
  double best_eager_us() const;                // min over the *_eager peers present
  double best_graph_us() const;                // min over the *_graph peers present
};

struct Anchors {
  std::string path;
  std::string note;
  double copy_TBps = std::numeric_limits<double>::quiet_NaN();    // from the first line;
  double gemm_TFLOPs = std::numeric_limits<double>::quiet_NaN();  // NaN when absent
  std::vector<AnchorRow> rows;
};

// Anchor columns shown beside moegemm's (in this order).
const std::vector<std::string>& anchor_columns();

// Parses `path`; false with a message in *error when it cannot be read or
// is not in the expected format.
bool load_anchors(const std::string& path, Anchors* anchors, std::string* error);

}  // namespace bench
