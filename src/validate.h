// Host-side argument checks for the public API. Plain C++: no CUDA calls, so
// every rule is unit-tested on a machine without a GPU.
#ifndef MOEGEMM_SRC_VALIDATE_H_
#define MOEGEMM_SRC_VALIDATE_H_

#include <cstddef>
#include <string>

#include "moegemm/moegemm.h"

namespace moegemm::detail {

struct Check {
  moegemm_status_t status = MOEGEMM_STATUS_SUCCESS;
  std::string message;
  bool ok() const { return status == MOEGEMM_STATUS_SUCCESS; }
};

// Everything about a wgrad problem that the host can check without the GPU:
// sizes, null pointers, alignment, host split sizes, host output pointers.
Check validate_wgrad_problem(const moegemm_wgrad_problem_t* problem);

// The caller's workspace: non-null when needed, 256-byte aligned, big enough.
// `size_query` names the function that tells the size, for the message.
Check validate_workspace(const void* workspace, size_t have_bytes, size_t need_bytes,
                         const char* size_query = "moegemm_wgrad_workspace_size");

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_VALIDATE_H_
