#!/usr/bin/env bash
# The main job: build and run the benchmark on the local GPU (all flags are
# passed on; see build/bench/moegemm-bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh moegemm-bench
exec build/bench/moegemm-bench "$@"
