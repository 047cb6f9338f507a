#!/usr/bin/env bash
# Expert-parallel MoE (examples/ep_moe.py) on the GPU machine, NVLink multicast off:
#   cpu    the exchange logic with gloo on the CPU (pytest tests/python/test_ep_exchange.py;
#          without pytest: torchrun --check --backend gloo for N = 1, 2)
#   check  EP layer == the same layer on one GPU (outputs and gradients), through NCCL,
#          for N = 1 and 2 (and 4, 8 where there are that many GPUs), moegemm experts,
#          and N = 2 with the pure-torch experts (the NCCL exchange on its own)
#   bench  step time vs N GPUs with the expert-GEMM and all-to-all shares, for the
#          moegemm experts and the per-expert torch loop
# Logs to $OUT (default ./device-out): ep-check.log (everything), ep-bench.md (the table).
# On a machine without GPUs only the cpu step runs (what one process allows).
#   EP_STEPS="cpu check bench"        subset to run
#   EP_BENCH_EXPERTS="moegemm torch"  expert backends to time
#   EP_BENCH_ARGS="..."               extra flags for ep_moe.py --bench (sizes, --steps ...)
#   EP_TIMEOUT=300                    seconds per torchrun
#   PYTHON=python3
# moegemm is imported from an installed package, else from python/; libmoegemm.so from
# MOEGEMM_LIBRARY, the package, build/, or a carried .device-build/ (python/moegemm/_lib.py).
set -uo pipefail
cd "$(dirname "$0")/.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-device-out}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
LOG="$OUT/ep-check.log"; MD="$OUT/ep-bench.md"
STEPS=${EP_STEPS:-"cpu check bench"}
TMO=${EP_TIMEOUT:-300}
if ! $PY -c 'import moegemm' 2>/dev/null; then
  export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
fi
# A carried .device-build/ (scripts/pack-device.sh) where there is no build/ here.
if [ -z "${MOEGEMM_LIBRARY:-}" ] && [ ! -e build/libmoegemm.so ] && [ -e .device-build/libmoegemm.so ]; then
  export MOEGEMM_LIBRARY="$PWD/.device-build/libmoegemm.so"
fi
ngpu=$($PY -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)
{
  echo "== ep-check $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "GPUs visible to torch: $ngpu"
  env | grep -E '^(NCCL_NVLS_ENABLE|TORCH_SYMM_MEM_DISABLE_MULTICAST|NVSHMEM_DISABLE_NVLS)=' | sort | tr '\n' ' '; echo
  $PY -c 'import torch, torch.distributed as d; print("torch", torch.__version__, "nccl", torch.cuda.nccl.version() if torch.cuda.is_available() else "-", "gloo", d.is_gloo_available())'
  $PY -c 'import moegemm; print("moegemm", moegemm.__version__, moegemm.__file__); print("libmoegemm.so:", moegemm.library_path())' 2>&1 | tail -n 2
} 2>&1 | tee -a "$LOG"

rc=0
LAST_OUT=$(mktemp); trap 'rm -f "$LAST_OUT"' EXIT
# torchrun N ARGS...: full output to the log, the verdict and table lines to stdout.
torchrun_() {
  local n=$1; shift
  local tmp=$LAST_OUT
  echo "-- torchrun --nproc-per-node $n examples/ep_moe.py $*" | tee -a "$LOG"
  timeout "$TMO" $PY -m torch.distributed.run --standalone --nproc-per-node "$n" examples/ep_moe.py "$@" > "$tmp" 2>&1
  local t=$?
  cat "$tmp" >> "$LOG"
  grep -E '^(EP CHECK|# |\| |step )|FAIL|Error|error' "$tmp" | grep -v '^\[rank [0-9]*\]   ok' | tail -n 40
  echo "-- exit $t" | tee -a "$LOG"
  return $t
}

gpu_ns=()
for n in 1 2 4 8; do [ "$n" -le "$ngpu" ] && gpu_ns+=("$n"); done

if [[ " $STEPS " == *" cpu "* ]]; then
  echo "== cpu: exchange logic on gloo" | tee -a "$LOG"
  if $PY -c 'import pytest' 2>/dev/null; then
    $PY -m pytest -q -rs tests/python/test_ep_exchange.py > "$OUT/ep-cpu-tests.txt" 2>&1 || rc=1
    tail -n 5 "$OUT/ep-cpu-tests.txt" | tee -a "$LOG"
  else
    for n in 1 2; do torchrun_ "$n" --check --backend gloo --experts torch || rc=1; done
  fi
fi

if [[ " $STEPS " == *" check "* ]]; then
  if [ ${#gpu_ns[@]} -eq 0 ]; then
    echo "== check: SKIPPED, no GPU (the cpu step is what runs here)" | tee -a "$LOG"
  else
    for n in "${gpu_ns[@]}"; do
      echo "== check: EP over $n GPU(s), NCCL, moegemm experts" | tee -a "$LOG"
      torchrun_ "$n" --check || rc=1
    done
    if [ "$ngpu" -ge 2 ]; then
      echo "== check: EP over 2 GPUs, NCCL, pure-torch experts" | tee -a "$LOG"
      torchrun_ 2 --check --experts torch || rc=1
    else
      echo "== check: 2-GPU EP SKIPPED, $ngpu GPU(s)" | tee -a "$LOG"
    fi
  fi
fi

if [[ " $STEPS " == *" bench "* ]]; then
  if [ ${#gpu_ns[@]} -eq 0 ]; then
    echo "== bench: SKIPPED, no GPU" | tee -a "$LOG"
  else
    : > "$MD"
    for experts in ${EP_BENCH_EXPERTS:-moegemm torch}; do
      for n in "${gpu_ns[@]}"; do
        echo "== bench: $n GPU(s), $experts experts" | tee -a "$LOG"
        torchrun_ "$n" --bench --experts "$experts" ${EP_BENCH_ARGS:-} || rc=1
        grep -E '^(# |\|)' "$LAST_OUT" >> "$MD"
      done
    done
    # one table: each distinct comment line and the header once, then the rows
    awk '/^# / || /^\| GPUs/ || /^\|---/ { if (seen[$0]++) next } { print }' "$MD" > "$MD.tmp" \
      && { grep '^# ' "$MD.tmp"; echo; grep '^|' "$MD.tmp"; } > "$MD"; rm -f "$MD.tmp"
    echo "== bench table ($MD):" | tee -a "$LOG"; tee -a "$LOG" < "$MD"
  fi
fi
echo "ep-check exit: $rc" | tee -a "$LOG"
exit $rc
