// Shared by every bench source: error handling (every CUDA, cuBLAS and
// moegemm status is checked and turned into a bench::Error with the failing
// expression), the output element type and the training pass.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "moegemm/moegemm.h"

namespace bench {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
  std::string where(file);
  const size_t slash = where.find_last_of('/');
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(where + ":" + std::to_string(line) + ": " + what);
}

enum class OutDtype { kFp32, kBf16 };

inline const char* dtype_name(OutDtype t) { return t == OutDtype::kFp32 ? "fp32" : "bf16"; }
inline size_t dtype_size(OutDtype t) { return t == OutDtype::kFp32 ? 4 : 2; }
inline cudaDataType_t cuda_dtype(OutDtype t) { return t == OutDtype::kFp32 ? CUDA_R_32F : CUDA_R_16BF; }
inline moegemm_dtype_t moegemm_dtype(OutDtype t) {
  return t == OutDtype::kFp32 ? MOEGEMM_DTYPE_FP32 : MOEGEMM_DTYPE_BF16;
}

// The three grouped GEMMs of an MoE expert layer, with m = F (expert dim),
// n = H (hidden dim), k_i tokens routed to expert i:
//   fprop  Y_i  = X_i · W_i^T    [k_i, n] x [m, n]^T -> [k_i, m]
//   dgrad  dX_i = dY_i · W_i     [k_i, m] x [m, n]   -> [k_i, n]
//   wgrad  D_i  = dY_i^T · X_i   [k_i, m]^T x [k_i, n] -> [m, n]  (moegemm_wgrad)
enum class Pass { kFprop, kDgrad, kWgrad };

inline const char* pass_name(Pass p) {
  switch (p) {
    case Pass::kFprop:
      return "fprop";
    case Pass::kDgrad:
      return "dgrad";
    default:
      return "wgrad";
  }
}

}  // namespace bench

#define BENCH_CUDA(expr)                                                                             \
  do {                                                                                               \
    const cudaError_t bench_err_ = (expr);                                                           \
    if (bench_err_ != cudaSuccess)                                                                   \
      ::bench::fail(__FILE__, __LINE__, std::string(#expr) + ": " + cudaGetErrorString(bench_err_)); \
  } while (0)

#define BENCH_CUBLAS(expr)                                                                             \
  do {                                                                                                 \
    const cublasStatus_t bench_st_ = (expr);                                                           \
    if (bench_st_ != CUBLAS_STATUS_SUCCESS)                                                            \
      ::bench::fail(__FILE__, __LINE__, std::string(#expr) + ": " + cublasGetStatusString(bench_st_)); \
  } while (0)

#define BENCH_MOEGEMM(expr)                                                                            \
  do {                                                                                                 \
    const moegemm_status_t bench_st_ = (expr);                                                         \
    if (bench_st_ != MOEGEMM_STATUS_SUCCESS)                                                           \
      ::bench::fail(                                                                                   \
          __FILE__, __LINE__,                                                                          \
          std::string(#expr) + ": " + moegemm_status_string(bench_st_) + ": " + moegemm_last_error()); \
  } while (0)
