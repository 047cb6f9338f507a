#!/usr/bin/env bash
# Runs on the GPU machine over a carried .device-build/ (scripts/pack-device.sh):
# the example, the host and GPU tests (also with MOEGEMM_USE_CUTLASS=0), the
# Python package's tests and example, the benchmark (wgrad sets, the anchors,
# forward/dgrad; with the torch._grouped_mm peer), the expert-parallel check on
# 2+ GPUs, and the GPU tests under compute-sanitizer memcheck. Logs and results
# go to $OUT (default ./device-out), at most 8 files: check.log (with the
# benchmark's text output), gpu-tests.txt, python-tests.txt, memcheck.txt,
# bench.{json,md}, torch.json, ep-check.log.
#   MOEGEMM_CHECK_STEPS="tests python bench ep memcheck"  (subset to run)
#   MOEGEMM_BENCH_ARGS="..."                      (extra benchmark flags)
#   MOEGEMM_MEMCHECK_TIMEOUT=seconds              (memcheck is slow; default 420)
# Memcheck runs last so that a timeout there loses nothing else.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}; mkdir -p "$OUT"
B=.device-build
STEPS=${MOEGEMM_CHECK_STEPS:-"tests python bench ep memcheck"}
export PATH="/usr/local/cuda/bin:$PATH"
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; p=os.path.dirname(nvidia.__path__[0]); print(" ".join(os.path.join(p,"nvidia",x,"lib") for x in ("cu13","cublas","cuda_runtime")))' 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
{
  echo "commit: $(cat $B/COMMIT | tr '\n' ' ')"; date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  ldd $B/tests/moegemm_gpu_tests | grep -E "not found|cudart|cublas|moegemm"
} 2>&1 | tee -a "$OUT/check.log"
rc=0
# memcheck: GPU tests under compute-sanitizer. With 2+ GPUs and no ep step it
# runs on the last GPU while everything else runs on GPU 0 (timings are not
# disturbed); otherwise last, on its own.
memcheck() {
  timeout ${MOEGEMM_MEMCHECK_TIMEOUT:-420} compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests/moegemm_gpu_tests --gtest_brief=1 \
    > "$OUT/memcheck.txt" 2>&1
  echo "memcheck exit: $?" >> "$OUT/memcheck.txt"
}
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
memcheck_pid=""
if [[ " $STEPS " == *" memcheck "* && " $STEPS " != *" ep "* && $ngpu -ge 2 ]]; then
  CUDA_VISIBLE_DEVICES=$((ngpu - 1)) memcheck & memcheck_pid=$!
  export CUDA_VISIBLE_DEVICES=0
  echo "memcheck runs on GPU $((ngpu - 1)) in the background; the rest on GPU 0" | tee -a "$OUT/check.log"
fi
if [[ " $STEPS " == *" tests "* ]]; then
  $B/wgrad_example 2>&1 | tee -a "$OUT/check.log" || rc=1
  $B/tests/moegemm_host_tests --gtest_brief=1 2>&1 | tail -n 3 | tee -a "$OUT/check.log"
  $B/tests/moegemm_gpu_tests > "$OUT/gpu-tests.txt" 2>&1; t=$?
  MOEGEMM_USE_CUTLASS=0 $B/tests/moegemm_cublas_forced_tests >> "$OUT/gpu-tests.txt" 2>&1 || t=1
  # The ragged-M tests again: with the one-launch kernel wherever it serves
  # (each cluster shape), with the CUTLASS tiles only (AUTO's choice among
  # them), and with the ping-pong 64x256 tile everywhere (AUTO takes it rarely).
  for tile in onelaunch onelaunch-1x4 cutlass pingpong-64x256; do
    echo "== ragged-M tests with MOEGEMM_UNIFORM_K_TILE=$tile" >> "$OUT/gpu-tests.txt"
    MOEGEMM_UNIFORM_K_TILE=$tile $B/tests/moegemm_gpu_tests --gtest_filter='*Ragged*' >> "$OUT/gpu-tests.txt" 2>&1 || t=1
  done
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |tests ran|FAILED TEST" "$OUT/gpu-tests.txt" | tail -n 40 | tee -a "$OUT/check.log"
  [ $t -eq 0 ] || rc=1
fi
if [[ " $STEPS " == *" python "* ]]; then
  MOEGEMM_PREBUILT_LIBRARY=$PWD/$B/libmoegemm.so bash scripts/python-tests.sh --out /tmp/pyt > /tmp/pyt.log 2>&1 || rc=1
  cp /tmp/pyt.log "$OUT/python-tests.txt"
  tail -n 3 /tmp/pyt.log | tee -a "$OUT/check.log"
  MOEGEMM_LIBRARY=$PWD/$B/libmoegemm.so PYTHONPATH=$PWD/python timeout 300 python3 examples/moe_layer.py 2>&1 | tail -n 25 | tee -a "$OUT/check.log"
  [ ${PIPESTATUS[0]} -eq 0 ] || rc=1
fi
if [[ " $STEPS " == *" bench "* ]]; then
  anchors=(); [ -f $B/anchors/wgrad-h100.jsonl ] && anchors=(--anchors $B/anchors/wgrad-h100.jsonl --set all,fwd)
  [ ${#anchors[@]} -gt 0 ] || anchors=(--set seed,large,fwd)
  $B/bench/moegemm-bench "${anchors[@]}" --graph --json "$OUT/bench.json" --markdown "$OUT/bench.md" \
    ${MOEGEMM_BENCH_ARGS:-} 2> /tmp/bench-progress.txt | tee -a "$OUT/check.log"
  [ ${PIPESTATUS[0]} -eq 0 ] || rc=1
  tail -n 3 /tmp/bench-progress.txt >> "$OUT/check.log"
  # The uniform-K tile rule, measured: the forward/dgrad set again with one tile forced.
  if [ -n "${MOEGEMM_TILE_COMPARE:-}" ]; then
    echo "== fwd set with MOEGEMM_UNIFORM_K_TILE=$MOEGEMM_TILE_COMPARE" | tee -a "$OUT/check.log"
    MOEGEMM_UNIFORM_K_TILE=$MOEGEMM_TILE_COMPARE $B/bench/moegemm-bench --set fwd --graph --peers cublas_ms4,moegemm \
      2> /dev/null | grep -E "^ +[0-9]+ +[0-9]+ +[0-9]+ |geomean|set fwd" | tee -a "$OUT/check.log"
  fi
  # Peers that live in Python: torch._grouped_mm (merged into the table later,
  # bench/merge_peers.py), and the plot.
  python3 bench/torch_peer.py "$OUT/bench.json" -o "$OUT/torch.json" >> "$OUT/check.log" 2>&1 || rc=1
fi
if [[ " $STEPS " == *" ep "* ]]; then
  MOEGEMM_LIBRARY=$PWD/$B/libmoegemm.so OUT=/tmp/ep bash scripts/ep-check.sh > /tmp/ep-run.log 2>&1 || rc=1
  cat /tmp/ep/ep-check.log /tmp/ep/ep-bench.md /tmp/ep/ep-cpu-tests.txt > "$OUT/ep-check.log" 2>/dev/null
  tail -n 20 /tmp/ep-run.log | tee -a "$OUT/check.log"
fi
if [[ " $STEPS " == *" memcheck "* ]]; then
  [ -n "$memcheck_pid" ] && wait "$memcheck_pid" || memcheck
  tail -n 7 "$OUT/memcheck.txt" | tee -a "$OUT/check.log"
  grep -q "^memcheck exit: 0$" "$OUT/memcheck.txt" || rc=1
fi
echo "device-check exit: $rc"
exit $rc
