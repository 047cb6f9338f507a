// Multi-stream cuBLASLt implementation of moegemm_gemm_list (path 3 of
// moegemm.h): one cuBLASLt matmul per group, spread round-robin over
// `num_streams` streams that first wait for the caller's stream and are
// joined back into it with events. Any GPU, any layout, FP32/BF16/FP16,
// bias and GELU epilogues, k_i = 0 and m_i = 0 groups.
#ifndef MOEGEMM_SRC_CUBLAS_FALLBACK_H_
#define MOEGEMM_SRC_CUBLAS_FALLBACK_H_

#include <cstddef>
#include <functional>

#include <cuda_runtime_api.h>

#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm::detail {

constexpr int kDefaultCublasStreams = 4;
constexpr int kMaxCublasStreams = 16;

// cuBLASLt workspace per stream (cuBLAS's recommendation for Hopper).
constexpr size_t kCublasWorkspacePerStream = size_t{32} << 20;

// Workspace bytes of the cuBLAS path with this many streams.
size_t cublas_list_workspace_size(int num_streams);

// Enqueues the problem (already validated) on `stream`. The workspace is split
// between the streams (equal 256-byte aligned chunks of at most
// kCublasWorkspacePerStream). Stream 0 is `stream` itself; the others are
// side streams that wait for it and are joined back into it before the call
// returns (on error paths too), so the call can be captured in a CUDA graph.
// The cuBLASLt handle (per device) and the side streams and events (per device
// and per thread, since a forked stream stays in the caller's capture until it
// ends) are created on first use and reused (in relaxed capture mode, so the
// first call may be captured; a warm-up call outside is still advisable since
// cuBLASLt loads its kernels lazily). Matmul plans are cached per shape, dtypes, ops, epilogue, pointer
// alignments and workspace size. No device allocation and no host
// synchronisation. Failures: MOEGEMM_STATUS_CUDA_ERROR "<call> failed for
// group i: <status name>"; nothing is enqueued when a group cannot be planned.
//
// `beside` (optional): work the caller enqueues on `stream` itself while the
// groups run on the side streams (a grouped kernel for the other groups); it
// is called once, after the fork and before the join, also when no group has
// work. The groups then use at most num_streams - 1 side streams (at least
// one), and the workspace is split between those.
using CallerStreamWork = std::function<Check(cudaStream_t)>;
Check cublas_gemm_list(const moegemm_gemm_list_t& problem, int num_streams, void* workspace,
                       size_t workspace_bytes, cudaStream_t stream, const CallerStreamWork* beside = nullptr);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_CUBLAS_FALLBACK_H_
