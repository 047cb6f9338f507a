#include "options.h"
#include "peers.h"

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>
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

constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxTokens = int64_t{1} << 30;

}  // namespace

void print_usage(FILE* f) {
  std::fprintf(f, R"(usage: moegemm-bench [options]

Times moegemm_wgrad (variable-K weight gradient, D_i[m,n] (+)= dY_i^T X_i) against
multi-stream cuBLAS on this GPU, after checking that both agree.

Shapes (default: --set seed,large)
  --set LIST          seed | large | anchors | all (= seed,large,anchors), comma-separated
  --anchors FILE      reference timings with exact splits (default: shared/anchors/wgrad-h100.jsonl
                      next to the repository, if found); giving FILE adds the anchors set
  --shape g,m,n,avgk  custom shape with ragged random splits (repeatable)
  --splits k1,k2,...  custom split sizes, with --m M --n N
  --quick             a small subset of the selected sets (smoke test)
  --seed N            seed of the random splits and data (default 20261125)

Problem
  --out-dtype T       fp32 | bf16 | both (default fp32; anchors keep their own)
  --accumulate        D += ... instead of D = ...
  --config C          auto | all | a comma list of configuration names (default auto);
                      names: see moegemm_wgrad_config_name(), e.g. pingpong_128x128x64_c2x1

Method
  --repeat N          timed calls per measurement, median and min/max (default 40, min %d)
  --warmup N          untimed calls first (default 5, min %d)
  --graph             also time CUDA-graph replays (GPU time without host launch cost)

Output (the text table always goes to stdout, progress to stderr)
  --json FILE         all rows, ceilings and device
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
  bool set_given = false, repeat_given = false;

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
           else if (s == "all")
             o.seed_set = o.large_set = o.anchors_set = true;
           else
             throw Error(flag + ": unknown set \"" + s + "\" (seed, large, anchors, all)");
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
      {"--m", [&](const std::string& flag, const std::string& v) { o.m = parse_int(flag, v, 1, kMaxDim); }},
      {"--n", [&](const std::string& flag, const std::string& v) { o.n = parse_int(flag, v, 1, kMaxDim); }},
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
      {"--seed",
       [&](const std::string& flag, const std::string& v) {
         o.seed = static_cast<uint64_t>(parse_int(flag, v, 0, INT64_MAX));
       }},
      {"--json", [&](const std::string&, const std::string& v) { o.json_path = v; }},
      {"--csv", [&](const std::string&, const std::string& v) { o.csv_path = v; }},
      {"--markdown", [&](const std::string&, const std::string& v) { o.markdown_path = v; }},
  };
  const std::map<std::string, bool*> switches = {{"--accumulate", &o.accumulate},
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
  const bool custom = !o.shapes.empty() || !o.splits.empty();
  if (!set_given && !custom) o.seed_set = o.large_set = true;  // the default
  if (!o.anchors_path.empty()) o.anchors_set = true;           // an explicit file adds its set
  if (o.quick && !repeat_given) o.repeat = kMinRepeat;
  return o;
}

}  // namespace bench
