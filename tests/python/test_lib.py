"""The ctypes layer: struct layouts against the C header, defaults, errors,
library lookup. Needs libmoegemm.so and PyTorch (the package imports it), no GPU."""

import ctypes
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

from conftest import REPO  # noqa: E402

import moegemm  # noqa: E402
from moegemm import _lib  # noqa: E402


def _loaded():
    try:
        _lib.library()
        return None
    except OSError as e:
        return str(e)


needs_library = pytest.mark.skipif(_loaded() is not None, reason=f"libmoegemm.so not loadable: {_loaded()}")

STRUCTS = {
    "moegemm_wgrad_problem_t": _lib.WgradProblem,
    "moegemm_gemm_list_t": _lib.GemmList,
    "moegemm_ragged_m_problem_t": _lib.RaggedMProblem,
}


def _cuda_include():
    cands = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]
    for c in cands:
        if c and os.path.exists(os.path.join(c, "include", "cuda_runtime_api.h")):
            return os.path.join(c, "include")
    try:
        import nvidia

        for base in nvidia.__path__:
            for sub in ("cu13/include", "cuda_runtime/include"):
                d = os.path.join(base, sub)
                if os.path.exists(os.path.join(d, "cuda_runtime_api.h")):
                    return d
    except ImportError:
        pass
    return None


def test_struct_layout_matches_header(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    inc = _cuda_include()
    if cc is None or inc is None:
        pytest.skip(f"needs a C compiler and cuda_runtime_api.h (cc: {cc}, CUDA include: {inc})")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <moegemm/moegemm.h>", "int main(void) {"]
    for cname, cls in STRUCTS.items():
        lines.append(f'  printf("{cname} sizeof %zu\\n", sizeof({cname}));')
        for field, _ in cls._fields_:
            lines.append(f'  printf("{cname} {field} %zu\\n", offsetof({cname}, {field}));')
    lines += ['  printf("enum %zu\\n", sizeof(moegemm_dtype_t));', "  return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c99", "-I", os.path.join(REPO, "include"), "-I", inc, str(src), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    got = {}
    for line in out:
        parts = line.split()
        if len(parts) == 3:
            got[(parts[0], parts[1])] = int(parts[2])
        elif len(parts) == 2:
            got[(parts[0], None)] = int(parts[1])
    assert got[("enum", None)] == ctypes.sizeof(ctypes.c_int)
    for cname, cls in STRUCTS.items():
        assert got[(cname, "sizeof")] == ctypes.sizeof(cls), cname
        for field, _ in cls._fields_:
            assert got[(cname, field)] == getattr(cls, field).offset, f"{cname}.{field}"


def test_header_fields_are_all_mirrored():
    """Every field the header declares in the three structs is in the ctypes mirror, in order."""
    header = open(os.path.join(REPO, "include", "moegemm", "moegemm.h"), encoding="utf-8").read()
    for cname, cls in STRUCTS.items():
        tag = cname[:-2]  # moegemm_wgrad_problem_t -> moegemm_wgrad_problem
        body = header.split(f"typedef struct {tag} {{", 1)[1].split(f"}} {cname};", 1)[0]
        body = re.sub(r"/\*.*?\*/", " ", body, flags=re.S)  # comments may hold ';'
        names = []
        for raw in body.split(";"):
            decl = raw.strip()
            if not decl:
                continue
            # "moegemm_op_t op_a, op_b" declares two
            head, *more = [p.strip() for p in decl.split(",")]
            names.append(head.replace("*", " ").split()[-1])
            names += more
        assert names == [f for f, _ in cls._fields_], cname


@needs_library
def test_defaults():
    p = _lib.wgrad_problem_default()
    assert (p.num_groups, p.out_dtype, p.accumulate, p.config) == (0, _lib.DType.FP32, 0, _lib.WgradConfig.AUTO)
    assert p.group_sizes_location == _lib.Memory.HOST and p.out_ptrs_location == _lib.Memory.HOST
    assert not p.out and not p.out_ptrs


@needs_library
def test_errors_carry_status_and_message():
    p = _lib.wgrad_problem_default()
    p.num_groups = 0
    with pytest.raises(moegemm.MoegemmError) as info:
        _lib.wgrad_workspace_size(p)
    e = info.value
    assert e.status == _lib.Status.INVALID_ARGUMENT
    assert e.status_name == "MOEGEMM_STATUS_INVALID_ARGUMENT"
    assert "num_groups" in e.message and "num_groups" in str(e)
    assert _lib.status_string(e.status) == e.status_name


@needs_library
def test_library_lookup_env_override(tmp_path):
    """MOEGEMM_LIBRARY wins, and a wrong path is named in the error."""
    code = textwrap.dedent("""
        import moegemm
        from moegemm import _lib
        try:
            _lib.library()
        except OSError as e:
            print("ERR", e)
    """)
    missing = str(tmp_path / "nope" / "libmoegemm.so")
    env = dict(os.environ, MOEGEMM_LIBRARY=missing, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "ERR" in r.stdout and missing in r.stdout and "MOEGEMM_LIBRARY" in r.stdout
    env["MOEGEMM_LIBRARY"] = _lib.library_path()
    r = subprocess.run([sys.executable, "-c", code + "print(_lib.library_path())"], env=env,
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip().endswith(_lib.library_path())
