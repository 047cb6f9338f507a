// moegemm's environment variables (documented in moegemm.h), parsed by a pure
// function so that every rule is unit-tested; the process reads them once.
#ifndef MOEGEMM_SRC_ENV_H_
#define MOEGEMM_SRC_ENV_H_

#include <string>

#include "config_select.h"

namespace moegemm::detail {

struct DispatchEnv {
  bool use_cutlass = true;     // MOEGEMM_USE_CUTLASS (0 forces the cuBLAS path)
  bool warn_fallback = false;  // MOEGEMM_WARN_FALLBACK
  int num_streams = 4;         // MOEGEMM_NUM_STREAMS, 1..16
  UniformKTile uniform_k_tile = UniformKTile::kAuto;  // MOEGEMM_UNIFORM_K_TILE (tuning)
  bool large_groups_cublas = true;  // MOEGEMM_LARGE_GROUPS_CUBLAS (uniform-K path, host group sizes)
  std::string problems;        // values that were ignored, and why ("" if none)
};

// Each argument is the variable's value or nullptr when unset. Unparseable
// values keep the default and are described in `problems`.
DispatchEnv parse_dispatch_env(const char* use_cutlass, const char* warn_fallback, const char* num_streams,
                               const char* uniform_k_tile = nullptr, const char* large_groups_cublas = nullptr);

// The process's values (read on first use); a malformed value is reported
// once on stderr.
const DispatchEnv& process_dispatch_env();

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_ENV_H_
