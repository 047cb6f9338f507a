// Multi-stream cuBLASLt implementation of moegemm_gemm_list (path 3 of
// moegemm.h): one cuBLASLt matmul per group, spread round-robin over
// `num_streams` streams that first wait for the caller's stream and are
// joined back into it with events. Any GPU, any layout, FP32/BF16/FP16,
// bias and GELU epilogues, k_i = 0 and m_i = 0 groups.
#ifndef MOEGEMM_SRC_CUBLAS_FALLBACK_H_
#define MOEGEMM_SRC_CUBLAS_FALLBACK_H_

#include <cstddef>

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
// between the streams. Streams, events and the cuBLASLt handle are created
// once per device and reused; no allocation and no host synchronisation per call.
Check cublas_gemm_list(const moegemm_gemm_list_t& problem, int num_streams, void* workspace,
                       size_t workspace_bytes, cudaStream_t stream);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_CUBLAS_FALLBACK_H_
