#include "config_select.h"

namespace moegemm::detail {

moegemm_wgrad_config_t choose_wgrad_config(const WgradShape& s, moegemm_wgrad_config_t requested) {
  if (requested != MOEGEMM_WGRAD_CONFIG_AUTO) return requested;
  // Ping-pong overlaps one tile's epilogue with the other warp group's
  // mainloop: that is what matters while the output store dominates (small
  // average K). Only when each group holds many tokens and the output is
  // large does the bigger cooperative tile's better operand reuse win.
  const int64_t avg_k = s.num_groups > 0 ? s.total_tokens / s.num_groups : 0;
  const bool large_output = s.m * s.n >= int64_t{2048} * 4096;
  if (avg_k >= 4096 && large_output) return MOEGEMM_WGRAD_CONFIG_COOPERATIVE_256x128x64_C2x1;
  return MOEGEMM_WGRAD_CONFIG_PINGPONG_128x128x64_C2x1;
}

}  // namespace moegemm::detail
