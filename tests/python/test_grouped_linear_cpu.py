"""GroupedLinear's autograd wiring without a GPU: the moegemm ops run through
CPU reference kernels registered by the tests (tests/python/reference.py), so
what is checked here is the module (parameters, bias, gradients, main_grad,
torch.compile tracing), not the kernels (the GPU tests do that)."""

import warnings

import pytest

torch = pytest.importorskip("torch")

import moegemm  # noqa: E402
from reference import cpu_reference_kernels, group_bounds  # noqa: E402

BF16 = torch.bfloat16


@pytest.fixture(autouse=True)
def cpu_kernels():
    with cpu_reference_kernels():
        yield


def reference_step(layer, x, sizes, grad_out):
    """float64 per-expert forward and gradients for loss = sum(y * grad_out)."""
    T = x.shape[0]
    y = torch.zeros(T, layer.out_features, dtype=torch.float64)
    dx = torch.zeros(T, layer.in_features, dtype=torch.float64)
    dws, dbs = [], []
    g = grad_out.double()
    for i, (s, e) in enumerate(group_bounds(sizes, T)):
        w = layer.weights[i].detach().double()
        xi = x[s:e].double()
        y[s:e] = xi @ w.t()
        if layer.use_bias:
            y[s:e] += layer.biases[i].detach().double()
        dx[s:e] = g[s:e] @ w
        dws.append(g[s:e].t() @ xi)
        dbs.append(g[s:e].sum(0))
    return y, dx, dws, dbs


def close(actual, expected, rel):
    expected = expected.double()
    err = (actual.double() - expected).abs().max().item()
    scale = max(expected.abs().max().item(), 1e-6)
    assert err <= rel * scale, f"max |diff| {err:.3g} > {rel} * max |ref| {scale:.3g}"


def make(g=4, fin=16, fout=24, bias=True, seed=0):
    torch.manual_seed(seed)
    return moegemm.GroupedLinear(g, fin, fout, bias=bias)


def test_parameters_are_te_style():
    layer = make(g=3)
    names = [n for n, _ in layer.named_parameters()]
    assert names == ["weight0", "weight1", "weight2", "bias0", "bias1", "bias2"]
    assert layer.weight1.shape == (24, 16) and layer.bias2.shape == (24,)
    assert all(p.dtype == BF16 for p in layer.parameters())
    assert [n for n, _ in make(g=2, bias=False).named_parameters()] == ["weight0", "weight1"]
    assert "num_gemms=3, in_features=16, out_features=24, bias=True" in repr(layer)


def test_constructor_checks():
    with pytest.raises(ValueError, match="in_features must be a positive multiple of 8"):
        moegemm.GroupedLinear(2, 12, 16)
    with pytest.raises(TypeError, match="dtype must be torch.bfloat16"):
        moegemm.GroupedLinear(2, 16, 16, dtype=torch.float32)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("sizes,pad", [((5, 0, 7, 3), 0), ((0, 0, 9, 0), 4), ((2, 3, 0, 11), 2)])
def test_forward_and_gradients(bias, sizes, pad):
    layer = make(bias=bias)
    T = sum(sizes) + pad
    x = torch.randn(T, 16).to(BF16).requires_grad_()
    grad_out = torch.randn(T, 24).to(BF16)
    s = torch.tensor(sizes)
    y = layer(x, s)
    (y.float() * grad_out.float()).sum().backward()
    ry, rdx, rdw, rdb = reference_step(layer, x.detach(), s, grad_out)
    close(y, ry, 1e-2)
    close(x.grad, rdx, 1e-2)
    for i in range(4):
        close(layer.weights[i].grad, rdw[i], 1e-2)
        if bias:
            close(layer.biases[i].grad, rdb[i], 1e-2)
    if pad:
        assert (y[sum(sizes):] == 0).all() and (x.grad[sum(sizes):] == 0).all()


def test_list_splits_accepted():
    layer = make()
    x = torch.randn(15, 16).to(BF16)
    torch.testing.assert_close(layer(x, [5, 0, 7, 3]), layer(x, torch.tensor([5, 0, 7, 3])))


def test_main_grad_accumulates_over_micro_batches():
    layer = make()
    for w in layer.weights:
        w.main_grad = torch.zeros(24, 16, dtype=torch.float32)
    total = [torch.zeros(24, 16, dtype=torch.float64) for _ in range(4)]
    for sizes in [(5, 0, 7, 3), (1, 1, 1, 12), (0, 8, 0, 0)]:
        x = torch.randn(sum(sizes), 16).to(BF16)
        grad_out = torch.randn(sum(sizes), 24).to(BF16)
        layer(x, torch.tensor(sizes)).backward(grad_out)
        _, _, dws, _ = reference_step(layer, x, torch.tensor(sizes), grad_out)
        for i in range(4):
            total[i] += dws[i]
            close(layer.weights[i].main_grad, total[i], 1e-5)
            assert layer.weights[i].grad is None, "main_grad mode returns no .grad"
    assert layer.bias0.grad is not None  # biases keep ordinary gradients


def test_partial_main_grad_warns_and_uses_grad():
    layer = make()
    layer.weight0.main_grad = torch.zeros(24, 16)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        layer(torch.randn(15, 16).to(BF16), torch.tensor([5, 0, 7, 3])).sum().backward()
    assert any("only some weights have a main_grad" in str(x.message) for x in w)
    assert layer.weight1.grad is not None and (layer.weight0.main_grad == 0).all()


@pytest.mark.parametrize("main_grad", [False, True])
def test_compile_fullgraph_matches_eager(main_grad):
    layers = [make(seed=3), make(seed=3)]
    if main_grad:
        for layer in layers:
            for w in layer.weights:
                w.main_grad = torch.zeros(24, 16)
    s = torch.tensor([5, 0, 7, 3])
    x = torch.randn(15, 16).to(BF16)
    grad_out = torch.randn(15, 24).to(BF16)

    def loss_fn(layer):
        def f(x, s):
            return (layer(x, s).float() * grad_out.float()).sum()
        return f

    xs = [x.clone().requires_grad_() for _ in layers]
    eager = loss_fn(layers[0])(xs[0], s)
    compiled = torch.compile(loss_fn(layers[1]), fullgraph=True, backend="aot_eager")(xs[1], s)
    eager.backward()
    compiled.backward()
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(xs[1].grad, xs[0].grad)
    for a, b in zip(layers[1].weights + layers[1].biases, layers[0].weights + layers[0].biases):
        if main_grad and a.dim() == 2:
            torch.testing.assert_close(a.main_grad, b.main_grad)
        else:
            torch.testing.assert_close(a.grad, b.grad)
    if main_grad:
        assert sum(w.main_grad.abs().sum() for w in layers[1].weights) > 0


def test_main_grad_with_interleaved_micro_batches():
    """Pipeline schedules run several forwards before their backwards: the
    accumulation into main_grad must not trip autograd's saved-tensor checks."""
    layer = make()
    for w in layer.weights:
        w.main_grad = torch.zeros(24, 16, dtype=torch.float32)
    s = torch.tensor([5, 0, 7, 3])
    xs = [torch.randn(15, 16).to(BF16) for _ in range(3)]
    gs = [torch.randn(15, 24).to(BF16) for _ in range(3)]
    ys = [layer(x, s) for x in xs]
    for y, g in zip(reversed(ys), reversed(gs)):
        y.backward(g)
    for i in range(4):
        expected = sum(reference_step(layer, x, s, g)[2][i] for x, g in zip(xs, gs))
        close(layer.weights[i].main_grad, expected, 1e-5)
