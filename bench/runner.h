// Benchmarks one problem: correctness first (the reference peer against the
// host, every other peer against the reference), then eager and, optionally,
// graph-replay timings of every peer. Peers that cannot compute the problem
// (Peer::not_applicable) are only recorded as such.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "peers.h"
#include "results.h"
#include "timing.h"
#include "workload.h"

namespace bench {

// A CUDA error that leaves the context unusable: the run cannot go on.
struct FatalError : Error {
  using Error::Error;
};

struct RunContext {
  cudaStream_t stream = nullptr;
  WorkloadLimits limits;
  uint64_t seed = 0;
  int warmup = 5, repeat = 40;
  int rounds = 20;  // interleaved timing rounds (time_peers in runner.cu)
  bool graph = false;
  Ceilings ceilings;
};

// The reference is the first peer that applies to the problem and prepares.
Row run_problem(const ShapeSpec& spec, const std::vector<Peer*>& peers, const RunContext& ctx);

}  // namespace bench
