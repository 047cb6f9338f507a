#include <algorithm>
#include <functional>

#include "random.h"
#include "runner.h"
#include "verify.h"

namespace bench {
namespace {

// Runs `fn`; a bench::Error becomes *error, after making sure the context
// still works (a sticky error is fatal).
void guarded(std::string* error, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const FatalError&) {
    throw;
  } catch (const Error& e) {
    *error = e.what();
    cudaGetLastError();
    const cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess)
      throw FatalError(std::string("CUDA context lost after \"") + e.what() +
                       "\": " + cudaGetErrorString(err));
    cudaGetLastError();
  }
}

bool runnable(const PeerResult& r) { return r.applies() && r.error.empty(); }

Row describe(const ShapeSpec& spec, const Ceilings& ceilings) {
  Row row;
  row.spec = spec;
  row.total_tokens = spec.total_tokens();
  row.k_min = spec.splits.empty() ? 0 : *std::min_element(spec.splits.begin(), spec.splits.end());
  row.k_max = spec.splits.empty() ? 0 : *std::max_element(spec.splits.begin(), spec.splits.end());
  row.k_avg = static_cast<double>(row.total_tokens) / spec.g;
  row.empty_groups = static_cast<int>(std::count(spec.splits.begin(), spec.splits.end(), 0));
  const double m = static_cast<double>(spec.m), n = static_cast<double>(spec.n);
  const double T = static_cast<double>(row.total_tokens);
  const double out_bytes = static_cast<double>(spec.out_elems()) * static_cast<double>(dtype_size(spec.out));
  row.flops = 2 * m * n * T;  // every pass
  row.bytes = 2 * static_cast<double>(spec.input_elems()) + out_bytes * (spec.accumulate ? 2 : 1);
  row.bound_us =
      1e6 * std::max(row.flops / (ceilings.gemm_TFLOPs * 1e12), row.bytes / (ceilings.copy_TBps * 1e12));
  return row;
}

void check_correctness(const Workload& w, const std::vector<Peer*>& peers, std::vector<PeerResult>& results,
                       cudaStream_t stream) {
  // Overwriting: the reference and the others start from different garbage,
  // so a group left unwritten shows. Accumulating: from the same values.
  const uint64_t ref_seed = w.seed(Role::kOut, 1000);
  const uint64_t other_seed = w.spec().accumulate ? ref_seed : w.seed(Role::kOut, 1001);
  const int ref_set = w.reference_set();
  size_t ref = 0;
  while (ref < peers.size() && !runnable(results[ref])) ++ref;
  if (ref == peers.size()) return;
  bool have_reference = false;
  guarded(&results[ref].error, [&] {
    w.fill_output(ref_set, ref_seed, stream);
    peers[ref]->run(ref_set);
    BENCH_CUDA(cudaStreamSynchronize(stream));
    results[ref].check = spot_check(w, ref_set, ref_seed, stream);
    have_reference = true;
  });
  for (size_t i = ref + 1; i < peers.size(); ++i) {
    if (!runnable(results[i]) || !have_reference) continue;
    guarded(&results[i].error, [&] {
      w.fill_output(0, other_seed, stream);
      peers[i]->run(0);
      results[i].check =
          compare_outputs(w.operands(0).out, w.operands(ref_set).out, w.out_elems(), w.spec().out, stream);
    });
  }
}

void time_peer(Peer& peer, PeerResult& r, const Workload& w, const RunContext& ctx, Timer& timer) {
  const int sets = w.timing_sets();
  guarded(&r.error, [&] { r.eager = timer.eager([&](int call) { peer.run(call % sets); }); });
  if (!ctx.graph || !r.error.empty() || !r.graph_na.empty()) return;
  guarded(&r.graph_error, [&] {
    std::vector<Graph> graphs;
    for (int s = 0; s < sets; ++s) graphs.push_back(capture_graph(ctx.stream, [&] { peer.run(s); }));
    r.graph = timer.replay(graphs);
  });
}

}  // namespace

Row run_problem(const ShapeSpec& spec, const std::vector<Peer*>& peers, const RunContext& ctx) {
  Row row = describe(spec, ctx.ceilings);
  Workload w(spec, ctx.limits, ctx.seed, ctx.stream);
  row.timing_sets = w.timing_sets();

  row.peers.resize(peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    PeerResult& r = row.peers[i];
    r.info = peers[i]->info();
    r.not_applicable = peers[i]->not_applicable(spec);
    if (!r.applies()) continue;
    guarded(&r.error, [&] {
      peers[i]->prepare(w);
      r.resolved_config = peers[i]->resolved_config();
      r.path = peers[i]->path();
      r.path_reason = peers[i]->path_reason();
      r.graph_na = peers[i]->graph_not_applicable();
    });
  }

  check_correctness(w, peers, row.peers, ctx.stream);

  Timer timer(ctx.stream, ctx.warmup, ctx.repeat);
  for (size_t i = 0; i < peers.size(); ++i)
    if (runnable(row.peers[i])) time_peer(*peers[i], row.peers[i], w, ctx, timer);

  row.correct = std::all_of(row.peers.begin(), row.peers.end(), [](const PeerResult& r) {
    return !r.applies() || (r.error.empty() && r.graph_error.empty() && r.check.done && r.check.pass);
  });
  return row;
}

}  // namespace bench
