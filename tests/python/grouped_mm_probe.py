"""Child process of test_gpu_torch_grouped_mm.py: runs torch._grouped_mm on one
small problem and reports, so that a device-side assert (which some PyTorch
builds raise for groups whose K is not a multiple of 8) cannot take the test
process's CUDA context with it.

    python grouped_mm_probe.py wgrad|forward SPLITS [--out-dtype float32]

Prints one JSON line {"outcome": "ok"|"wrong"|"error", "detail": ..., "rel_err": ...}.
"""

import argparse
import json
import sys

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["wgrad", "forward"])
    ap.add_argument("splits", help="comma-separated group sizes")
    ap.add_argument("--out-dtype", default="bfloat16")
    args = ap.parse_args()
    splits = [int(k) for k in args.splits.split(",")]
    out_dtype = getattr(torch, args.out_dtype)
    op = getattr(torch, "_grouped_mm", None)
    if op is None:
        print(json.dumps({"outcome": "error", "detail": "torch._grouped_mm does not exist"}))
        return
    g, m, n, k = len(splits), 64, 128, 64
    T = sum(splits)
    torch.manual_seed(0)
    offs = torch.tensor(splits, device="cuda").cumsum(0).to(torch.int32)
    try:
        if args.kind == "wgrad":
            x = torch.randn(T, n, device="cuda").to(torch.bfloat16)
            dy = torch.randn(T, m, device="cuda").to(torch.bfloat16)
            out = op(dy.t(), x, offs=offs, out_dtype=out_dtype)
            ref, off = [], 0
            for s in splits:
                ref.append(dy[off:off + s].double().t() @ x[off:off + s].double())
                off += s
            ref = torch.stack(ref)
        else:
            x = torch.randn(T, k, device="cuda").to(torch.bfloat16)
            w = torch.randn(g, n, k, device="cuda").to(torch.bfloat16)
            out = op(x, w.transpose(-2, -1), offs=offs, out_dtype=out_dtype)
            ref, off = [], 0
            for i, s in enumerate(splits):
                ref.append(x[off:off + s].double() @ w[i].double().t())
                off += s
            ref = torch.cat(ref)
        torch.cuda.synchronize()
        err = ((out.double() - ref).abs().max() / ref.abs().max().clamp(min=1e-6)).item()
        outcome = "ok" if err <= 1e-2 else "wrong"
        print(json.dumps({"outcome": outcome, "detail": f"dtype {out.dtype}", "rel_err": err}))
    except Exception as e:  # noqa: BLE001 (reported to the parent)
        text = str(e).strip().splitlines()
        print(json.dumps({"outcome": "error", "detail": f"{type(e).__name__}: {text[0] if text else ''}"}))
        sys.stdout.flush()
        sys.exit(0)


if __name__ == "__main__":
    main()
