"""GroupedLinear on an SM90 GPU: forward and both gradients against float64
per-expert PyTorch, main_grad accumulation, torch.compile(fullgraph=True),
and CUDA-graph capture of a whole training step whose splits change on the
device between replays."""

import pytest

torch = pytest.importorskip("torch")

import moegemm  # noqa: E402
from reference import group_bounds  # noqa: E402

pytestmark = pytest.mark.gpu

BF16 = torch.bfloat16
SPLITS = [[0, 37, 0, 5, 128, 1, 0, 19], [200, 0, 0, 0, 0, 0, 0, 3], [16] * 8]


def make(g=8, fin=128, fout=64, bias=True, seed=0):
    torch.manual_seed(seed)
    return moegemm.GroupedLinear(g, fin, fout, bias=bias, device="cuda")


def rand(*shape, dtype=BF16, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randn(*shape, generator=gen, device="cuda").to(dtype)


def assert_rel(actual, expected, rel, what=""):
    expected = expected.double()
    err = (actual.double() - expected).abs().max().item() if actual.numel() else 0.0
    scale = max(expected.abs().max().item() if expected.numel() else 0.0, 1e-3)
    assert err <= rel * scale, f"{what}: max |diff| {err:.4g} > {rel} * max |ref| {scale:.4g}"


def reference(weights, biases, x, sizes, grad_out):
    """float64 per-expert forward and gradients of loss = sum(y * grad_out)."""
    T = x.shape[0]
    fout, fin = weights[0].shape
    y = torch.zeros(T, fout, dtype=torch.float64, device=x.device)
    dx = torch.zeros(T, fin, dtype=torch.float64, device=x.device)
    dws, dbs = [], []
    g = grad_out.double()
    for i, (s, e) in enumerate(group_bounds(sizes.cpu(), T)):
        w = weights[i].detach().double()
        xi = x[s:e].detach().double()
        y[s:e] = xi @ w.t()
        if biases:
            y[s:e] += biases[i].detach().double()
        dx[s:e] = g[s:e] @ w
        dws.append(g[s:e].t() @ xi)
        dbs.append(g[s:e].sum(0))
    return y, dx, dws, dbs


@pytest.mark.parametrize("where", ["cuda", "cpu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("splits", SPLITS, ids=["ragged", "skewed", "even"])
def test_forward_and_gradients(where, bias, splits):
    layer = make(bias=bias)
    pad = 4
    T = sum(splits) + pad
    x = rand(T, 128, seed=1).requires_grad_()
    grad_out = rand(T, 64, seed=2)
    s = torch.tensor(splits, dtype=torch.int64, device=where)
    y = layer(x, s)
    y.backward(grad_out)
    ry, rdx, rdws, rdbs = reference(layer.weights, layer.biases if bias else [], x, s, grad_out)
    assert_rel(y, ry, 1e-2, "y")
    assert_rel(x.grad, rdx, 1e-2, "dx")
    for i in range(8):
        assert_rel(layer.weights[i].grad, rdws[i], 1e-2, f"dW{i}")
        assert layer.weights[i].grad.dtype == BF16
        if bias:
            assert_rel(layer.biases[i].grad, rdbs[i], 1e-2, f"db{i}")
    assert (y[sum(splits):] == 0).all() and (x.grad[sum(splits):] == 0).all()


def test_main_grad_accumulates_over_micro_batches():
    layer = make()
    for w in layer.weights:
        w.main_grad = torch.zeros(w.shape, dtype=torch.float32, device="cuda")
    ptrs = [w.main_grad.data_ptr() for w in layer.weights]
    total = [torch.zeros(64, 128, dtype=torch.float64, device="cuda") for _ in range(8)]
    for step, splits in enumerate(SPLITS + [[3, 0, 0, 9, 0, 0, 0, 1]]):
        T = sum(splits)
        x = rand(T, 128, seed=10 + step)
        grad_out = rand(T, 64, seed=20 + step)
        s = torch.tensor(splits, device="cuda")
        layer(x, s).backward(grad_out)
        _, _, dws, _ = reference(layer.weights, [], x, s, grad_out)
        for i in range(8):
            total[i] += dws[i]
            assert_rel(layer.weights[i].main_grad, total[i], 1e-5, f"main_grad{i} after {step + 1}")
    assert all(w.grad is None for w in layer.weights)
    assert [w.main_grad.data_ptr() for w in layer.weights] == ptrs, "accumulated in place"
    assert layer.bias0.grad is not None


def test_main_grad_with_interleaved_micro_batches():
    """Several forwards before their backwards (pipeline schedules)."""
    layer = make()
    for w in layer.weights:
        w.main_grad = torch.zeros(w.shape, dtype=torch.float32, device="cuda")
    s = torch.tensor(SPLITS[0], device="cuda")
    T = sum(SPLITS[0])
    xs = [rand(T, 128, seed=50 + i) for i in range(3)]
    gs = [rand(T, 64, seed=60 + i) for i in range(3)]
    ys = [layer(x, s) for x in xs]
    for y, g in zip(reversed(ys), reversed(gs)):
        y.backward(g)
    for i in range(8):
        expected = sum(reference(layer.weights, [], x, s, g)[2][i] for x, g in zip(xs, gs))
        assert_rel(layer.weights[i].main_grad, expected, 1e-5, f"main_grad{i}")


@pytest.mark.parametrize("main_grad", [False, True])
def test_torch_compile_fullgraph(main_grad):
    layers = [make(seed=5), make(seed=5)]
    if main_grad:
        for layer in layers:
            for w in layer.weights:
                w.main_grad = torch.zeros(w.shape, dtype=torch.float32, device="cuda")

    def loss_fn(layer, x, s, grad_out):
        h = torch.nn.functional.gelu(layer(x, s).float())
        return (h * grad_out).sum()

    compiled = torch.compile(loss_fn, fullgraph=True)
    for step, splits in enumerate(SPLITS):
        T = sum(splits)
        x = rand(T, 128, seed=30 + step)
        grad_out = rand(T, 64, dtype=torch.float32, seed=40 + step)
        s = torch.tensor(splits, device="cuda")
        xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
        le = loss_fn(layers[0], xs[0], s, grad_out)
        lc = compiled(layers[1], xs[1], s, grad_out)
        le.backward()
        lc.backward()
        # The loss sums terms of both signs: hold it to the rounding of each
        # term (inductor may keep the biased BF16 output in FP32 where eager
        # rounds it: 2^-8 relative per term), not to the sum's size.
        with torch.no_grad():
            terms = torch.nn.functional.gelu(layers[0](xs[0], s).float()).abs() * grad_out.abs()
        assert (lc.double() - le.double()).abs().item() <= 2.0 ** -8 * terms.sum().item(), "loss"

        assert_rel(xs[1].grad, xs[0].grad, 2e-2, "dx")
        for a, b in zip(layers[1].weights, layers[0].weights):
            ga, gb = (a.main_grad, b.main_grad) if main_grad else (a.grad, b.grad)
            assert_rel(ga, gb, 2e-2, "dW")
        for a, b in zip(layers[1].biases, layers[0].biases):
            assert_rel(a.grad, b.grad, 2e-2, "db")
        for layer in layers:
            layer.zero_grad(set_to_none=True)


class TwoLayerExperts(torch.nn.Module):
    def __init__(self, g, hidden, ffn):
        super().__init__()
        self.fc1 = moegemm.GroupedLinear(g, hidden, ffn, device="cuda")
        self.fc2 = moegemm.GroupedLinear(g, ffn, hidden, device="cuda")

    def forward(self, x, s):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x, s)), s)


def _device_splits(g, T, seed):
    """Splits made on the GPU (no host involvement): T tokens over a random
    subset of experts (the others empty)."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    active = torch.randperm(g, generator=gen, device="cuda")[: max(1, (seed % g) + 1)]
    pick = torch.randint(0, active.numel(), (T,), generator=gen, device="cuda")
    return torch.bincount(active[pick], minlength=g).to(torch.int64)


@pytest.mark.parametrize("main_grad", [False, True])
def test_cuda_graph_training_step(main_grad):
    torch.manual_seed(0)
    g, hidden, ffn, T, lr = 8, 64, 128, 256, 0.1
    model = TwoLayerExperts(g, hidden, ffn)
    params = list(model.parameters())
    weights = model.fc1.weights + model.fc2.weights
    if main_grad:
        for w in weights:
            w.main_grad = torch.zeros(w.shape, dtype=torch.float32, device="cuda")
    static_x = rand(T, hidden, seed=1)
    static_target = rand(T, hidden, seed=2)
    static_s = _device_splits(g, T, seed=3)

    def step():
        if main_grad:
            for w in weights:
                w.main_grad.zero_()
        y = model(static_x, static_s)
        loss = ((y.float() - static_target.float()) ** 2).sum() / T
        loss.backward()
        with torch.no_grad():
            for p in params:
                grad = p.main_grad if (main_grad and p.dim() == 2) else p.grad
                p.sub_(lr * grad.to(p.dtype))
        return y, loss

    # warm up on a side stream, as PyTorch asks before a capture
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    model.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y, static_loss = step()

    seen = []
    for replay in range(4):
        # new splits and data, written on the device into the captured buffers
        static_s.copy_(_device_splits(g, T, seed=100 + replay))
        static_x.copy_(rand(T, hidden, seed=200 + replay))
        before = [p.detach().clone() for p in params]
        graph.replay()
        torch.cuda.synchronize()
        s_host = static_s.cpu()
        assert int(s_host.sum()) == T
        seen.append(tuple(s_host.tolist()))

        # float64 reference of the same step from the parameters before the replay
        w1, b1 = before[:g], before[g:2 * g]
        w2, b2 = before[2 * g:3 * g], before[3 * g:]
        x64 = static_x.double()
        h_pre = torch.zeros(T, ffn, dtype=torch.float64, device="cuda")
        bounds = group_bounds(s_host, T)
        for i, (a, e) in enumerate(bounds):
            h_pre[a:e] = x64[a:e] @ w1[i].double().t() + b1[i].double()
        h = torch.nn.functional.gelu(h_pre)
        y = torch.zeros(T, hidden, dtype=torch.float64, device="cuda")
        for i, (a, e) in enumerate(bounds):
            y[a:e] = h[a:e] @ w2[i].double().t() + b2[i].double()
        assert_rel(static_y, y, 3e-2, f"replay {replay}: y")
        # gradients of the reference (autograd in float64)
        ref_params = [p.double().requires_grad_() for p in before]
        rw1, rb1, rw2, rb2 = (ref_params[:g], ref_params[g:2 * g], ref_params[2 * g:3 * g], ref_params[3 * g:])
        hp = torch.cat([x64[a:e] @ rw1[i].t() + rb1[i] for i, (a, e) in enumerate(bounds)])
        hh = torch.nn.functional.gelu(hp)
        yy = torch.cat([hh[a:e] @ rw2[i].t() + rb2[i] for i, (a, e) in enumerate(bounds)])
        (((yy - static_target.double()) ** 2).sum() / T).backward()
        for k, (p, p0, rp) in enumerate(zip(params, before, ref_params)):
            if p.dim() == 2:
                grad = p.main_grad if main_grad else p.grad
                assert_rel(grad, rp.grad, 5e-2, f"replay {replay}: grad of param {k}")
            # the SGD update happened inside the graph: p = bf16(p0 - lr * grad), within the
            # rounding of p and 5% of the largest step
            expected = p0.double() - lr * rp.grad
            allowed = torch.finfo(BF16).eps * expected.abs() + 5e-2 * (lr * rp.grad).abs().max()
            assert ((p.detach().double() - expected).abs() <= allowed).all(), f"replay {replay}: update of param {k}"
    assert len(set(seen)) == len(seen), f"the splits changed between replays: {seen}"
    assert any(0 in splits for splits in seen), f"some replay had an empty expert: {seen}"
