#include "options.h"
#include "peers.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>

namespace bench {
namespace {

std::vector<std::string> split_list(const std::string& s, char sep = ',') {
  std::vector<std::string> items;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) items.push_back(item);
  return items;
}

int64_t parse_int(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    throw Error(flag + ": \"" + text + "\" is not an integer in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  return v;
}

std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& text, int64_t lo,
                                    int64_t hi) {
  std::vector<int64_t> values;
  for (const std::string& item : split_list(text)) values.push_back(parse_int(flag, item, lo, hi));
  if (values.empty()) throw Error(flag + ": empty list");
  return values;
}

double parse_double(const std::string& flag, const std::string& text, double lo) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !(v >= lo) || !std::isfinite(v)) {
    char bound[32];
    std::snprintf(bound, sizeof bound, "%g", lo);
    throw Error(flag + ": \"" + text + "\" is not a number >= " + bound);
  }
  return v;
}

constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxTokens = int64_t{1} << 30;

// "k1,k2,..." or "balanced" | "dirichlet:ALPHA" | "zipf:S", then optionally ",empty=N".
SplitSpec parse_split_spec(const std::string& flag, const std::string& text) {
  const std::vector<std::string> items = split_list(text);
  if (items.empty()) throw Error(flag + ": empty");
  SplitSpec spec;
  const std::string& head = items[0];
  const size_t colon = head.find(':');
  const std::string name = head.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : head.substr(colon + 1);
  if (name == "balanced" && colon == std::string::npos) {
    spec.kind = SplitSpec::Kind::kBalanced;
  } else if (name == "dirichlet" && colon != std::string::npos) {
    spec.kind = SplitSpec::Kind::kDirichlet;
    spec.param = parse_double(flag + " dirichlet:ALPHA", arg, 1e-3);
  } else if (name == "zipf" && colon != std::string::npos) {
    spec.kind = SplitSpec::Kind::kZipf;
    spec.param = parse_double(flag + " zipf:S", arg, 0);
  } else {
    spec.kind = SplitSpec::Kind::kExplicit;
    for (const std::string& item : items) {
      if (item.rfind("empty=", 0) == 0)
        throw Error(flag + ": empty=N goes with a distribution; write the zeros into an explicit list");
      if (item.find_first_not_of("0123456789") != std::string::npos)
        throw Error(flag + ": \"" + item +
                    "\" (split sizes k1,k2,..., or balanced | dirichlet:ALPHA | zipf:S [,empty=N])");
      spec.sizes.push_back(parse_int(flag, item, 0, kMaxTokens));
    }
    return spec;
  }
  for (size_t i = 1; i < items.size(); ++i) {
    if (items[i].rfind("empty=", 0) != 0 || i > 1)
      throw Error(flag + ": after the distribution only \",empty=N\" may follow, got \"" + items[i] + "\"");
    spec.empty = parse_int(flag + " empty=N", items[i].substr(6), 0, MOEGEMM_MAX_HOST_GROUPS);
  }
  return spec;
}

// Completes --num-experts & co. into one shape, or throws.
void check_expert_shape(ExpertShape& e, bool tokens_given) {
  if (e.num_experts == 0 || e.hidden_dim == 0 || e.expert_dim == 0)
    throw Error(
        "--num-experts, --hidden-dim and --expert-dim define a shape together (with --tokens, "
        "--ep-size, --jagged-splits)");
  if (e.ep_size > e.num_experts || e.num_experts % e.ep_size != 0)
    throw Error("--num-experts " + std::to_string(e.num_experts) + " is not divisible by --ep-size " +
                std::to_string(e.ep_size));
  const int g = e.groups();
  if (g > MOEGEMM_MAX_HOST_GROUPS)
    throw Error("--num-experts / --ep-size = " + std::to_string(g) + " groups; at most " +
                std::to_string(MOEGEMM_MAX_HOST_GROUPS));
  SplitSpec& s = e.splits;
  if (s.kind == SplitSpec::Kind::kExplicit) {
    if (s.sizes.size() != static_cast<size_t>(g))
      throw Error("--jagged-splits: " + std::to_string(s.sizes.size()) + " sizes for " + std::to_string(g) +
                  " groups (--num-experts / --ep-size)");
    const int64_t sum = std::accumulate(s.sizes.begin(), s.sizes.end(), int64_t{0});
    if (tokens_given && sum != e.tokens)
      throw Error("--jagged-splits sum to " + std::to_string(sum) + ", not --tokens " +
                  std::to_string(e.tokens));
    e.tokens = sum;
    return;
  }
  if (!tokens_given) throw Error("--tokens T is needed unless --jagged-splits lists the sizes");
  if (s.empty >= g)
    throw Error("--jagged-splits: empty=" + std::to_string(s.empty) + " leaves no expert for the tokens (" +
                std::to_string(g) + " groups)");
}

}  // namespace

bool Options::wants_peer(const std::string& name) const {
  return std::find(peers.begin(), peers.end(), name) != peers.end();
}

bool Options::wants_pass(Pass pass) const {
  return std::find(passes.begin(), passes.end(), pass) != passes.end();
}

std::vector<Pass> Options::fwd_passes() const {
  std::vector<Pass> out;
  for (Pass p : {Pass::kFprop, Pass::kDgrad})
    if (!passes_given || wants_pass(p)) out.push_back(p);
  return out;
}

void print_usage(FILE* f) {
  std::fprintf(f, R"(usage: moegemm-bench [options]

Times moegemm_wgrad (variable-K weight gradient, D_i[m,n] (+)= dY_i^T X_i) against
cuBLAS on this GPU, after checking that all agree; and moegemm_ragged_m against the
same cuBLAS peers for the fprop and dgrad GEMMs of the same expert layer.

Shapes (default: --set seed,large)
  --set LIST          seed | large | anchors | fwd | all (= seed,large,anchors), comma-separated
                      seed     wgrad grid: g 4,8,16,32; m 512, n 2048; avg tokens/group 64..4096
                      large    wgrad: (g,m,n) (32,2048,7168) (16,1536,2048) (8,4096,7168); 256,1024,4096
                      fwd      issue 3's fprop/dgrad grid: g 8,16,32; m (expert dim F) 512,2048;
                               n (hidden dim H) 2048,7168; avg tokens/group 64,128,...,4096;
                               Dirichlet(1) splits; passes fprop and dgrad (or those --pass
                               names); the summary gives moegemm's speed-up over cublas_ms4
                               per shape and its geomean against the issue's bar
                               (>= 1.0x on every shape, geomean >= 1.3x)
  --anchors FILE      reference timings with exact splits (default: shared/anchors/wgrad-h100.jsonl
                      next to the repository, if found); giving FILE adds the anchors set
  --shape g,m,n,avgk  custom shape with ragged random splits (repeatable)
  --splits k1,k2,...  custom split sizes, with --m M --n N
  --quick             a small subset of the selected sets (smoke test)
  --seed N            seed of the random splits and data (default 20261125)

An expert-parallel MoE layer (one custom shape: g = E / P groups, m = F, n = H)
  --num-experts E     experts of the layer
  --ep-size P         expert-parallel ranks (default 1); E must be a multiple of P
  --hidden-dim H      model dimension (n)
  --expert-dim F      expert FFN dimension (m)
  --tokens T          tokens on this rank after top-k routing (sum of the splits)
  --jagged-splits S   k1,k2,...  the g split sizes (T optional; they must sum to it)
                      | balanced | dirichlet:ALPHA | zipf:S   a distribution of the T tokens
                      (default dirichlet:1, the generator of --shape), optionally followed by
                      ,empty=N   N experts get no tokens; generated sizes sum exactly to T and
                      no non-empty group is a multiple of 8 tokens

Problem
  --pass P            fprop | dgrad | wgrad | all (default wgrad; the fwd set: fprop and dgrad).
                      fprop: Y_i = X_i W_i^T ([k_i,H] x [F,H]^T), dgrad: dX_i = dY_i W_i
                      ([k_i,F] x [F,H]), both BF16 in and out, FP32 compute; moegemm runs them
                      through moegemm_ragged_m (W [g, F, H] contiguous; op_b T for fprop, N for
                      dgrad), and the table's "path" column says which path served the call
                      (uniform_k: the SM90 kernel, cublas: its cuBLAS fallback)
  --out-dtype T       fp32 | bf16 | both (default fp32; wgrad only: anchors keep their own,
                      fprop and dgrad write bf16)
  --accumulate        D += ... instead of D = ...
  --out-list          wgrad: moegemm writes D through a device array of g pointers (one per
                      expert, as with one parameter tensor per expert) instead of one [g, m, n]
  --config C          auto | all | a comma list of configuration names (default auto);
                      names: see moegemm_wgrad_config_name(), e.g. pingpong_128x128x64_c2x1.
                      wgrad only: fprop/dgrad run in the auto peers (n/a without auto)

Peers (--peers LIST, comma-separated; default all that can run on this GPU)
  cublas_ms4          one cublasGemmEx per group, round-robin on 4 streams (the reference)
  cublas_loop         the same GEMMs one after the other on one stream
  cublas_grouped      one cublasGemmGroupedBatchedEx call (n/a for BF16 in / FP32 out,
                      which it refuses)
  moegemm             moegemm_wgrad (wgrad) or moegemm_ragged_m (fprop, dgrad), split sizes
                      on the host and on the device (SM90 only). With device split sizes
                      on the cuBLAS path moegemm_ragged_m synchronises: eager timings only
  The first selected peer that can run a problem is checked against the host, the
  others against it.

Method
  --repeat N          timed calls per measurement, median and min/max (default 40, min %d)
  --warmup N          untimed calls first (default 5, min %d)
  --rounds N          the calls of each measurement in N rounds, every peer timed once a
                      round and the peers' order rotated each round, so that a drift of the
                      GPU's clock over a problem, and which peer ran just before, weigh on
                      all peers alike (default 20: two calls a round at the default --repeat;
                      with 4 rounds, runs of 10 calls, the power-bound large shapes measured
                      up to 10%% apart by their place in the round)
  --graph             also time CUDA-graph replays (GPU time without host launch cost)

Output (the text table always goes to stdout, one progress line per problem to stderr)
  --json FILE         all rows, ceilings, device and date (bench/plot.py, bench/torch_peer.py
                      and bench/merge_peers.py read it)
  --csv FILE          the table as CSV
  --markdown FILE     the table as Markdown (for docs/gpu-results.md)
  --help

Exit status: 0 all correct, 1 no usable GPU, 2 bad arguments, 3 a result or call failed,
4 a fatal CUDA error.
)",
               kMinRepeat, kMinWarmup);
}

Options parse_options(int argc, char** argv) {
  Options o;
  o.peers = peer_names();
  bool set_given = false, repeat_given = false, tokens_given = false;
  ExpertShape& e = o.expert_shape;
  // --num-experts & co.: each sets its field and marks the shape as given.
  auto expert_int = [&](int64_t* field, int64_t lo, int64_t hi) {
    return [&, field, lo, hi](const std::string& flag, const std::string& v) {
      *field = parse_int(flag, v, lo, hi);
      e.given = true;
    };
  };

  using Handler = std::function<void(const std::string& flag, const std::string& value)>;
  const std::map<std::string, Handler> with_value = {
      {"--set",
       [&](const std::string& flag, const std::string& v) {
         set_given = true;
         for (const std::string& s : split_list(v)) {
           if (s == "seed")
             o.seed_set = true;
           else if (s == "large")
             o.large_set = true;
           else if (s == "anchors")
             o.anchors_set = true;
           else if (s == "fwd")
             o.fwd_set = true;
           else if (s == "all")
             o.seed_set = o.large_set = o.anchors_set = true;
           else
             throw Error(flag + ": unknown set \"" + s + "\" (seed, large, anchors, fwd, all)");
         }
       }},
      {"--anchors", [&](const std::string&, const std::string& v) { o.anchors_path = v; }},
      {"--shape",
       [&](const std::string& flag, const std::string& v) {
         const std::vector<int64_t> f = parse_int_list(flag, v, 1, kMaxTokens);
         if (f.size() != 4) throw Error(flag + ": expected g,m,n,avgk, got \"" + v + "\"");
         if (f[0] > MOEGEMM_MAX_HOST_GROUPS || f[1] > kMaxDim || f[2] > kMaxDim)
           throw Error(flag + ": g <= " + std::to_string(MOEGEMM_MAX_HOST_GROUPS) +
                       ", m, n <= " + std::to_string(kMaxDim));
         o.shapes.push_back(CustomShape{static_cast<int>(f[0]), f[1], f[2], f[3]});
       }},
      {"--splits",
       [&](const std::string& flag, const std::string& v) {
         o.splits = parse_int_list(flag, v, 0, kMaxTokens);
         if (o.splits.size() > MOEGEMM_MAX_HOST_GROUPS)
           throw Error(flag + ": at most " + std::to_string(MOEGEMM_MAX_HOST_GROUPS) + " groups");
       }},
      {"--num-experts", expert_int(&e.num_experts, 1, kMaxTokens)},
      {"--ep-size", expert_int(&e.ep_size, 1, kMaxTokens)},
      {"--hidden-dim", expert_int(&e.hidden_dim, 1, kMaxDim)},
      {"--expert-dim", expert_int(&e.expert_dim, 1, kMaxDim)},
      {"--tokens",
       [&](const std::string& flag, const std::string& v) {
         expert_int(&e.tokens, 1, kMaxTokens)(flag, v);
         tokens_given = true;
       }},
      {"--jagged-splits",
       [&](const std::string& flag, const std::string& v) {
         e.splits = parse_split_spec(flag, v);
         e.given = true;
       }},
      {"--m", [&](const std::string& flag, const std::string& v) { o.m = parse_int(flag, v, 1, kMaxDim); }},
      {"--n", [&](const std::string& flag, const std::string& v) { o.n = parse_int(flag, v, 1, kMaxDim); }},
      {"--pass",
       [&](const std::string& flag, const std::string& v) {
         o.passes_given = true;
         if (v == "all") {
           o.passes = {Pass::kFprop, Pass::kDgrad, Pass::kWgrad};
           return;
         }
         for (Pass p : {Pass::kFprop, Pass::kDgrad, Pass::kWgrad})
           if (v == pass_name(p)) {
             o.passes = {p};
             return;
           }
         throw Error(flag + ": \"" + v + "\" (fprop, dgrad, wgrad, all)");
       }},
      {"--peers",
       [&](const std::string& flag, const std::string& v) {
         const std::vector<std::string> wanted = split_list(v);
         const std::vector<std::string>& known = peer_names();
         for (const std::string& name : wanted)
           if (std::find(known.begin(), known.end(), name) == known.end())
             throw Error(flag + ": unknown peer \"" + name +
                         "\" (cublas_ms4, cublas_loop, cublas_grouped, moegemm)");
         o.peers.clear();  // in the canonical order
         for (const std::string& name : known)
           if (std::find(wanted.begin(), wanted.end(), name) != wanted.end()) o.peers.push_back(name);
         if (o.peers.empty()) throw Error(flag + ": empty list");
       }},
      {"--out-dtype",
       [&](const std::string& flag, const std::string& v) {
         if (v == "fp32")
           o.out_dtypes = {OutDtype::kFp32};
         else if (v == "bf16")
           o.out_dtypes = {OutDtype::kBf16};
         else if (v == "both")
           o.out_dtypes = {OutDtype::kFp32, OutDtype::kBf16};
         else
           throw Error(flag + ": \"" + v + "\" (fp32, bf16, both)");
       }},
      {"--config",
       [&](const std::string& flag, const std::string& v) {
         o.configs.clear();
         auto add = [&](moegemm_wgrad_config_t c) {
           for (auto have : o.configs)
             if (have == c) return;
           o.configs.push_back(c);
         };
         for (const std::string& s : split_list(v)) {
           if (s == "all") {
             for (int c = 0; c < MOEGEMM_WGRAD_CONFIG_COUNT_; ++c) add(static_cast<moegemm_wgrad_config_t>(c));
             continue;
           }
           const moegemm_wgrad_config_t c = parse_config_name(s);
           if (c == MOEGEMM_WGRAD_CONFIG_COUNT_)
             throw Error(flag + ": \"" + s + "\" (auto, all, or a name from moegemm_wgrad_config_name: " +
                         config_name_list() + ")");
           add(c);
         }
         if (o.configs.empty()) throw Error(flag + ": empty list");
       }},
      {"--repeat",
       [&](const std::string& flag, const std::string& v) {
         o.repeat = static_cast<int>(parse_int(flag, v, kMinRepeat, 100000));
         repeat_given = true;
       }},
      {"--warmup",
       [&](const std::string& flag, const std::string& v) {
         o.warmup = static_cast<int>(parse_int(flag, v, kMinWarmup, 100000));
       }},
      {"--rounds",
       [&](const std::string& flag, const std::string& v) {
         o.rounds = static_cast<int>(parse_int(flag, v, 1, 1000));
       }},
      {"--seed",
       [&](const std::string& flag, const std::string& v) {
         o.seed = static_cast<uint64_t>(parse_int(flag, v, 0, INT64_MAX));
       }},
      {"--json", [&](const std::string&, const std::string& v) { o.json_path = v; }},
      {"--csv", [&](const std::string&, const std::string& v) { o.csv_path = v; }},
      {"--markdown", [&](const std::string&, const std::string& v) { o.markdown_path = v; }},
  };
  const std::map<std::string, bool*> switches = {{"--accumulate", &o.accumulate},
                                                 {"--out-list", &o.out_list},
                                                 {"--graph", &o.graph},
                                                 {"--quick", &o.quick},
                                                 {"--help", &o.help},
                                                 {"-h", &o.help}};

  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], value;
    bool has_value = false;
    if (const size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (auto s = switches.find(flag); s != switches.end()) {
      if (has_value) throw Error(flag + ": takes no value");
      *s->second = true;
      continue;
    }
    auto h = with_value.find(flag);
    if (h == with_value.end()) throw Error("unknown option \"" + flag + "\" (see --help)");
    if (!has_value) {
      if (i + 1 >= argc) throw Error(flag + ": needs a value");
      value = argv[++i];
    }
    h->second(flag, value);
  }

  if (!o.splits.empty() && (o.m == 0 || o.n == 0)) throw Error("--splits needs --m and --n");
  if (o.splits.empty() && (o.m != 0 || o.n != 0)) throw Error("--m/--n go with --splits");
  if (e.given) check_expert_shape(e, tokens_given);
  const bool custom = !o.shapes.empty() || !o.splits.empty() || e.given;
  if (!set_given && !custom) o.seed_set = o.large_set = true;  // the default
  if (!o.anchors_path.empty()) o.anchors_set = true;           // an explicit file adds its set
  if (o.fwd_set && o.fwd_passes().empty())
    throw Error("--set fwd runs fprop and dgrad; --pass " + std::string(pass_name(o.passes.front())) +
                " leaves it empty");
  const bool wgrad_problems = o.wants_pass(Pass::kWgrad) && (o.seed_set || o.large_set || o.anchors_set || custom);
  if (o.out_list && !wgrad_problems) throw Error("--out-list applies to wgrad problems, and this run has none");
  if (o.quick && !repeat_given) o.repeat = kMinRepeat;
  return o;
}

}  // namespace bench
