// write_json: every row with all peers' timings and checks, the derived
// metrics, the ceilings, the device and the summary.
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "report.h"

namespace bench {
namespace {

class JsonWriter {
 public:
  explicit JsonWriter(FILE* f) : f_(f) {}
  void begin_object(const char* key = nullptr) { open(key, '{'); }
  void end_object() { close('}'); }
  void begin_array(const char* key = nullptr) { open(key, '['); }
  void end_array() { close(']'); }
  void number(const char* key, double v) {
    prefix(key);
    if (std::isfinite(v))
      std::fprintf(f_, "%.10g", v);
    else
      std::fprintf(f_, "null");
  }
  void integer(const char* key, long long v) {
    prefix(key);
    std::fprintf(f_, "%lld", v);
  }
  void integers(const char* key, const std::vector<int64_t>& v) {  // on one line
    prefix(key);
    std::fputc('[', f_);
    for (size_t i = 0; i < v.size(); ++i)
      std::fprintf(f_, "%s%lld", i ? ", " : "", static_cast<long long>(v[i]));
    std::fputc(']', f_);
  }
  void boolean(const char* key, bool v) {
    prefix(key);
    std::fprintf(f_, v ? "true" : "false");
  }
  void null(const char* key) {
    prefix(key);
    std::fprintf(f_, "null");
  }
  void string(const char* key, const std::string& v) {
    prefix(key);
    quoted(v);
  }
  void finish() { std::fprintf(f_, "\n"); }

 private:
  void prefix(const char* key) {
    if (!first_.empty()) {
      if (!first_.back()) std::fputc(',', f_);
      first_.back() = false;
      std::fprintf(f_, "\n%*s", static_cast<int>(2 * first_.size()), "");
    }
    if (key != nullptr) {
      quoted(key);
      std::fprintf(f_, ": ");
    }
  }
  void quoted(const std::string& v) {
    std::fputc('"', f_);
    for (unsigned char c : v) {
      if (c == '"' || c == '\\')
        std::fprintf(f_, "\\%c", c);
      else if (c < 0x20)
        std::fprintf(f_, "\\u%04x", c);
      else
        std::fputc(c, f_);
    }
    std::fputc('"', f_);
  }
  void open(const char* key, char bracket) {
    prefix(key);
    std::fputc(bracket, f_);
    first_.push_back(true);
  }
  void close(char bracket) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) std::fprintf(f_, "\n%*s", static_cast<int>(2 * first_.size()), "");
    std::fputc(bracket, f_);
  }

  FILE* f_;
  std::vector<bool> first_;  // per open container: nothing written yet
};

void json_stats(JsonWriter& j, const char* key, const Stats& s) {
  if (!s.valid()) return j.null(key);
  j.begin_object(key);
  j.number("median_us", s.median_us);
  j.number("min_us", s.min_us);
  j.number("max_us", s.max_us);
  j.integer("count", s.count);
  j.end_object();
}

void json_modes(JsonWriter& j, const char* key, const ModeTimes& t) {
  j.begin_object(key);
  j.number("eager", t.eager);
  j.number("graph", t.graph);
  j.end_object();
}

void json_check(JsonWriter& j, const char* key, const CheckResult& c) {
  j.begin_object(key);
  j.boolean("done", c.done);
  j.boolean("pass", c.pass);
  j.number("max_abs_diff", c.max_abs_diff);
  j.number("max_abs_ref", c.max_abs_ref);
  j.number("tolerance", c.tolerance);
  j.integer("nonfinite", static_cast<long long>(c.nonfinite));
  if (c.samples > 0) j.integer("host_samples", c.samples);
  j.end_object();
}

void json_row(JsonWriter& j, const Row& row) {
  const Metrics m = compute_metrics(row);
  j.begin_object();
  j.string("set", row.spec.set);
  j.string("pass", pass_name(row.spec.pass));
  j.integer("g", row.spec.g);
  j.integer("m", row.spec.m);
  j.integer("n", row.spec.n);
  j.string("out", dtype_name(row.spec.out));
  j.boolean("accumulate", row.spec.accumulate);
  j.boolean("out_list", row.spec.out_list);
  j.integers("splits", row.spec.splits);
  j.integer("total_tokens", row.total_tokens);
  j.integer("k_min", row.k_min);
  j.number("k_avg", row.k_avg);
  j.integer("k_max", row.k_max);
  j.integer("empty_groups", row.empty_groups);
  j.integer("timing_sets", row.timing_sets);
  j.number("flops", row.flops);
  j.number("bytes", row.bytes);
  j.number("bound_us", row.bound_us);
  j.boolean("correct", row.correct);
  j.string("status", row_status(row));
  j.begin_array("peers");
  for (const PeerResult& p : row.peers) {
    j.begin_object();
    j.string("name", p.info.name);
    j.string("label", p.info.label());
    if (p.info.is_moegemm) {
      j.string("config", p.info.config_name());
      j.string("resolved_config", p.resolved_config);
      j.string("split_sizes", p.info.sizes_name());
      if (!p.path.empty()) {  // fprop/dgrad: moegemm_ragged_m
        j.string("path", p.path);
        j.string("path_reason", p.path_reason);
      }
    }
    json_stats(j, "eager", p.eager);
    json_stats(j, "graph", p.graph);
    json_check(j, "check", p.check);
    if (!p.applies()) j.string("not_applicable", p.not_applicable);
    if (!p.error.empty()) j.string("error", p.error);
    if (!p.graph_error.empty()) j.string("graph_error", p.graph_error);
    if (!p.graph_na.empty()) j.string("graph_not_applicable", p.graph_na);
    j.end_object();
  }
  j.end_array();
  j.begin_object("metrics");
  json_modes(j, "cublas_ms4_us", m.ms4);
  json_modes(j, "cublas_loop_us", m.loop);
  json_modes(j, "cublas_grouped_us", m.grouped);
  if (!m.grouped_na.empty()) j.string("cublas_grouped_na", m.grouped_na);
  json_modes(j, "best_peer_us", m.best_peer);
  json_modes(j, "moegemm_us", m.mg);
  json_modes(j, "moegemm_device_splits_us", m.mg_device);
  if (!m.mg_na.empty()) j.string("moegemm_na", m.mg_na);
  if (!m.mg_path.empty() || !m.mg_device_path.empty()) {  // fprop/dgrad
    j.string("moegemm_path", m.mg_path);
    j.string("moegemm_device_splits_path", m.mg_device_path);
    j.string("moegemm_path_reason", m.mg_path_reason);
  }
  if (!m.mg_device_graph_na.empty()) j.string("moegemm_device_splits_graph_na", m.mg_device_graph_na);
  j.string("best_config", m.best_config);
  json_modes(j, "speedup_vs_cublas_ms4", m.speedup_ms4);
  json_modes(j, "speedup_vs_best_peer", m.speedup_best_peer);
  json_modes(j, "tflops", m.tflops);
  json_modes(j, "efficiency", m.efficiency);
  json_modes(j, "cublas_ms4_efficiency", m.ms4_efficiency);
  j.end_object();
  if (row.spec.anchor != nullptr) {
    j.begin_object("anchors");
    for (const auto& [key, value] : row.spec.anchor->values) j.number(key.c_str(), value);
    json_modes(j, "best_us", m.anchor_best);
    json_modes(j, "speedup", m.speedup_anchor);
    j.number("speedup_vs_best_peer_us", m.speedup_anchor_best_peer);
    j.end_object();
  }
  j.end_object();
}

}  // namespace

bool write_json(const std::string& path, const Report& report) {
  FILE* f = open_output(path);
  if (f == nullptr) return false;
  JsonWriter j(f);
  j.begin_object();
  j.string("tool", "moegemm-bench");
  j.string("date", report.date);
  j.string("moegemm_version", std::to_string(MOEGEMM_VERSION_MAJOR) + "." +
                                  std::to_string(MOEGEMM_VERSION_MINOR) + "." +
                                  std::to_string(MOEGEMM_VERSION_PATCH));
  j.begin_object("device");
  j.string("name", report.device.name);
  j.string("sm", std::to_string(report.device.sm_major) + "." + std::to_string(report.device.sm_minor));
  j.integer("sm_count", report.device.sm_count);
  j.integer("l2_bytes", static_cast<long long>(report.device.l2_bytes));
  j.boolean("moegemm_supported", report.device.moegemm_supported);
  j.end_object();
  j.begin_object("ceilings");
  j.number("copy_TBps", report.ceilings.copy_TBps);
  j.number("gemm_TFLOPs", report.ceilings.gemm_TFLOPs);
  j.integer("copy_bytes", static_cast<long long>(report.ceilings.copy_bytes));
  j.integer("gemm_size", report.ceilings.gemm_size);
  json_stats(j, "copy", report.ceilings.copy);
  json_stats(j, "gemm", report.ceilings.gemm);
  j.end_object();
  if (report.anchors != nullptr) {
    j.begin_object("anchors");
    j.string("path", report.anchors->path);
    j.string("note", report.anchors->note);
    j.number("copy_TBps", report.anchors->copy_TBps);
    j.number("gemm_TFLOPs", report.anchors->gemm_TFLOPs);
    j.end_object();
  } else {
    j.null("anchors");
  }
  if (report.options != nullptr) {
    j.begin_object("options");
    j.integer("repeat", report.options->repeat);
    j.integer("warmup", report.options->warmup);
    j.integer("rounds", report.options->rounds);
    j.boolean("graph", report.options->graph);
    j.boolean("accumulate", report.options->accumulate);
    j.boolean("out_list", report.options->out_list);
    j.boolean("quick", report.options->quick);
    j.string("seed", std::to_string(report.options->seed));
    j.begin_array("passes");
    for (Pass p : report.options->passes) j.string(nullptr, pass_name(p));
    j.end_array();
    j.begin_array("sets");
    const Options& o = *report.options;
    for (const auto& [selected, name] : {std::pair<bool, const char*>{o.seed_set, "seed"},
                                         {o.large_set, "large"},
                                         {o.anchors_set, "anchors"},
                                         {o.fwd_set, "fwd"}})
      if (selected) j.string(nullptr, name);
    j.end_array();
    if (o.fwd_set) {
      j.begin_array("fwd_passes");
      for (Pass p : o.fwd_passes()) j.string(nullptr, pass_name(p));
      j.end_array();
    }
    j.begin_array("peers");
    for (const std::string& name : report.options->peers) j.string(nullptr, name);
    j.end_array();
    j.end_object();
  }
  j.begin_array("rows");
  for (const Row& row : report.rows) json_row(j, row);
  j.end_array();
  const Summary s = summarize_rows(report.rows);
  j.begin_object("summary");
  j.begin_array("geomean_efficiency");
  for (const Summary::Geomean& g : s.geomeans) {
    j.begin_object();
    j.string("set", g.set);
    j.string("out", "fp32");
    j.integer("shapes", g.shapes);
    json_modes(j, "moegemm", g.moegemm);
    json_modes(j, "cublas_ms4", g.ms4);
    j.end_object();
  }
  j.end_array();
  auto counted = [&](const char* key, const Summary::Count& c) {
    j.begin_object(key);
    j.integer("slower", c.slower);
    j.integer("compared", c.compared);
    j.end_object();
  };
  counted("slower_than_cublas_ms4_eager", s.vs_ms4_eager);
  counted("slower_than_cublas_ms4_graph", s.vs_ms4_graph);
  counted("slower_than_best_peer_eager", s.vs_best_eager);
  counted("slower_than_best_peer_graph", s.vs_best_graph);
  counted("slower_than_anchor_best_eager", s.vs_anchor_eager);
  counted("slower_than_anchor_best_graph", s.vs_anchor_graph);
  counted("slower_than_anchor_best_peer_us", s.vs_anchor_best_peer);
  // Issue 3: moegemm_ragged_m's speed-up over cublas_ms4 per set and pass of
  // fprop/dgrad problems (the rows' metrics.speedup_vs_cublas_ms4 per shape).
  j.begin_array("ragged_m_speedup_vs_cublas_ms4");
  for (const Summary::PassSpeedups& p : s.ragged) {
    j.begin_object();
    j.string("set", p.set);
    j.string("pass", pass_name(p.pass));
    j.number("bar_min", Summary::Speedups::kMinSpeedup);
    j.number("bar_geomean", Summary::Speedups::kGeomeanSpeedup);
    for (const auto& [key, sp] : {std::pair<const char*, const Summary::Speedups*>{"eager", &p.eager},
                                  {"graph", &p.graph},
                                  {"device_splits_eager", &p.device_eager},
                                  {"device_splits_graph", &p.device_graph}}) {
      j.begin_object(key);
      j.integer("shapes", sp->shapes);
      j.integer("measured", sp->measured);
      j.integer("slower", sp->slower);
      j.number("geomean", sp->geomean);
      j.number("min", sp->min);
      j.boolean("bar_met", sp->bar_met());
      j.end_object();
    }
    j.end_object();
  }
  j.end_array();
  j.integer("wgrad_rows", s.wgrad_rows);
  j.integer("failed_problems", static_cast<long long>(s.failures.size()));
  j.end_object();
  j.begin_array("skipped");
  for (const std::string& skipped : report.skipped) j.string(nullptr, skipped);
  j.end_array();
  if (!report.fatal_error.empty()) j.string("fatal_error", report.fatal_error);
  j.end_object();
  j.finish();
  return close_output(f, path);
}

}  // namespace bench
