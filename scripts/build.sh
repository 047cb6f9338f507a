#!/usr/bin/env bash
# Configures and builds moegemm (library, tests, benchmark) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DMOEGEMM_CUTLASS_DIR="$PWD/.deps/py/cutlass_library/source" >/dev/null
ninja -C build "$@"
