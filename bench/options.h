// Command line of moegemm-bench (see print_usage()).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"

namespace bench {

struct CustomShape {
  int g = 0;
  int64_t m = 0, n = 0, avg_k = 0;
};

struct Options {
  // Shape sets.
  bool seed_set = false, large_set = false, anchors_set = false;
  std::string anchors_path;         // empty: the default location, if it exists
  std::vector<CustomShape> shapes;  // --shape g,m,n,avgk (random splits)
  std::vector<int64_t> splits;      // --splits with --m/--n
  int64_t m = 0, n = 0;
  bool quick = false;

  // Problem options (the anchors set keeps its own output types).
  std::vector<OutDtype> out_dtypes{OutDtype::kFp32};
  bool accumulate = false;
  std::vector<moegemm_wgrad_config_t> configs{MOEGEMM_WGRAD_CONFIG_AUTO};

  // Method.
  int repeat = 40;
  int warmup = 5;
  bool graph = false;
  uint64_t seed = 20261125;

  // Outputs.
  std::string json_path, csv_path, markdown_path;
  bool help = false;
};

constexpr int kMinRepeat = 30;
constexpr int kMinWarmup = 5;

// Throws bench::Error with a message naming the offending argument.
Options parse_options(int argc, char** argv);
void print_usage(FILE* f);

}  // namespace bench
