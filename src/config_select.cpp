#include "config_select.h"

namespace moegemm::detail {

moegemm_wgrad_config_t choose_wgrad_config(const WgradShape& s, moegemm_wgrad_config_t requested) {
  if (requested != MOEGEMM_WGRAD_CONFIG_AUTO) return requested;
  // From the benchmark on an H100 (docs/gpu-results.md), FP32 and BF16 alike:
  //  - <= 128 tokens per group: the output store is everything; the
  //    cooperative 256x128 tile (two warp groups storing at once) is 5-20%
  //    faster from g = 8 on, and equal below.
  //  - large outputs (>= 1536 x 2048) with >= 4096 tokens per group: compute
  //    bound; the cooperative tile's operand reuse wins by up to 30%.
  //  - everything else: ping-pong 128x128, whose epilogue overlaps the other
  //    warp group's mainloop (up to 25% faster at 512-4096 tokens).
  const int64_t avg_k = s.num_groups > 0 ? s.total_tokens / s.num_groups : 0;
  if (s.num_groups > 0 && avg_k <= kCooperativeMaxSmallK) return MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
  if (avg_k >= kCooperativeMinLargeK && s.m * s.n >= kCooperativeMinLargeOutput)
    return MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
  return MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1;
}

}  // namespace moegemm::detail
