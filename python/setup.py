"""Build hook of the moegemm Python package: puts libmoegemm.so inside the package.

    pip install ./python                                    # builds the library with CMake
    MOEGEMM_PREBUILT_LIBRARY=build/libmoegemm.so \\
        pip install --no-build-isolation --no-deps ./python  # copies a library built before

Environment:
  MOEGEMM_PREBUILT_LIBRARY  path of a libmoegemm.so to ship as is (no compiler needed)
  MOEGEMM_SOURCE_DIR        the moegemm repository (default: the folder above this one)
  MOEGEMM_CUTLASS_DIR       CUTLASS source root; default: the repo's .deps/ (scripts/setup.sh),
                            an importable cutlass_library, or the pinned wheel
                            nvidia-cutlass==4.2.0.0 fetched with `pip install --no-deps --target`
  MOEGEMM_CMAKE_BUILD_DIR   CMake build folder to (re)use (default: setuptools' build_temp)
  MOEGEMM_BUILD_JOBS        parallel compile jobs (default: CMake's choice)
"""

import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
CUTLASS_PIN = "nvidia-cutlass==4.2.0.0"
LIB_NAME = "libmoegemm.so"

# find_package(GTest REQUIRED) in the repo's tests/ must succeed to configure;
# only the library target is built here, so a stub stands in for GoogleTest.
GTEST_STUB = """# Stub written by python/setup.py: only libmoegemm is built, never the tests.
foreach(t gtest gtest_main gmock gmock_main)
  if(NOT TARGET GTest::${t})
    add_library(GTest::${t} INTERFACE IMPORTED)
  endif()
endforeach()
set(GTest_FOUND TRUE)
"""


def log(msg):
    print(f"moegemm setup: {msg}", file=sys.stderr, flush=True)


def source_dir():
    src = os.path.abspath(os.environ.get("MOEGEMM_SOURCE_DIR") or os.path.dirname(HERE))
    if not os.path.exists(os.path.join(src, "include", "moegemm", "moegemm.h")):
        raise RuntimeError(f"{src} is not the moegemm repository (no include/moegemm/moegemm.h); set "
                           "MOEGEMM_SOURCE_DIR, or MOEGEMM_PREBUILT_LIBRARY to ship a library built before")
    return src


def cutlass_dir(src, scratch):
    def ok(d):
        return d and os.path.exists(os.path.join(d, "include", "cutlass", "cutlass.h"))

    env = os.environ.get("MOEGEMM_CUTLASS_DIR")
    if env:
        if not ok(env):
            raise RuntimeError(f"MOEGEMM_CUTLASS_DIR={env} holds no include/cutlass/cutlass.h")
        return env
    candidates = [os.path.join(src, ".deps", "py", "cutlass_library", "source"),
                  os.path.join(scratch, "cutlass", "cutlass_library", "source")]
    try:
        import cutlass_library  # noqa: PLC0415

        candidates.append(os.path.join(os.path.dirname(cutlass_library.__file__), "source"))
    except ImportError:
        pass
    for d in candidates:
        if ok(d):
            return d
    target = os.path.join(scratch, "cutlass")
    log(f"fetching the CUTLASS headers: pip install --no-deps --target {target} {CUTLASS_PIN}")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target,
                           CUTLASS_PIN])
    d = os.path.join(target, "cutlass_library", "source")
    if not ok(d):
        raise RuntimeError(f"{CUTLASS_PIN} installed into {target} holds no cutlass_library/source/include")
    return d


def build_library(scratch):
    src = source_dir()
    build = os.path.abspath(os.environ.get("MOEGEMM_CMAKE_BUILD_DIR") or os.path.join(scratch, "cmake"))
    os.makedirs(build, exist_ok=True)
    stub = os.path.join(scratch, "gtest-stub")
    os.makedirs(stub, exist_ok=True)
    with open(os.path.join(stub, "GTestConfig.cmake"), "w", encoding="utf-8") as f:
        f.write(GTEST_STUB)
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake (>= 3.24) not found on PATH; install it, or set MOEGEMM_PREBUILT_LIBRARY")
    env = dict(os.environ)
    if shutil.which("nvcc") is None:
        for d in ("/usr/local/cuda/bin",):
            if os.path.exists(os.path.join(d, "nvcc")):
                env["PATH"] = d + os.pathsep + env.get("PATH", "")
    configure = [cmake, "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                 f"-DMOEGEMM_CUTLASS_DIR={cutlass_dir(src, scratch)}", f"-DGTest_DIR={stub}",
                 "-DMOEGEMM_BUILD_TESTS=OFF", "-DMOEGEMM_BUILD_BENCH=OFF", "--no-warn-unused-cli"]
    if shutil.which("ninja") and not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        configure += ["-G", "Ninja"]
    log(" ".join(configure))
    subprocess.check_call(configure, env=env)
    cmd = [cmake, "--build", build, "--target", "moegemm"]
    if os.environ.get("MOEGEMM_BUILD_JOBS"):
        cmd += ["--parallel", os.environ["MOEGEMM_BUILD_JOBS"]]
    log(" ".join(cmd))
    subprocess.check_call(cmd, env=env)
    lib = os.path.join(build, LIB_NAME)
    if not os.path.exists(lib):
        raise RuntimeError(f"the CMake build produced no {lib}")
    return lib


class BuildPyWithLibrary(build_py):
    """build_py that also places libmoegemm.so into the built package."""

    def run(self):
        super().run()
        prebuilt = os.environ.get("MOEGEMM_PREBUILT_LIBRARY")
        if prebuilt:
            # pip runs this hook in python/: a relative path is taken from the caller's $PWD
            if not os.path.isabs(prebuilt) and os.environ.get("PWD"):
                prebuilt = os.path.join(os.environ["PWD"], prebuilt)
            if not os.path.isfile(prebuilt):
                raise RuntimeError(f"MOEGEMM_PREBUILT_LIBRARY={prebuilt} is not a file")
            lib = prebuilt
            log(f"shipping the prebuilt {lib}")
        else:
            scratch = os.path.abspath(os.path.join(self.get_finalized_command("build").build_temp, "moegemm"))
            lib = build_library(scratch)
        dest = os.path.join(self.build_lib, "moegemm", LIB_NAME)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(lib, dest)  # follows symbolic links
        os.chmod(dest, 0o755)


class BinaryDistribution(Distribution):
    """The wheel carries a shared library: platform-specific."""

    def has_ext_modules(self):
        return True


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildPyWithLibrary})
