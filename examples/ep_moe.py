#!/usr/bin/env python3
"""Expert-parallel MoE on torch.distributed (NCCL) with moegemm grouped GEMMs.

Launch one process per GPU:

    torchrun --nproc-per-node N examples/ep_moe.py            # a few training steps
    torchrun --nproc-per-node N examples/ep_moe.py --check    # EP == the same layer on one GPU
    torchrun --nproc-per-node N examples/ep_moe.py --bench    # step time, moegemm share

Without a GPU the exchange logic still runs on the CPU through gloo with a pure-torch
per-expert loop in place of moegemm:

    torchrun --nproc-per-node 2 examples/ep_moe.py --check --backend gloo --experts torch

One MoE layer, experts sharded over the ranks of the EP group (rank r holds the global
experts [r*El, (r+1)*El), El = E / world):

  1. router (replicated, FP32): logits = x W_r^T, softmax, top-k, renormalised weights.
  2. permutation: the T*k token copies are sorted (stably) by global expert id; the
     per-expert counts are a device tensor [E] (scatter_add, no sync).
  3. all-to-all of the counts: a fixed-size device tensor; afterwards rank r holds
     recv_counts[W, El]: how many rows every source rank sends to each of its experts.
  4. ONE host sync: the per-rank row totals of counts and recv_counts come to the host
     with a single .tolist(). torch.distributed.all_to_all_single takes its
     input/output split sizes as Python ints, so a ragged token all-to-all cannot be
     sized from device data; this sync is inherent to that API, not to moegemm.
  5. all-to-all of the token rows (a differentiable autograd Function: its backward is
     the reverse all-to-all with the splits swapped; no sync in backward).
  6. regrouping: rows arrive ordered by (source rank, local expert); an index computed
     on the device from recv_counts (repeat_interleave with a known output size, no
     sync) reorders them to (local expert, source rank), so each local expert's rows
     are contiguous.
  7. experts: moegemm.GroupedLinear (fc1) -> GELU -> moegemm.GroupedLinear (fc2), with
     the local per-expert counts recv_counts.sum(0) as a DEVICE tensor: the grouped
     GEMMs (forward, dgrad, wgrad) do no host sync.
  8. the way back: inverse regrouping, reverse all-to-all, un-permutation, and the
     top-k weighted sum per token (FP32).

Ordering property used by --check: a token copy's position inside its expert's rows is
(source rank, token, k-slot), which is exactly the position the same copy has when one
GPU runs the layer with all experts local on the concatenation of the ranks' inputs.
So the EP layer and the one-GPU layer present every expert with the same rows in the
same order.

The exchange functions (route, permute_tokens, exchange_counts, host_split_sizes,
all_to_all_rows, regroup_indices, ep_dispatch, ep_combine) are backend-agnostic and
are tested with gloo on the CPU (tests/python/test_ep_exchange.py).
"""

import os

# NVLink multicast stays off (NCCL NVLS, PyTorch symmetric memory, NVSHMEM): set before
# torch or NCCL initialise, and inherited by every process this one starts.
os.environ["NCCL_NVLS_ENABLE"] = "0"
os.environ["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"
os.environ["NVSHMEM_DISABLE_NVLS"] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import List, Optional  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ----------------------------------------------------------------------------------
# Experts: moegemm.GroupedLinear, or a pure-torch per-expert loop with the same
# interface (parameters weight0..weight{g-1} [out, in], bias0..; forward(x, m_splits)).
# ----------------------------------------------------------------------------------


class TorchGroupedLinear(nn.Module):
    """Pure-torch stand-in for moegemm.GroupedLinear: one F.linear per expert.

    Needs the split sizes on the host (one .tolist() per call): the sync that the
    moegemm path avoids. Used for the CPU tests and as the baseline in --bench.
    """

    def __init__(self, num_gemms, in_features, out_features, bias=True, device=None,
                 dtype=torch.bfloat16):
        super().__init__()
        self.num_gemms = num_gemms
        self.in_features = in_features
        self.out_features = out_features
        self.use_bias = bias
        for i in range(num_gemms):
            w = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            self.register_parameter(f"weight{i}", w)
            if bias:
                bound = 1.0 / math.sqrt(in_features)
                b = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype))
                nn.init.uniform_(b, -bound, bound)
                self.register_parameter(f"bias{i}", b)

    def forward(self, x, m_splits):
        sizes = m_splits.tolist() if torch.is_tensor(m_splits) else list(m_splits)
        outs = []
        for i, chunk in enumerate(torch.split(x, sizes, dim=0)):
            b = getattr(self, f"bias{i}") if self.use_bias else None
            outs.append(F.linear(chunk, getattr(self, f"weight{i}"), b))
        if not outs:
            return x.new_empty(0, self.out_features)
        return torch.cat(outs, dim=0)


def grouped_linear_class(experts: str):
    if experts == "moegemm":
        import moegemm  # imported only here: the CPU tests never need it

        return moegemm.GroupedLinear
    if experts == "torch":
        return TorchGroupedLinear
    raise ValueError(f"--experts must be moegemm or torch, not {experts!r}")


# ----------------------------------------------------------------------------------
# Row permutations with gather-only forward and backward (deterministic, no atomics).
# ----------------------------------------------------------------------------------


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    inv = torch.empty_like(perm)
    inv.scatter_(0, perm, torch.arange(perm.numel(), device=perm.device, dtype=perm.dtype))
    return inv


class _PermuteRows(torch.autograd.Function):
    """out = x[idx]; idx is a permutation and inv its inverse: grad_x = grad[inv]."""

    @staticmethod
    def forward(ctx, x, idx, inv):
        ctx.save_for_backward(inv)
        return x.index_select(0, idx)

    @staticmethod
    def backward(ctx, grad):
        (inv,) = ctx.saved_tensors
        return grad.index_select(0, inv), None, None


def permute_rows(x, idx, inv):
    return _PermuteRows.apply(x, idx, inv)


class _ExpandSortRows(torch.autograd.Function):
    """x [T, H] -> its T*k copies in the order `order` (an index over token-major copies
    t*k + j). Backward: gather the copies back to token-major order, sum over k (FP32)."""

    @staticmethod
    def forward(ctx, x, order, inv_order, k):
        ctx.save_for_backward(inv_order)
        ctx.k = k
        ctx.num_tokens = x.shape[0]
        return x.index_select(0, torch.div(order, k, rounding_mode="floor"))

    @staticmethod
    def backward(ctx, grad):
        (inv_order,) = ctx.saved_tensors
        g = grad.index_select(0, inv_order).view(ctx.num_tokens, ctx.k, -1)
        acc = torch.promote_types(grad.dtype, torch.float32)
        return g.to(acc).sum(1).to(grad.dtype), None, None, None


# ----------------------------------------------------------------------------------
# Exchange logic
# ----------------------------------------------------------------------------------


def route(x, router_weight, top_k, logit_bias=None, chunks=1):
    """Top-k routing in the router's dtype (FP32). Returns (probs [T, k], experts [T, k]
    int64).

    `chunks` evaluates the router on that many equal row blocks: the one-GPU reference
    uses chunks=world so that its logits are computed with the same GEMM shapes as
    on the EP ranks (bitwise-equal logits, hence the same top-k even at near-ties).
    """
    xf = x.to(router_weight.dtype)
    parts = xf.chunk(chunks, dim=0) if chunks > 1 else [xf]
    logits = torch.cat([F.linear(p, router_weight) for p in parts], dim=0)
    if logit_bias is not None:
        logits = logits + logit_bias
    scores = torch.softmax(logits, dim=-1)
    probs, experts = torch.topk(scores, top_k, dim=-1)
    probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs, experts


def permute_tokens(x, experts, num_experts):
    """Sort the T*k token copies by global expert id (stable: ties keep token order).

    Returns (x_sorted [T*k, H], order, inv_order, counts [E] int64 on x's device).
    order[i] is the token-major copy index (t*k + j) of sorted row i.
    """
    flat = experts.reshape(-1)
    order = torch.argsort(flat, stable=True)
    inv_order = inverse_permutation(order)
    counts = torch.zeros(num_experts, dtype=torch.int64, device=flat.device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))
    x_sorted = _ExpandSortRows.apply(x, order, inv_order, experts.shape[1])
    return x_sorted, order, inv_order, counts


def exchange_counts(counts, group):
    """All-to-all of the per-expert counts (device tensor, fixed size W*El).

    Input: counts[E] of this rank's token copies per global expert; chunk j (the experts
    of rank j) goes to rank j. Output: recv[W*El], viewed [W, El]: recv[r, e] = rows that
    rank r sends to this rank's local expert e.
    """
    recv = torch.empty_like(counts)
    dist.all_to_all_single(recv, counts.contiguous(), group=group)
    return recv


def host_split_sizes(counts, recv_counts, world):
    """The one host sync of the layer: rows sent to / received from each rank.

    all_to_all_single needs its split sizes as Python ints; both lists come over in a
    single device-to-host copy.
    """
    both = torch.stack([counts.view(world, -1).sum(1), recv_counts.view(world, -1).sum(1)])
    send, recv = both.tolist()
    return send, recv


class _AllToAllRows(torch.autograd.Function):
    """Ragged all-to-all of rows; backward is the reverse all-to-all (splits swapped)."""

    @staticmethod
    def forward(ctx, x, out_splits, in_splits, group):
        ctx.out_splits, ctx.in_splits, ctx.group = out_splits, in_splits, group
        out = x.new_empty((sum(out_splits),) + tuple(x.shape[1:]))
        dist.all_to_all_single(out, x.contiguous(), out_splits, in_splits, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        g_in = grad.new_empty((sum(ctx.in_splits),) + tuple(grad.shape[1:]))
        dist.all_to_all_single(g_in, grad.contiguous(), ctx.in_splits, ctx.out_splits,
                               group=ctx.group)
        return g_in, None, None, None


def all_to_all_rows(x, out_splits: List[int], in_splits: List[int], group):
    return _AllToAllRows.apply(x, out_splits, in_splits, group)


def regroup_indices(recv_counts_2d, total: int):
    """Order (source rank, local expert) -> (local expert, source rank), on the device.

    recv_counts_2d: [W, El] int64. Returns (idx, inv), both [total] int64, such that
    x_recv[idx] has each local expert's rows contiguous (source ranks in order inside an
    expert), and y[inv] brings rows back to the received order. No host sync: `total`
    is the host-side row count known from host_split_sizes.
    """
    W, El = recv_counts_2d.shape
    dev = recv_counts_2d.device
    src_sizes = recv_counts_2d.reshape(-1)  # chunk (r, e) at r*El + e
    src_start = torch.cumsum(src_sizes, 0) - src_sizes
    dst_sizes = recv_counts_2d.t().reshape(-1)  # chunk (e, r) at e*W + r
    dst_start = torch.cumsum(dst_sizes, 0) - dst_sizes
    q = torch.repeat_interleave(torch.arange(El * W, device=dev), dst_sizes, output_size=total)
    src_chunk = (q % W) * El + torch.div(q, W, rounding_mode="floor")
    pos = torch.arange(total, device=dev)
    idx = src_start[src_chunk] + (pos - dst_start[q])
    return idx, inverse_permutation(idx)


@dataclass
class DispatchPlan:
    """What ep_combine (and the backward) needs from ep_dispatch."""

    num_tokens: int
    top_k: int
    order: torch.Tensor
    inv_order: torch.Tensor
    group: Optional[object] = None
    send_splits: Optional[List[int]] = None
    recv_splits: Optional[List[int]] = None
    regroup_idx: Optional[torch.Tensor] = None
    restore_idx: Optional[torch.Tensor] = None


def ep_dispatch(x, experts, num_experts, group, timer=None):
    """Tokens -> this rank's local experts. Returns (x_local, tokens_per_local_expert
    [El] int64 on x's device, plan). group=None: all experts local, no communication."""
    T, k = experts.shape
    x_sorted, order, inv_order, counts = permute_tokens(x, experts, num_experts)
    plan = DispatchPlan(num_tokens=T, top_k=k, order=order, inv_order=inv_order)
    if group is None:
        return x_sorted, counts, plan
    world = dist.get_world_size(group)
    assert num_experts % world == 0
    if timer is not None:
        key = timer.begin("all-to-all")
    recv_counts = exchange_counts(counts, group)
    send, recv = host_split_sizes(counts, recv_counts, world)
    if timer is not None:
        timer.end(key)
    x_recv = timed(all_to_all_rows, timer, "all-to-all", x_sorted, recv, send, group)
    c2 = recv_counts.view(world, num_experts // world)
    idx, inv = regroup_indices(c2, sum(recv))
    plan.group, plan.send_splits, plan.recv_splits = group, send, recv
    plan.regroup_idx, plan.restore_idx = idx, inv
    return permute_rows(x_recv, idx, inv), c2.sum(0), plan


def ep_combine(y_local, probs, plan: DispatchPlan, timer=None):
    """Local expert outputs -> [T, H] on the tokens' rank, top-k weighted sum in FP32."""
    if plan.group is not None:
        y_recv = permute_rows(y_local, plan.restore_idx, plan.regroup_idx)
        y_sorted = timed(all_to_all_rows, timer, "all-to-all", y_recv,
                         plan.send_splits, plan.recv_splits, plan.group)
    else:
        y_sorted = y_local
    y = permute_rows(y_sorted, plan.inv_order, plan.order)  # token-major copies
    y = y.view(plan.num_tokens, plan.top_k, -1)
    return (y.to(probs.dtype) * probs.unsqueeze(-1)).sum(1).to(y_local.dtype)


# ----------------------------------------------------------------------------------
# Timing: intervals on the GPU timeline (CUDA events; wall clock on the CPU) around a
# call in forward AND around its backward, through identity autograd marks.
# ----------------------------------------------------------------------------------


class IntervalTimer:
    def __init__(self, device):
        self.cuda = torch.device(device).type == "cuda"
        self.open = {}
        self.done = []  # (category, start, end)
        self._next = 0

    def _stamp(self):
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def begin(self, category):
        self._next += 1
        key = (category, self._next)
        self.open[key] = self._stamp()
        return key

    def end(self, key):
        self.done.append((key[0], self.open.pop(key), self._stamp()))

    def new_key(self, category):
        self._next += 1
        return (category, self._next)

    def open_key(self, key):
        self.open[key] = self._stamp()

    def collect(self):
        """Milliseconds per category since the last collect (synchronises the device)."""
        if self.cuda:
            torch.cuda.synchronize()
        out = {}
        for cat, a, b in self.done:
            ms = a.elapsed_time(b) if self.cuda else (b - a) * 1e3
            out[cat] = out.get(cat, 0.0) + ms
        self.done.clear()
        self.open.clear()  # an interval left open (no backward ran) is dropped
        return out


class _Mark(torch.autograd.Function):
    """Identity; stamps the timer in forward and in backward. The start mark opens the
    forward interval and closes the backward one; the end mark does the converse."""

    @staticmethod
    def forward(ctx, x, timer, key, is_start):
        ctx.timer, ctx.key, ctx.is_start = timer, key, is_start
        fkey = key + ("fwd",)
        timer.open_key(fkey) if is_start else timer.end(fkey)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        bkey = ctx.key + ("bwd",)
        ctx.timer.end(bkey) if ctx.is_start else ctx.timer.open_key(bkey)
        return grad, None, None, None


def timed(fn, timer, category, x, *args):
    """fn(x, *args), with its forward and backward GPU time added to `category`."""
    if timer is None:
        return fn(x, *args)
    key = timer.new_key(category)
    x = _Mark.apply(x, timer, key, True)
    return _Mark.apply(fn(x, *args), timer, key, False)


# ----------------------------------------------------------------------------------
# The layer
# ----------------------------------------------------------------------------------


class ExpertParallelMoE(nn.Module):
    """MoE FFN layer (router, top-k, El local experts of fc1 -> GELU -> fc2).

    group: the EP process group (None = all experts local, no communication: the
    one-GPU layer). The router is replicated on every rank (its gradient must be
    all-reduced over the group, see allreduce_router_grad).
    """

    def __init__(self, hidden, ffn, num_experts, top_k, group=None, experts="moegemm",
                 bias=False, device=None, dtype=torch.bfloat16):
        super().__init__()
        self.group = group
        self.world = dist.get_world_size(group) if group is not None else 1
        self.rank = dist.get_rank(group) if group is not None else 0
        if num_experts % self.world:
            raise ValueError(f"{num_experts} experts do not split over {self.world} ranks")
        self.hidden, self.ffn = hidden, ffn
        self.num_experts, self.top_k = num_experts, top_k
        self.num_local = num_experts // self.world
        self.first_expert = self.rank * self.num_local
        self.router = nn.Linear(hidden, num_experts, bias=False, device=device,
                                dtype=torch.float32)
        # Non-trainable logit offset (tests use it to force empty experts / ranks).
        self.register_buffer("logit_bias", torch.zeros(num_experts, device=device))
        lin = grouped_linear_class(experts)
        self.fc1 = lin(self.num_local, hidden, ffn, bias=bias, device=device, dtype=dtype)
        self.fc2 = lin(self.num_local, ffn, hidden, bias=bias, device=device, dtype=dtype)
        self.timer = None
        self.last_experts = None
        self.last_tokens_per_local_expert = None

    def forward(self, x, route_chunks=1):
        probs, experts = route(x, self.router.weight, self.top_k, self.logit_bias,
                               chunks=route_chunks)
        self.last_experts = experts
        x_local, m_splits, plan = ep_dispatch(x, experts, self.num_experts, self.group,
                                              self.timer)
        self.last_tokens_per_local_expert = m_splits
        h = timed(self.fc1, self.timer, "moegemm", x_local, m_splits)
        h = F.gelu(h)
        y_local = timed(self.fc2, self.timer, "moegemm", h, m_splits)
        return ep_combine(y_local, probs, plan, self.timer)

    def allreduce_router_grad(self):
        if self.group is not None and self.router.weight.grad is not None:
            dist.all_reduce(self.router.weight.grad, group=self.group)


def init_full_params(hidden, ffn, num_experts, bias, seed, experts=None):
    """Deterministic parameters (router [E, H]; fc1/fc2 of the experts in `experts`,
    default all), FP32 on the CPU. Each expert has its own generator, so every rank
    and every world size gets the same values for the same global expert."""
    g = torch.Generator().manual_seed(seed)
    p = {"router": torch.randn(num_experts, hidden, generator=g) / math.sqrt(hidden)}
    for e in (range(num_experts) if experts is None else experts):
        g = torch.Generator().manual_seed(seed * 1_000_003 + 1 + e)
        p[f"fc1.weight{e}"] = torch.randn(ffn, hidden, generator=g) / math.sqrt(hidden)
        p[f"fc2.weight{e}"] = torch.randn(hidden, ffn, generator=g) / math.sqrt(ffn)
        if bias:
            p[f"fc1.bias{e}"] = 0.1 * torch.randn(ffn, generator=g)
            p[f"fc2.bias{e}"] = 0.1 * torch.randn(hidden, generator=g)
    return p


@torch.no_grad()
def load_full_params(layer: ExpertParallelMoE, params):
    layer.router.weight.copy_(params["router"])
    for i in range(layer.num_local):
        e = layer.first_expert + i
        for lin_name in ("fc1", "fc2"):
            lin = getattr(layer, lin_name)
            getattr(lin, f"weight{i}").copy_(params[f"{lin_name}.weight{e}"])
            if f"{lin_name}.bias{e}" in params and getattr(lin, f"bias{i}", None) is not None:
                getattr(lin, f"bias{i}").copy_(params[f"{lin_name}.bias{e}"])


def attach_main_grad(layer: ExpertParallelMoE, fused: bool):
    """Megatron-style FP32 main_grad on every expert weight. moegemm.GroupedLinear
    accumulates into it itself (fused=True); for the torch experts a post-accumulate
    hook adds .grad into main_grad and drops .grad (what frameworks do without fusion)."""
    for lin in (layer.fc1, layer.fc2):
        for i in range(layer.num_local):
            w = getattr(lin, f"weight{i}")
            w.main_grad = torch.zeros(w.shape, dtype=torch.float32, device=w.device)
            if not fused:
                def hook(p):
                    p.main_grad.add_(p.grad)
                    p.grad = None
                w.register_post_accumulate_grad_hook(hook)


def expert_grad(p):
    mg = getattr(p, "main_grad", None)
    return mg if mg is not None else p.grad


# ----------------------------------------------------------------------------------
# --check: EP layer vs the same layer with all experts local, same inputs
# ----------------------------------------------------------------------------------


def _compare(name, got, ref, tol, report):
    if got is None or ref is None:
        report.append((name, False, "missing gradient", ""))
        return False
    got, ref = got.detach().float().cpu(), ref.detach().float().cpu()
    if got.shape != ref.shape:
        report.append((name, False, f"shape {tuple(got.shape)} vs {tuple(ref.shape)}", ""))
        return False
    diff = (got - ref).abs()
    rel = (diff.norm() / ref.norm().clamp_min(1e-30)).item() if got.numel() else 0.0
    mx = diff.max().item() if got.numel() else 0.0
    ok = bool(torch.isfinite(got).all()) and rel <= tol
    tag = "bitwise" if torch.equal(got, ref) else f"rel {rel:.2e}, max|d| {mx:.2e}"
    report.append((name, ok, tag, f"tol {tol:.0e}"))
    return ok


def check_case(case, group, device, dtype, experts, tokens, hidden, ffn, num_experts,
               top_k, bias, main_grad, mask_experts=(), seed=1234):
    """Runs one case on every rank of `group`; returns (ok, report lines)."""
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    params = init_full_params(hidden, ffn, num_experts, bias, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x_all = torch.randn(world * tokens, hidden, generator=g).to(device=device, dtype=dtype)
    dy_all = torch.randn(world * tokens, hidden, generator=g).to(device=device, dtype=dtype)
    logit_bias = torch.zeros(num_experts)
    for e in mask_experts:
        logit_bias[e] = -1e4

    def build(grp):
        layer = ExpertParallelMoE(hidden, ffn, num_experts, top_k, group=grp, experts=experts,
                                  bias=bias, device=device, dtype=dtype)
        load_full_params(layer, params)
        layer.logit_bias.copy_(logit_bias)
        if main_grad:
            attach_main_grad(layer, fused=(experts == "moegemm"))
        return layer

    # One GPU, all experts local, all ranks' tokens.
    ref = build(None)
    xr = x_all.clone().requires_grad_(True)
    out_ref = ref(xr, route_chunks=world)
    (out_ref.float() * dy_all.float()).sum().backward()

    # Expert parallel: this rank's tokens.
    ep = build(group)
    sl = slice(rank * tokens, (rank + 1) * tokens)
    x = x_all[sl].clone().requires_grad_(True)
    out = ep(x)
    (out.float() * dy_all[sl].float()).sum().backward()
    ep.allreduce_router_grad()

    report = []
    ok = torch.equal(ep.last_experts.cpu(), ref.last_experts[sl].cpu())
    report.append(("routing (top-k ids)", ok, "equal" if ok else "DIFFERENT", ""))
    ok &= _compare("output", out, out_ref[sl], tol, report)
    ok &= _compare("grad x", x.grad, xr.grad[sl], tol, report)
    ok &= _compare("grad router", ep.router.weight.grad, ref.router.weight.grad, tol, report)
    for lin_name in ("fc1", "fc2"):
        for kind in (("weight", "bias") if bias else ("weight",)):
            got = torch.stack([expert_grad(getattr(getattr(ep, lin_name), f"{kind}{i}"))
                               for i in range(ep.num_local)])
            want = torch.stack([expert_grad(getattr(getattr(ref, lin_name),
                                                    f"{kind}{ep.first_expert + i}"))
                                for i in range(ep.num_local)])
            gname = "main_grad" if (main_grad and kind == "weight") else "grad"
            ok &= _compare(f"{gname} {lin_name}.{kind} (local experts)", got, want, tol, report)
    counts = ep.last_tokens_per_local_expert.tolist()
    report.append(("tokens per local expert", True, str(counts), ""))
    return bool(ok), report


def check_cases(world, num_experts, top_k):
    cases = [
        ("random routing, bias, .grad", dict(bias=True, main_grad=False)),
        ("random routing, main_grad", dict(bias=False, main_grad=True)),
    ]
    el = num_experts // world
    # Empty experts: global expert 0 and the first local expert of the last rank.
    mask = sorted({0, (world - 1) * el})
    if num_experts - len(mask) >= top_k:
        cases.append(("empty experts " + str(mask), dict(bias=True, main_grad=True,
                                                         mask_experts=mask)))
    # A rank that receives no token at all (all experts of the last rank masked).
    if world > 1 and num_experts - el >= top_k:
        cases.append((f"rank {world - 1} receives nothing",
                      dict(bias=True, main_grad=False,
                           mask_experts=list(range((world - 1) * el, num_experts)))))
    return cases


def run_check(group, device, dtype, experts, tokens, hidden, ffn, experts_per_rank, top_k,
              log=print):
    """All check cases; every rank checks its own slice. Returns True if all passed on
    every rank."""
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    num_experts = experts_per_rank * world
    all_ok = True
    for name, kw in check_cases(world, num_experts, top_k):
        ok, report = check_case(name, group, device, dtype, experts, tokens, hidden, ffn,
                                num_experts, top_k, **kw)
        lines = [f"[rank {rank}] case '{name}': {'ok' if ok else 'FAILED'}"]
        lines += [f"[rank {rank}]   {'ok  ' if o else 'FAIL'} {n}: {t} {tl}"
                  for n, o, t, tl in report]
        gathered = [None] * world
        dist.all_gather_object(gathered, (ok, lines), group=group)
        case_ok = all(o for o, _ in gathered)
        if rank == 0:
            for _, ls in gathered:
                for line in ls:
                    log(line)
        all_ok &= case_ok
    return all_ok


# ----------------------------------------------------------------------------------
# Training steps and --bench
# ----------------------------------------------------------------------------------


def sgd_step(layer: ExpertParallelMoE, lr):
    layer.allreduce_router_grad()
    with torch.no_grad():
        for p in layer.parameters():
            g = expert_grad(p)
            if g is not None:
                p.add_(g.to(p.dtype), alpha=-lr)
            if getattr(p, "main_grad", None) is not None:
                p.main_grad.zero_()
            p.grad = None


def train(layer, group, device, dtype, tokens, steps, lr, seed, log):
    rank = dist.get_rank(group)
    g = torch.Generator().manual_seed(seed + 100 + rank)
    x = torch.randn(tokens, layer.hidden, generator=g).to(device=device, dtype=dtype)
    target = torch.randn(tokens, layer.hidden, generator=g).to(device=device, dtype=dtype)
    for step in range(steps):
        xi = x.clone().requires_grad_(True)
        out = layer(xi)
        loss = F.mse_loss(out.float(), target.float())
        loss.backward()
        sgd_step(layer, lr)
        lt = loss.detach().clone()
        dist.all_reduce(lt, group=group)
        counts = layer.last_tokens_per_local_expert.tolist()
        if rank == 0:
            log(f"step {step}: loss {lt.item() / dist.get_world_size(group):.5f}  "
                f"rank-0 tokens per local expert {counts}")


def bench(layer, group, device, dtype, tokens, steps, warmup, lr, experts, log):
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    timer = IntervalTimer(device)
    g = torch.Generator().manual_seed(7 + rank)
    x = torch.randn(tokens, layer.hidden, generator=g).to(device=device, dtype=dtype)
    dy = torch.randn(tokens, layer.hidden, generator=g).to(device=device, dtype=dtype)
    # x requires grad, as the input of a layer in the middle of a model does: the
    # expert backward then computes dgrad as well as wgrad.
    main_grad = getattr(layer.fc1.weight0, "main_grad", None) is not None
    sums = {"step": 0.0, "moegemm": 0.0, "all-to-all": 0.0}
    rows = 0
    for it in range(warmup + steps):
        measure = it >= warmup
        layer.timer = timer if measure else None
        xi = x.clone().requires_grad_(True)
        dist.barrier(group=group)
        if timer.cuda:
            torch.cuda.synchronize()
        t0 = timer._stamp()
        out = layer(xi)
        out.backward(dy)
        sgd_step(layer, lr)
        t1 = timer._stamp()
        ms = timer.collect()
        if measure:
            sums["step"] += t0.elapsed_time(t1) if timer.cuda else (t1 - t0) * 1e3
            sums["moegemm"] += ms.get("moegemm", 0.0)
            sums["all-to-all"] += ms.get("all-to-all", 0.0)
            rows += int(layer.last_tokens_per_local_expert.sum().item())
    layer.timer = None
    vals = torch.tensor([sums["step"], sums["moegemm"], sums["all-to-all"], float(rows)],
                        dtype=torch.float64) / steps
    vals = vals.to(device)
    vmax = vals.clone()
    dist.all_reduce(vals, group=group)
    dist.all_reduce(vmax, op=dist.ReduceOp.MAX, group=group)
    mean = (vals / world).tolist()
    vmax = vmax.tolist()
    step_ms, gemm_ms, a2a_ms, rows_mean = mean
    # Expert GEMM FLOPs per rank and step: fc1 and fc2, forward + dgrad + wgrad.
    tflops = 12.0 * rows_mean * layer.hidden * layer.ffn / (gemm_ms * 1e-3) / 1e12 \
        if gemm_ms > 0 else float("nan")
    if rank == 0:
        dev = torch.cuda.get_device_name() if timer.cuda else "cpu"
        log(f"# {dev}, torch {torch.__version__}, backend {dist.get_backend(group)}, dtype "
            f"{str(dtype).replace('torch.', '')}, hidden {layer.hidden}, ffn {layer.ffn}, "
            f"{layer.num_experts} experts, top-{layer.top_k}, {tokens} tokens/GPU, "
            f"{'FP32 main_grad' if main_grad else '.grad'}, {steps} steps after {warmup} warm-up")
        log("# weak scaling (tokens/GPU and the global expert count fixed). A step is forward, "
            "backward and an SGD update; times are means over ranks, 'max' the slowest rank; "
            "'expert GEMM' is the GPU time of the GroupedLinear calls (fc1 and fc2, forward and "
            "backward), 'all-to-all' that of the counts exchange with its host sync and of the "
            "token all-to-alls (forward and backward).")
        log("| GPUs | experts | experts/GPU | tokens/GPU | rows/GPU | step ms | step ms (max) "
            "| expert GEMM ms | GEMM share | GEMM TFLOP/s | all-to-all ms | a2a share |")
        log("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        log(f"| {world} | {experts} | {layer.num_local} | {tokens} | {rows_mean:.0f} | "
            f"{step_ms:.3f} | {vmax[0]:.3f} | {gemm_ms:.3f} | {100 * gemm_ms / step_ms:.1f}% | "
            f"{tflops:.1f} | {a2a_ms:.3f} | {100 * a2a_ms / step_ms:.1f}% |")


# ----------------------------------------------------------------------------------
# Process setup
# ----------------------------------------------------------------------------------

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="compare outputs and gradients with the one-GPU layer")
    mode.add_argument("--bench", action="store_true",
                      help="time training steps; prints a markdown table row")
    p.add_argument("--backend", choices=["nccl", "gloo"], default=None,
                   help="default: nccl with CUDA, else gloo")
    p.add_argument("--experts", choices=["moegemm", "torch"], default=None,
                   help="expert GEMMs: moegemm.GroupedLinear (default with CUDA) or a "
                        "pure-torch per-expert loop (default on the CPU)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                   help="default bf16 on the GPU, fp32 on the CPU")
    p.add_argument("--experts-per-rank", type=int, default=None,
                   help="--check: local experts per rank (default 4)")
    p.add_argument("--num-experts", type=int, default=None,
                   help="global experts (default 64; --check uses experts-per-rank * N)")
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--ffn", type=int, default=None, help="expert hidden size")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--tokens", type=int, default=None, help="tokens per rank")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--bias", action="store_true", help="expert biases (train/bench)")
    p.add_argument("--no-main-grad", action="store_true",
                   help="train/bench: plain .grad instead of FP32 main_grad")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def setup_distributed(backend):
    """Uses torchrun's environment; returns (group, device)."""
    if backend == "nccl" and not torch.cuda.is_available():
        raise SystemExit("backend nccl needs CUDA; use --backend gloo on the CPU")
    if backend == "nccl":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return dist.group.WORLD, device


def main(argv=None):
    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    backend = args.backend or ("nccl" if cuda else "gloo")
    experts = args.experts or ("moegemm" if backend == "nccl" else "torch")
    dtype = DTYPES[args.dtype or ("bf16" if backend == "nccl" else "fp32")]
    group, device = setup_distributed(backend)
    world, rank = dist.get_world_size(), dist.get_rank()

    def log(msg):
        print(msg, flush=True)

    if args.check:
        small = device.type == "cpu"
        ok = run_check(group, device, dtype, experts,
                       tokens=args.tokens or (64 if small else 1024),
                       hidden=args.hidden or (32 if small else 256),
                       ffn=args.ffn or (16 if small else 128),
                       experts_per_rank=args.experts_per_rank or 4,
                       top_k=args.top_k or 2, log=log)
        if rank == 0:
            log(f"EP CHECK {'PASSED' if ok else 'FAILED'} (world {world}, backend {backend}, "
                f"experts {experts}, dtype {str(dtype).replace('torch.', '')})")
        dist.destroy_process_group()
        return 0 if ok else 1

    hidden = args.hidden or (4096 if cuda else 64)
    ffn = args.ffn or (1024 if cuda else 32)
    num_experts = args.num_experts or (64 if cuda else 8)
    top_k = args.top_k or (4 if cuda else 2)
    tokens = args.tokens or (8192 if cuda else 256)
    layer = ExpertParallelMoE(hidden, ffn, num_experts, top_k, group=group, experts=experts,
                              bias=args.bias, device=device, dtype=dtype)
    local = range(layer.first_expert, layer.first_expert + layer.num_local)
    load_full_params(layer, init_full_params(hidden, ffn, num_experts, args.bias, args.seed,
                                             experts=local))
    if not args.no_main_grad:
        attach_main_grad(layer, fused=(experts == "moegemm"))
    if args.bench:
        bench(layer, group, device, dtype, tokens, args.steps or 20, args.warmup, args.lr,
              experts, log)
    else:
        if rank == 0:
            log(f"EP MoE: world {world}, backend {backend}, experts {experts}, "
                f"{num_experts} experts ({layer.num_local}/rank), top-{top_k}, hidden {hidden}, "
                f"ffn {ffn}, {tokens} tokens/rank")
        train(layer, group, device, dtype, tokens, args.steps or 5, args.lr, args.seed, log)
    dist.destroy_process_group()
    return 0


# Entry point for torch.multiprocessing.spawn (tests): rendezvous through a file, then
# run `target`: "name" (a function of this module) or "/path/to/file.py:name" (loaded
# from that file, so that test modules need not be importable by name in the child).
def spawn_entry(rank, world, init_file, backend, target, kwargs):
    if ":" in target:
        import importlib.util

        path, name = target.rsplit(":", 1)
        spec = importlib.util.spec_from_file_location(f"_ep_spawn_{rank}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        fn = getattr(mod, name)
    else:
        fn = globals()[target]
    if backend == "nccl":
        torch.cuda.set_device(rank)
    torch.set_num_threads(1)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        fn(**kwargs)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
