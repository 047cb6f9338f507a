"""Shared by the benchmark's Python companions (torch_peer.py, merge_peers.py,
plot.py): reading moegemm-bench's --json output and printing tables the way
the C++ report does. Python 3 standard library only.

The JSON (bench/report_json.cpp): {"tool": "moegemm-bench", "date", "device":
{"name", ...}, "ceilings", "anchors", "options": {"graph", "passes", "peers",
...}, "rows": [...], "summary", "skipped"}; each row: {"set", "pass", "g", "m",
"n", "out", "accumulate", "splits", "k_min", "k_avg", "k_max", "status",
"peers": [...], "metrics": {"cublas_ms4_us": {"eager", "graph"}, ...},
"anchors"?}; fprop/dgrad rows' metrics also hold "moegemm_path" (moegemm_ragged_m's
path: "uniform_k", "cublas"), and "summary" holds "ragged_m_speedup_vs_cublas_ms4"
(issue 3's per-pass geomean/min speed-ups). Files written before the pass field
existed hold wgrad rows only.
"""

import json
import math
import sys


def fail(message, status=2):
    """Exits with `message` on stderr."""
    print(f"{sys.argv[0]}: {message}", file=sys.stderr)
    sys.exit(status)


def load_rows_json(path, tool, what):
    """A JSON file of rows written by `tool` ("tool" field), or exit saying it is not `what`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read {path}: {e}")
    if not isinstance(data, dict) or data.get("tool") != tool or "rows" not in data:
        fail(f"{path} is not {what}")
    return data


def load_bench(path):
    return load_rows_json(path, "moegemm-bench", "the --json output of moegemm-bench")


def row_pass(row):
    return row.get("pass", "wgrad")


def row_key(row):
    """What identifies a problem across the benchmark's and the peers' files."""
    return (row["set"], row_pass(row), int(row["g"]), int(row["m"]), int(row["n"]), row["out"],
            tuple(int(k) for k in row["splits"]))


def metric(row, name, mode=None):
    """A number from the row's "metrics" (None when absent or null)."""
    value = row.get("metrics", {}).get(name)
    if mode is not None:
        value = value.get(mode) if isinstance(value, dict) else None
    return value if isinstance(value, (int, float)) else None


def ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def median(values):
    values = sorted(values)
    n = len(values)
    if n == 0:
        return None
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def fmt_us(us):
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return "-"
    return f"{us:.1f}" if us >= 100 else f"{us:.2f}"


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def fmt(spec, value):
    return "-" if value is None else format(value, spec)


def k_range(row):
    return f"{row['k_min']}/{row['k_avg']:.0f}/{row['k_max']}"


class Column:
    """A table column: header, right-aligned or not, and the cell of a row."""

    def __init__(self, header, numeric, cell):
        self.header, self.numeric, self.cell = header, numeric, cell


def render_text(columns, rows, out=sys.stdout):
    """Aligned columns under a rule, as the C++ text table."""
    cells = [[c.cell(r) for c in columns] for r in rows]
    widths = [max([len(c.header)] + [len(line[j]) for line in cells]) for j, c in enumerate(columns)]

    def line(texts):
        parts = [t.rjust(w) if c.numeric else t.ljust(w) for t, w, c in zip(texts, widths, columns)]
        return "  ".join(parts).rstrip()

    print(line([c.header for c in columns]), file=out)
    print("-" * (sum(widths) + 2 * (len(widths) - 1)), file=out)
    for texts in cells:
        print(line(texts), file=out)


def render_markdown(columns, rows, out):
    print("| " + " | ".join(c.header for c in columns) + " |", file=out)
    print("|" + "".join(" ---: |" if c.numeric else " --- |" for c in columns), file=out)
    for r in rows:
        print("| " + " | ".join(c.cell(r) for c in columns) + " |", file=out)
