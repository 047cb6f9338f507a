#!/usr/bin/env bash
# Installs the moegemm Python package (python/) and runs its pytest suite
# (tests/python) with -rs, so that skipped tests show their reasons. GPU tests
# need PyTorch with CUDA and an SM90 GPU; elsewhere they report SKIPPED.
#
#   scripts/python-tests.sh [--python PY] [--target DIR | --into-env] [--out DIR] [-- PYTEST_ARGS...]
#
#   --python PY   interpreter that has PyTorch (default: $PYTHON or python3)
#   --target DIR  pip install --target DIR (default: a fresh temporary folder), put on PYTHONPATH
#   --into-env    pip install into PY's own environment (a venv, say) instead
#   --out DIR     where python-tests.xml (junit) and python-tests.txt go (default: $OUT or build/python-tests)
#
# The package is installed with `pip install --no-build-isolation --no-deps ./python`
# and ships MOEGEMM_PREBUILT_LIBRARY when set, else build/libmoegemm.so when it
# exists (no compiler needed), else setup.py builds the library with CMake.
# Without PyTorch nothing is installed and the suite runs from the source tree
# (everything that needs PyTorch reports SKIPPED).
# The last line printed (and of python-tests.txt) is "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

PY=${PYTHON:-python3}
TARGET=""
INTO_ENV=0
OUTDIR=${OUT:-build/python-tests}
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY=$2; shift 2 ;;
    --target) TARGET=$2; shift 2 ;;
    --into-env) INTO_ENV=1; shift ;;
    --out) OUTDIR=$2; shift 2 ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) PYTEST_ARGS+=("$1"); shift ;;
  esac
done
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
JUNIT=$OUTDIR/python-tests.xml
SUMMARY=$OUTDIR/python-tests.txt
LOG=$OUTDIR/python-tests.log
rm -f "$JUNIT" "$SUMMARY"

finish() {  # $1 passed, $2 failed, $3 skipped, $4 exit status
  echo "$1 passed, $2 failed, $3 skipped" | tee -a "$SUMMARY"
  exit "$4"
}

# pytest from scripts/setup.sh when the interpreter has none.
if ! "$PY" -c "import pytest" >/dev/null 2>&1 && [ -d "$REPO/.deps/pytest" ]; then
  export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$REPO/.deps/pytest"
fi
if ! "$PY" -c "import pytest" >/dev/null 2>&1; then
  echo "python-tests: pytest is not installed for $PY; no Python test ran" | tee "$SUMMARY"
  finish 0 0 0 0
fi

export PYTHONPATH=${PYTHONPATH:-}
if "$PY" -c "import torch" >/dev/null 2>&1; then
  lib=${MOEGEMM_PREBUILT_LIBRARY:-}
  [ -z "$lib" ] && [ -f build/libmoegemm.so ] && lib=$REPO/build/libmoegemm.so
  [ -n "$lib" ] && lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
  pip_args=(-m pip install --no-build-isolation --no-deps --no-cache-dir --disable-pip-version-check -q)
  if [ "$INTO_ENV" = 1 ]; then
    where="the environment of $PY"
    pip_args+=(--force-reinstall)
  else
    if [ -z "$TARGET" ]; then
      TARGET=$(mktemp -d /tmp/moegemm-py.XXXXXX)
      trap 'rm -rf "$TARGET"' EXIT
    fi
    mkdir -p "$TARGET"
    TARGET=$(cd "$TARGET" && pwd)
    where=$TARGET
    pip_args+=(--upgrade --target "$TARGET")
    export PYTHONPATH=$TARGET${PYTHONPATH:+:$PYTHONPATH}
  fi
  echo "python-tests: installing ./python into $where (library: ${lib:-built by setup.py with CMake})"
  # in-tree build leftovers in python/ must not leak an older library into the wheel
  rm -rf python/build python/moegemm.egg-info
  if ! MOEGEMM_PREBUILT_LIBRARY=$lib "$PY" "${pip_args[@]}" ./python > "$LOG" 2>&1; then
    tail -n 40 "$LOG"
    echo "python-tests: pip install ./python failed (log: $LOG)" | tee "$SUMMARY"
    finish 0 1 0 1
  fi
  rm -rf python/build python/moegemm.egg-info
  export MOEGEMM_TEST_INSTALLED=1
else
  echo "python-tests: PyTorch is not importable by $PY: running from the source tree; tests that need it report SKIPPED"
fi

# pytest runs from tests/python so that the repo's python/ folder is not what `import moegemm` finds.
# Paths among the pytest arguments (relative to the repo or to tests/python) replace the default ".".
args=() have_path=0
for a in ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}; do
  p=${a%%::*}
  if [[ "$a" != -* ]] && [ -e "$REPO/$p" ]; then args+=("$REPO/$a"); have_path=1
  elif [[ "$a" != -* ]] && [ -e "$REPO/tests/python/$p" ]; then args+=("$a"); have_path=1
  else args+=("$a"); fi
done
[ "$have_path" = 1 ] || args+=(.)
(cd tests/python && "$PY" -m pytest -rs -p no:cacheprovider --junitxml="$JUNIT" "${args[@]}")
rc=$?
# rc 5: no test collected (a filter that matched nothing): not a failure of the suite
counts=$("$PY" - "$JUNIT" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - failed - skipped, failed, skipped)
EOF
)
read -r passed failed skipped <<<"$counts"
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$failed" -eq 0 ]; then
  failed=1  # pytest itself failed (a usage or collection error not in the report)
fi
status=0
[ "$failed" -ne 0 ] && status=1
finish "$passed" "$failed" "$skipped" "$status"
