#include "report.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace bench {
namespace {

// ---------------------------------------------------------------------------
// Formatting

std::string format(const char* fmt, double v) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
std::string fmt_us(double us) { return format(us >= 100 ? "%.1f" : "%.2f", us); }
std::string fmt_ratio(double r) { return std::isnan(r) ? "-" : format("%.2f", r) + "x"; }
// A peer's median, or why it cannot run the problem: the whole reason in the
// peer's first column, "n/a" in the others.
std::string us_or_na(double us, const std::string& na, bool whole_reason = false) {
  if (na.empty()) return fmt_us(us);
  return whole_reason ? na : "n/a";
}

bool any_row(const Report& r, const std::function<bool(const Row&)>& pred) {
  return std::any_of(r.rows.begin(), r.rows.end(), pred);
}
bool any_anchor(const Report& r) {
  return any_row(r, [](const Row& row) { return row.spec.anchor != nullptr; });
}
bool any_pass_but_wgrad(const Report& r) {
  return any_row(r, [](const Row& row) { return row.spec.pass != Pass::kWgrad; });
}
bool any_grouped(const Report& r) {
  return any_row(r, [](const Row& row) { return has_peer(row, "cublas_grouped"); });
}

// Display width of UTF-8 text (code points).
size_t width_of(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string device_line(const Report& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, L2 %.0f MiB)", r.device.name.c_str(),
                r.device.sm_major, r.device.sm_minor, r.device.sm_count,
                static_cast<double>(r.device.l2_bytes) / (1 << 20));
  return buf;
}

std::string ceilings_line(const Ceilings& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "copy %.3f TB/s (%.0f MiB device-to-device, read + write, median of %d); "
                "BF16 GEMM %.1f TFLOP/s (cublasGemmEx %d^3, FP32 compute, median of %d)",
                c.copy_TBps, static_cast<double>(c.copy_bytes) / (1 << 20), c.copy.count, c.gemm_TFLOPs,
                c.gemm_size, c.gemm.count);
  return buf;
}

// ---------------------------------------------------------------------------
// The table, rendered as text, CSV or Markdown.

struct Column {
  std::string header;  // may hold "µs"; CSV writes "us"
  bool numeric;
  std::function<std::string(const Row&, const Metrics&)> cell;
};

std::vector<Column> table_columns(const Report& report) {
  const bool graph = report.options != nullptr && report.options->graph;
  const bool grouped = any_grouped(report);
  std::vector<Column> c = {
      {"set", false, [](const Row& r, const Metrics&) { return r.spec.set; }},
      {"g", true, [](const Row& r, const Metrics&) { return std::to_string(r.spec.g); }},
      {"m", true, [](const Row& r, const Metrics&) { return std::to_string(r.spec.m); }},
      {"n", true, [](const Row& r, const Metrics&) { return std::to_string(r.spec.n); }},
      {"k min/avg/max", true, [](const Row& r, const Metrics&) { return k_range(r); }},
      {"out", false, [](const Row& r, const Metrics&) { return std::string(dtype_name(r.spec.out)); }},
      {"cublas_ms4 µs", true, [](const Row&, const Metrics& m) { return fmt_us(m.ms4.eager); }},
      {"cublas_loop µs", true, [](const Row&, const Metrics& m) { return fmt_us(m.loop.eager); }},
  };
  if (any_pass_but_wgrad(report))
    c.insert(c.begin() + 1,
             {"pass", false, [](const Row& r, const Metrics&) { return std::string(pass_name(r.spec.pass)); }});
  if (grouped)
    c.push_back({"cublas_grouped µs", true,
                 [](const Row&, const Metrics& m) { return us_or_na(m.grouped.eager, m.grouped_na, true); }});
  c.push_back(
      {"moegemm µs", true, [](const Row&, const Metrics& m) { return us_or_na(m.mg.eager, m.mg_na, true); }});
  c.push_back({"moegemm dev-splits µs", true,
               [](const Row&, const Metrics& m) { return us_or_na(m.mg_device.eager, m.mg_na); }});
  if (graph) {
    c.push_back({"ms4 graph µs", true, [](const Row&, const Metrics& m) { return fmt_us(m.ms4.graph); }});
    c.push_back({"loop graph µs", true, [](const Row&, const Metrics& m) { return fmt_us(m.loop.graph); }});
    if (grouped)
      c.push_back({"grouped graph µs", true,
                   [](const Row&, const Metrics& m) { return us_or_na(m.grouped.graph, m.grouped_na); }});
    c.push_back({"moegemm graph µs", true,
                 [](const Row&, const Metrics& m) { return us_or_na(m.mg.graph, m.mg_na); }});
    c.push_back({"dev-splits graph µs", true, [](const Row&, const Metrics& m) {
                   return us_or_na(m.mg_device.graph, m.mg_na.empty() ? m.mg_device_graph_na : m.mg_na);
                 }});
  }
  c.push_back({"best config", false, [](const Row&, const Metrics& m) { return m.best_config; }});
  if (any_pass_but_wgrad(report))  // moegemm_ragged_m: the kernel or the cuBLAS fallback
    c.push_back({"path", false, [](const Row&, const Metrics& m) { return path_label(m); }});
  c.push_back({"vs ms4", true, [](const Row&, const Metrics& m) { return fmt_ratio(m.speedup_ms4.eager); }});
  c.push_back({"vs best peer", true,
               [](const Row&, const Metrics& m) { return fmt_ratio(m.speedup_best_peer.eager); }});
  if (graph)
    c.push_back(
        {"vs ms4 graph", true, [](const Row&, const Metrics& m) { return fmt_ratio(m.speedup_ms4.graph); }});
  c.push_back({"TFLOP/s", true, [](const Row&, const Metrics& m) { return format("%.1f", m.tflops.eager); }});
  c.push_back({"eff", true, [](const Row&, const Metrics& m) { return format("%.3f", m.efficiency.eager); }});
  if (graph) {
    c.push_back(
        {"TFLOP/s graph", true, [](const Row&, const Metrics& m) { return format("%.1f", m.tflops.graph); }});
    c.push_back(
        {"eff graph", true, [](const Row&, const Metrics& m) { return format("%.3f", m.efficiency.graph); }});
  }
  if (any_anchor(report)) {
    static const std::vector<std::pair<std::string, std::string>> anchor_headers = {
        {"cublas_multistream4_eager", "a:ms4 µs"},
        {"quack_varlen_k_eager", "a:quack µs"},
        {"quack_varlen_k_graph", "a:quack graph µs"},
        {"torch_grouped_mm_eager", "a:torch µs"},
        {"best_peer_us", "a:best_peer µs"}};
    for (const auto& [key, header] : anchor_headers) {
      const std::string k = key;
      c.push_back({header, true, [k](const Row& r, const Metrics&) {
                     return r.spec.anchor != nullptr ? fmt_us(r.spec.anchor->value(k)) : std::string("-");
                   }});
    }
    c.push_back(
        {"vs a:eager", true, [](const Row&, const Metrics& m) { return fmt_ratio(m.speedup_anchor.eager); }});
    if (graph)
      c.push_back({"vs a:graph", true,
                   [](const Row&, const Metrics& m) { return fmt_ratio(m.speedup_anchor.graph); }});
    c.push_back({"vs a:best_peer", true,
                 [](const Row&, const Metrics& m) { return fmt_ratio(m.speedup_anchor_best_peer); }});
  }
  c.push_back({"check", false, [](const Row& r, const Metrics&) { return row_status(r); }});
  return c;
}

struct Table {
  std::vector<Column> columns;
  std::vector<std::vector<std::string>> cells;
};

Table build_table(const Report& report) {
  Table t;
  t.columns = table_columns(report);
  for (const Row& row : report.rows) {
    const Metrics m = compute_metrics(row);
    std::vector<std::string> line;
    for (const Column& c : t.columns) line.push_back(c.cell(row, m));
    t.cells.push_back(std::move(line));
  }
  return t;
}

std::string ascii_header(std::string h) {
  const std::string micro = "µ";
  for (size_t p; (p = h.find(micro)) != std::string::npos;) h.replace(p, micro.size(), "u");
  return h;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void render_text(FILE* f, const Table& t, const char* indent = "") {
  std::vector<size_t> width(t.columns.size());
  for (size_t j = 0; j < t.columns.size(); ++j) {
    width[j] = width_of(t.columns[j].header);
    for (const auto& line : t.cells) width[j] = std::max(width[j], width_of(line[j]));
  }
  auto print_line = [&](const std::function<const std::string&(size_t)>& cell) {
    std::string line;
    for (size_t j = 0; j < t.columns.size(); ++j) {
      const std::string& s = cell(j);
      const std::string pad(width[j] - width_of(s), ' ');
      line += (j ? "  " : "") + (t.columns[j].numeric ? pad + s : s + pad);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    std::fprintf(f, "%s%s\n", indent, line.c_str());
  };
  print_line([&](size_t j) -> const std::string& { return t.columns[j].header; });
  size_t total = 0;
  for (size_t w : width) total += w + 2;
  std::fprintf(f, "%s%s\n", indent, std::string(total - 2, '-').c_str());
  for (const auto& line : t.cells) print_line([&](size_t j) -> const std::string& { return line[j]; });
}

// Issue 3: one set and pass of fprop/dgrad problems, moegemm_ragged_m against
// cublas_ms4: the speed-up per shape, then per mode its geomean, its minimum
// and whether the bar holds.
std::string speedups_line(const Report& report, const Summary::Speedups& s) {
  std::string line = "geomean " + fmt_ratio(s.geomean) + ", min " + fmt_ratio(s.min);
  if (s.measured > 0) {
    const Row& slowest = report.rows[s.min_row];
    line += " (g=" + std::to_string(slowest.spec.g) + " m=" + std::to_string(slowest.spec.m) +
            " n=" + std::to_string(slowest.spec.n) + " k=" + k_range(slowest) + ")";
  }
  line += ", slower on " + std::to_string(s.slower) + " of " + std::to_string(s.measured);
  if (s.measured < s.shapes) line += " (" + std::to_string(s.shapes - s.measured) + " not measured)";
  return line;
}

void print_ragged_summary(FILE* f, const Report& report, const Summary::PassSpeedups& p) {
  const bool graph = report.options != nullptr && report.options->graph;
  std::fprintf(f,
               "\n%s, set %s: moegemm_ragged_m vs cublas_ms4, speed-up = cublas_ms4 time / moegemm time "
               "(split sizes on the host; dev: on the device)\n",
               pass_name(p.pass), p.set.c_str());
  Table t;  // the cells are filled here: no cell functions
  for (const char* header : {"g", "m", "n", "k min/avg/max", "path", "eager", "graph", "dev eager", "dev graph"}) {
    const std::string h = header;
    if (!graph && h.find("graph") != std::string::npos) continue;
    t.columns.push_back({h, h != "path", nullptr});
  }
  for (size_t i : p.rows) {
    const Row& row = report.rows[i];
    const Metrics m = compute_metrics(row);
    std::vector<std::string> line = {std::to_string(row.spec.g), std::to_string(row.spec.m),
                                     std::to_string(row.spec.n), k_range(row), path_label(m),
                                     fmt_ratio(m.ms4.eager / m.mg.eager)};
    if (graph) line.push_back(fmt_ratio(m.ms4.graph / m.mg.graph));
    line.push_back(fmt_ratio(m.ms4.eager / m.mg_device.eager));
    if (graph) line.push_back(fmt_ratio(m.ms4.graph / m.mg_device.graph));
    t.cells.push_back(std::move(line));
  }
  render_text(f, t, "  ");
  char bar[96];
  std::snprintf(bar, sizeof bar, "every shape >= %.2fx, geomean >= %.2fx", Summary::Speedups::kMinSpeedup,
                Summary::Speedups::kGeomeanSpeedup);
  auto verdict = [&](const char* mode, const Summary::Speedups& s) {
    std::fprintf(f, "  %s %s: %s -> issue 3's bar (%s) %s\n", pass_name(p.pass), mode,
                 speedups_line(report, s).c_str(), bar, s.bar_met() ? "met" : "NOT met");
  };
  verdict("eager", p.eager);
  if (graph) verdict("graph", p.graph);
  std::fprintf(f, "  %s device split sizes: eager %s", pass_name(p.pass),
               speedups_line(report, p.device_eager).c_str());
  if (graph) std::fprintf(f, "; graph %s", speedups_line(report, p.device_graph).c_str());
  std::fprintf(f, "\n");
}

}  // namespace

FILE* open_output(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) std::fprintf(stderr, "moegemm-bench: cannot write %s\n", path.c_str());
  return f;
}

bool close_output(FILE* f, const std::string& path) {
  const bool ok = std::ferror(f) == 0;
  if (std::fclose(f) != 0 || !ok) {
    std::fprintf(stderr, "moegemm-bench: error writing %s\n", path.c_str());
    return false;
  }
  return true;
}

void print_ceilings(FILE* f, const Report& r) {
  std::fprintf(f, "date:     %s\n", r.date.c_str());
  std::fprintf(f, "device:   %s\n", device_line(r).c_str());
  std::fprintf(f, "ceilings: %s\n", ceilings_line(r.ceilings).c_str());
  if (r.anchors != nullptr)
    std::fprintf(
        f, "anchors:  %s: %zu shapes; their run's ceilings: copy %.3f TB/s, BF16 GEMM %.1f TFLOP/s\n",
        r.anchors->path.c_str(), r.anchors->rows.size(), r.anchors->copy_TBps, r.anchors->gemm_TFLOPs);
}

void print_progress(FILE* f, const Row& row, size_t index, size_t total) {
  const Metrics m = compute_metrics(row);
  // The medians of the peers that ran, then the reasons of those that cannot.
  std::string times, reasons;
  auto add = [&](const char* label, const char* name, double us, const std::string& na) {
    if (!has_peer(row, name)) return;
    if (!na.empty())
      reasons += std::string("; ") + label + " " + na;
    else
      times += (times.empty() ? "" : "  ") + std::string(label) + " " + fmt_us(us);
  };
  add("ms4", "cublas_ms4", m.ms4.eager, "");
  add("loop", "cublas_loop", m.loop.eager, "");
  add("grouped", "cublas_grouped", m.grouped.eager, m.grouped_na);
  add("moegemm", "moegemm", m.mg.eager, m.mg_na);
  const bool moegemm = has_peer(row, "moegemm") && m.mg_na.empty();
  std::vector<std::string> notes;
  if (moegemm) notes.push_back(fmt_ratio(m.speedup_ms4.eager) + " vs ms4");
  if (moegemm && row.spec.pass != Pass::kWgrad) notes.push_back("path " + path_label(m));
  if (!std::isnan(m.mg.graph) || !std::isnan(m.ms4.graph))
    notes.push_back("graph: ms4 " + fmt_us(m.ms4.graph) + (moegemm ? " moegemm " + fmt_us(m.mg.graph) : "") +
                    " µs");
  std::string line = times.empty() ? "" : " " + times + " µs";
  for (size_t i = 0; i < notes.size(); ++i) line += (i == 0 ? " (" : "; ") + notes[i];
  if (!notes.empty()) line += ")";
  std::fprintf(f, "[%zu/%zu] %s:%s%s %s\n", index + 1, total, describe_row(row).c_str(), line.c_str(),
               reasons.c_str(), row_status(row).c_str());
  for (const PeerResult& p : row.peers) {
    if (!p.path_reason.empty())
      std::fprintf(f, "    %s: path %s: %s\n", p.info.label().c_str(), p.path.c_str(), p.path_reason.c_str());
    if (!p.error.empty()) std::fprintf(f, "    %s: ERROR %s\n", p.info.label().c_str(), p.error.c_str());
    if (!p.graph_error.empty())
      std::fprintf(f, "    %s: graph ERROR %s\n", p.info.label().c_str(), p.graph_error.c_str());
    if (p.check.done && !p.check.pass)
      std::fprintf(f, "    %s: FAIL max|diff| %.4g > tolerance %.4g (max|ref| %.4g, %llu NaN/Inf)%s\n",
                   p.info.label().c_str(), p.check.max_abs_diff, p.check.tolerance, p.check.max_abs_ref,
                   static_cast<unsigned long long>(p.check.nonfinite),
                   p.check.samples > 0 ? " [reference vs host]" : "");
    if (!p.check.done && p.error.empty() && p.applies())
      std::fprintf(f, "    %s: not checked (no reference)\n", p.info.label().c_str());
  }
  std::fflush(f);
}

void print_table(FILE* f, const Report& report) {
  std::fprintf(
      f, "\n%s: median of %d calls in %d interleaved rounds (µs)%s; eager = events around the host call",
      any_pass_but_wgrad(report) ? "moegemm and cuBLAS, fprop/dgrad/wgrad" : "moegemm_wgrad vs cuBLAS",
      report.options ? report.options->repeat : 0, report.options ? report.options->rounds : 0,
      report.options && report.options->accumulate ? ", accumulating (D += ...)" : "");
  if (report.options && report.options->out_list) std::fprintf(f, ", moegemm D through a pointer list");
  if (report.options && report.options->graph) std::fprintf(f, ", graph = CUDA-graph replay (GPU time)");
  std::fprintf(f, "\n");
  render_text(f, build_table(report));
}

void print_summary(FILE* f, const Report& report) {
  const Summary s = summarize_rows(report.rows);
  std::fprintf(f, "\n");
  for (const Summary::Geomean& g : s.geomeans)
    std::fprintf(f,
                 "geomean efficiency, set %s, fp32 out (%d shapes): moegemm eager %s, graph %s; "
                 "cublas_ms4 eager %s, graph %s\n",
                 g.set.c_str(), g.shapes, format("%.3f", g.moegemm.eager).c_str(),
                 format("%.3f", g.moegemm.graph).c_str(), format("%.3f", g.ms4.eager).c_str(),
                 format("%.3f", g.ms4.graph).c_str());
  // moegemm_wgrad's counts; "(wgrad)" only where other passes ran too.
  const char* wgrad_only = static_cast<size_t>(s.wgrad_rows) < report.rows.size() ? " (wgrad)" : "";
  auto line = [&](const char* what, const Summary::Count& eager, const Summary::Count& graph) {
    std::fprintf(f, "moegemm slower than %s%s: eager %d of %d", what, wgrad_only, eager.slower, eager.compared);
    if (graph.compared > 0) std::fprintf(f, ", graph %d of %d", graph.slower, graph.compared);
    std::fprintf(f, "\n");
  };
  if (s.wgrad_rows > 0 || report.rows.empty()) {
    line("cublas_ms4", s.vs_ms4_eager, s.vs_ms4_graph);
    line("the best measured peer", s.vs_best_eager, s.vs_best_graph);
  }
  for (const Summary::PassSpeedups& p : s.ragged) print_ragged_summary(f, report, p);
  if (s.vs_anchor_eager.compared + s.vs_anchor_graph.compared + s.vs_anchor_best_peer.compared > 0) {
    line("the anchors' best peer (eager vs their best eager, graph vs their best graph)", s.vs_anchor_eager,
         s.vs_anchor_graph);
    std::fprintf(f, "moegemm (best of eager/graph) slower than the anchors' best_peer_us: %d of %d\n",
                 s.vs_anchor_best_peer.slower, s.vs_anchor_best_peer.compared);
  }
  if (s.failures.empty()) {
    std::fprintf(f, "correctness: all %zu problems agree with the cuBLAS reference\n", report.rows.size());
  } else {
    std::fprintf(f, "correctness: %zu of %zu problems FAILED:\n", s.failures.size(), report.rows.size());
    for (const std::string& fail : s.failures) std::fprintf(f, "  %s\n", fail.c_str());
  }
  for (const std::string& skipped : report.skipped) std::fprintf(f, "skipped: %s\n", skipped.c_str());
  if (!report.fatal_error.empty()) std::fprintf(f, "run stopped early: %s\n", report.fatal_error.c_str());
}

bool write_csv(const std::string& path, const Report& report) {
  FILE* f = open_output(path);
  if (f == nullptr) return false;
  const Table t = build_table(report);
  for (size_t j = 0; j < t.columns.size(); ++j)
    std::fprintf(f, "%s%s", j ? "," : "", csv_cell(ascii_header(t.columns[j].header)).c_str());
  std::fprintf(f, "\n");
  for (const auto& line : t.cells) {
    for (size_t j = 0; j < line.size(); ++j) std::fprintf(f, "%s%s", j ? "," : "", csv_cell(line[j]).c_str());
    std::fprintf(f, "\n");
  }
  return close_output(f, path);
}

bool write_markdown(const std::string& path, const Report& report) {
  FILE* f = open_output(path);
  if (f == nullptr) return false;
  std::fprintf(f, "<!-- generated by moegemm-bench -->\n");
  std::fprintf(f, "Date: %s  \nDevice: %s  \nCeilings: %s  \n", report.date.c_str(),
               device_line(report).c_str(), ceilings_line(report.ceilings).c_str());
  if (report.options != nullptr)
    std::fprintf(f,
                 "Median of %d calls in %d interleaved rounds (every peer timed in each, the peers' order "
                 "rotated each round); eager = CUDA events around the host call%s%s.\n\n",
                 report.options->repeat, report.options->rounds,
                 report.options->graph ? ", graph = CUDA-graph replay (GPU time only)" : "",
                 report.options->accumulate ? "; accumulating (D += ...)" : "");
  if (report.options != nullptr && report.options->out_list)
    std::fprintf(f, "moegemm writes D through a device pointer list (one per expert).\n\n");
  const Table t = build_table(report);
  std::string rule = "|";
  std::fprintf(f, "|");
  for (const Column& c : t.columns) {
    std::fprintf(f, " %s |", c.header.c_str());
    rule += c.numeric ? " ---: |" : " --- |";
  }
  std::fprintf(f, "\n%s\n", rule.c_str());
  for (const auto& line : t.cells) {
    std::fprintf(f, "|");
    for (const std::string& cell : line) std::fprintf(f, " %s |", cell.c_str());
    std::fprintf(f, "\n");
  }
  std::fprintf(f, "\n```\n");
  print_summary(f, report);
  std::fprintf(f, "```\n");
  return close_output(f, path);
}

}  // namespace bench
