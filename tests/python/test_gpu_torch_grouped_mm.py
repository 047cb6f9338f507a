"""moegemm against torch._grouped_mm: the same results where PyTorch's grouped
GEMM works, and moegemm working where it does not (FP32 output; groups whose K
is not a multiple of 8; empty groups). What torch._grouped_mm did is printed
at the end of the run ("moegemm vs torch._grouped_mm") and kept in the junit
report; the assertions are on moegemm. torch._grouped_mm runs in a child
process wherever it might raise a device-side assert."""

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import moegemm  # noqa: E402
from reference import ref_grouped_mm, ref_wgrad  # noqa: E402

pytestmark = pytest.mark.gpu

BF16 = torch.bfloat16
HERE = os.path.dirname(os.path.abspath(__file__))
ALIGNED = [64, 16, 128, 32]  # every group a multiple of 16 rows: what torch._grouped_mm handles everywhere
UNALIGNED_K = [5, 11, 13, 3]
WITH_EMPTY = [8, 0, 16, 8]


def grouped_mm_op():
    op = getattr(torch, "_grouped_mm", None)
    if op is None:
        pytest.skip(f"torch {torch.__version__} has no torch._grouped_mm")
    return op


def rand(*shape, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randn(*shape, generator=gen, device="cuda").to(BF16)


def rel_err(actual, ref):
    ref = ref.double()
    return ((actual.double() - ref).abs().max() / ref.abs().max().clamp(min=1e-6)).item()


def offs_of(splits):
    return torch.tensor(splits, device="cuda").cumsum(0).to(torch.int32)


def probe(kind, splits, out_dtype="bfloat16"):
    """torch._grouped_mm on a small problem in a child process."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "grouped_mm_probe.py"), kind,
                        ",".join(map(str, splits)), "--out-dtype", out_dtype],
                       capture_output=True, text=True, timeout=300, check=False)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"outcome": "crashed", "detail": f"exit code {r.returncode}: {tail}"}


def describe(result):
    err = f", max rel. error {result['rel_err']:.2g}" if "rel_err" in result else ""
    return f"{result['outcome']} ({result.get('detail', '')}{err})"


def test_same_results_where_torch_works(note):
    """Aligned groups, BF16 output: forward, dgrad and wgrad agree with torch._grouped_mm."""
    op = grouped_mm_op()
    g, k, n = len(ALIGNED), 256, 128
    T = sum(ALIGNED)
    x, w, dy = rand(T, k, seed=1), rand(g, n, k, seed=2), rand(T, n, seed=3)
    s, offs = torch.tensor(ALIGNED, device="cuda"), offs_of(ALIGNED)

    y_t = op(x, w.transpose(-2, -1), offs=offs)
    y_m = moegemm.grouped_mm(x, w, s, trans_b=True)
    dx_t = op(dy, w, offs=offs)
    dx_m = moegemm.grouped_mm(dy, w, s, trans_b=False)
    dw_t = op(dy.t(), x, offs=offs)
    dw_m = moegemm.grouped_wgrad(x, dy, s, out_dtype=BF16)
    for name, a, b in [("forward", y_m, y_t), ("dgrad", dx_m, dx_t), ("wgrad", dw_m, dw_t)]:
        assert a.shape == b.shape and a.dtype == b.dtype == BF16, name
        assert rel_err(a, b) <= 1e-2, f"{name}: moegemm and torch._grouped_mm differ by {rel_err(a, b):.3g}"
    assert rel_err(y_m, ref_grouped_mm(x, list(w), s.cpu(), True)) <= 1e-2
    assert rel_err(dw_m, ref_wgrad(x, dy, s.cpu())) <= 1e-2
    note(f"aligned groups {ALIGNED}, BF16 out: forward/dgrad/wgrad agree "
         f"(max rel. diff {max(rel_err(y_m, y_t), rel_err(dx_m, dx_t), rel_err(dw_m, dw_t)):.2g})")


def test_fp32_output(note):
    """FP32 wgrad output (what Megatron's main_grad needs): moegemm gives it with
    FP32 accuracy; torch._grouped_mm writes BF16 only."""
    splits = [40, 0, 24, 8]
    T, m, n = sum(splits), 64, 128
    x, dy = rand(T, n, seed=4), rand(T, m, seed=5)
    s = torch.tensor(splits, device="cuda")
    ref = ref_wgrad(x, dy, s.cpu())
    dw32 = moegemm.grouped_wgrad(x, dy, s)  # FP32 by default
    dw16 = moegemm.grouped_wgrad(x, dy, s, out_dtype=BF16)
    assert dw32.dtype == torch.float32
    e32, e16 = rel_err(dw32, ref), rel_err(dw16, ref)
    assert e32 <= 1e-5, f"FP32 output error {e32:.3g}"
    assert e32 < e16 / 10, "FP32 output is more accurate than BF16 output"
    torch_result = probe("wgrad", splits, "float32")
    note(f"FP32 output, splits {splits}: moegemm max rel. error {e32:.2g} (BF16 output: {e16:.2g}); "
         f"torch._grouped_mm(out_dtype=float32): {describe(torch_result)}")


@pytest.mark.parametrize("case,splits", [("K not a multiple of 8", UNALIGNED_K),
                                         ("an empty group", WITH_EMPTY)])
def test_wgrad_where_torch_may_fail(note, case, splits):
    T, m, n = sum(splits), 64, 128
    x, dy = rand(T, n, seed=6), rand(T, m, seed=7)
    s = torch.tensor(splits, device="cuda")
    ref = ref_wgrad(x, dy, s.cpu())
    for out_dtype, tol in [(torch.float32, 1e-5), (BF16, 1e-2)]:
        e = rel_err(moegemm.grouped_wgrad(x, dy, s, out_dtype=out_dtype), ref)
        assert e <= tol, f"{case}: moegemm {out_dtype} error {e:.3g}"
    # and the whole layer: wgrad through GroupedLinear with these splits
    layer = moegemm.GroupedLinear(len(splits), n, m, device="cuda")
    layer(x, s).backward(dy)
    for i in range(len(splits)):
        assert rel_err(layer.weights[i].grad, ref[i]) <= 1e-2 or splits[i] == 0
    torch_result = probe("wgrad", splits)
    note(f"wgrad with {case} (splits {splits}): moegemm ok; torch._grouped_mm: {describe(torch_result)}")


def test_forward_with_unaligned_groups(note):
    splits = UNALIGNED_K + [0]
    g, k, n = len(splits), 64, 128
    T = sum(splits)
    x, w = rand(T, k, seed=8), rand(g, n, k, seed=9)
    s = torch.tensor(splits, device="cuda")
    y = moegemm.grouped_mm(x, w, s, trans_b=True)
    assert rel_err(y, ref_grouped_mm(x, list(w), s.cpu(), True)) <= 1e-2
    torch_result = probe("forward", splits)
    note(f"forward with ragged M {splits}: moegemm ok; torch._grouped_mm: {describe(torch_result)}")
