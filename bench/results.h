// What one benchmarked problem produced: per-peer timings and checks.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "peers.h"
#include "shapes.h"
#include "timing.h"

namespace bench {

struct CheckResult {
  bool done = false;  // false: could not be checked (no reference)
  bool pass = false;
  double max_abs_diff = std::numeric_limits<double>::quiet_NaN();
  double max_abs_ref = std::numeric_limits<double>::quiet_NaN();
  double tolerance = std::numeric_limits<double>::quiet_NaN();
  uint64_t nonfinite = 0;  // NaN/Inf in either output
  int samples = 0;         // spot check against the host: entries recomputed
};

struct PeerResult {
  PeerInfo info;
  std::string resolved_config;  // moegemm wgrad: the configuration that ran
  std::string path;             // moegemm fprop/dgrad: moegemm_ragged_m's path ("uniform_k", "cublas", ...)
  std::string path_reason;      // why it left the faster paths ("" on the uniform-K path)
  std::string graph_na;         // "n/a (...)": not capturable, eager timings only
  Stats eager, graph;
  CheckResult check;           // the reference: against the host; others: against the reference
  std::string not_applicable;  // "n/a (...)": the peer cannot compute this problem (not run)
  std::string error;           // a failed call: no timings
  std::string graph_error;     // capture or replay failed (eager timings still valid)

  bool applies() const { return not_applicable.empty(); }
};

struct Row {
  ShapeSpec spec;
  int64_t total_tokens = 0, k_min = 0, k_max = 0;
  double k_avg = 0;
  int empty_groups = 0;
  int timing_sets = 0;
  double flops = 0, bytes = 0, bound_us = 0;
  std::vector<PeerResult> peers;  // the reference: the first that applies (cublas_ms4 unless deselected)
  bool correct = false;           // every check passed and every call succeeded (n/a peers aside)
};

}  // namespace bench
