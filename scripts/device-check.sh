#!/usr/bin/env bash
# Runs on the GPU machine over a carried .device-build/ (scripts/pack-device.sh):
# GPU tests, the same tests under compute-sanitizer memcheck, the example and
# the benchmark (with the torch._grouped_mm peer and the plot). Logs and
# results go to $OUT (default ./device-out), at most 8 files: check.log,
# gpu-tests.txt, memcheck.txt, bench.{txt,json,md,png}, torch.json.
#   MOEGEMM_CHECK_STEPS="tests memcheck bench"  (subset to run)
#   MOEGEMM_BENCH_ARGS="..."                      (extra benchmark flags)
#   MOEGEMM_MEMCHECK_TIMEOUT=seconds              (memcheck is slow; default 420)
# Memcheck runs last so that a timeout there loses nothing else.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}; mkdir -p "$OUT"
B=.device-build
STEPS=${MOEGEMM_CHECK_STEPS:-"tests memcheck bench"}
export PATH="/usr/local/cuda/bin:$PATH"
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; p=os.path.dirname(nvidia.__path__[0]); print(" ".join(os.path.join(p,"nvidia",x,"lib") for x in ("cu13","cublas","cuda_runtime")))' 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
{
  echo "commit: $(cat $B/COMMIT | tr '\n' ' ')"; date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  ldd $B/tests/moegemm_gpu_tests | grep -E "not found|cudart|cublas|moegemm"
} 2>&1 | tee -a "$OUT/check.log"
rc=0
if [[ " $STEPS " == *" tests "* ]]; then
  $B/wgrad_example 2>&1 | tee -a "$OUT/check.log" || rc=1
  $B/tests/moegemm_host_tests --gtest_brief=1 2>&1 | tail -n 3 | tee -a "$OUT/check.log"
  $B/tests/moegemm_gpu_tests > "$OUT/gpu-tests.txt" 2>&1; t=$?
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |tests ran|FAILED TEST" "$OUT/gpu-tests.txt" | tail -n 30 | tee -a "$OUT/check.log"
  [ $t -eq 0 ] || rc=1
fi
if [[ " $STEPS " == *" bench "* ]]; then
  anchors=(); [ -f $B/anchors/wgrad-h100.jsonl ] && anchors=(--anchors $B/anchors/wgrad-h100.jsonl --set all)
  $B/bench/moegemm-bench "${anchors[@]}" --graph --json "$OUT/bench.json" --markdown "$OUT/bench.md" \
    ${MOEGEMM_BENCH_ARGS:-} 2> /tmp/bench-progress.txt | tee "$OUT/bench.txt"
  [ ${PIPESTATUS[0]} -eq 0 ] || rc=1
  tail -n 3 /tmp/bench-progress.txt >> "$OUT/check.log"
  # Peers that live in Python: torch._grouped_mm (merged into the table later,
  # bench/merge_peers.py), and the plot.
  python3 bench/torch_peer.py "$OUT/bench.json" -o "$OUT/torch.json" >> "$OUT/check.log" 2>&1 || rc=1
  python3 bench/plot.py "$OUT/bench.json" -o "$OUT/bench.png" >> "$OUT/check.log" 2>&1 || rc=1
fi
if [[ " $STEPS " == *" memcheck "* ]]; then
  timeout ${MOEGEMM_MEMCHECK_TIMEOUT:-420} compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests/moegemm_gpu_tests --gtest_brief=1 \
    > "$OUT/memcheck.txt" 2>&1; t=$?
  { tail -n 6 "$OUT/memcheck.txt"; echo "memcheck exit: $t"; } | tee -a "$OUT/check.log"
  [ $t -eq 0 ] || rc=1
fi
echo "device-check exit: $rc"
exit $rc
