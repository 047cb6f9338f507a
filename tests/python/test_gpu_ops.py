"""moegemm's ops on an SM90 GPU against float64 per-expert references."""

import pytest

torch = pytest.importorskip("torch")

import moegemm  # noqa: E402
from reference import ref_grouped_mm, ref_wgrad  # noqa: E402

pytestmark = pytest.mark.gpu

BF16 = torch.bfloat16
# Ragged splits with empty experts; K_i not multiples of 8.
SPLITS = [
    [0, 37, 0, 5, 128, 1, 0, 19],
    [3, 0, 0, 0],
    [64, 64, 64, 64],
    [0, 0, 0],
    [1000, 7, 333, 0, 129, 2],
]


def rand(*shape, dtype=BF16, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return (torch.rand(*shape, generator=gen, device="cuda") * 2 - 1).to(dtype)


def sizes_tensor(splits, where):
    return torch.tensor(splits, dtype=torch.int64, device=where)


def assert_rel(actual, expected, rel, what=""):
    expected = expected.double()
    err = (actual.double() - expected).abs().max().item() if actual.numel() else 0.0
    scale = max(expected.abs().max().item() if expected.numel() else 0.0, 1e-3)
    assert err <= rel * scale, f"{what}: max |diff| {err:.4g} > {rel} * max |ref| {scale:.4g}"


# --- wgrad ---------------------------------------------------------------------

@pytest.mark.parametrize("where", ["cuda", "cpu"])
@pytest.mark.parametrize("splits", SPLITS, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("out_dtype,rel", [(torch.float32, 1e-5), (BF16, 8e-3)])
def test_grouped_wgrad(where, splits, out_dtype, rel):
    m, n, pad = 64, 96, 5  # rows past sum(splits) are ignored
    T = sum(splits) + pad
    x, dy = rand(T, n, seed=1), rand(T, m, seed=2)
    s = sizes_tensor(splits, where)
    out = moegemm.grouped_wgrad(x, dy, s, out_dtype=out_dtype)
    assert out.shape == (len(splits), m, n) and out.dtype == out_dtype
    assert_rel(out, ref_wgrad(x, dy, s), rel, "wgrad")
    for i, k in enumerate(splits):
        if k == 0:
            assert (out[i] == 0).all(), "an empty group is written as zeros"


@pytest.mark.parametrize("where", ["cuda", "cpu"])
def test_grouped_wgrad_accumulate_into_out(where):
    splits = SPLITS[0]
    T, m, n = sum(splits), 128, 64
    x, dy = rand(T, n, seed=3), rand(T, m, seed=4)
    s = sizes_tensor(splits, where)
    out = rand(len(splits), m, n, dtype=torch.float32, seed=5)
    before = out.clone()
    r = moegemm.grouped_wgrad(x, dy, s, out=out, accumulate=True)
    assert r is out
    assert_rel(out, before.double() + ref_wgrad(x, dy, s), 1e-5, "accumulate")
    for i, k in enumerate(splits):
        if k == 0:
            assert torch.equal(out[i], before[i]), "an empty group is left untouched when accumulating"
    moegemm.grouped_wgrad(x, dy, s, out=out)  # overwrite
    assert_rel(out, ref_wgrad(x, dy, s), 1e-5, "overwrite")


@pytest.mark.parametrize("out_dtype", [torch.float32, BF16])
def test_grouped_wgrad_list_into_separate_tensors(out_dtype):
    splits = [17, 0, 33, 2]
    T, m, n = sum(splits), 32, 48
    x, dy = rand(T, n, seed=6), rand(T, m, seed=7)
    s = sizes_tensor(splits, "cuda")
    outs = [rand(m, n, dtype=out_dtype, seed=10 + i) for i in range(len(splits))]  # separate allocations
    before = [o.clone() for o in outs]
    moegemm.grouped_wgrad_list(x, dy, s, outs, accumulate=True)
    ref = ref_wgrad(x, dy, s)
    rel = 1e-5 if out_dtype == torch.float32 else 1e-2
    for i in range(len(splits)):
        assert_rel(outs[i], before[i].double() + ref[i], rel, f"outs[{i}]")
    assert torch.equal(outs[1], before[1])
    # the same through grouped_wgrad(out=[...])
    moegemm.grouped_wgrad(x, dy, s, out=outs)
    for i in range(len(splits)):
        assert_rel(outs[i], ref[i], rel, f"outs[{i}] overwrite")


def test_grouped_wgrad_device_sizes_are_clamped():
    """Device sizes cannot be checked: negatives count as 0 and nothing past T is read."""
    T, m, n = 40, 16, 16
    x, dy = rand(T, n, seed=8), rand(T, m, seed=9)
    s = sizes_tensor([10, -5, 25, 50], "cuda")  # sum past T
    out = moegemm.grouped_wgrad(x, dy, s)
    assert_rel(out, ref_wgrad(x, dy, s.cpu()), 1e-5, "clamped")


def test_host_sizes_are_validated():
    x, dy = rand(16, 16), rand(16, 16)
    with pytest.raises(moegemm.MoegemmError) as info:
        moegemm.grouped_wgrad(x, dy, torch.tensor([10, 10]))  # sum > T
    assert info.value.status == 1  # MOEGEMM_STATUS_INVALID_ARGUMENT
    assert "group_sizes" in info.value.message and "total_tokens" in info.value.message


# --- ragged M (forward / dgrad) ----------------------------------------------------

@pytest.mark.parametrize("where", ["cuda", "cpu"])
@pytest.mark.parametrize("splits", SPLITS, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("form", ["stacked", "list"])
def test_grouped_mm_forward_and_dgrad(where, splits, form):
    g, fin, fout, pad = len(splits), 128, 192, 3
    T = sum(splits) + pad
    x, w = rand(T, fin, seed=11), rand(g, fout, fin, seed=12)  # W_i [out, in]
    dy = rand(T, fout, seed=13)
    s = sizes_tensor(splits, where)
    b = w if form == "stacked" else [w[i].clone() for i in range(g)]
    y = moegemm.grouped_mm(x, b, s, trans_b=True)
    assert y.shape == (T, fout) and y.dtype == BF16
    assert_rel(y, ref_grouped_mm(x, list(w), s.cpu(), True), 1e-2, "forward")
    assert (y[sum(splits):] == 0).all(), "rows past the groups are zero"
    dx = moegemm.grouped_mm(dy, b, s, trans_b=False, out_dtype=torch.float32)
    assert dx.shape == (T, fin) and dx.dtype == torch.float32
    assert (dx[sum(splits):] == 0).all(), "rows past the groups are zero"
    assert_rel(dx, ref_grouped_mm(dy, list(w), s.cpu(), False), 1e-5, "dgrad fp32")


@pytest.mark.parametrize("where", ["cuda", "cpu"])
def test_grouped_mm_rows_past_the_groups_are_zero_over_reused_memory(where):
    """The output comes from torch.empty: the library writes the rows past the
    groups as zeros (zero_unused_rows), here over a block that held NaNs."""
    splits, pad, fin, fout = [7, 0, 40], 500, 64, 96
    T = sum(splits) + pad
    x, w = rand(T, fin, seed=21), rand(len(splits), fout, fin, seed=22)
    s = sizes_tensor(splits, where)
    junk = torch.full((T, fout), float("nan"), dtype=BF16, device="cuda")
    del junk  # the caching allocator hands this block out again
    y = moegemm.grouped_mm(x, w, s, trans_b=True)
    assert (y[sum(splits):] == 0).all(), "rows past the groups are zero"
    assert_rel(y, ref_grouped_mm(x, list(w), s.cpu(), True), 1e-2, "forward")


def test_grouped_mm_fp16_and_unaligned_k_host_sizes():
    """k not a multiple of 8 leaves the SM90 kernel: the library's cuBLAS path serves it."""
    splits = [5, 0, 12, 7]
    T = sum(splits)
    for dtype, k in [(torch.float16, 64), (BF16, 36)]:
        a, b = rand(T, k, dtype=dtype, seed=14), rand(len(splits), k, 24, dtype=dtype, seed=15)
        out = moegemm.grouped_mm(a, b, torch.tensor(splits), trans_b=False)
        assert_rel(out, ref_grouped_mm(a, list(b), torch.tensor(splits), False), 1e-2, f"{dtype} k={k}")


def test_ops_on_a_side_stream():
    """The kernels run on the current stream: work queued before them on that
    stream (here a delayed copy) is seen by them."""
    splits = [100, 0, 28]
    T, m, n = sum(splits), 64, 64
    x_src, dy = rand(T, n, seed=16), rand(T, m, seed=17)
    s = sizes_tensor(splits, "cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        x = torch.zeros_like(x_src)
        torch.cuda._sleep(50_000_000)  # ~25 ms
        x.copy_(x_src)
        out = moegemm.grouped_wgrad(x, dy, s)
        y = moegemm.grouped_mm(x, rand(3, 32, n, seed=18), s, trans_b=True)
    side.synchronize()
    assert_rel(out, ref_wgrad(x_src, dy, s), 1e-5, "side-stream wgrad")
    assert y.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_device_guard_second_gpu():
    splits = [9, 0, 23]
    T = sum(splits)
    with torch.cuda.device(0):
        x = rand(T, 16, seed=19).to("cuda:1")
        dy = rand(T, 32, seed=20).to("cuda:1")
        s = sizes_tensor(splits, "cuda:1")
        out = moegemm.grouped_wgrad(x, dy, s)
        assert out.device == torch.device("cuda:1")
        assert_rel(out, ref_wgrad(x, dy, s), 1e-5, "cuda:1")


def test_real_tensor_checks():
    flat, dy = rand(33 * 16), rand(32, 16)
    x = flat[1:1 + 32 * 16].view(32, 16)  # contiguous, 2 bytes past a 16-byte boundary
    s = sizes_tensor([16, 16], "cuda")
    with pytest.raises(ValueError, match=r"grouped_wgrad: x's data pointer .* is not 16-byte aligned"):
        moegemm.grouped_wgrad(x, dy, s)
    with pytest.raises(ValueError, match=r"grouped_mm: a's data pointer .* is not 16-byte aligned"):
        moegemm.grouped_mm(x, rand(2, 16, 16), s, trans_b=True)
    with pytest.raises(TypeError, match=r"group_sizes must be int64, got torch.int32"):
        moegemm.grouped_wgrad(x.clone(), dy, s.int())


def test_opcheck_on_gpu():
    splits = [5, 0, 40, 3]
    T = sum(splits) + 2
    x, dy, w = rand(T, 32, seed=21), rand(T, 16, seed=22), rand(4, 16, 32, seed=23)
    s = sizes_tensor(splits, "cuda")
    for op, args in [
        (torch.ops.moegemm.grouped_wgrad.default, (x, dy, s, torch.float32)),
        (torch.ops.moegemm.grouped_wgrad_out.default, (x, dy, s, torch.zeros(4, 16, 32, device="cuda"), True)),
        (torch.ops.moegemm.grouped_wgrad_list.default,
         (x, dy, s, [torch.zeros(16, 32, device="cuda") for _ in range(4)], False)),
        (torch.ops.moegemm.grouped_mm.default, (x, w, s, True, None)),
        (torch.ops.moegemm.grouped_mm_list.default, (dy, list(w.unbind(0)), s, False, torch.float32)),
    ]:
        torch.library.opcheck(op, args)
