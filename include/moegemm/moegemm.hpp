// Thin C++17 layer over the C API: errors become exceptions.
#ifndef MOEGEMM_MOEGEMM_HPP_
#define MOEGEMM_MOEGEMM_HPP_

#include <stdexcept>
#include <string>

#include "moegemm/moegemm.h"

namespace moegemm {

class Error : public std::runtime_error {
 public:
  Error(moegemm_status_t status, const std::string& message)
      : std::runtime_error(std::string(moegemm_status_string(status)) + ": " + message),
        status_(status) {}
  moegemm_status_t status() const noexcept { return status_; }

 private:
  moegemm_status_t status_;
};

inline void check(moegemm_status_t status) {
  if (status != MOEGEMM_STATUS_SUCCESS) throw Error(status, moegemm_last_error());
}

using WgradProblem = moegemm_wgrad_problem_t;

inline size_t wgrad_workspace_size(const WgradProblem& problem) {
  size_t bytes = 0;
  check(moegemm_wgrad_workspace_size(&problem, &bytes));
  return bytes;
}

inline void wgrad(const WgradProblem& problem, void* workspace, size_t workspace_bytes,
                  cudaStream_t stream) {
  check(moegemm_wgrad(&problem, workspace, workspace_bytes, stream));
}

}  // namespace moegemm

#endif  // MOEGEMM_MOEGEMM_HPP_
