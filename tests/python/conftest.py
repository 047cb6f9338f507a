"""Shared set-up of moegemm's Python tests.

* The package under test is the installed one (scripts/python-tests.sh installs
  it and sets MOEGEMM_TEST_INSTALLED=1); without an installed package the
  source tree's python/ is used, with <repo>/build/libmoegemm.so.
* Tests marked ``gpu`` need PyTorch with CUDA, an SM90 (Hopper) GPU and a
  loadable libmoegemm.so; elsewhere they are SKIPPED with the reason (pytest
  -rs lists them). Modules that need PyTorch at all skip themselves when it
  is missing (pytest.importorskip).
"""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)  # reference.py

if importlib.util.find_spec("moegemm") is None:
    if os.environ.get("MOEGEMM_TEST_INSTALLED"):
        raise RuntimeError("MOEGEMM_TEST_INSTALLED is set but the moegemm package is not importable")
    sys.path.insert(0, os.path.join(REPO, "python"))

# Lines printed at the end of the run (comparisons with torch._grouped_mm).
NOTES = []


def _gpu_skip_reason():
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to PyTorch (moegemm needs an SM90 GPU)"
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        return f"{torch.cuda.get_device_name()} is compute capability {major}.{minor}; moegemm needs SM90 (H100/H200)"
    try:
        import moegemm
        from moegemm import _lib

        _lib.library()
    except (ImportError, OSError) as e:
        return f"libmoegemm.so cannot be loaded: {e}"
    if not moegemm.device_supported():
        return "libmoegemm.so reports that the current device is not supported"
    return None


_GPU_REASON = "not computed"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs PyTorch with CUDA, an SM90 GPU and libmoegemm.so")


def pytest_collection_modifyitems(config, items):
    global _GPU_REASON
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    _GPU_REASON = _gpu_skip_reason()
    if _GPU_REASON:
        skip = pytest.mark.skip(reason=f"GPU test: {_GPU_REASON}")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)


def pytest_report_header(config):
    lines = []
    try:
        import torch

        lines.append(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"
                     + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
    except ImportError:
        lines.append("torch: not installed (tests that need it are skipped)")
    try:
        import moegemm

        lines.append(f"moegemm package: {os.path.dirname(moegemm.__file__)}")
        try:
            lines.append(f"libmoegemm.so: {moegemm.library_path()}")
        except OSError as e:
            lines.append(f"libmoegemm.so: not loadable ({e})")
    except ImportError as e:
        lines.append(f"moegemm package: not importable ({e})")
    return lines


def pytest_terminal_summary(terminalreporter):
    if NOTES:
        terminalreporter.section("moegemm vs torch._grouped_mm")
        for line in NOTES:
            terminalreporter.write_line(line)


@pytest.fixture
def note(record_property):
    """note(text): a line for the end-of-run summary and the junit report."""
    def add(text):
        NOTES.append(text)
        record_property("note", text)
    return add
