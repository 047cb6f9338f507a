// Figures derived from a benchmarked problem: bound, efficiency, TFLOP/s,
// speed-ups against the measured peers and the anchors file, and the
// summary over all problems.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "results.h"

namespace bench {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Median microseconds (or a figure derived from them) per mode.
struct ModeTimes {
  double eager = kNaN, graph = kNaN;
};

struct Metrics {
  ModeTimes ms4, loop, grouped;   // cuBLAS peers
  ModeTimes best_peer;            // the fastest of the cuBLAS peers per mode
  ModeTimes mg, mg_device;        // moegemm, best configuration, split sizes on host / device
  std::string grouped_na, mg_na;  // "n/a (...)" where cublas_grouped / moegemm cannot run the problem
  // fprop/dgrad: moegemm_ragged_m's path with the split sizes on the host /
  // on the device ("uniform_k", "cublas", ...; "" for wgrad), why it left the
  // faster paths, and why the device-splits peer has no graph timings.
  std::string mg_path, mg_device_path, mg_path_reason, mg_device_graph_na;
  std::string best_config;        // configuration of mg.eager ("auto=pingpong", "cooperative", ...)
  ModeTimes speedup_ms4, speedup_best_peer;  // peer time / moegemm time (> 1: moegemm faster)
  ModeTimes tflops, efficiency;              // moegemm; efficiency = bound / time
  ModeTimes ms4_efficiency;
  // From the anchors file (NaN without one, or when accumulating): their best
  // eager peer, best graph peer, and the file's best_peer_us (over both modes).
  ModeTimes anchor_best;
  double anchor_best_peer = kNaN;
  ModeTimes speedup_anchor;                // eager vs eager, graph vs graph
  double speedup_anchor_best_peer = kNaN;  // min(moegemm eager, graph) vs best_peer_us
};

Metrics compute_metrics(const Row& row);

// "ok", "FAIL" (a result disagreed) or "ERROR" (a call failed).
// "n/a" where no peer applies.
std::string row_status(const Row& row);
// Whether the row has a peer of that name (selected and able to run on this GPU).
bool has_peer(const Row& row, const std::string& name);
// moegemm's path for a fprop/dgrad row: "uniform_k", "host/device" when
// they differ, "-" when none ran.
std::string path_label(const Metrics& m);
// "5/64/149": smallest, average and largest group.
std::string k_range(const Row& row);
// "seed g=4 m=512 n=2048 k=5/64/149 fp32", the pass after the set unless wgrad.
std::string describe_row(const Row& row);

struct Summary {
  struct Geomean {
    std::string set;
    int shapes = 0;
    ModeTimes moegemm, ms4;  // geomean efficiency over the set's FP32-output problems
  };
  struct Count {
    int slower = 0, compared = 0;  // problems where moegemm is slower / both were measured
  };
  // moegemm's speed-up over cublas_ms4 (cublas_ms4 time / moegemm time) on
  // the fprop/dgrad problems of one set and pass (issue 3).
  struct Speedups {
    int shapes = 0;    // problems of the set and pass
    int measured = 0;  // with both times
    int slower = 0;    // speed-up < 1
    double geomean = kNaN, min = kNaN;
    size_t min_row = 0;  // index of the slowest in the rows
    // Issue 3's bar: every shape measured and >= kMinSpeedup, geomean >= kGeomeanSpeedup.
    static constexpr double kMinSpeedup = 1.0, kGeomeanSpeedup = 1.3;
    bool bar_met() const { return shapes > 0 && measured == shapes && min >= kMinSpeedup && geomean >= kGeomeanSpeedup; }
  };
  struct PassSpeedups {
    std::string set;
    Pass pass = Pass::kFprop;
    std::vector<size_t> rows;  // indices into the rows, in run order
    Speedups eager, graph;                 // moegemm with the split sizes on the host
    Speedups device_eager, device_graph;  // on the device
  };

  std::vector<Geomean> geomeans;  // for the sets "seed" and "anchors:seed", when run
  std::vector<PassSpeedups> ragged;  // per set and pass, fprop/dgrad rows where moegemm applies
  int wgrad_rows = 0;                // the counts below are over these
  Count vs_ms4_eager, vs_ms4_graph, vs_best_eager, vs_best_graph;
  Count vs_anchor_eager, vs_anchor_graph, vs_anchor_best_peer;
  std::vector<std::string> failures;  // describe_row() + status of every problem not ok
};

Summary summarize_rows(const std::vector<Row>& rows);

}  // namespace bench
