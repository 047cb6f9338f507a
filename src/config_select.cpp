#include "config_select.h"

namespace moegemm::detail {

moegemm_wgrad_config_t choose_wgrad_config(const WgradShape& s, moegemm_wgrad_config_t requested) {
  if (requested != MOEGEMM_WGRAD_CONFIG_AUTO) return requested;
  // From the benchmark on an H100 (docs/gpu-results.md):
  //  - BF16 output with <= 128 tokens per group: the output store is
  //    everything; the cooperative 256x128 tile is 5-15% faster (with FP32
  //    output the two tie within a few percent, ping-pong mostly ahead).
  //  - large outputs (>= 1536 x 2048): the cooperative tile's operand reuse
  //    wins for BF16 output at any K and for FP32 output from 4096 tokens per
  //    group on (up to 30%).
  //  - everything else: ping-pong 128x128, whose epilogue overlaps the other
  //    warp group's mainloop (up to 25% faster at 512-4096 tokens).
  const int64_t avg_k = s.num_groups > 0 ? s.total_tokens / s.num_groups : 0;
  const bool bf16 = s.out_dtype == MOEGEMM_DTYPE_BF16;
  const bool large_output = s.m * s.n >= kCooperativeMinLargeOutput;
  if (bf16 && (avg_k <= kCooperativeMaxSmallK || large_output)) return MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
  if (large_output && avg_k >= kCooperativeMinLargeK) return MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
  return MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1;
}

}  // namespace moegemm::detail
