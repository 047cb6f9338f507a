#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

namespace bench {
namespace {

double nan_min(double a, double b) {
  if (std::isnan(a)) return b;
  if (std::isnan(b)) return a;
  return std::min(a, b);
}

double median_of(const Stats& s) { return s.valid() ? s.median_us : kNaN; }

ModeTimes times_of(const PeerResult& p) {
  if (!p.error.empty() || !p.applies()) return {};
  return {median_of(p.eager), median_of(p.graph)};
}

const PeerResult* find_peer(const Row& row, const std::string& name) {
  for (const PeerResult& p : row.peers)
    if (p.info.name == name) return &p;
  return nullptr;
}

ModeTimes peer_times(const Row& row, const std::string& name) {
  const PeerResult* p = find_peer(row, name);
  return p != nullptr ? times_of(*p) : ModeTimes{};
}

std::string peer_na(const Row& row, const std::string& name) {
  const PeerResult* p = find_peer(row, name);
  return p != nullptr ? p->not_applicable : "";
}

// "" when any moegemm peer applies (e.g. fprop with --config auto,pingpong:
// the pingpong peers are n/a, the auto ones run), else the first one's reason.
std::string moegemm_na(const Row& row) {
  std::string first;
  for (const PeerResult& p : row.peers) {
    if (!p.info.is_moegemm) continue;
    if (p.applies()) return "";
    if (first.empty()) first = p.not_applicable;
  }
  return first;
}

std::string config_label(const PeerResult& p) {
  const std::string name = p.info.config_name();
  return p.info.config == MOEGEMM_WGRAD_CONFIG_AUTO && !p.resolved_config.empty()
             ? name + "=" + p.resolved_config
             : name;
}

// Applies f to both modes.
ModeTimes per_mode(const std::function<double(double ModeTimes::*)>& f) {
  return {f(&ModeTimes::eager), f(&ModeTimes::graph)};
}

double geomean(const std::vector<double>& v) {
  double log_sum = 0;
  int n = 0;
  for (double x : v)
    if (x > 0 && std::isfinite(x)) {
      log_sum += std::log(x);
      ++n;
    }
  return n > 0 ? std::exp(log_sum / n) : kNaN;
}

void count(Summary::Count& c, double moegemm_us, double peer_us) {
  if (std::isnan(moegemm_us) || std::isnan(peer_us)) return;
  ++c.compared;
  if (moegemm_us > peer_us) ++c.slower;
}

// One shape's speed-up into its Speedups (NaN: not measured).
void add_speedup(Summary::Speedups& s, std::vector<double>& all, double speedup, size_t row) {
  ++s.shapes;
  if (!(speedup > 0) || !std::isfinite(speedup)) return;
  ++s.measured;
  all.push_back(speedup);
  if (speedup < 1) ++s.slower;
  if (!(speedup >= s.min)) {  // NaN-safe: the first one sets it
    s.min = speedup;
    s.min_row = row;
  }
}

}  // namespace

Metrics compute_metrics(const Row& row) {
  Metrics m;
  m.ms4 = peer_times(row, "cublas_ms4");
  m.loop = peer_times(row, "cublas_loop");
  m.grouped = peer_times(row, "cublas_grouped");
  m.grouped_na = peer_na(row, "cublas_grouped");
  m.mg_na = moegemm_na(row);
  m.best_peer = per_mode(
      [&](double ModeTimes::*mode) { return nan_min(nan_min(m.ms4.*mode, m.loop.*mode), m.grouped.*mode); });

  double best_eager = kNaN;
  for (const PeerResult& p : row.peers) {
    if (!p.info.is_moegemm) continue;
    const ModeTimes t = times_of(p);
    ModeTimes& into = p.info.sizes == MOEGEMM_MEMORY_HOST ? m.mg : m.mg_device;
    into = per_mode([&](double ModeTimes::*mode) { return nan_min(into.*mode, t.*mode); });
    if (!p.path.empty()) {
      std::string& path = p.info.sizes == MOEGEMM_MEMORY_HOST ? m.mg_path : m.mg_device_path;
      if (path.empty()) path = p.path;
      if (m.mg_path_reason.empty() || p.info.sizes == MOEGEMM_MEMORY_HOST) m.mg_path_reason = p.path_reason;
    }
    if (p.info.sizes == MOEGEMM_MEMORY_DEVICE && !p.graph_na.empty()) m.mg_device_graph_na = p.graph_na;
    if (p.info.sizes == MOEGEMM_MEMORY_HOST && !std::isnan(t.eager) && !(t.eager >= best_eager)) {
      best_eager = t.eager;
      m.best_config = config_label(p);
    }
  }

  m.speedup_ms4 = per_mode([&](double ModeTimes::*mode) { return m.ms4.*mode / m.mg.*mode; });
  m.speedup_best_peer = per_mode([&](double ModeTimes::*mode) { return m.best_peer.*mode / m.mg.*mode; });
  m.tflops = per_mode([&](double ModeTimes::*mode) { return row.flops / (m.mg.*mode * 1e-6) / 1e12; });
  m.efficiency = per_mode([&](double ModeTimes::*mode) { return row.bound_us / m.mg.*mode; });
  m.ms4_efficiency = per_mode([&](double ModeTimes::*mode) { return row.bound_us / m.ms4.*mode; });

  // The anchors were measured overwriting the output.
  if (const AnchorRow* a = row.spec.anchor; a != nullptr && !row.spec.accumulate) {
    m.anchor_best = {a->best_eager_us(), a->best_graph_us()};
    m.anchor_best_peer = a->value("best_peer_us");
    m.speedup_anchor = per_mode([&](double ModeTimes::*mode) { return m.anchor_best.*mode / m.mg.*mode; });
    m.speedup_anchor_best_peer = m.anchor_best_peer / nan_min(m.mg.eager, m.mg.graph);
  }
  return m;
}

std::string row_status(const Row& row) {
  for (const PeerResult& p : row.peers)
    if (!p.error.empty() || !p.graph_error.empty()) return "ERROR";
  if (std::none_of(row.peers.begin(), row.peers.end(), [](const PeerResult& p) { return p.applies(); }))
    return "n/a";
  return row.correct ? "ok" : "FAIL";
}

bool has_peer(const Row& row, const std::string& name) { return find_peer(row, name) != nullptr; }

std::string path_label(const Metrics& m) {
  if (m.mg_path.empty() && m.mg_device_path.empty()) return "-";
  if (m.mg_device_path.empty() || m.mg_device_path == m.mg_path) return m.mg_path;
  if (m.mg_path.empty()) return m.mg_device_path;
  return m.mg_path + "/" + m.mg_device_path;
}

std::string k_range(const Row& row) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%lld/%.0f/%lld", static_cast<long long>(row.k_min), row.k_avg,
                static_cast<long long>(row.k_max));
  return buf;
}

std::string describe_row(const Row& row) {
  const std::string set =
      row.spec.pass == Pass::kWgrad ? row.spec.set : row.spec.set + " " + pass_name(row.spec.pass);
  char buf[192];
  std::snprintf(buf, sizeof buf, "%s g=%d m=%lld n=%lld k=%s %s", set.c_str(), row.spec.g,
                static_cast<long long>(row.spec.m), static_cast<long long>(row.spec.n), k_range(row).c_str(),
                dtype_name(row.spec.out));
  return buf;
}

Summary summarize_rows(const std::vector<Row>& rows) {
  Summary s;
  for (const std::string set : {"seed", "anchors:seed"}) {
    std::vector<double> mg_eager, mg_graph, ms4_eager, ms4_graph;
    for (const Row& row : rows) {
      if (row.spec.set != set || row.spec.out != OutDtype::kFp32) continue;
      const Metrics m = compute_metrics(row);
      mg_eager.push_back(m.efficiency.eager);
      mg_graph.push_back(m.efficiency.graph);
      ms4_eager.push_back(m.ms4_efficiency.eager);
      ms4_graph.push_back(m.ms4_efficiency.graph);
    }
    if (!mg_eager.empty())
      s.geomeans.push_back({set,
                            static_cast<int>(mg_eager.size()),
                            {geomean(mg_eager), geomean(mg_graph)},
                            {geomean(ms4_eager), geomean(ms4_graph)}});
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    if (row.spec.pass == Pass::kWgrad || !has_peer(row, "moegemm") || !moegemm_na(row).empty()) continue;
    auto group = std::find_if(s.ragged.begin(), s.ragged.end(), [&](const Summary::PassSpeedups& p) {
      return p.set == row.spec.set && p.pass == row.spec.pass;
    });
    if (group == s.ragged.end()) {
      s.ragged.push_back({});
      group = s.ragged.end() - 1;
      group->set = row.spec.set;
      group->pass = row.spec.pass;
    }
    group->rows.push_back(i);
  }
  for (Summary::PassSpeedups& p : s.ragged) {
    std::vector<double> eager, graph, device_eager, device_graph;
    for (size_t i : p.rows) {
      const Metrics m = compute_metrics(rows[i]);
      add_speedup(p.eager, eager, m.ms4.eager / m.mg.eager, i);
      add_speedup(p.graph, graph, m.ms4.graph / m.mg.graph, i);
      add_speedup(p.device_eager, device_eager, m.ms4.eager / m.mg_device.eager, i);
      add_speedup(p.device_graph, device_graph, m.ms4.graph / m.mg_device.graph, i);
    }
    p.eager.geomean = geomean(eager);
    p.graph.geomean = geomean(graph);
    p.device_eager.geomean = geomean(device_eager);
    p.device_graph.geomean = geomean(device_graph);
  }
  for (const Row& row : rows) {
    if (!row.correct) s.failures.push_back(describe_row(row) + ": " + row_status(row));
    // The counts and geomeans above are moegemm_wgrad's.
    if (row.spec.pass != Pass::kWgrad) continue;
    ++s.wgrad_rows;
    const Metrics m = compute_metrics(row);
    count(s.vs_ms4_eager, m.mg.eager, m.ms4.eager);
    count(s.vs_ms4_graph, m.mg.graph, m.ms4.graph);
    count(s.vs_best_eager, m.mg.eager, m.best_peer.eager);
    count(s.vs_best_graph, m.mg.graph, m.best_peer.graph);
    count(s.vs_anchor_eager, m.mg.eager, m.anchor_best.eager);
    count(s.vs_anchor_graph, m.mg.graph, m.anchor_best.graph);
    count(s.vs_anchor_best_peer, nan_min(m.mg.eager, m.mg.graph), m.anchor_best_peer);
  }
  return s;
}

}  // namespace bench
