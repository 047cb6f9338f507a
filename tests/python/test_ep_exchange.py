"""Expert-parallel exchange logic of examples/ep_moe.py on the CPU (gloo, no GPU, no moegemm).

The experts are the pure-torch per-expert loop (TorchGroupedLinear), so everything here
runs wherever torch runs. The multi-rank parts run in gloo processes (torch.multiprocessing,
rendezvous through a file), one launch per world size (importing torch in the children is
most of the cost); each part is its own test, and a hang is cut off after a timeout.
"""

import importlib
import json
import os
import sys
import time
import traceback

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

EXAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
if EXAMPLES not in sys.path:
    # On sys.path (not loaded from a file path) so that spawned processes can import
    # ep_moe by name to find their entry function.
    sys.path.insert(0, EXAMPLES)
ep = importlib.import_module("ep_moe")


# --------------------------------------------------------------------- single process


def naive_regroup(counts_2d):
    """(source rank, local expert) order -> (local expert, source rank), by enumeration."""
    W, El = counts_2d.shape
    start, src = 0, {}
    for r in range(W):
        for e in range(El):
            n = int(counts_2d[r, e])
            src[(r, e)] = list(range(start, start + n))
            start += n
    return [i for e in range(El) for r in range(W) for i in src[(r, e)]]


@pytest.mark.parametrize("W,El", [(1, 1), (1, 5), (2, 3), (3, 2), (4, 4)])
def test_regroup_indices_match_enumeration(W, El):
    g = torch.Generator().manual_seed(W * 10 + El)
    for trial in range(20):
        counts = torch.randint(0, 5, (W, El), generator=g)
        if trial % 4 == 1:
            counts[:, 0] = 0  # an expert nobody sends to
        if trial % 4 == 2:
            counts[0, :] = 0  # a rank that sends nothing
        if trial % 4 == 3:
            counts.zero_()
        total = int(counts.sum())
        idx, inv = ep.regroup_indices(counts, total)
        assert idx.tolist() == naive_regroup(counts)
        assert torch.equal(idx[inv], torch.arange(total))
        assert torch.equal(inv[idx], torch.arange(total))


def test_permute_tokens_sorted_stable_and_counts():
    g = torch.Generator().manual_seed(0)
    T, k, E, H = 37, 3, 7, 5
    x = torch.randn(T, H, generator=g)
    experts = torch.stack([torch.randperm(E, generator=g)[:k] for _ in range(T)])
    x_sorted, order, inv_order, counts = ep.permute_tokens(x, experts, E)
    flat = experts.reshape(-1)
    assert torch.equal(counts, torch.bincount(flat, minlength=E))
    # sorted by expert; within an expert, in token-major copy order (stability)
    expected = sorted(range(T * k), key=lambda c: (int(flat[c]), c))
    assert order.tolist() == expected
    assert torch.equal(x_sorted, x[torch.tensor(expected) // k])
    assert torch.equal(order[inv_order], torch.arange(T * k))


def test_dispatch_combine_roundtrip_local_and_gradients():
    """group=None (all experts local): identity experts give back sum_j p_j * x = x,
    and the dispatch/combine Functions have the gradients of their dense equivalent."""
    g = torch.Generator().manual_seed(1)
    T, k, E, H = 29, 2, 5, 8
    x = torch.randn(T, H, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(E, H, generator=g, dtype=torch.float64)
    probs, experts = ep.route(x, w, k)
    x_local, counts, plan = ep.ep_dispatch(x, experts, E, None)
    assert counts.sum().item() == T * k
    out = ep.ep_combine(x_local, probs, plan)
    assert torch.allclose(out, x, atol=1e-12)

    # gradient of a per-expert scaling through dispatch/combine vs a dense formula
    scale = torch.randn(E, generator=g, dtype=torch.float64)
    def moe(xx):
        p, ex = ep.route(xx, w, k)
        xl, c, pl = ep.ep_dispatch(xx, ex, E, None)
        s = torch.repeat_interleave(scale, c)
        return ep.ep_combine(xl * s.unsqueeze(1), p, pl)
    def dense(xx):
        p, ex = ep.route(xx, w, k)
        return (p.unsqueeze(-1) * scale[ex].unsqueeze(-1) * xx.unsqueeze(1)).sum(1)
    assert torch.allclose(moe(x), dense(x), atol=1e-12)
    assert torch.autograd.gradcheck(moe, (x,))


def test_torch_grouped_linear_empty_groups():
    lin = ep.TorchGroupedLinear(3, 4, 6, bias=True, dtype=torch.float32)
    x = torch.randn(5, 4, requires_grad=True)
    y = lin(x, torch.tensor([0, 5, 0]))
    assert y.shape == (5, 6)
    assert torch.allclose(y, torch.nn.functional.linear(x, lin.weight1, lin.bias1))
    y.sum().backward()
    assert lin.weight0.grad is None or torch.count_nonzero(lin.weight0.grad) == 0
    assert lin(torch.zeros(0, 4), torch.tensor([0, 0, 0])).shape == (0, 6)


# --------------------------------------------------------------------- multi process (gloo)

TIMEOUT_S = int(os.environ.get("EP_TEST_TIMEOUT", "240"))  # per launch (world size)


def _check(experts_per_rank, top_k, tokens=48, hidden=24, ffn=16):
    """EP over the gloo ranks == the same layer with all experts local (ep_moe.run_check:
    outputs, dx, router grad, expert weight/bias grads and main_grad; random routing,
    empty experts, a rank that receives no token)."""
    lines = []
    ok = ep.run_check(dist.group.WORLD, torch.device("cpu"), torch.float32, "torch",
                      tokens=tokens, hidden=hidden, ffn=ffn, experts_per_rank=experts_per_rank,
                      top_k=top_k, log=lines.append)
    assert ok, "\n".join(lines)
    return lines


def _check_moegemm_cpu():
    """The same check with moegemm.GroupedLinear as the experts (BF16, main_grad, bias),
    its ops running on the CPU reference kernels of tests/python/reference.py: the EP
    layer's use of GroupedLinear (device-style int64 m_splits, main_grad) without a GPU."""
    try:
        importlib.import_module("moegemm")
        from reference import cpu_reference_kernels
    except Exception as e:
        raise _Skip(f"moegemm or tests/python/reference.py not importable: {e}")
    lines = []
    with cpu_reference_kernels():
        ok = ep.run_check(dist.group.WORLD, torch.device("cpu"), torch.bfloat16, "moegemm",
                          tokens=48, hidden=24, ffn=16, experts_per_rank=2, top_k=2,
                          log=lines.append)
    assert ok, "\n".join(lines)
    return lines


class _Skip(Exception):
    pass


def _exchange():
    """The counts all-to-all, the host split sizes, the ragged token all-to-all, the
    regrouping and the reverse all-to-all in backward, against enumerated expectations."""
    W, rank = dist.get_world_size(), dist.get_rank()
    El = 2
    E = W * El
    # counts[rank][expert] = rank + 2*expert (deterministic, includes zeros for rank 0, e 0)
    counts = torch.tensor([rank + 2 * e for e in range(E)], dtype=torch.int64)
    recv = ep.exchange_counts(counts, dist.group.WORLD).view(W, El)
    expect = torch.tensor([[r + 2 * (rank * El + e) for e in range(El)] for r in range(W)])
    assert torch.equal(recv, expect), (recv, expect)
    send, rcv = ep.host_split_sizes(counts, recv.reshape(-1), W)
    assert send == counts.view(W, El).sum(1).tolist()
    assert rcv == expect.sum(1).tolist()
    # rows tagged with (source rank, global expert, index)
    rows = []
    for e in range(E):
        for i in range(int(counts[e])):
            rows.append([rank, e, i])
    x = torch.tensor(rows, dtype=torch.float32).reshape(-1, 3).requires_grad_(True)
    y = ep.all_to_all_rows(x, rcv, send, dist.group.WORLD)
    got = [tuple(int(v) for v in row) for row in y.detach().tolist()]
    want = [(r, rank * El + e, i) for r in range(W) for e in range(El)
            for i in range(int(expect[r, e]))]
    assert got == want
    # regrouped: (local expert, source rank)
    idx, inv = ep.regroup_indices(recv, sum(rcv))
    got2 = [tuple(int(v) for v in row) for row in y.detach()[idx].tolist()]
    want2 = [(r, rank * El + e, i) for e in range(El) for r in range(W)
             for i in range(int(expect[r, e]))]
    assert got2 == want2
    # backward is the reverse all-to-all: a gradient tagged by the receiver comes back
    # to the right source rows
    (y * torch.tensor([1.0, 0.0, 0.0])).sum().backward()
    assert torch.equal(x.grad[:, 0], torch.full((x.shape[0],), 1.0))
    assert torch.equal(x.grad[:, 1:], torch.zeros(x.shape[0], 2))


def _train_bench():
    """The example's training and bench modes run end to end (CPU, torch experts)."""
    group = dist.group.WORLD
    layer = ep.ExpertParallelMoE(32, 16, 4 * dist.get_world_size(), 2, group=group,
                                 experts="torch", device=torch.device("cpu"),
                                 dtype=torch.float32)
    ep.load_full_params(layer, ep.init_full_params(32, 16, layer.num_experts, False, 0))
    ep.attach_main_grad(layer, fused=False)
    lines = []
    ep.train(layer, group, torch.device("cpu"), torch.float32, 64, 3, 1e-2, 0, lines.append)
    ep.bench(layer, group, torch.device("cpu"), torch.float32, 64, 3, 1, 1e-2, "torch",
             lines.append)
    if dist.get_rank() == 0:
        assert len([ln for ln in lines if ln.startswith("step ")]) == 3
        row = [ln for ln in lines if ln.startswith(f"| {dist.get_world_size()} |")]
        assert len(row) == 1, lines
        cells = [c.strip() for c in row[0].strip("|").split("|")]
        step_ms, gemm_ms, a2a_ms = float(cells[5]), float(cells[7]), float(cells[10])
        assert step_ms > 0 and 0 < gemm_ms < step_ms and 0 < a2a_ms < step_ms, row
    return lines


PARTS = {
    1: [("check E=4 k=2", _check, dict(experts_per_rank=4, top_k=2))],
    2: [("exchange", _exchange, {}),
        ("check El=3 k=2", _check, dict(experts_per_rank=3, top_k=2)),
        ("check El=2 k=1", _check, dict(experts_per_rank=2, top_k=1)),
        ("train and bench modes", _train_bench, {}),
        ("check moegemm.GroupedLinear (CPU kernels)", _check_moegemm_cpu, {})],
    3: [("exchange", _exchange, {}),
        ("check El=2 k=3", _check, dict(experts_per_rank=2, top_k=3))],
}


def _parts_worker(world, result_dir):
    """Runs PARTS[world] in order on every rank; each rank writes its results after every
    part. A failing part ends the worker (the ranks could no longer agree on collectives)."""
    rank = dist.get_rank()
    results = {}
    for name, fn, kw in PARTS[world]:
        try:
            lines = fn(**kw)
            results[name] = [True, "\n".join(lines or [])]
        except _Skip as e:  # the same on every rank: nothing collective ran
            results[name] = [None, str(e)]
        except Exception:
            results[name] = [False, traceback.format_exc()]
        with open(os.path.join(result_dir, f"rank{rank}.json"), "w") as f:
            json.dump(results, f)
        if results[name][0] is False:
            raise RuntimeError(f"part {name!r} failed on rank {rank}")


def run_gloo(world, result_dir, timeout=TIMEOUT_S):
    """Spawns `world` gloo processes running _parts_worker; returns an error text or None."""
    init_file = os.path.join(result_dir, "rendezvous")
    target = f"{os.path.abspath(__file__)}:_parts_worker"
    ctx = mp.start_processes(ep.spawn_entry,
                             args=(world, init_file, "gloo", target,
                                   dict(world=world, result_dir=result_dir)),
                             nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                for p in ctx.processes:
                    if p.is_alive():
                        p.kill()
                return f"timed out after {timeout} s (hung collective?)"
    except Exception as e:  # ProcessRaisedException / ProcessExitedException
        return f"{type(e).__name__}: {e}"
    return None


_RUNS = {}


@pytest.fixture(scope="module")
def gloo_runs(tmp_path_factory):
    def get(world):
        if world not in _RUNS:
            d = str(tmp_path_factory.mktemp(f"gloo{world}"))
            err = run_gloo(world, d)
            per_rank = []
            for r in range(world):
                f = os.path.join(d, f"rank{r}.json")
                per_rank.append(json.load(open(f)) if os.path.exists(f) else {})
            _RUNS[world] = (err, per_rank)
        return _RUNS[world]
    return get


@pytest.mark.parametrize("world,part", [(w, name) for w, parts in PARTS.items()
                                        for name, _, _ in parts],
                         ids=[f"world{w}-{name.replace(' ', '_')}" for w, parts in PARTS.items()
                              for name, _, _ in parts])
def test_ep_gloo(gloo_runs, world, part):
    err, per_rank = gloo_runs(world)
    for rank, res in enumerate(per_rank):
        if part not in res:
            pytest.fail(f"rank {rank}: part {part!r} did not run; the launch said: {err}")
        ok, text = res[part]
        if ok is None:
            pytest.skip(text)
        assert ok, f"rank {rank}, part {part!r}:\n{text}"
    print(per_rank[0][part][1])
