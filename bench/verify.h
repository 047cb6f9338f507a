// Correctness: a peer's output against the reference output (whole tensor,
// on the GPU), and the reference against the host (sampled entries
// recomputed in double from the counter-based random inputs).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "results.h"
#include "workload.h"

namespace bench {

// Allowed max |diff| for outputs whose largest magnitude is max_abs_ref:
// FP32 1e-3 relative, BF16 1e-2 relative, plus a small absolute term.
double tolerance(OutDtype dtype, double max_abs_ref);

CheckResult compare_outputs(const void* test, const void* ref, size_t count, OutDtype dtype,
                            cudaStream_t stream);

// Checks the output of operand set `set` of `w`, whose output was filled with
// `initial_out_seed` before the call (it matters when accumulating).
CheckResult spot_check(const Workload& w, int set, uint64_t initial_out_seed, cudaStream_t stream);

}  // namespace bench
