#!/usr/bin/env bash
# Builds here and copies the binaries the GPU machine needs into
# .device-build/ (ignored; pass it in the device tool's `carry`), keeping the
# build tree's layout so the $ORIGIN run paths still find libmoegemm.so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
rm -rf .device-build && mkdir -p .device-build/tests .device-build/bench
cp -a build/libmoegemm.so* build/wgrad_example .device-build/
cp -a build/tests/moegemm_host_tests build/tests/moegemm_gpu_tests build/tests/moegemm_cublas_forced_tests .device-build/tests/
cp -a build/bench/moegemm-bench .device-build/bench/
mkdir -p .device-build/anchors
[ -f ../shared/anchors/wgrad-h100.jsonl ] && cp ../shared/anchors/wgrad-h100.jsonl .device-build/anchors/
git rev-parse HEAD > .device-build/COMMIT 2>/dev/null || echo uncommitted > .device-build/COMMIT
git diff --quiet HEAD 2>/dev/null || echo "dirty" >> .device-build/COMMIT
du -sh .device-build
