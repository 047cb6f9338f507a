#!/usr/bin/env python3
"""Plots moegemm-bench's --json output: a PNG with two panels per timing mode
(eager, and CUDA-graph replay when the run measured it), over the average
tokens per group K (log2 axis), one line per group count g:

  left   speed-up of moegemm over cublas_ms4 (cublas_ms4 time / moegemm time)
  right  efficiency (bound time / measured time): moegemm solid, cublas_ms4 dashed

    python3 bench/plot.py bench.json [-o bench.png] [--set seed] [--out fp32] [--pass wgrad]

By default the seed set (m = 512, n = 2048) of wgrad with FP32 output; the title
names the device and the date of the run. Issue 3's fprop/dgrad grid:
--set fwd --pass fprop --out bf16 (one line per g, m, n: that set has several
m, n). Needs matplotlib; --print-data lists the plotted points without it.
"""

import argparse
import os
from collections import defaultdict

from benchjson import fail, load_bench, metric, row_pass

MODES = ("eager", "graph")


def selected(bench, set_name, out, pass_name):
    return [r for r in bench["rows"]
            if r["set"] == set_name and r["out"] == out and row_pass(r) == pass_name]


def series(bench, set_name, out, pass_name="wgrad"):
    """{mode: {line: [(avg K, speed-up, moegemm efficiency, cublas_ms4 efficiency)]}}, sorted by K,
    one line per g ("g = 8"), or per g, m, n where the selection has several m, n;
    a mode is left out when no row measured it."""
    rows = selected(bench, set_name, out, pass_name)
    several_dims = len({(r["m"], r["n"]) for r in rows}) > 1
    data = {mode: defaultdict(list) for mode in MODES}
    for row in rows:
        line = (int(row["g"]), int(row["m"]), int(row["n"])) if several_dims else (int(row["g"]),)
        for mode in MODES:
            point = (row["k_avg"], metric(row, "speedup_vs_cublas_ms4", mode),
                     metric(row, "efficiency", mode), metric(row, "cublas_ms4_efficiency", mode))
            if any(v is not None for v in point[1:]):
                data[mode][line].append(point)
    return {mode: {line_name(key): sorted(points) for key, points in sorted(by_line.items())}
            for mode, by_line in data.items() if by_line}


def line_name(key):
    return f"g = {key[0]}" if len(key) == 1 else f"g = {key[0]}, m = {key[1]}, n = {key[2]}"


def title(bench, set_name, out, pass_name="wgrad"):
    device = bench.get("device", {}).get("name", "unknown device")
    date = bench.get("date") or "date not recorded"
    shapes = {(r["m"], r["n"]) for r in selected(bench, set_name, out, pass_name)}
    dims = ", ".join(f"m = {m}, n = {n}" for m, n in sorted(shapes))
    what = "moegemm_wgrad" if pass_name == "wgrad" else f"moegemm_ragged_m {pass_name}"
    return f"{what} vs cuBLAS, set {set_name} ({dims}), {out} output\n{device}, {date}"


def print_data(data):
    for mode, by_line in data.items():
        for name, points in by_line.items():
            for k, speedup, eff, ms4_eff in points:
                print(f"{mode} {name.replace(' = ', '=')} avgK={k:g}: speed-up {speedup}, "
                      f"efficiency moegemm {eff}, cublas_ms4 {ms4_eff}")


def line(ax, points, column, **style):
    xs = [p[0] for p in points if p[column] is not None]
    ys = [p[column] for p in points if p[column] is not None]
    if xs:
        ax.plot(xs, ys, marker="o", markersize=3, **style)


def plot(data, heading, path):
    try:
        import matplotlib  # noqa: PLC0415 (only needed to draw)
    except ImportError:
        fail("needs matplotlib to draw (pip install matplotlib); --print-data works without it")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import ScalarFormatter  # noqa: PLC0415

    modes = list(data)
    fig, axes = plt.subplots(len(modes), 2, figsize=(13, 4.8 * len(modes)), squeeze=False,
                             layout="constrained")
    names = list(dict.fromkeys(name for by_line in data.values() for name in by_line))  # in order
    cmap = matplotlib.colormaps["viridis"]
    colors = {name: cmap(0.85 * i / max(1, len(names) - 1)) for i, name in enumerate(names)}
    for row, mode in enumerate(modes):
        speed, eff = axes[row]
        for name, points in data[mode].items():
            line(speed, points, 1, color=colors[name], label=name)
            line(eff, points, 2, color=colors[name], label=f"moegemm {name}")
            line(eff, points, 3, color=colors[name], linestyle="--", alpha=0.8, label=f"cublas_ms4 {name}")
        speed.axhline(1.0, color="grey", linewidth=0.8)
        what = "eager (host call included)" if mode == "eager" else "CUDA-graph replay (GPU time)"
        speed.set_title(f"speed-up over cublas_ms4, {what}")
        speed.set_ylabel("cublas_ms4 time / moegemm time")
        eff.set_title(f"efficiency, {what}: moegemm solid, cublas_ms4 dashed")
        eff.set_ylabel("bound time / measured time")
        eff.set_ylim(bottom=0)
        for ax in (speed, eff):
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(ScalarFormatter())  # 64, 128, ... rather than 2^6, 2^7, ...
            ax.set_xlabel("average tokens per group (K)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, ncol=2 if ax is eff else 1)
    fig.suptitle(heading)
    fig.savefig(path, dpi=130)
    print(f"plot.py: wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_json", help="moegemm-bench --json output")
    parser.add_argument("-o", "--output", help="the PNG (default: the JSON's name with .png)")
    parser.add_argument("--set", default="seed", help="which set to plot (default seed; e.g. anchors:seed)")
    parser.add_argument("--out", default="fp32", choices=["fp32", "bf16"], help="output type (default fp32)")
    parser.add_argument("--pass", dest="pass_name", default="wgrad", choices=["wgrad", "fprop", "dgrad"],
                        help="which pass to plot (default wgrad; fprop and dgrad write bf16)")
    parser.add_argument("--print-data", action="store_true", help="print the points instead of plotting")
    args = parser.parse_args()

    bench = load_bench(args.bench_json)
    data = series(bench, args.set, args.out, args.pass_name)
    if not data:
        fail(f"no {args.pass_name} rows of set {args.set!r} with {args.out} output and moegemm timings "
             f"in {args.bench_json}")
    heading = title(bench, args.set, args.out, args.pass_name)
    if args.print_data:
        print(heading)
        print_data(data)
        return
    plot(data, heading, args.output or os.path.splitext(args.bench_json)[0] + ".png")


if __name__ == "__main__":
    main()
