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

// --jagged-splits: explicit split sizes, or a distribution of the tokens.
struct SplitSpec {
  enum class Kind { kExplicit, kBalanced, kDirichlet, kZipf };
  Kind kind = Kind::kDirichlet;  // the default: Dirichlet(1), the generator of --shape
  double param = 1;              // Dirichlet alpha, Zipf exponent s
  int64_t empty = 0;             // distributions: experts that get no tokens
  std::vector<int64_t> sizes;    // kExplicit
};

// --num-experts/--ep-size/--hidden-dim/--expert-dim/--tokens/--jagged-splits:
// one rank's problem of an expert-parallel MoE layer, g = E / P groups.
struct ExpertShape {
  bool given = false;
  int64_t num_experts = 0, ep_size = 1;
  int64_t hidden_dim = 0, expert_dim = 0;  // n = H, m = F
  int64_t tokens = 0;                      // T, after top-k routing
  SplitSpec splits;

  int groups() const { return static_cast<int>(num_experts / ep_size); }
};

struct Options {
  // Shape sets.
  bool seed_set = false, large_set = false, anchors_set = false;
  bool fwd_set = false;             // issue 3's fprop/dgrad grid (its own passes: fwd_passes())
  std::string anchors_path;         // empty: the default location, if it exists
  std::vector<CustomShape> shapes;  // --shape g,m,n,avgk (random splits)
  std::vector<int64_t> splits;      // --splits with --m/--n
  int64_t m = 0, n = 0;
  ExpertShape expert_shape;
  bool quick = false;

  // Problem options (the anchors set keeps its own output types; fprop and
  // dgrad always write BF16).
  std::vector<Pass> passes{Pass::kWgrad};
  bool passes_given = false;  // --pass was given
  std::vector<OutDtype> out_dtypes{OutDtype::kFp32};
  bool accumulate = false;
  bool out_list = false;  // wgrad: moegemm writes D through a device pointer list
  std::vector<moegemm_wgrad_config_t> configs{MOEGEMM_WGRAD_CONFIG_AUTO};

  // Peers to time, in peer_names() order.
  std::vector<std::string> peers;

  // Method.
  int repeat = 40;
  int warmup = 5;
  int rounds = 20;  // the repeat calls split over this many interleaved rounds
  bool graph = false;
  uint64_t seed = 20261125;

  // Outputs.
  std::string json_path, csv_path, markdown_path;
  bool help = false;

  bool wants_peer(const std::string& name) const;
  bool wants_pass(Pass pass) const;
  // The passes of the fwd set: fprop and dgrad, or those of them --pass selects.
  std::vector<Pass> fwd_passes() const;
};

constexpr int kMinRepeat = 30;
constexpr int kMinWarmup = 5;

// Throws bench::Error with a message naming the offending argument.
Options parse_options(int argc, char** argv);
void print_usage(FILE* f);

}  // namespace bench
