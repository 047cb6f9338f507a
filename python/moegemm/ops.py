"""PyTorch custom ops over the moegemm C API (namespace ``moegemm``).

Ops (torch.ops.moegemm.*), each with a fake (meta) implementation so that
torch.compile(fullgraph=True) traces through them:

  grouped_wgrad(x, dy, group_sizes, out_dtype) -> Tensor[g, m, n]
  grouped_wgrad_out(x, dy, group_sizes, out, accumulate) -> ()      mutates out
  grouped_wgrad_list(x, dy, group_sizes, outs, accumulate) -> ()    mutates outs
  grouped_mm(a, b, group_sizes, trans_b, out_dtype) -> Tensor[T, n]
  grouped_mm_list(a, bs, group_sizes, trans_b, out_dtype) -> Tensor[T, n]

``group_sizes`` is a 1-D int64 tensor of the g per-group row (token) counts,
on the GPU (never read by the host: no sync, CUDA-graph capturable) or on the
CPU. Tokens are grouped by expert: group i owns rows [off_i, off_i + k_i) with
off_i = k_0 + ... + k_{i-1}. (Use :func:`offsets_to_group_sizes` to turn
cumulative offsets into sizes.) The kernels run on the current CUDA stream of
the inputs' device, under a device guard, with a workspace from PyTorch's
caching allocator (stream-ordered, graph-safe).

The Python functions :func:`grouped_wgrad`, :func:`grouped_wgrad_list` and
:func:`grouped_mm` are the convenient entry points.
"""

from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from . import _lib

__all__ = [
    "grouped_wgrad",
    "grouped_wgrad_list",
    "grouped_mm",
    "offsets_to_group_sizes",
    "device_supported",
]

_MOEGEMM_DTYPE = {torch.float32: _lib.DType.FP32, torch.bfloat16: _lib.DType.BF16, torch.float16: _lib.DType.FP16}


# ---------------------------------------------------------------------------
# checks (shared by the real and the fake implementations; their messages name
# the op and the tensor)
# ---------------------------------------------------------------------------

def _fail(op, msg, exc=ValueError):
    raise exc(f"moegemm.{op}: {msg}")


def _shape(t):
    return tuple(t.shape)


def _check_tensor(op, name, t, ndim, dtypes):
    if not isinstance(t, Tensor):
        _fail(op, f"{name} must be a torch.Tensor, got {type(t).__name__}", TypeError)
    if t.dim() != ndim:
        _fail(op, f"{name} must be {ndim}-D, got shape {_shape(t)}")
    if t.dtype not in dtypes:
        want = " or ".join(str(d) for d in dtypes)
        _fail(op, f"{name} must be {want}, got {t.dtype}", TypeError)
    if not t.is_contiguous():
        _fail(op, f"{name} must be contiguous (dense row-major), got shape {_shape(t)} with strides "
                  f"{tuple(t.stride())}; call .contiguous() on it")


def _check_same_device(op, name, t, device):
    if t.device != device:
        _fail(op, f"{name} is on {t.device}, expected {device} (the device of the other operands)")


def _check_group_sizes(op, group_sizes, device, g=None):
    if not isinstance(group_sizes, Tensor):
        _fail(op, f"group_sizes must be a 1-D int64 tensor, got {type(group_sizes).__name__}", TypeError)
    if group_sizes.dim() != 1:
        _fail(op, f"group_sizes must be 1-D (one row count per group), got shape {_shape(group_sizes)}")
    if group_sizes.dtype != torch.int64:
        _fail(op, f"group_sizes must be int64, got {group_sizes.dtype}", TypeError)
    if not group_sizes.is_contiguous():
        _fail(op, f"group_sizes must be contiguous, got strides {tuple(group_sizes.stride())}")
    if group_sizes.device.type != "cpu" and group_sizes.device != device:
        _fail(op, f"group_sizes is on {group_sizes.device}: it must be on the CPU or on {device}")
    if g is not None and group_sizes.shape[0] != g:
        _fail(op, f"group_sizes has {group_sizes.shape[0]} entries, expected {g} (one per group)")
    if group_sizes.shape[0] < 1:
        _fail(op, "group_sizes must have at least one entry (g >= 1)")


def _check_real(op, named_tensors, device):
    """Checks that only real (non-fake) tensors can fail: a CUDA device and
    16-byte aligned data pointers."""
    if device.type != "cuda":
        name = named_tensors[0][0]
        _fail(op, f"{name} is on {device}: moegemm runs on CUDA devices (an SM90 GPU)")
    for name, t in named_tensors:
        if t.numel() and t.data_ptr() % 16:
            _fail(op, f"{name}'s data pointer (0x{t.data_ptr():x}) is not 16-byte aligned (a view with a "
                      "storage offset?); pass a freshly allocated or .clone()d tensor")


def _check_multiple_of_8(op, what, value):
    if value % 8:
        _fail(op, f"{what} must be a multiple of 8 (16-byte rows), got {value}")


def _sizes_location(group_sizes):
    return _lib.Memory.HOST if group_sizes.device.type == "cpu" else _lib.Memory.DEVICE


def _ptr(t):
    return t.data_ptr() if t.numel() else None


def _workspace(nbytes, device):
    if nbytes == 0:
        return None, None, 0
    ws = torch.empty(nbytes, dtype=torch.uint8, device=device)
    return ws, ws.data_ptr(), nbytes


def _stream(device):
    return torch.cuda.current_stream(device).cuda_stream


# ---------------------------------------------------------------------------
# wgrad: out[i] (+)= dy_i^T x_i
# ---------------------------------------------------------------------------

_WGRAD_OUT_DTYPES = (torch.float32, torch.bfloat16)


def _check_wgrad_inputs(op, x, dy, group_sizes):
    _check_tensor(op, "x", x, 2, (torch.bfloat16,))
    _check_tensor(op, "dy", dy, 2, (torch.bfloat16,))
    _check_same_device(op, "dy", dy, x.device)
    if dy.shape[0] != x.shape[0]:
        _fail(op, f"x and dy must have the same number of rows (tokens): x is {_shape(x)}, dy is {_shape(dy)}")
    _check_group_sizes(op, group_sizes, x.device)
    _check_multiple_of_8(op, "dy.shape[1] (m, rows of each gradient)", dy.shape[1])
    _check_multiple_of_8(op, "x.shape[1] (n, columns of each gradient)", x.shape[1])
    return group_sizes.shape[0], dy.shape[1], x.shape[1]


def _wgrad_launch(op, x, dy, group_sizes, out, outs, accumulate):
    """out: [g, m, n] tensor, or outs: g tensors [m, n]."""
    device = x.device
    named = [("x", x), ("dy", dy)]
    if out is not None:
        named.append(("out", out))
    else:
        named += [(f"outs[{i}]", t) for i, t in enumerate(outs)]
    _check_real(op, named, device)
    g, m, n = group_sizes.shape[0], dy.shape[1], x.shape[1]
    target = out if out is not None else outs[0]
    p = _lib.wgrad_problem_default()
    p.num_groups = g
    p.m, p.n, p.total_tokens = m, n, x.shape[0]
    p.x, p.dy = _ptr(x), _ptr(dy)
    p.group_sizes = group_sizes.data_ptr()
    p.group_sizes_location = _sizes_location(group_sizes)
    keep = None
    if out is not None:
        p.out = out.data_ptr()
    else:
        keep, p.out_ptrs = _lib.pointer_array([t.data_ptr() for t in outs])
        p.out_ptrs_location = _lib.Memory.HOST
    p.out_dtype = _MOEGEMM_DTYPE[target.dtype]
    p.accumulate = 1 if accumulate else 0
    with torch.cuda.device(device):
        nbytes = _lib.wgrad_workspace_size(p)
        ws, ws_ptr, nbytes = _workspace(nbytes, device)
        _lib.call("moegemm_wgrad", p, ws_ptr, nbytes, _stream(device))
    del keep, ws  # the caching allocator keeps ws's memory stream-ordered


@torch.library.custom_op("moegemm::grouped_wgrad", mutates_args=())
def _grouped_wgrad_op(x: Tensor, dy: Tensor, group_sizes: Tensor, out_dtype: torch.dtype) -> Tensor:
    op = "grouped_wgrad"
    g, m, n = _check_wgrad_inputs(op, x, dy, group_sizes)
    if out_dtype not in _WGRAD_OUT_DTYPES:
        _fail(op, f"out_dtype must be torch.float32 or torch.bfloat16, got {out_dtype}", TypeError)
    out = torch.empty((g, m, n), dtype=out_dtype, device=x.device)
    _wgrad_launch(op, x, dy, group_sizes, out, None, accumulate=False)
    return out


@_grouped_wgrad_op.register_fake
def _(x, dy, group_sizes, out_dtype):
    op = "grouped_wgrad"
    g, m, n = _check_wgrad_inputs(op, x, dy, group_sizes)
    if out_dtype not in _WGRAD_OUT_DTYPES:
        _fail(op, f"out_dtype must be torch.float32 or torch.bfloat16, got {out_dtype}", TypeError)
    return x.new_empty((g, m, n), dtype=out_dtype)


def _check_wgrad_out(op, x, dy, group_sizes, out):
    g, m, n = _check_wgrad_inputs(op, x, dy, group_sizes)
    _check_tensor(op, "out", out, 3, _WGRAD_OUT_DTYPES)
    _check_same_device(op, "out", out, x.device)
    if _shape(out) != (g, m, n):
        _fail(op, f"out must have shape (g, m, n) = {(g, m, n)} (groups, dy.shape[1], x.shape[1]), "
                  f"got {_shape(out)}")


@torch.library.custom_op("moegemm::grouped_wgrad_out", mutates_args=("out",))
def _grouped_wgrad_out_op(x: Tensor, dy: Tensor, group_sizes: Tensor, out: Tensor, accumulate: bool) -> None:
    _check_wgrad_out("grouped_wgrad", x, dy, group_sizes, out)
    _wgrad_launch("grouped_wgrad", x, dy, group_sizes, out, None, accumulate)


@_grouped_wgrad_out_op.register_fake
def _(x, dy, group_sizes, out, accumulate):
    _check_wgrad_out("grouped_wgrad", x, dy, group_sizes, out)


def _check_wgrad_list(op, x, dy, group_sizes, outs):
    g, m, n = _check_wgrad_inputs(op, x, dy, group_sizes)
    if len(outs) != g:
        _fail(op, f"outs has {len(outs)} tensors, expected {g} (one per group, as group_sizes)")
    dtype = None
    for i, t in enumerate(outs):
        name = f"outs[{i}]"
        _check_tensor(op, name, t, 2, _WGRAD_OUT_DTYPES)
        _check_same_device(op, name, t, x.device)
        if _shape(t) != (m, n):
            _fail(op, f"{name} must have shape (m, n) = {(m, n)} (dy.shape[1], x.shape[1]), got {_shape(t)}")
        if dtype is None:
            dtype = t.dtype
        elif t.dtype != dtype:
            _fail(op, f"{name} is {t.dtype} but outs[0] is {dtype}: all outputs must have one dtype", TypeError)


@torch.library.custom_op("moegemm::grouped_wgrad_list", mutates_args=("outs",))
def _grouped_wgrad_list_op(x: Tensor, dy: Tensor, group_sizes: Tensor, outs: List[Tensor],
                           accumulate: bool) -> None:
    _check_wgrad_list("grouped_wgrad_list", x, dy, group_sizes, outs)
    _wgrad_launch("grouped_wgrad_list", x, dy, group_sizes, None, outs, accumulate)


@_grouped_wgrad_list_op.register_fake
def _(x, dy, group_sizes, outs, accumulate):
    _check_wgrad_list("grouped_wgrad_list", x, dy, group_sizes, outs)


# ---------------------------------------------------------------------------
# ragged M: out[rows_i] = a[rows_i] @ op(b_i)
# ---------------------------------------------------------------------------

_AB_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def _check_mm_common(op, a, group_sizes, out_dtype):
    _check_tensor(op, "a", a, 2, _AB_DTYPES)
    _check_group_sizes(op, group_sizes, a.device)
    out_dtype = a.dtype if out_dtype is None else out_dtype
    if out_dtype not in (torch.float32, a.dtype):
        _fail(op, f"out_dtype must be torch.float32 or a's dtype ({a.dtype}), got {out_dtype}", TypeError)
    return out_dtype


def _mm_dims(op, a, bshape, trans_b, what):
    """(n, k) of one B_i of shape bshape ([n, k] when trans_b, else [k, n])."""
    n, k = (bshape[0], bshape[1]) if trans_b else (bshape[1], bshape[0])
    if k != a.shape[1]:
        layout = "[n, k]" if trans_b else "[k, n]"
        _fail(op, f"{what} is {layout} = {tuple(bshape)} with trans_b={trans_b}, so k = {k}, but a is "
                  f"{_shape(a)} (k = {a.shape[1]})")
    if n < 1 or k < 1:
        _fail(op, f"n and k must be >= 1, got n = {n}, k = {k} ({what} {tuple(bshape)})")
    return n, k


def _check_mm(op, a, b, group_sizes, trans_b, out_dtype):
    out_dtype = _check_mm_common(op, a, group_sizes, out_dtype)
    _check_tensor(op, "b", b, 3, (a.dtype,))
    _check_same_device(op, "b", b, a.device)
    g = b.shape[0]
    _check_group_sizes(op, group_sizes, a.device, g)
    n, k = _mm_dims(op, a, _shape(b)[1:], trans_b, "each b[i]")
    return out_dtype, n


def _check_mm_list(op, a, bs, group_sizes, trans_b, out_dtype):
    out_dtype = _check_mm_common(op, a, group_sizes, out_dtype)
    _check_group_sizes(op, group_sizes, a.device, len(bs))
    n = None
    for i, t in enumerate(bs):
        name = f"b[{i}]"
        _check_tensor(op, name, t, 2, (a.dtype,))
        _check_same_device(op, name, t, a.device)
        ni, _ = _mm_dims(op, a, _shape(t), trans_b, name)
        if n is None:
            n = ni
        elif ni != n:
            _fail(op, f"{name} has shape {_shape(t)}, b[0] has {_shape(bs[0])}: all b[i] must have one shape")
    return out_dtype, n


def _new_mm_output(a, n, out_dtype):
    """[T, n], uninitialised: the library writes every row (zero_unused_rows
    clears the rows past sum(group_sizes), on the device, no sync)."""
    return torch.empty((a.shape[0], n), dtype=out_dtype, device=a.device)


def _mm_launch(op, a, b, bs, group_sizes, trans_b, out):
    device = a.device
    named = [("a", a), ("out", out)]
    named += [("b", b)] if b is not None else [(f"b[{i}]", t) for i, t in enumerate(bs)]
    _check_real(op, named, device)
    p = _lib.ragged_m_problem_default()
    p.num_groups = group_sizes.shape[0]
    p.total_rows = a.shape[0]
    p.n, p.k = out.shape[1], a.shape[1]
    p.ab_dtype = _MOEGEMM_DTYPE[a.dtype]
    p.d_dtype = _MOEGEMM_DTYPE[out.dtype]
    p.a = _ptr(a)
    p.op_b = _lib.Op.T if trans_b else _lib.Op.N
    keep = None
    if b is not None:
        p.b = b.data_ptr()
    else:
        keep, p.b_ptrs = _lib.pointer_array([t.data_ptr() for t in bs])
        p.b_ptrs_location = _lib.Memory.HOST
    p.d = _ptr(out)
    p.group_sizes = group_sizes.data_ptr()
    p.group_sizes_location = _sizes_location(group_sizes)
    p.accumulate = 0
    p.zero_unused_rows = 1
    with torch.cuda.device(device):
        nbytes = _lib.ragged_m_workspace_size(p)
        ws, ws_ptr, nbytes = _workspace(nbytes, device)
        _lib.call("moegemm_ragged_m", p, ws_ptr, nbytes, _stream(device))
    del keep, ws


@torch.library.custom_op("moegemm::grouped_mm", mutates_args=())
def _grouped_mm_op(a: Tensor, b: Tensor, group_sizes: Tensor, trans_b: bool,
                   out_dtype: Optional[torch.dtype] = None) -> Tensor:
    op = "grouped_mm"
    out_dtype, n = _check_mm(op, a, b, group_sizes, trans_b, out_dtype)
    out = _new_mm_output(a, n, out_dtype)
    if a.shape[0]:
        _mm_launch(op, a, b, None, group_sizes, trans_b, out)
    return out


@_grouped_mm_op.register_fake
def _(a, b, group_sizes, trans_b, out_dtype=None):
    out_dtype, n = _check_mm("grouped_mm", a, b, group_sizes, trans_b, out_dtype)
    return a.new_empty((a.shape[0], n), dtype=out_dtype)


@torch.library.custom_op("moegemm::grouped_mm_list", mutates_args=())
def _grouped_mm_list_op(a: Tensor, bs: List[Tensor], group_sizes: Tensor, trans_b: bool,
                        out_dtype: Optional[torch.dtype] = None) -> Tensor:
    op = "grouped_mm"
    out_dtype, n = _check_mm_list(op, a, bs, group_sizes, trans_b, out_dtype)
    out = _new_mm_output(a, n, out_dtype)
    if a.shape[0]:
        _mm_launch(op, a, None, bs, group_sizes, trans_b, out)
    return out


@_grouped_mm_list_op.register_fake
def _(a, bs, group_sizes, trans_b, out_dtype=None):
    out_dtype, n = _check_mm_list("grouped_mm", a, bs, group_sizes, trans_b, out_dtype)
    return a.new_empty((a.shape[0], n), dtype=out_dtype)


# ---------------------------------------------------------------------------
# public Python functions
# ---------------------------------------------------------------------------

def _as_group_sizes(group_sizes):
    if isinstance(group_sizes, Tensor):
        return group_sizes
    if isinstance(group_sizes, (list, tuple)):
        return torch.tensor([int(k) for k in group_sizes], dtype=torch.int64)
    raise TypeError(f"moegemm: group_sizes must be a 1-D int64 tensor (or a list of ints), "
                    f"got {type(group_sizes).__name__}")


def grouped_wgrad(x: Tensor, dy: Tensor, group_sizes, *, out: Union[Tensor, Sequence[Tensor], None] = None,
                  accumulate: bool = False, out_dtype: Optional[torch.dtype] = None):
    """Weight gradient of a grouped linear layer, ragged over tokens (variable K).

    For every group (expert) i: ``out[i] (+)= dy_i^T @ x_i`` where x_i and dy_i
    are rows [off_i, off_i + k_i) of x (BF16 [T, n]) and dy (BF16 [T, m]),
    k_i = group_sizes[i], off_i = k_0 + ... + k_{i-1}. FP32 accumulation;
    FP32 (default) or BF16 output. m and n must be multiples of 8; any k_i
    (0 included: the group is written as zeros, or left as is when
    accumulating). Rows past sum(group_sizes) are ignored.

    group_sizes: 1-D int64 tensor [g] on the GPU (no host sync, capturable)
        or the CPU. Device sizes are clamped as the C API says (negative -> 0,
        never past T); host sizes must be >= 0 with sum <= T.
    out: None (a new [g, m, n] tensor of out_dtype, default float32), an
        existing [g, m, n] FP32/BF16 tensor, or a list of g [m, n] tensors
        (e.g. each expert weight's ``main_grad``), written in place.
    accumulate: add into ``out`` instead of overwriting (needs ``out``).

    Returns the output (``out`` itself when given).
    """
    group_sizes = _as_group_sizes(group_sizes)
    if out is None:
        if accumulate:
            raise ValueError("moegemm.grouped_wgrad: accumulate=True needs out= (the tensor to add into)")
        return torch.ops.moegemm.grouped_wgrad(x, dy, group_sizes, torch.float32 if out_dtype is None else out_dtype)
    if isinstance(out, (list, tuple)):
        if out_dtype is not None and any(t.dtype != out_dtype for t in out):
            raise TypeError(f"moegemm.grouped_wgrad: out_dtype={out_dtype} but out holds "
                            f"{sorted({str(t.dtype) for t in out})}")
        torch.ops.moegemm.grouped_wgrad_list(x, dy, group_sizes, list(out), bool(accumulate))
        return out
    if out_dtype is not None and out.dtype != out_dtype:
        raise TypeError(f"moegemm.grouped_wgrad: out_dtype={out_dtype} but out is {out.dtype}")
    torch.ops.moegemm.grouped_wgrad_out(x, dy, group_sizes, out, bool(accumulate))
    return out


def grouped_wgrad_list(x: Tensor, dy: Tensor, group_sizes, outs: Sequence[Tensor], *,
                       accumulate: bool = False) -> Sequence[Tensor]:
    """:func:`grouped_wgrad` into g existing, separate [m, n] tensors (the C
    API's out_ptrs list): ``outs[i] (+)= dy_i^T @ x_i``. All FP32 or all BF16."""
    torch.ops.moegemm.grouped_wgrad_list(x, dy, _as_group_sizes(group_sizes), list(outs), bool(accumulate))
    return outs


def grouped_mm(a: Tensor, b: Union[Tensor, Sequence[Tensor]], group_sizes, *, trans_b: bool = False,
               out_dtype: Optional[torch.dtype] = None) -> Tensor:
    """Grouped matmul with ragged M (the forward and dgrad GEMMs of an MoE layer).

    For every group i: ``out[rows_i] = a[rows_i] @ (b[i].T if trans_b else b[i])``
    with rows_i = [off_i, off_i + m_i), m_i = group_sizes[i].

    a: [T, k] BF16/FP16 (FP32 falls back to cuBLAS); b: a [g, n, k] (trans_b)
    or [g, k, n] tensor, or a list of g [n, k] / [k, n] tensors (e.g. separate
    expert weights; no copy is made). Returns [T, n] of out_dtype (a's dtype
    by default, or float32). Rows past sum(group_sizes) are zero.

    Forward of a linear layer with weights W_i [out, in]: ``grouped_mm(x, W, s, trans_b=True)``;
    its dgrad: ``grouped_mm(dy, W, s, trans_b=False)``.

    With group sizes on the GPU the call needs no host sync and can be
    captured in a CUDA graph as long as moegemm's SM90 kernel serves it
    (BF16/FP16, k and n multiples of 8); otherwise the library's cuBLAS
    fallback reads the sizes on the host (a sync; not capturable).
    """
    group_sizes = _as_group_sizes(group_sizes)
    if isinstance(b, (list, tuple)):
        return torch.ops.moegemm.grouped_mm_list(a, list(b), group_sizes, bool(trans_b), out_dtype)
    return torch.ops.moegemm.grouped_mm(a, b, group_sizes, bool(trans_b), out_dtype)


def offsets_to_group_sizes(offsets: Tensor, *, include_zero: bool = False) -> Tensor:
    """Group sizes from cumulative offsets, without a host sync.

    offsets: 1-D integer tensor of the g group *ends* (``offs`` of
    torch._grouped_mm: [k_0, k_0 + k_1, ...]), or of g + 1 boundaries starting
    at 0 when include_zero=True. Returns int64 [g] on the same device."""
    offsets = offsets.to(torch.int64)
    if include_zero:
        return offsets[1:] - offsets[:-1]
    return torch.diff(offsets, prepend=offsets.new_zeros(1))


def device_supported(device=None) -> bool:
    """True when the CUDA device (default: current) is one moegemm's SM90 kernels run on."""
    if not torch.cuda.is_available():
        return False
    try:
        lib_ok = _lib.library() is not None
    except OSError:
        return False
    with torch.cuda.device(device if device is not None else torch.cuda.current_device()):
        return lib_ok and _lib.device_supported()
