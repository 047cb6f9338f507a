"""ctypes binding of libmoegemm.so (the C API of include/moegemm/moegemm.h).

Nothing here needs PyTorch. The structures mirror the C structs field by field,
in the header's order (enums are C ``int``); tests/python/test_lib.py checks
their sizes and offsets against the header with a C compiler where one exists.

Where the library comes from, first match wins:
  1. the environment variable MOEGEMM_LIBRARY (a path to libmoegemm.so);
  2. libmoegemm.so inside this package (what ``pip install ./python`` ships);
  3. <repo>/build/libmoegemm.so, for a source checkout used in place.
"""

import ctypes
import os
import threading

__all__ = [
    "MoegemmError",
    "library",
    "library_path",
    "Status",
    "DType",
    "Memory",
    "Op",
    "Path",
    "WgradConfig",
    "WgradProblem",
    "GemmList",
    "RaggedMProblem",
    "MAX_HOST_GROUPS",
]

MAX_HOST_GROUPS = 1024  # MOEGEMM_MAX_HOST_GROUPS


class Status:
    SUCCESS = 0
    INVALID_ARGUMENT = 1
    MISALIGNED = 2
    WORKSPACE_TOO_SMALL = 3
    UNSUPPORTED_DEVICE = 4
    CUDA_ERROR = 5
    INTERNAL_ERROR = 6

    NAMES = {
        0: "MOEGEMM_STATUS_SUCCESS",
        1: "MOEGEMM_STATUS_INVALID_ARGUMENT",
        2: "MOEGEMM_STATUS_MISALIGNED",
        3: "MOEGEMM_STATUS_WORKSPACE_TOO_SMALL",
        4: "MOEGEMM_STATUS_UNSUPPORTED_DEVICE",
        5: "MOEGEMM_STATUS_CUDA_ERROR",
        6: "MOEGEMM_STATUS_INTERNAL_ERROR",
    }


class DType:
    FP32 = 0
    BF16 = 1
    FP16 = 2


class Memory:
    HOST = 0
    DEVICE = 1


class Op:
    N = 0
    T = 1


class Path:
    UNIFORM_K = 0
    VARIABLE_K = 1
    CUBLAS = 2


class WgradConfig:
    AUTO = 0
    PINGPONG_128x128x64_C2x1 = 1
    COOPERATIVE_256x128x64_C2x1 = 2
    COOPERATIVE_128x256x64_C2x1 = 3
    ONELAUNCH_128x128x64_C2x1 = 4


_enum = ctypes.c_int
_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)
_i64p = ctypes.POINTER(ctypes.c_int64)


class WgradProblem(ctypes.Structure):
    """moegemm_wgrad_problem_t"""

    _fields_ = [
        ("num_groups", ctypes.c_int),
        ("m", ctypes.c_int64),
        ("n", ctypes.c_int64),
        ("total_tokens", ctypes.c_int64),
        ("x", _p),
        ("dy", _p),
        ("group_sizes", _p),  # const int64_t*
        ("group_sizes_location", _enum),
        ("out", _p),
        ("out_ptrs", _pp),  # void* const*
        ("out_ptrs_location", _enum),
        ("out_dtype", _enum),
        ("accumulate", ctypes.c_int),
        ("config", _enum),
    ]


class GemmList(ctypes.Structure):
    """moegemm_gemm_list_t"""

    _fields_ = [
        ("num_groups", ctypes.c_int),
        ("op_a", _enum),
        ("op_b", _enum),
        ("ab_dtype", _enum),
        ("d_dtype", _enum),
        ("m", _i64p),
        ("n", _i64p),
        ("k", _i64p),
        ("a", _pp),
        ("b", _pp),
        ("d", _pp),
        ("bias", _pp),
        ("gelu_input", _pp),
        ("accumulate", ctypes.c_int),
        ("num_streams", ctypes.c_int),
    ]


class RaggedMProblem(ctypes.Structure):
    """moegemm_ragged_m_problem_t"""

    _fields_ = [
        ("num_groups", ctypes.c_int),
        ("total_rows", ctypes.c_int64),
        ("n", ctypes.c_int64),
        ("k", ctypes.c_int64),
        ("ab_dtype", _enum),
        ("d_dtype", _enum),
        ("a", _p),
        ("op_b", _enum),
        ("b", _p),
        ("b_ptrs", _pp),  # const void* const*
        ("b_ptrs_location", _enum),
        ("d", _p),
        ("group_sizes", _p),  # const int64_t*
        ("group_sizes_location", _enum),
        ("accumulate", ctypes.c_int),
        ("zero_unused_rows", ctypes.c_int),
    ]


class MoegemmError(RuntimeError):
    """A moegemm C API call failed. ``status`` is the moegemm_status_t value,
    ``status_name`` its name, ``message`` moegemm_last_error()'s text."""

    def __init__(self, status, message, function=None):
        self.status = int(status)
        self.status_name = Status.NAMES.get(self.status, f"MOEGEMM_STATUS_{self.status}")
        self.message = message
        self.function = function
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{self.status_name}: {message}")


# (name, restype, argtypes); functions the loaded library lacks (an older
# build) are left unbound and fail with a clear message when called.
_SIGNATURES = [
    ("moegemm_wgrad_problem_default", WgradProblem, []),
    ("moegemm_wgrad_workspace_size", _enum, [ctypes.POINTER(WgradProblem), ctypes.POINTER(ctypes.c_size_t)]),
    ("moegemm_wgrad", _enum, [ctypes.POINTER(WgradProblem), _p, ctypes.c_size_t, _p]),
    ("moegemm_wgrad_choose_config", _enum, [ctypes.POINTER(WgradProblem)]),
    ("moegemm_gemm_list_default", GemmList, []),
    ("moegemm_gemm_list_path", _enum,
     [ctypes.POINTER(GemmList), ctypes.POINTER(_enum), ctypes.POINTER(ctypes.c_char_p)]),
    ("moegemm_gemm_list_workspace_size", _enum, [ctypes.POINTER(GemmList), ctypes.POINTER(ctypes.c_size_t)]),
    ("moegemm_gemm_list", _enum, [ctypes.POINTER(GemmList), _p, ctypes.c_size_t, _p]),
    ("moegemm_ragged_m_problem_default", RaggedMProblem, []),
    ("moegemm_ragged_m_path", _enum,
     [ctypes.POINTER(RaggedMProblem), ctypes.POINTER(_enum), ctypes.POINTER(ctypes.c_char_p)]),
    ("moegemm_ragged_m_workspace_size", _enum,
     [ctypes.POINTER(RaggedMProblem), ctypes.POINTER(ctypes.c_size_t)]),
    ("moegemm_ragged_m", _enum, [ctypes.POINTER(RaggedMProblem), _p, ctypes.c_size_t, _p]),
    ("moegemm_path_name", ctypes.c_char_p, [_enum]),
    ("moegemm_device_supported", ctypes.c_int, []),
    ("moegemm_last_error", ctypes.c_char_p, []),
    ("moegemm_status_string", ctypes.c_char_p, [_enum]),
    ("moegemm_wgrad_config_name", ctypes.c_char_p, [_enum]),
]


def _candidates():
    """(path, where it came from) in lookup order."""
    env = os.environ.get("MOEGEMM_LIBRARY")
    if env:
        return [(env, "MOEGEMM_LIBRARY")]
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return [
        (os.path.join(here, "libmoegemm.so"), "the installed package"),
        (os.path.join(repo, "build", "libmoegemm.so"), "the source checkout's build/"),
    ]


def _preload_cuda_runtime():
    """libmoegemm.so needs libcudart/libcublasLt (CUDA 13). PyTorch's CUDA build
    loads its own copies when imported; without it, look in the NVIDIA wheels
    and the CUDA toolkit. Best effort: failures are left to the real load."""
    try:
        import torch  # noqa: F401  (loads libcudart / libcublasLt of its CUDA build)
        return
    except Exception:  # noqa: BLE001
        pass
    dirs = []
    try:
        import nvidia  # noqa: PLC0415

        for base in nvidia.__path__:
            for sub in ("cu13/lib", "cuda_runtime/lib", "cublas/lib"):
                dirs.append(os.path.join(base, sub))
    except ImportError:
        pass
    dirs += ["/usr/local/cuda/lib64", "/usr/local/cuda/lib"]
    for name in ("libcudart.so.13", "libcublasLt.so.13"):
        for d in dirs:
            path = os.path.join(d, name)
            if os.path.exists(path):
                try:
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                    break
                except OSError:
                    continue


_lock = threading.Lock()
_lib = None
_lib_path = None


def library():
    """The loaded libmoegemm.so (ctypes.CDLL), loading it on first use."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path, origin in _candidates():
            if not os.path.exists(path):
                tried.append(f"{path} ({origin}: not found)")
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                _preload_cuda_runtime()
                try:
                    lib = ctypes.CDLL(path)
                except OSError as e:
                    tried.append(f"{path} ({origin}: {e})")
                    continue
            for name, restype, argtypes in _SIGNATURES:
                fn = getattr(lib, name, None)
                if fn is not None:
                    fn.restype = restype
                    fn.argtypes = argtypes
            _lib, _lib_path = lib, path
            return lib
        raise OSError(
            "moegemm: cannot load libmoegemm.so; tried " + "; ".join(tried)
            + ". Install the package with `pip install ./python` (it builds or copies the library), "
            "build the repository (scripts/build.sh), or set MOEGEMM_LIBRARY=/path/to/libmoegemm.so")


def library_path():
    """Path of the loaded library (loads it)."""
    library()
    return _lib_path


def function(name):
    fn = getattr(library(), name, None)
    if fn is None:
        raise MoegemmError(Status.INTERNAL_ERROR,
                           f"{library_path()} has no symbol {name} (a library older than this "
                           "Python package: rebuild it)", name)
    return fn


def has_function(name):
    return getattr(library(), name, None) is not None


def last_error():
    msg = function("moegemm_last_error")()
    return msg.decode("utf-8", "replace") if msg else ""


def check(status, fn_name):
    """Raises MoegemmError for a status other than success."""
    if status != Status.SUCCESS:
        raise MoegemmError(status, last_error(), fn_name)


def call(fn_name, *args):
    """Calls a status-returning function and raises on failure."""
    status = function(fn_name)(*args)
    check(status, fn_name)


def status_string(status):
    s = function("moegemm_status_string")(status)
    return s.decode() if s else ""


def path_name(path):
    s = function("moegemm_path_name")(path)
    return s.decode() if s else ""


def device_supported():
    """Nonzero when the *current* CUDA device can run moegemm's SM90 kernels."""
    return bool(function("moegemm_device_supported")())


def wgrad_problem_default():
    return function("moegemm_wgrad_problem_default")()


def ragged_m_problem_default():
    return function("moegemm_ragged_m_problem_default")()


def gemm_list_default():
    return function("moegemm_gemm_list_default")()


def pointer_array(pointers):
    """A ctypes array of void* (kept alive by the caller for the call's duration)."""
    arr = (ctypes.c_void_p * len(pointers))(*[p if p else None for p in pointers])
    return arr, ctypes.cast(arr, _pp)


def int64_array(values):
    arr = (ctypes.c_int64 * len(values))(*values)
    return arr, ctypes.cast(arr, _i64p)


def wgrad_workspace_size(problem):
    size = ctypes.c_size_t(0)
    call("moegemm_wgrad_workspace_size", ctypes.byref(problem), ctypes.byref(size))
    return size.value


def ragged_m_workspace_size(problem):
    size = ctypes.c_size_t(0)
    call("moegemm_ragged_m_workspace_size", ctypes.byref(problem), ctypes.byref(size))
    return size.value


def gemm_list_workspace_size(problem):
    size = ctypes.c_size_t(0)
    call("moegemm_gemm_list_workspace_size", ctypes.byref(problem), ctypes.byref(size))
    return size.value


def ragged_m_path(problem):
    """(path name, reason) the library picks for this ragged-M problem."""
    path = _enum(0)
    reason = ctypes.c_char_p()
    call("moegemm_ragged_m_path", ctypes.byref(problem), ctypes.byref(path), ctypes.byref(reason))
    return path_name(path.value), (reason.value or b"").decode("utf-8", "replace")


def gemm_list_path(problem):
    path = _enum(0)
    reason = ctypes.c_char_p()
    call("moegemm_gemm_list_path", ctypes.byref(problem), ctypes.byref(path), ctypes.byref(reason))
    return path_name(path.value), (reason.value or b"").decode("utf-8", "replace")
