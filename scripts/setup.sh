#!/usr/bin/env bash
# Installs everything moegemm needs to build on a fresh Debian/Ubuntu machine:
# a C++17 compiler, CMake, Ninja, GoogleTest (apt) and the CUTLASS headers
# from the pinned PyPI wheel nvidia-cutlass (into .deps/, no venv needed).
# The CUDA toolkit (nvcc >= 12.4, tested with 13.0) must already be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

CUTLASS_VERSION=4.2.0.0
DEPS=.deps

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v ninja >/dev/null || need_apt+=(ninja-build)
command -v g++ >/dev/null || need_apt+=(g++)
[ -f /usr/include/gtest/gtest.h ] || need_apt+=(libgtest-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v nvcc >/dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-13.0/bin; do [ -x "$d/nvcc" ] && export PATH="$d:$PATH"; done
fi
command -v nvcc >/dev/null || { echo "setup: nvcc (CUDA toolkit) not found; install CUDA 12.4+ first" >&2; exit 1; }

marker="$DEPS/cutlass-$CUTLASS_VERSION.ok"
if [ ! -f "$marker" ]; then
  echo "setup: pip install nvidia-cutlass==$CUTLASS_VERSION into $DEPS/py"
  rm -rf "$DEPS/py"
  python3 -m pip install -q --no-deps --target "$DEPS/py" "nvidia-cutlass==$CUTLASS_VERSION"
  test -f "$DEPS/py/cutlass_library/source/include/cutlass/cutlass.h"
  touch "$marker"
fi
# pytest for the Python package's tests (they report SKIPPED without PyTorch/GPU).
PYTEST_VERSION=8.3.3
if [ ! -f "$DEPS/pytest-$PYTEST_VERSION.ok" ]; then
  echo "setup: pip install pytest==$PYTEST_VERSION into $DEPS/pytest"
  rm -rf "$DEPS/pytest"
  python3 -m pip install -q --target "$DEPS/pytest" "pytest==$PYTEST_VERSION"
  touch "$DEPS/pytest-$PYTEST_VERSION.ok"
fi
echo "setup: ok (CUTLASS $CUTLASS_VERSION headers in $DEPS/py/cutlass_library/source, pytest in $DEPS/pytest)"
