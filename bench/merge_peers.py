#!/usr/bin/env python3
"""Merges the PyTorch peer's timings (bench/torch_peer.py) into moegemm-bench's
--json output and prints the combined table: the benchmark's own columns, then
torch._grouped_mm eager and graph-replay medians and moegemm's speed-up over
them (torch time / moegemm time, eager against eager, graph against graph).

    python3 bench/merge_peers.py bench.json torch.json [-o merged.json] [--markdown table.md]

Rows are matched by set, pass, g, m, n, output type and the exact split sizes;
benchmark rows without a torch row (fprop, dgrad, or not measured) show "-".
The benchmark's own summary (issue 3's fprop/dgrad speed-ups among it) is in
its text and Markdown output, not repeated here.
Python 3 standard library only.
"""

import argparse
import json
import sys

from benchjson import (Column, fmt, fmt_ratio, fmt_us, k_range, load_bench, load_rows_json, metric, ratio,
                       render_markdown, render_text, row_key, row_pass)

# The anchors file's columns shown by the C++ table (report.cpp).
ANCHOR_COLUMNS = [("cublas_multistream4_eager", "a:ms4 µs"), ("quack_varlen_k_eager", "a:quack µs"),
                  ("quack_varlen_k_graph", "a:quack graph µs"), ("torch_grouped_mm_eager", "a:torch µs"),
                  ("best_peer_us", "a:best_peer µs")]


def merge(bench, torch):
    """Adds to every matched benchmark row a "torch" object and the speed-ups;
    returns how many rows matched."""
    by_key = {row_key(r): r for r in torch["rows"]}
    matched = 0
    for row in bench["rows"]:
        t = by_key.get(row_key(row))
        if t is None:
            continue
        matched += 1
        eager, graph = t.get("torch_grouped_mm_eager_us"), t.get("torch_grouped_mm_graph_us")
        row["torch"] = {"torch_grouped_mm_eager_us": eager, "torch_grouped_mm_graph_us": graph,
                        "note": t.get("note", ""), "check": t.get("check")}
        row.setdefault("metrics", {})["speedup_vs_torch_grouped_mm"] = {
            "eager": ratio(eager, metric(row, "moegemm_us", "eager")),
            "graph": ratio(graph, metric(row, "moegemm_us", "graph"))}
    about = ("source", "date", "device", "torch_version", "repeat")
    bench["torch_peer"] = {key: torch.get(key) for key in about}
    return matched


def peer_cell(row, name, mode, na_key, whole_reason):
    """A peer's median, or why it cannot run the problem (as the C++ table)."""
    na = row.get("metrics", {}).get(na_key) if na_key else None
    if na:
        return na if whole_reason else "n/a"
    return fmt_us(metric(row, name, mode))


def dev_graph_cell(row):
    """Device split sizes, graph replay: n/a also where that peer is not capturable."""
    m = row.get("metrics", {})
    if m.get("moegemm_na") or m.get("moegemm_device_splits_graph_na"):
        return "n/a"
    return fmt_us(metric(row, "moegemm_device_splits_us", "graph"))


def torch_cell(row, mode):
    t = row.get("torch")
    if t is None:
        return "-"
    value = t.get(f"torch_grouped_mm_{mode}_us")
    if value is None and t.get("note"):
        return t["note"] if mode == "eager" else "n/a"
    return fmt_us(value)


def path_cell(row):
    """moegemm_ragged_m's path (fprop/dgrad), as the C++ table's path_label()."""
    m = row.get("metrics", {})
    host, device = m.get("moegemm_path") or "", m.get("moegemm_device_splits_path") or ""
    if not host and not device:
        return "-"
    if not device or device == host:
        return host
    return f"{host}/{device}" if host else device


def has_peer(row, name):
    return any(p.get("name") == name for p in row.get("peers", []))


def columns(bench):
    """The C++ text table's columns (report.cpp, table_columns), then torch's."""
    rows = bench["rows"]
    graph = bool(bench.get("options", {}).get("graph"))
    grouped = any(has_peer(r, "cublas_grouped") for r in rows)

    def us(name, mode, na_key=None, whole_reason=False):
        return lambda r: peer_cell(r, name, mode, na_key, whole_reason)

    def num(name, mode, spec):
        return lambda r: fmt(spec, metric(r, name, mode))

    def speedup(name, mode):
        return lambda r: fmt_ratio(metric(r, name, mode))

    c = [Column("set", False, lambda r: r["set"])]
    if any(row_pass(r) != "wgrad" for r in rows):
        c.append(Column("pass", False, row_pass))
    c += [Column("g", True, lambda r: str(r["g"])), Column("m", True, lambda r: str(r["m"])),
          Column("n", True, lambda r: str(r["n"])), Column("k min/avg/max", True, k_range),
          Column("out", False, lambda r: r["out"]),
          Column("cublas_ms4 µs", True, us("cublas_ms4_us", "eager")),
          Column("cublas_loop µs", True, us("cublas_loop_us", "eager"))]
    if grouped:
        c.append(Column("cublas_grouped µs", True,
                        us("cublas_grouped_us", "eager", "cublas_grouped_na", True)))
    c += [Column("moegemm µs", True, us("moegemm_us", "eager", "moegemm_na", True)),
          Column("moegemm dev-splits µs", True, us("moegemm_device_splits_us", "eager", "moegemm_na"))]
    if graph:
        c += [Column("ms4 graph µs", True, us("cublas_ms4_us", "graph")),
              Column("loop graph µs", True, us("cublas_loop_us", "graph"))]
        if grouped:
            c.append(Column("grouped graph µs", True, us("cublas_grouped_us", "graph", "cublas_grouped_na")))
        c += [Column("moegemm graph µs", True, us("moegemm_us", "graph", "moegemm_na")),
              Column("dev-splits graph µs", True, dev_graph_cell)]
    c.append(Column("best config", False, lambda r: r.get("metrics", {}).get("best_config", "")))
    if any(row_pass(r) != "wgrad" for r in rows):
        c.append(Column("path", False, path_cell))
    c += [Column("vs ms4", True, speedup("speedup_vs_cublas_ms4", "eager")),
          Column("vs best peer", True, speedup("speedup_vs_best_peer", "eager"))]
    if graph:
        c.append(Column("vs ms4 graph", True, speedup("speedup_vs_cublas_ms4", "graph")))
    c += [Column("TFLOP/s", True, num("tflops", "eager", ".1f")),
          Column("eff", True, num("efficiency", "eager", ".3f"))]
    if graph:
        c += [Column("TFLOP/s graph", True, num("tflops", "graph", ".1f")),
              Column("eff graph", True, num("efficiency", "graph", ".3f"))]
    if any("anchors" in r for r in rows):
        for key, header in ANCHOR_COLUMNS:
            c.append(Column(header, True, lambda r, key=key: fmt_us(r.get("anchors", {}).get(key))))

        def anchor(path, mode=None):
            def cell(r):
                value = r.get("anchors", {}).get(path)
                return fmt_ratio(value.get(mode) if isinstance(value, dict) else value)
            return cell

        c.append(Column("vs a:eager", True, anchor("speedup", "eager")))
        if graph:
            c.append(Column("vs a:graph", True, anchor("speedup", "graph")))
        c.append(Column("vs a:best_peer", True, anchor("speedup_vs_best_peer_us")))
    c.append(Column("check", False, lambda r: r.get("status", "")))
    c += [Column("torch_grouped_mm µs", True, lambda r: torch_cell(r, "eager")),
          Column("torch graph µs", True, lambda r: torch_cell(r, "graph")),
          Column("vs torch", True, speedup("speedup_vs_torch_grouped_mm", "eager")),
          Column("vs torch graph", True, speedup("speedup_vs_torch_grouped_mm", "graph")),
          Column("torch check", False, torch_check)]
    return c


def torch_check(row):
    t = row.get("torch")
    check = t.get("check") if t else None
    if not check:
        return "-"
    return "ok" if check.get("pass") else "FAIL"


def slower_count(rows, mode):
    compared = slower = 0
    for r in rows:
        s = metric(r, "speedup_vs_torch_grouped_mm", mode)
        if s is not None:
            compared += 1
            slower += s < 1
    return slower, compared


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_json", help="moegemm-bench --json output")
    parser.add_argument("torch_json", help="bench/torch_peer.py output")
    parser.add_argument("-o", "--output", help="write the merged JSON here")
    parser.add_argument("--markdown", help="also write the combined table as Markdown here")
    args = parser.parse_args()

    bench = load_bench(args.bench_json)
    torch = load_rows_json(args.torch_json, "torch_peer", "the output of bench/torch_peer.py")
    matched = merge(bench, torch)
    if matched == 0:
        print(f"{sys.argv[0]}: note: no row of {args.torch_json} matches one of {args.bench_json}",
              file=sys.stderr)

    device = bench.get("device", {}).get("name", "?")
    title = (f"moegemm-bench {bench.get('date', '(no date)')} on {device}; torch_grouped_mm "
             f"(torch {torch.get('torch_version', '?')}) {torch.get('date', '')} "
             f"on {torch.get('device', '?')}")
    cols = columns(bench)
    print(title)
    repeat = bench.get("options", {}).get("repeat", "?")
    print(f"median of {repeat} calls (µs); vs X = X time / moegemm time")
    render_text(cols, bench["rows"])
    summary = []
    for mode in ("eager", "graph"):
        slower, compared = slower_count(bench["rows"], mode)
        if compared:
            summary.append(f"moegemm slower than torch._grouped_mm ({mode}): {slower} of {compared}")
    for line in summary:
        print(line)

    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            print(f"<!-- generated by bench/merge_peers.py -->\n{title}\n", file=f)
            render_markdown(cols, bench["rows"], f)
            if summary:
                print("\n" + "  \n".join(summary), file=f)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(bench, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
