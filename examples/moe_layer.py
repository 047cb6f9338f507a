#!/usr/bin/env python3
"""A small top-k Mixture-of-Experts layer trained for a few steps on the GPU,
with its expert GEMMs done three ways:

  moegemm      moegemm.GroupedLinear fc1 -> GELU -> fc2 (forward, dgrad and
               wgrad through moegemm; split sizes stay on the GPU: no host sync)
  loop         one torch.nn.functional.linear per expert (the sizes are read
               on the host: one sync per layer call)
  grouped_mm   torch._grouped_mm, with every expert's rows padded to a multiple
               of 16 (at least 16) so that its kernels accept the groups (an
               expert whose token count is not a multiple of 8 makes some
               PyTorch builds assert on the device in the weight gradient)

The layer: router (linear + softmax + top-k), token permutation (a stable sort
by expert, on the GPU), experts, un-permutation (weighted by the router's
probabilities, summed back per token). The three share their initial weights.

    python examples/moe_layer.py [--tokens 8192 --hidden 1024 --ffn 2048 --experts 16 --topk 2]
                                 [--steps 20] [--impl moegemm,loop,grouped_mm]

Prints the loss of each implementation and its median time per training step
(forward + backward + AdamW), and how far the three agree on the first step.
Needs PyTorch with CUDA, an SM90 GPU (H100/H200) and the moegemm package
(`pip install ./python`, or run from the repository with a built library).
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

try:
    import moegemm
except ImportError:  # running from the repository without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import moegemm

BF16 = torch.bfloat16
DEVICE = "cuda"  # the tests set "cpu" to check the permutation logic without a GPU


# --- experts -------------------------------------------------------------------

class MoegemmExperts(nn.Module):
    def __init__(self, experts, hidden, ffn):
        super().__init__()
        self.fc1 = moegemm.GroupedLinear(experts, hidden, ffn, device=DEVICE)
        self.fc2 = moegemm.GroupedLinear(experts, ffn, hidden, device=DEVICE)

    def forward(self, x, splits):
        return self.fc2(F.gelu(self.fc1(x, splits), approximate="tanh"), splits)

    def expert_params(self, i):
        return [self.fc1.weights[i], self.fc1.biases[i], self.fc2.weights[i], self.fc2.biases[i]]


class LoopExperts(nn.Module):
    def __init__(self, experts, hidden, ffn):
        super().__init__()
        self.fc1 = nn.ModuleList(nn.Linear(hidden, ffn, device=DEVICE, dtype=BF16) for _ in range(experts))
        self.fc2 = nn.ModuleList(nn.Linear(ffn, hidden, device=DEVICE, dtype=BF16) for _ in range(experts))

    def forward(self, x, splits):
        sizes = splits.tolist()  # host sync
        outs = []
        for i, xi in enumerate(torch.split(x, sizes)):
            outs.append(self.fc2[i](F.gelu(self.fc1[i](xi), approximate="tanh")))
        return torch.cat(outs)

    def expert_params(self, i):
        return [self.fc1[i].weight, self.fc1[i].bias, self.fc2[i].weight, self.fc2[i].bias]


class GroupedMMExperts(nn.Module):
    ALIGN = 16

    def __init__(self, experts, hidden, ffn):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(experts, ffn, hidden, device=DEVICE, dtype=BF16))
        self.b1 = nn.Parameter(torch.empty(experts, ffn, device=DEVICE, dtype=BF16))
        self.w2 = nn.Parameter(torch.empty(experts, hidden, ffn, device=DEVICE, dtype=BF16))
        self.b2 = nn.Parameter(torch.empty(experts, hidden, device=DEVICE, dtype=BF16))
        self.op = getattr(torch, "_grouped_mm", None)

    def forward(self, x, splits):
        if self.op is None:
            raise RuntimeError(f"torch {torch.__version__} has no torch._grouped_mm")
        E, N, a = splits.numel(), x.shape[0], self.ALIGN
        # padded layout, sync-free: group i gets ceil(k_i / 16) * 16 rows (at least 16); the
        # last group also takes the slack up to a fixed capacity, so every row is in a group
        cap = (N + a - 1) // a * a + E * a
        padded = ((splits + a - 1) // a).clamp(min=1) * a
        padded = padded + F.one_hot(torch.tensor(E - 1, device=x.device), E) * (cap - padded.sum())
        pad_ends = padded.cumsum(0)
        starts = splits.cumsum(0) - splits
        row_expert = torch.repeat_interleave(torch.arange(E, device=x.device), splits, output_size=N)
        dest = (pad_ends - padded)[row_expert] + torch.arange(N, device=x.device) - starts[row_expert]
        buf = x.new_zeros(cap, x.shape[1]).index_copy(0, dest, x)
        offs = pad_ends.to(torch.int32)
        buf_expert = torch.searchsorted(pad_ends, torch.arange(cap, device=x.device), right=True).clamp(max=E - 1)
        h = self.op(buf, self.w1.transpose(-2, -1), offs=offs) + self.b1[buf_expert]
        y = self.op(F.gelu(h, approximate="tanh"), self.w2.transpose(-2, -1), offs=offs) + self.b2[buf_expert]
        return y[dest]

    def expert_params(self, i):
        return [self.w1[i], self.b1[i], self.w2[i], self.b2[i]]


IMPLS = {"moegemm": MoegemmExperts, "loop": LoopExperts, "grouped_mm": GroupedMMExperts}


# --- the layer -----------------------------------------------------------------

class MoELayer(nn.Module):
    def __init__(self, experts_cls, experts, hidden, ffn, topk):
        super().__init__()
        self.topk = topk
        self.num_experts = experts
        self.router = nn.Linear(hidden, experts, bias=False, device=DEVICE, dtype=BF16)
        self.experts = experts_cls(experts, hidden, ffn)

    def forward(self, x):
        N = x.shape[0]
        probs = self.router(x).float().softmax(-1)
        top_p, top_e = probs.topk(self.topk, dim=-1)  # [N, k]
        top_p = top_p / top_p.sum(-1, keepdim=True)
        flat_e = top_e.reshape(-1)
        order = torch.argsort(flat_e, stable=True)  # token copies grouped by expert
        token = order // self.topk
        splits = torch.bincount(flat_e, minlength=self.num_experts).to(torch.int64)  # stays on the GPU
        out = self.experts(x[token], splits)  # [N * k, hidden]
        weighted = out.float() * top_p.reshape(-1)[order].unsqueeze(1)
        return torch.zeros(N, x.shape[1], device=x.device).index_add_(0, token, weighted).to(x.dtype)


def copy_weights(src, dst):
    with torch.no_grad():
        dst.router.weight.copy_(src.router.weight)
        for i in range(src.num_experts):
            for a, b in zip(dst.experts.expert_params(i), src.experts.expert_params(i)):
                a.copy_(b)


def train(model, batches, targets, steps, warmup, lr):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    times, losses, first_out = [], [], None
    for step in range(warmup + steps):
        x, t = batches[step % len(batches)], targets[step % len(targets)]
        torch.cuda.synchronize()
        start = time.perf_counter()
        y = model(x)
        loss = F.mse_loss(y.float(), t.float())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step == 0:
            first_out = y.detach().float()
        if step >= warmup:
            times.append(time.perf_counter() - start)
        losses.append(loss.item())
    return statistics.median(times), losses, first_out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--ffn", type=int, default=2048)
    ap.add_argument("--experts", type=int, default=16)
    ap.add_argument("--topk", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="timed training steps (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--impl", default="moegemm,loop,grouped_mm", help="comma-separated subset of " + ",".join(IMPLS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("moe_layer.py needs a CUDA GPU (an H100/H200 for moegemm)")
    impls = [s for s in args.impl.split(",") if s]
    for s in impls:
        if s not in IMPLS:
            ap.error(f"unknown implementation {s!r}; choose from {', '.join(IMPLS)}")

    torch.manual_seed(args.seed)
    print(f"MoE layer: {args.tokens} tokens, hidden {args.hidden}, ffn {args.ffn}, {args.experts} experts, "
          f"top-{args.topk}; {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"moegemm library {moegemm.library_path()}")
    reference = MoELayer(MoegemmExperts, args.experts, args.hidden, args.ffn, args.topk)
    teacher = torch.randn(args.hidden, args.hidden, device=DEVICE, dtype=BF16) / args.hidden ** 0.5
    batches = [torch.randn(args.tokens, args.hidden, device=DEVICE, dtype=BF16) for _ in range(4)]
    targets = [torch.tanh(b @ teacher) for b in batches]

    results = {}
    for name in impls:
        model = MoELayer(IMPLS[name], args.experts, args.hidden, args.ffn, args.topk)
        copy_weights(reference, model)
        try:
            t, losses, first = train(model, batches, targets, args.steps, args.warmup, args.lr)
        except Exception as e:  # noqa: BLE001 (reported, then the next implementation runs)
            print(f"{name:>10}: failed: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
            continue
        results[name] = (t, losses, first)
        print(f"{name:>10}: {t * 1e3:8.3f} ms/step   loss {losses[0]:.4f} -> {losses[-1]:.4f} "
              f"after {len(losses)} steps")
        del model
        torch.cuda.empty_cache()

    if "moegemm" in results:
        base_t, _, base_out = results["moegemm"]
        for name, (t, _, out) in results.items():
            if name == "moegemm":
                continue
            diff = ((out - base_out).abs().max() / base_out.abs().max()).item()
            print(f"moegemm vs {name}: {t / base_t:.2f}x faster per step; first-step outputs differ by "
                  f"{diff:.2e} (max, relative)")


if __name__ == "__main__":
    main()
