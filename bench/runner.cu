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

// One peer's timing state across the rounds.
struct PeerTiming {
  std::vector<Graph> graphs;  // one per operand set; empty: no graph timing
  std::vector<double> eager_us, graph_us;
  int eager_calls = 0, graph_calls = 0;  // calls so far, for rotating operand sets
};

// Times the runnable peers in ctx.rounds interleaved rounds: each round times
// every peer's share of the ctx.repeat eager calls and graph replays, so that
// a drift of the GPU's clock or temperature over a problem (seconds on the
// large shapes) weighs on every peer alike instead of on whichever ran last.
// Round r starts at peer r % peers: on the power-bound large shapes a peer's
// times depend on which peer ran just before it (docs/perf-notes.md U17), so
// no peer always follows the same one. A peer warms up with ctx.warmup calls
// in its first round and one call in each later one (the other peers ran in
// between).
void time_peers(const std::vector<Peer*>& peers, std::vector<PeerResult>& results, const Workload& w,
                const RunContext& ctx) {
  const int sets = w.timing_sets();
  const int rounds = std::max(1, std::min(ctx.rounds, ctx.repeat));
  Timer timer(ctx.stream, ctx.warmup, ctx.repeat);
  std::vector<PeerTiming> t(peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    PeerResult& r = results[i];
    if (!runnable(r) || !ctx.graph || !r.graph_na.empty()) continue;
    guarded(&r.graph_error, [&] {
      for (int s = 0; s < sets; ++s) t[i].graphs.push_back(capture_graph(ctx.stream, [&] { peers[i]->run(s); }));
    });
    if (!r.graph_error.empty()) t[i].graphs.clear();
  }
  for (int round = 0; round < rounds; ++round) {
    // This round's calls: [repeat * round / rounds, repeat * (round + 1) / rounds).
    const int count = ctx.repeat * (round + 1) / rounds - ctx.repeat * round / rounds;
    for (size_t j = 0; j < peers.size(); ++j) {
      const size_t i = (j + static_cast<size_t>(round)) % peers.size();
      PeerResult& r = results[i];
      PeerTiming& p = t[i];
      if (!runnable(r)) continue;
      guarded(&r.error, [&] {
        const int warmup = round == 0 ? ctx.warmup : 1;
        const std::vector<double> us =
            timer.eager_samples([&](int call) { peers[i]->run(call % sets); }, warmup, count, p.eager_calls);
        p.eager_calls += warmup + count;
        p.eager_us.insert(p.eager_us.end(), us.begin(), us.end());
      });
      if (!r.error.empty() || p.graphs.empty()) continue;
      guarded(&r.graph_error, [&] {
        const int warmup = round == 0 ? std::max<int>(ctx.warmup, static_cast<int>(p.graphs.size())) : 1;
        const std::vector<double> us = timer.replay_samples(p.graphs, warmup, count, p.graph_calls);
        p.graph_calls += warmup + count;
        p.graph_us.insert(p.graph_us.end(), us.begin(), us.end());
      });
      if (!r.graph_error.empty()) p.graphs.clear();
    }
  }
  for (size_t i = 0; i < peers.size(); ++i) {
    if (!runnable(results[i])) continue;
    results[i].eager = summarize(t[i].eager_us);
    if (results[i].graph_error.empty()) results[i].graph = summarize(t[i].graph_us);
  }
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

  time_peers(peers, row.peers, w, ctx);

  row.correct = std::all_of(row.peers.begin(), row.peers.end(), [](const PeerResult& r) {
    return !r.applies() || (r.error.empty() && r.graph_error.empty() && r.check.done && r.check.pass);
  });
  return row;
}

}  // namespace bench
