// moegemm-bench: times moegemm_wgrad() (variable-K weight gradient of MoE
// layers) and moegemm_ragged_m() (the fprop and dgrad GEMMs of the same
// layer) against cuBLAS on the GPU it runs on, checking every result first.
// See --help, and peers.h / timing.h for what is measured.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "anchors.h"
#include "device.h"
#include "options.h"
#include "peers.h"
#include "report.h"
#include "runner.h"
#include "shapes.h"
#include "timing.h"

#ifndef MOEGEMM_BENCH_SOURCE_DIR
#define MOEGEMM_BENCH_SOURCE_DIR "."
#endif

namespace bench {
namespace {

constexpr size_t kMemoryCap = size_t{8} << 30;  // rotation sets stop here (one set always allowed)

// The anchors file sits in shared/, a sibling of the repository (or, in a
// copied tree, inside it); relative paths are tried from the working directory.
std::vector<std::string> default_anchor_paths() {
  const std::string rel = "shared/anchors/wgrad-h100.jsonl";
  const std::string root = MOEGEMM_BENCH_SOURCE_DIR;
  return {root + "/../" + rel, root + "/" + rel, "../" + rel, rel};
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// Loads the anchors file when the anchors set is selected; a missing or bad
// file skips the set with a note.
bool load_selected_anchors(const Options& opt, Anchors* anchors) {
  if (!opt.anchors_set) return false;
  std::vector<std::string> candidates =
      opt.anchors_path.empty() ? default_anchor_paths() : std::vector<std::string>{opt.anchors_path};
  for (const std::string& path : candidates) {
    if (!file_exists(path)) continue;
    std::string error;
    if (load_anchors(path, anchors, &error)) return true;
    std::fprintf(stderr, "moegemm-bench: note: %s; skipping the anchors set\n", error.c_str());
    return false;
  }
  std::fprintf(stderr, "moegemm-bench: note: no anchors file (%s%s); skipping the anchors set\n",
               opt.anchors_path.empty() ? "looked for " : "", candidates.front().c_str());
  return false;
}

// Now, UTC, ISO 8601.
std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

DeviceDescription describe_device() {
  DeviceDescription d;
  int device = 0;
  BENCH_CUDA(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, device));
  d.name = prop.name;
  d.sm_major = prop.major;
  d.sm_minor = prop.minor;
  d.sm_count = prop.multiProcessorCount;
  int l2 = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  d.l2_bytes = static_cast<size_t>(l2);
  d.moegemm_supported = moegemm_device_supported() != 0;
  return d;
}

class Stream {
 public:
  Stream() { BENCH_CUDA(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

int run(const Options& opt) {
  Report report;
  report.options = &opt;
  report.date = utc_now();
  report.device = describe_device();
  if (!report.device.moegemm_supported && opt.wants_peer("moegemm"))
    std::fprintf(stderr,
                 "moegemm-bench: %s is sm_%d%d, not SM90 (H100/H200): moegemm cannot run here; "
                 "timing the cuBLAS peers only\n",
                 report.device.name.c_str(), report.device.sm_major, report.device.sm_minor);

  Anchors anchors;
  if (load_selected_anchors(opt, &anchors)) report.anchors = &anchors;
  const std::vector<ShapeSpec> shapes = build_shapes(opt, report.anchors);
  if (shapes.empty()) {
    std::fprintf(stderr, "moegemm-bench: no problems selected\n");
    return 2;
  }

  Stream stream;
  std::fprintf(stderr, "moegemm-bench: measuring the ceilings...\n");
  report.ceilings = measure_ceilings(stream.get());
  print_ceilings(stdout, report);
  std::fflush(stdout);

  // In peer_names() order: the reference (the first that applies) first.
  std::vector<std::unique_ptr<Peer>> owned;
  if (opt.wants_peer("cublas_ms4")) owned.push_back(make_cublas_peer("cublas_ms4", 4, stream.get()));
  if (opt.wants_peer("cublas_loop")) owned.push_back(make_cublas_peer("cublas_loop", 1, stream.get()));
  if (opt.wants_peer("cublas_grouped")) owned.push_back(make_cublas_grouped_peer(stream.get()));
  // One allocation for every moegemm call. moegemm_wgrad's need depends on g
  // only: reserved here for the largest; moegemm_ragged_m's, per problem,
  // grows it in the peers' prepare() when needed.
  SharedWorkspace workspace;
  if (report.device.moegemm_supported && opt.wants_peer("moegemm")) {
    moegemm_wgrad_problem_t p = moegemm_wgrad_problem_default();
    p.num_groups = std::max_element(shapes.begin(), shapes.end(), [](const ShapeSpec& a, const ShapeSpec& b) {
                     return a.g < b.g;
                   })->g;
    size_t workspace_bytes = 0;
    BENCH_MOEGEMM(moegemm_wgrad_workspace_size(&p, &workspace_bytes));
    workspace.reserve(workspace_bytes);
    for (moegemm_wgrad_config_t config : opt.configs)
      for (moegemm_memory_t sizes : {MOEGEMM_MEMORY_HOST, MOEGEMM_MEMORY_DEVICE})
        owned.push_back(make_moegemm_peer(config, sizes, &workspace, stream.get()));
  }
  if (owned.empty()) {
    std::fprintf(stderr, "moegemm-bench: none of the selected peers can run on %s\n",
                 report.device.name.c_str());
    return 1;
  }
  std::vector<Peer*> peers;
  for (const auto& p : owned) peers.push_back(p.get());

  RunContext ctx;
  ctx.stream = stream.get();
  ctx.limits = WorkloadLimits{report.device.l2_bytes, kMemoryCap};
  ctx.seed = opt.seed;
  ctx.warmup = opt.warmup;
  ctx.repeat = opt.repeat;
  ctx.rounds = opt.rounds;
  ctx.graph = opt.graph;
  ctx.ceilings = report.ceilings;

  for (size_t i = 0; i < shapes.size(); ++i) {
    try {
      report.rows.push_back(run_problem(shapes[i], peers, ctx));
      print_progress(stderr, report.rows.back(), i, shapes.size());
    } catch (const FatalError& e) {
      report.fatal_error = e.what();
      std::fprintf(stderr, "moegemm-bench: fatal: %s\n", e.what());
      break;
    } catch (const Error& e) {  // e.g. out of memory while setting the problem up
      char what[160];
      std::snprintf(what, sizeof what, "%s %s g=%d m=%lld n=%lld T=%lld %s: ", shapes[i].set.c_str(),
                    pass_name(shapes[i].pass), shapes[i].g, static_cast<long long>(shapes[i].m),
                    static_cast<long long>(shapes[i].n), static_cast<long long>(shapes[i].total_tokens()),
                    dtype_name(shapes[i].out));
      report.skipped.push_back(what + std::string(e.what()));
      std::fprintf(stderr, "[%zu/%zu] skipped: %s\n", i + 1, shapes.size(), report.skipped.back().c_str());
      cudaGetLastError();
    }
  }

  print_table(stdout, report);
  print_summary(stdout, report);
  bool written = true;
  if (!opt.json_path.empty()) written &= write_json(opt.json_path, report);
  if (!opt.csv_path.empty()) written &= write_csv(opt.csv_path, report);
  if (!opt.markdown_path.empty()) written &= write_markdown(opt.markdown_path, report);

  if (!report.fatal_error.empty()) return 4;
  const bool all_correct =
      std::all_of(report.rows.begin(), report.rows.end(), [](const Row& r) { return r.correct; });
  return all_correct && report.skipped.empty() && written ? 0 : 3;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  bench::Options opt;
  try {
    opt = bench::parse_options(argc, argv);
  } catch (const bench::Error& e) {
    std::fprintf(stderr, "moegemm-bench: %s\n", e.what());
    return 2;
  }
  if (opt.help) {
    bench::print_usage(stdout);
    return 0;
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "moegemm-bench: no CUDA GPU found; it needs an NVIDIA H100/H200 (SM90)\n");
    return 1;
  }
  try {
    return bench::run(opt);
  } catch (const bench::Error& e) {
    std::fprintf(stderr, "moegemm-bench: fatal: %s\n", e.what());
    return 4;
  }
}
