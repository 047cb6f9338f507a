#!/usr/bin/env bash
# The README's test command: build everything and run the tests. Without an
# SM90 GPU the GPU tests report themselves SKIPPED (never passed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure

# ctest counts whole executables; count the individual tests too, so that
# skipped GPU tests are visible in the last line.
passed=0 failed=0 skipped=0
for t in build/tests/moegemm_host_tests build/tests/moegemm_gpu_tests build/tests/moegemm_cublas_forced_tests; do
  out=$(MOEGEMM_USE_CUTLASS=$([[ $t == *cublas_forced* ]] && echo 0 || echo 1) "$t" --gtest_brief=1 2>&1) || true
  p=$(grep -oE '^\[  PASSED  \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
  f=$(grep -oE '^\[  FAILED  \] [0-9]+ test' <<<"$out" | grep -oE '[0-9]+' || echo 0)
  s=$(grep -oE '^\[  SKIPPED \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
  echo "$(basename "$t"): $p passed, $f failed, $s skipped"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
# The Python package's tests (pytest -rs): without PyTorch or a GPU they
# report SKIPPED with their reasons.
py=$(OUT=build/python-tests bash scripts/python-tests.sh 2>&1 | tail -n 1)
read -r p f s <<<"$(grep -oE '[0-9]+' <<<"$py" | head -n 3 | tr '\n' ' ')"
echo "python tests: ${p:-0} passed, ${f:-0} failed, ${s:-0} skipped"
passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) skipped=$((skipped + ${s:-0}))
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
