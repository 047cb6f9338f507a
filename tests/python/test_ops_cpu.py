"""The custom ops without a GPU: registration, schemas, fake (meta)
implementations, argument checks, and (through CPU reference kernels that
the tests register) torch.library.opcheck and torch.compile tracing."""

import pytest

torch = pytest.importorskip("torch")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

import moegemm  # noqa: E402
from reference import cpu_reference_kernels, group_bounds, ref_grouped_mm, ref_wgrad  # noqa: E402

OPS = ["grouped_wgrad", "grouped_wgrad_out", "grouped_wgrad_list", "grouped_mm", "grouped_mm_list"]
BF16 = torch.bfloat16


def test_ops_registered_with_schemas():
    schemas = {name: str(getattr(torch.ops.moegemm, name).default._schema) for name in OPS}
    assert "-> Tensor" in schemas["grouped_wgrad"] and "!" not in schemas["grouped_wgrad"]
    assert "Tensor(a3!) out" in schemas["grouped_wgrad_out"] and schemas["grouped_wgrad_out"].endswith("-> ()")
    assert "Tensor(a3!)[] outs" in schemas["grouped_wgrad_list"]
    assert "bool trans_b" in schemas["grouped_mm"] and "ScalarType? out_dtype" in schemas["grouped_mm"]
    assert "Tensor[] bs" in schemas["grouped_mm_list"]


def _fake_operands(mode, T=40, g=4, m=24, n=16, device="cuda"):
    with mode:
        x = torch.empty(T, n, dtype=BF16, device=device)
        dy = torch.empty(T, m, dtype=BF16, device=device)
        sizes = torch.empty(g, dtype=torch.int64, device=device)
    return x, dy, sizes


def test_fake_shapes_on_fake_cuda_tensors():
    mode = FakeTensorMode()
    x, dy, sizes = _fake_operands(mode)
    with mode:
        dw = moegemm.grouped_wgrad(x, dy, sizes)
        assert dw.shape == (4, 24, 16) and dw.dtype == torch.float32 and dw.device.type == "cuda"
        assert moegemm.grouped_wgrad(x, dy, sizes, out_dtype=BF16).dtype == BF16
        out = torch.empty(4, 24, 16, device="cuda")
        assert moegemm.grouped_wgrad(x, dy, sizes, out=out, accumulate=True) is out
        outs = [torch.empty(24, 16, device="cuda") for _ in range(4)]
        assert moegemm.grouped_wgrad_list(x, dy, sizes, outs, accumulate=True) is outs
        w = torch.empty(4, 24, 16, dtype=BF16, device="cuda")  # [g, out, in]
        y = moegemm.grouped_mm(x, w, sizes, trans_b=True)
        assert y.shape == (40, 24) and y.dtype == BF16
        dx = moegemm.grouped_mm(dy, w, sizes, trans_b=False, out_dtype=torch.float32)
        assert dx.shape == (40, 16) and dx.dtype == torch.float32
        assert moegemm.grouped_mm(x, list(w.unbind(0)), sizes, trans_b=True).shape == (40, 24)
        # host group sizes with device operands are fine
        assert moegemm.grouped_mm(x, w, torch.zeros(4, dtype=torch.int64), trans_b=True).shape == (40, 24)


def test_grouped_linear_under_fake_mode():
    with FakeTensorMode():
        layer = moegemm.GroupedLinear(4, 16, 24, device="cuda")
        x = torch.empty(40, 16, dtype=BF16, device="cuda")
        y = layer(x, torch.empty(4, dtype=torch.int64, device="cuda"))
        assert y.shape == (40, 24) and y.dtype == BF16


@pytest.mark.parametrize("case,pattern", [
    ("x_dtype", r"grouped_wgrad: x must be torch.bfloat16, got torch.float32"),
    ("dy_noncontig", r"grouped_wgrad: dy must be contiguous"),
    ("rows", r"x and dy must have the same number of rows"),
    ("sizes_dtype", r"group_sizes must be int64, got torch.int32"),
    ("sizes_2d", r"group_sizes must be 1-D"),
    ("m_mult8", r"dy.shape\[1\] \(m, rows of each gradient\) must be a multiple of 8 \(16-byte rows\), got 20"),
    ("out_shape", r"out must have shape \(g, m, n\) = \(4, 24, 16\)"),
    ("out_dtype", r"out must be torch.float32 or torch.bfloat16, got torch.float16"),
    ("outs_len", r"outs has 3 tensors, expected 4"),
    ("outs_shape", r"outs\[2\] must have shape \(m, n\) = \(24, 16\)"),
    ("accumulate_no_out", r"accumulate=True needs out="),
    ("mm_k", r"so k = 24, but a is \(40, 16\) \(k = 16\)"),
    ("mm_b_dtype", r"grouped_mm: b must be torch.bfloat16, got torch.float16"),
    ("mm_sizes_len", r"group_sizes has 3 entries, expected 4"),
    ("mm_list_dtype", r"grouped_mm: b\[1\] must be torch.bfloat16"),
    ("mm_out_dtype", r"out_dtype must be torch.float32 or a's dtype"),
])
def test_checks_name_the_tensor(case, pattern):
    mode = FakeTensorMode()
    x, dy, sizes = _fake_operands(mode)
    with mode:
        w = torch.empty(4, 24, 16, dtype=BF16, device="cuda")
        calls = {
            "x_dtype": lambda: moegemm.grouped_wgrad(x.float(), dy, sizes),
            "dy_noncontig": lambda: moegemm.grouped_wgrad(x, torch.empty(24, 40, dtype=BF16, device="cuda").t(), sizes),
            "rows": lambda: moegemm.grouped_wgrad(x[:8], dy, sizes),
            "sizes_dtype": lambda: moegemm.grouped_wgrad(x, dy, sizes.int()),
            "sizes_2d": lambda: moegemm.grouped_wgrad(x, dy, sizes.view(2, 2)),
            "m_mult8": lambda: moegemm.grouped_wgrad(x, dy[:, :20].contiguous(), sizes),
            "out_shape": lambda: moegemm.grouped_wgrad(x, dy, sizes, out=torch.empty(4, 16, 24, device="cuda")),
            "out_dtype": lambda: moegemm.grouped_wgrad(
                x, dy, sizes, out=torch.empty(4, 24, 16, dtype=torch.float16, device="cuda")),
            "outs_len": lambda: moegemm.grouped_wgrad_list(
                x, dy, sizes, [torch.empty(24, 16, device="cuda") for _ in range(3)]),
            "outs_shape": lambda: moegemm.grouped_wgrad_list(
                x, dy, sizes, [torch.empty(24, 16, device="cuda")] * 2 + [torch.empty(16, 24, device="cuda")] * 2),
            "accumulate_no_out": lambda: moegemm.grouped_wgrad(x, dy, sizes, accumulate=True),
            "mm_k": lambda: moegemm.grouped_mm(x, w, sizes, trans_b=False),
            "mm_b_dtype": lambda: moegemm.grouped_mm(x, w.half(), sizes, trans_b=True),
            "mm_sizes_len": lambda: moegemm.grouped_mm(x, w, sizes[:3], trans_b=True),
            "mm_list_dtype": lambda: moegemm.grouped_mm(x, [w[0], w[1].half(), w[2], w[3]], sizes, trans_b=True),
            "mm_out_dtype": lambda: moegemm.grouped_mm(x, w, sizes, trans_b=True, out_dtype=torch.float16),
        }
        with pytest.raises((ValueError, TypeError), match=pattern):
            calls[case]()


def test_group_sizes_on_another_device_is_named():
    # Fake tensors on cuda:1 initialise that device when CUDA is present.
    if torch.cuda.is_available() and torch.cuda.device_count() < 2:
        pytest.skip("a fake cuda:1 tensor needs a second GPU where CUDA is present")
    mode = FakeTensorMode()
    x, dy, _ = _fake_operands(mode)
    with mode:
        sizes = torch.empty(4, dtype=torch.int64, device="cuda:1")
        with pytest.raises(ValueError, match=r"group_sizes is on cuda:1: it must be on the CPU or on cuda:0"):
            moegemm.grouped_wgrad(x, dy, sizes)
        with pytest.raises(ValueError, match=r"dy is on cuda:1, expected cuda:0"):
            moegemm.grouped_wgrad(x, torch.empty(40, 24, dtype=BF16, device="cuda:1"), sizes)


def test_cpu_tensors_are_refused_by_name():
    x = torch.zeros(8, 16, dtype=BF16)
    dy = torch.zeros(8, 24, dtype=BF16)
    with pytest.raises(ValueError, match=r"grouped_wgrad: x is on cpu: moegemm runs on CUDA devices"):
        moegemm.grouped_wgrad(x, dy, torch.tensor([8]))
    with pytest.raises(ValueError, match=r"grouped_mm: a is on cpu"):
        moegemm.grouped_mm(x, torch.zeros(1, 24, 16, dtype=BF16), torch.tensor([8]), trans_b=True)


def test_offsets_to_group_sizes():
    offs = torch.tensor([3, 3, 10, 17], dtype=torch.int32)
    assert moegemm.offsets_to_group_sizes(offs).tolist() == [3, 0, 7, 7]
    assert moegemm.offsets_to_group_sizes(torch.tensor([0, 3, 3, 10]), include_zero=True).tolist() == [3, 0, 7]
    assert moegemm.offsets_to_group_sizes(offs).dtype == torch.int64


# --- through CPU reference kernels --------------------------------------------

@pytest.fixture
def cpu_kernels():
    with cpu_reference_kernels():
        yield


def _cpu_problem(seed=0, sizes=(5, 0, 7, 3), pad=3, m=24, n=16):
    gen = torch.Generator().manual_seed(seed)
    T = sum(sizes) + pad
    x = torch.randn(T, n, generator=gen).to(BF16)
    dy = torch.randn(T, m, generator=gen).to(BF16)
    return x, dy, torch.tensor(sizes, dtype=torch.int64)


def test_opcheck_all_ops(cpu_kernels):
    x, dy, s = _cpu_problem()
    w = torch.randn(4, 24, 16).to(BF16)
    cases = [
        (torch.ops.moegemm.grouped_wgrad.default, (x, dy, s, torch.float32)),
        (torch.ops.moegemm.grouped_wgrad_out.default, (x, dy, s, torch.zeros(4, 24, 16), True)),
        (torch.ops.moegemm.grouped_wgrad_list.default, (x, dy, s, [torch.zeros(24, 16) for _ in range(4)], True)),
        (torch.ops.moegemm.grouped_mm.default, (x, w, s, True, None)),
        (torch.ops.moegemm.grouped_mm_list.default, (dy, list(w.unbind(0)), s, False, torch.float32)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


def test_compile_fullgraph_traces_ops(cpu_kernels):
    x, dy, s = _cpu_problem()
    w = torch.randn(4, 24, 16).to(BF16)

    def f(x, dy, s, w, out, outs):
        moegemm.grouped_wgrad(x, dy, s, out=out, accumulate=True)
        moegemm.grouped_wgrad_list(x, dy, s, outs, accumulate=False)
        dw = moegemm.grouped_wgrad(x, dy, s)
        y = moegemm.grouped_mm(x, w, s, trans_b=True)
        dx = moegemm.grouped_mm(dy, list(w.unbind(0)), s, trans_b=False, out_dtype=torch.float32)
        return dw, y, dx

    out = torch.ones(4, 24, 16)
    outs = [torch.full((24, 16), 7.0) for _ in range(4)]
    cf = torch.compile(f, fullgraph=True, backend="aot_eager")
    dw, y, dx = cf(x, dy, s, w, out, outs)
    ref = ref_wgrad(x, dy, s, torch.float32)
    torch.testing.assert_close(dw, ref)
    torch.testing.assert_close(out, ref + 1)
    torch.testing.assert_close(torch.stack(outs), ref)
    torch.testing.assert_close(y, ref_grouped_mm(x, list(w), s, True, torch.float32).to(BF16))
    torch.testing.assert_close(dx, ref_grouped_mm(dy, list(w), s, False, torch.float32))


def test_reference_clamps_like_the_c_api():
    assert group_bounds(torch.tensor([3, -1, 10]), 8) == [(0, 3), (3, 3), (3, 8)]
