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
for t in build/tests/moegemm_host_tests build/tests/moegemm_gpu_tests; do
  out=$("$t" --gtest_brief=1 2>&1) || true
  p=$(grep -oE '^\[  PASSED  \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
  f=$(grep -oE '^\[  FAILED  \] [0-9]+ test' <<<"$out" | grep -oE '[0-9]+' || echo 0)
  s=$(grep -oE '^\[  SKIPPED \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
  echo "$(basename "$t"): $p passed, $f failed, $s skipped"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
