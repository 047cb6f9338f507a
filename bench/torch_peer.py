#!/usr/bin/env python3
"""PyTorch peer of moegemm-bench: torch._grouped_mm on the benchmark's wgrad
problems, for bench/merge_peers.py.

    python3 bench/torch_peer.py bench.json -o torch.json [--repeat 40] [--no-graph]

For every wgrad row of the benchmark's --json output it re-creates the problem
from "splits", m and n (random BF16 data, T = sum of the splits) and computes

    out[i] = dy_i^T x_i        torch._grouped_mm(dy.t(), x, offs=offs)

mat_a = dy.t() ([m, T], a view of the row-major dy [T, m]), mat_b = x [T, n],
offs = the int32 cumulative split sizes: with two 2D operands torch slices the
shared K dimension (T) at offs and returns [g, m, n]. Only BF16 output: PyTorch's
grouped GEMM writes the input type (FP32-output rows are recorded as n/a).

Each result is checked against a float32 matmul per group (max |diff| <= 1e-2
max |ref|, the benchmark's BF16 rule). Timings, microseconds, median of
--repeat calls rotating over as many data sets as cover twice the L2 cache:
eager = CUDA events around the call on an idle GPU (host cost included, as the
benchmark's eager), graph = CUDA-graph replay behind a GPU-side delay (GPU
time alone).

Some PyTorch builds reject a group whose K is not a multiple of 8 (16 bytes)
with a device-side assert, which leaves the CUDA context unusable. So tiny
problems (all K multiples of 8, the control; K not a multiple of 8; an empty
group) are first run in child processes; rows that need a feature that fails
there are recorded as "n/a (torch asserts: ...)" without being run. Any other
failure is recorded in the row's note; after a CUDA error that kills the
context the remaining rows are recorded as not run.

Needs PyTorch 2.11 on an SM90 GPU. --plan lists the problems without PyTorch.
"""

import argparse
import datetime
import itertools
import json
import math
import subprocess
import sys

from benchjson import fail, fmt_us, load_bench, median, row_key, row_pass

MEMORY_CAP = 8 << 30  # rotation sets stop here (one set always allowed), as the benchmark
MAX_SETS = 64
PAD_ROWS = 8  # the operands get this many unused rows past T: torch's docs want offs[-1] < the length
SLEEP_CYCLES = 100_000  # GPU-side delay before each timed graph replay (~50 us)
TOLERANCE = 1e-2

NOTE_FP32 = "n/a (torch._grouped_mm: BF16 output only)"
NOTE_ACCUMULATE = "n/a (torch._grouped_mm does not accumulate)"
# The probes: name -> (split sizes of a tiny problem, the note of the rows that need it).
# "aligned" is the control: if it fails, torch._grouped_mm does not work here at all.
PROBES = {
    "aligned": ([8, 16, 8, 32], None),
    "unaligned": ([5, 11, 13, 3], "n/a (torch asserts: K not a multiple of 8)"),
    "empty": ([8, 0, 16, 8], "n/a (torch asserts: an empty group)"),
}


def import_torch():
    try:
        import torch  # noqa: PLC0415 (not needed for --plan)
    except ImportError:
        fail("needs PyTorch (import torch failed); --plan works without it")
    if not torch.cuda.is_available():
        fail("no CUDA GPU visible to PyTorch", 1)
    return torch


def probes_needed(splits):
    """The probe features a problem relies on."""
    needed = []
    if any(k % 8 for k in splits):
        needed.append("unaligned")
    if any(k == 0 for k in splits):
        needed.append("empty")
    return needed


def problems(bench):
    """The distinct wgrad problems of the benchmark, in its order, each with
    the note that keeps it from running ("" when it runs)."""
    seen, out = set(), []
    for row in bench["rows"]:
        if row_pass(row) != "wgrad" or row_key(row) in seen:
            continue
        seen.add(row_key(row))
        note = ""
        if row["out"] != "bf16":
            note = NOTE_FP32
        elif row.get("accumulate"):
            note = NOTE_ACCUMULATE
        out.append({"set": row["set"], "pass": "wgrad", "g": int(row["g"]), "m": int(row["m"]),
                    "n": int(row["n"]), "out": row["out"], "splits": [int(k) for k in row["splits"]],
                    "note": note})
    return out


class Problem:
    """Random operands of one wgrad problem on the GPU, in `sets` copies."""

    def __init__(self, torch, p, sets, seed):
        self.g, self.m, self.n = p["g"], p["m"], p["n"]
        self.splits = p["splits"]
        self.total = sum(self.splits)
        rows = self.total + PAD_ROWS
        gen = torch.Generator(device="cuda").manual_seed(seed)

        def uniform(*shape):
            return (torch.rand(*shape, generator=gen, device="cuda") * 2 - 1).to(torch.bfloat16)

        # torch._grouped_mm, or its public name where a build only has that one.
        self.op = getattr(torch, "_grouped_mm", None) or torch.nn.functional.grouped_mm
        self.dys = [uniform(rows, self.m) for _ in range(sets)]
        self.xs = [uniform(rows, self.n) for _ in range(sets)]
        ends = list(itertools.accumulate(self.splits))
        self.offs = torch.tensor(ends, dtype=torch.int32, device="cuda")

    def call(self, s):
        return self.op(self.dys[s].t(), self.xs[s], offs=self.offs)

    def check(self, out):
        """out against a float32 matmul per group (set 0's data)."""
        diffs, refs = [], []
        off = 0
        for i, k in enumerate(self.splits):
            dy = self.dys[0][off:off + k].float()
            x = self.xs[0][off:off + k].float()
            ref = dy.t() @ x
            diffs.append((out[i].float() - ref).abs().max().item())  # NaN where out holds one
            refs.append(ref.abs().max().item())
            off += k
        max_diff = math.nan if any(math.isnan(d) for d in diffs) else max(diffs, default=0.0)
        max_ref = max(refs, default=0.0)
        tolerance = TOLERANCE * max_ref + 1e-5
        if math.isnan(max_diff):
            return {"pass": False, "max_abs_diff": None, "max_abs_ref": max_ref, "tolerance": tolerance}
        return {"pass": max_diff <= tolerance, "max_abs_diff": max_diff, "max_abs_ref": max_ref,
                "tolerance": tolerance}


def rotation_sets(torch, p):
    """As the benchmark: the fewest sets whose bytes exceed twice the L2 cache."""
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    per_set = max(2 * (sum(p["splits"]) + PAD_ROWS) * (p["m"] + p["n"]) + 2 * p["g"] * p["m"] * p["n"], 1)
    sets = min(2 * l2 // per_set + 1, MAX_SETS)
    while sets > 1 and sets * per_set > MEMORY_CAP:
        sets -= 1
    return sets


def stats(samples):
    return {"median_us": median(samples), "min_us": min(samples), "max_us": max(samples),
            "count": len(samples)}


def event_pairs(torch, repeat):
    return [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            for _ in range(repeat)]


def time_eager(torch, prob, sets, warmup, repeat):
    for i in range(warmup):
        prob.call(i % sets)
    events = event_pairs(torch, repeat)
    for i, (start, stop) in enumerate(events):
        torch.cuda.synchronize()  # idle GPU: the interval starts with the host call
        start.record()
        prob.call((warmup + i) % sets)
        stop.record()
    torch.cuda.synchronize()
    return stats([1000.0 * start.elapsed_time(stop) for start, stop in events])


def time_graph(torch, prob, sets, warmup, repeat):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture, as PyTorch asks
        for s in range(sets):
            prob.call(s)
    torch.cuda.current_stream().wait_stream(side)
    graphs = []
    for s in range(sets):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=graphs[0].pool() if graphs else None):
            prob.call(s)
        graphs.append(graph)
    for i in range(max(warmup, sets)):
        graphs[i % sets].replay()
    torch.cuda.synchronize()
    events = event_pairs(torch, repeat)
    for i, (start, stop) in enumerate(events):
        torch.cuda._sleep(SLEEP_CYCLES)  # the launch is enqueued before the interval starts
        start.record()
        graphs[(warmup + i) % sets].replay()
        stop.record()
    torch.cuda.synchronize()
    return stats([1000.0 * start.elapsed_time(stop) for start, stop in events])


def context_lost(error):
    text = str(error)
    return "device-side assert" in text or "CUDA error" in text or "illegal" in text


def run_problem(torch, p, args):
    """Fills the row's timings, check and note."""
    sets = rotation_sets(torch, p)
    prob = Problem(torch, p, sets, args.seed)
    out = prob.call(0)
    torch.cuda.synchronize()
    p["check"] = prob.check(out)
    del out
    if not p["check"]["pass"]:
        c = p["check"]
        diff = "NaN" if c["max_abs_diff"] is None else f"{c['max_abs_diff']:.4g}"
        p["note"] = f"FAIL: max|diff| {diff} > tolerance {c['tolerance']:.4g}"
    p["timing_sets"] = sets
    p["eager"] = time_eager(torch, prob, sets, args.warmup, args.repeat)
    p["torch_grouped_mm_eager_us"] = p["eager"]["median_us"]
    if not args.no_graph:
        try:
            p["graph"] = time_graph(torch, prob, sets, args.warmup, args.repeat)
            p["torch_grouped_mm_graph_us"] = p["graph"]["median_us"]
        except RuntimeError as e:
            if context_lost(e):
                raise
            p["note"] = (p["note"] + "; " if p["note"] else "") + f"graph: {first_line(e)}"


def first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def probe(torch, name):
    """Child process: runs the tiny problem of probe `name`. Exit status 0: right,
    1: wrong result, 3: an exception (a device-side assert may also kill it)."""
    splits = PROBES[name][0]
    try:
        prob = Problem(torch, {"g": len(splits), "m": 128, "n": 256, "splits": splits}, 1, 1)
        out = prob.call(0)
        torch.cuda.synchronize()
        right = prob.check(out)["pass"]
    except Exception as e:  # noqa: BLE001 (whatever it is, the parent only needs to know it failed)
        print(f"{type(e).__name__}: {first_line(e)}", file=sys.stderr)
        sys.exit(3)
    sys.exit(0 if right else 1)


def run_probes(names):
    """name -> "ok" | "wrong" | "fails", each from a child process, so that a
    device-side assert cannot take this process's CUDA context with it."""
    results = {}
    for name in ["aligned"] + sorted(set(names) - {"aligned"}):
        child = subprocess.run([sys.executable, __file__, "--probe", name], capture_output=True, text=True,
                               check=False)
        results[name] = {0: "ok", 1: "wrong"}.get(child.returncode, "fails")
        detail = child.stderr.strip().splitlines()[-1:] if child.returncode not in (0, 1) else []
        print(f"torch_peer: probe {name} (splits {PROBES[name][0]}): {results[name]}"
              + (f" ({detail[0]})" if detail else ""), file=sys.stderr)
        if name == "aligned" and results[name] == "fails":
            reason = detail[0] if detail else "(no message)"
            fail(f"torch._grouped_mm fails on a small aligned problem: {reason}")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_json", nargs="?", help="moegemm-bench --json output")
    parser.add_argument("-o", "--output", default="torch.json", help="where to write (default torch.json)")
    parser.add_argument("--repeat", type=int, default=40, help="timed calls per measurement (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    parser.add_argument("--no-graph", action="store_true", help="eager timings only")
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the random data")
    parser.add_argument("--limit", type=int, help="only the first N problems (smoke test)")
    parser.add_argument("--plan", action="store_true", help="list the problems and exit (no PyTorch needed)")
    parser.add_argument("--probe", choices=sorted(PROBES), help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.probe:
        probe(import_torch(), args.probe)
    if args.bench_json is None:
        parser.error("the benchmark's JSON is needed")
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    bench = load_bench(args.bench_json)
    rows = problems(bench)[:args.limit]
    if args.plan:
        for p in rows:
            needs = probes_needed(p["splits"]) if not p["note"] else []
            print(f"{p['set']} g={p['g']} m={p['m']} n={p['n']} T={sum(p['splits'])} {p['out']}: "
                  + (p["note"] or "run" + (f" (needs probe: {', '.join(needs)})" if needs else "")))
        return

    torch = import_torch()
    about = {"device": torch.cuda.get_device_name(), "torch_version": torch.__version__,
             "cuda_version": torch.version.cuda}
    runnable = [p for p in rows if not p["note"]]
    needed = {name for p in runnable for name in probes_needed(p["splits"])}
    probe_results = run_probes(needed) if runnable else {}
    lost = ""
    for i, p in enumerate(rows):
        p.setdefault("torch_grouped_mm_eager_us", None)
        p.setdefault("torch_grouped_mm_graph_us", None)
        if not p["note"]:
            blocked = [name for name in probes_needed(p["splits"]) if probe_results[name] == "fails"]
            if blocked:
                p["note"] = PROBES[blocked[0]][1]
            elif lost:
                p["note"] = f"not run: CUDA context lost ({lost})"
            else:
                try:
                    run_problem(torch, p, args)
                except RuntimeError as e:  # torch's errors, out of memory included
                    p["note"] = f"error: {first_line(e)}"
                    if context_lost(e):
                        lost = first_line(e)
                torch.cuda.empty_cache()
        print(f"[{i + 1}/{len(rows)}] {p['set']} g={p['g']} m={p['m']} n={p['n']} T={sum(p['splits'])} "
              f"{p['out']}: eager {fmt_us(p['torch_grouped_mm_eager_us'])} "
              f"graph {fmt_us(p['torch_grouped_mm_graph_us'])} us" + (f"; {p['note']}" if p["note"] else ""),
              file=sys.stderr, flush=True)

    result = {
        "tool": "torch_peer",
        "source": args.bench_json,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **about,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "graph": not args.no_graph,
        "probes": probe_results,
        "rows": rows,
    }
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"torch_peer: wrote {len(rows)} rows to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
