"""Per-expert PyTorch references for moegemm's ops, and CPU kernels built on
them that the CPU-only tests register for the moegemm ops (so that the
autograd wiring, the fake implementations and torch.compile can be checked on
a machine without a GPU). Nothing here is part of the package."""

import contextlib

import torch


def group_bounds(group_sizes, total):
    """[(start, end)] per group with the C API's clamping (negative -> 0,
    never past `total`)."""
    sizes = [int(k) for k in group_sizes.tolist()]
    bounds, off = [], 0
    for k in sizes:
        start = min(off, total)
        end = min(start + max(k, 0), total)
        bounds.append((start, end))
        off = off + max(k, 0)
    return bounds


def ref_wgrad(x, dy, group_sizes, dtype=torch.float64):
    """[g, m, n] in `dtype`: dy_i^T x_i."""
    g, m, n = group_sizes.numel(), dy.shape[1], x.shape[1]
    out = torch.zeros(g, m, n, dtype=dtype, device=x.device)
    for i, (s, e) in enumerate(group_bounds(group_sizes, x.shape[0])):
        if e > s:
            out[i] = dy[s:e].to(dtype).t() @ x[s:e].to(dtype)
    return out


def ref_grouped_mm(a, bs, group_sizes, trans_b, dtype=torch.float64):
    """[T, n] in `dtype`: a_i @ op(b_i); rows past the groups are zero."""
    b0 = bs[0]
    n = b0.shape[0] if trans_b else b0.shape[1]
    out = torch.zeros(a.shape[0], n, dtype=dtype, device=a.device)
    for i, (s, e) in enumerate(group_bounds(group_sizes, a.shape[0])):
        if e > s:
            b = bs[i].to(dtype)
            out[s:e] = a[s:e].to(dtype) @ (b.t() if trans_b else b)
    return out


# --- CPU kernels for the ops (tests only) -----------------------------------

def _cpu_grouped_wgrad(x, dy, group_sizes, out_dtype):
    return ref_wgrad(x, dy, group_sizes.cpu(), torch.float32).to(out_dtype)


def _cpu_grouped_wgrad_out(x, dy, group_sizes, out, accumulate):
    r = ref_wgrad(x, dy, group_sizes.cpu(), torch.float32)
    if accumulate:
        out.copy_((out.float() + r).to(out.dtype))
    else:
        out.copy_(r.to(out.dtype))


def _cpu_grouped_wgrad_list(x, dy, group_sizes, outs, accumulate):
    r = ref_wgrad(x, dy, group_sizes.cpu(), torch.float32)
    for i, o in enumerate(outs):
        o.copy_(((o.float() + r[i]) if accumulate else r[i]).to(o.dtype))


def _cpu_grouped_mm(a, b, group_sizes, trans_b, out_dtype=None):
    return ref_grouped_mm(a, list(b.unbind(0)), group_sizes.cpu(), trans_b, torch.float32).to(
        out_dtype or a.dtype)


def _cpu_grouped_mm_list(a, bs, group_sizes, trans_b, out_dtype=None):
    return ref_grouped_mm(a, list(bs), group_sizes.cpu(), trans_b, torch.float32).to(out_dtype or a.dtype)


@contextlib.contextmanager
def cpu_reference_kernels():
    """Registers the CPU kernels above for the moegemm ops while active."""
    import moegemm  # noqa: F401  (defines the ops)

    lib = torch.library.Library("moegemm", "IMPL")
    try:
        lib.impl("grouped_wgrad", _cpu_grouped_wgrad, "CPU")
        lib.impl("grouped_wgrad_out", _cpu_grouped_wgrad_out, "CPU")
        lib.impl("grouped_wgrad_list", _cpu_grouped_wgrad_list, "CPU")
        lib.impl("grouped_mm", _cpu_grouped_mm, "CPU")
        lib.impl("grouped_mm_list", _cpu_grouped_mm_list, "CPU")
        yield
    finally:
        lib._destroy()
