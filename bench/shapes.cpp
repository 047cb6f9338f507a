#include "shapes.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "random.h"

namespace bench {
namespace {

struct GridShape {
  int g;
  int64_t m, n;
};

const std::vector<int> kSeedGroups = {4, 8, 16, 32};
const std::vector<int64_t> kSeedAvgK = {64, 128, 256, 512, 1024, 2048, 4096};
constexpr int64_t kSeedM = 512, kSeedN = 2048;
const std::vector<GridShape> kLargeShapes = {{32, 2048, 7168}, {16, 1536, 2048}, {8, 4096, 7168}};
const std::vector<int64_t> kLargeAvgK = {256, 1024, 4096};

// Issue 3's fprop/dgrad grid: every g, (m = F, n = H) and tokens per expert.
// 3 x 4 x 7 = 84 shapes, 168 problems with both passes.
const std::vector<int> kFwdGroups = {8, 16, 32};
const std::vector<std::pair<int64_t, int64_t>> kFwdDims = {{512, 2048}, {2048, 2048}, {512, 7168}, {2048, 7168}};
const std::vector<int64_t> kFwdAvgK = {64, 128, 256, 512, 1024, 2048, 4096};

// --quick: corners of the same grids.
const std::vector<int> kQuickSeedGroups = {4, 32};
const std::vector<int64_t> kQuickSeedAvgK = {128, 2048};
const std::vector<GridShape> kQuickLargeShapes = {{16, 1536, 2048}};
const std::vector<int64_t> kQuickLargeAvgK = {1024};
constexpr size_t kQuickAnchorRows = 6;
const std::vector<int> kQuickFwdGroups = {8, 32};
const std::vector<std::pair<int64_t, int64_t>> kQuickFwdDims = {{512, 2048}, {2048, 7168}};
const std::vector<int64_t> kQuickFwdAvgK = {128, 2048};
constexpr double kTwoPi = 6.283185307179586;

uint64_t shape_seed(uint64_t seed, int g, int64_t m, int64_t n, int64_t avg_k) {
  uint64_t h = seed;
  for (uint64_t v : {static_cast<uint64_t>(g), static_cast<uint64_t>(m), static_cast<uint64_t>(n),
                     static_cast<uint64_t>(avg_k)})
    h = mix64(h ^ v);
  return h;
}

// Moves single tokens between consecutive non-empty groups until none holds
// a multiple of 8 tokens; keeps the total and the empty groups.
void unalign(std::vector<int64_t>& k) {
  std::vector<size_t> busy;  // the non-empty groups
  for (size_t i = 0; i < k.size(); ++i)
    if (k[i] > 0) busy.push_back(i);
  if (busy.size() < 2) return;
  for (size_t j = 0; j + 1 < busy.size(); ++j) {
    if (k[busy[j]] % 8 == 0) {  // k-1 is 7 mod 8; the next group is fixed in turn
      --k[busy[j]];
      ++k[busy[j + 1]];
    }
  }
  int64_t& last = k[busy.back()];
  int64_t& first = k[busy.front()];
  if (last % 8 == 0) {
    // Either direction leaves `last` at 7 or 1 mod 8; pick the one that keeps `first` unaligned.
    if (first % 8 != 7) {
      --last;
      ++first;
    } else {
      ++last;
      --first;
    }
  }
}

// Uniform in (0, 1): draw `j` for group `i`. Draw 0 is the one the Dirichlet(1)
// generator has always used, so its splits stay as they were.
double unit_draw(uint64_t seed, uint64_t i, uint64_t j = 0) {
  const uint64_t h = mix64(seed ^ mix64(i) ^ (j == 0 ? 0 : mix64(~j)));
  return (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
}

// A Gamma(alpha, 1) draw for group i (Marsaglia and Tsang; alpha < 1 through
// Gamma(alpha + 1) * U^(1/alpha)). Gamma(1) is Exp(1) from draw 0.
double gamma_draw(double alpha, uint64_t seed, uint64_t i) {
  if (alpha == 1.0) return -std::log(unit_draw(seed, i));
  const double boost = alpha < 1.0 ? std::pow(unit_draw(seed, i), 1.0 / alpha) : 1.0;
  const double d = (alpha < 1.0 ? alpha + 1.0 : alpha) - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (uint64_t j = 1;; j += 3) {
    const double normal =
        std::sqrt(-2.0 * std::log(unit_draw(seed, i, j))) * std::cos(kTwoPi * unit_draw(seed, i, j + 1));
    const double v = std::pow(1.0 + c * normal, 3);
    if (v <= 0) continue;
    if (std::log(unit_draw(seed, i, j + 2)) < 0.5 * normal * normal + d - d * v + d * std::log(v))
      return d * v * boost;
  }
}

// 0, 1, ..., g-1 in a seeded random order.
std::vector<int> shuffled(int g, uint64_t seed) {
  std::vector<int> order(static_cast<size_t>(g));
  std::iota(order.begin(), order.end(), 0);
  for (int i = g - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[mix64(seed ^ mix64(i)) % static_cast<uint64_t>(i + 1)]);
  return order;
}

// Split sizes proportional to `w` summing to `total`: floors, then the
// remaining tokens to the largest remainders (ties: lower index).
std::vector<int64_t> split_by_weights(const std::vector<double>& w, int64_t total) {
  const size_t g = w.size();
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<int64_t> k(g);
  std::vector<std::pair<double, size_t>> remainder(g);
  int64_t assigned = 0;
  for (size_t i = 0; i < g; ++i) {
    const double exact = static_cast<double>(total) * w[i] / sum;
    k[i] = static_cast<int64_t>(std::floor(exact));
    remainder[i] = {exact - static_cast<double>(k[i]), i};
    assigned += k[i];
  }
  std::sort(remainder.begin(), remainder.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (int64_t r = 0; r < total - assigned; ++r) ++k[remainder[static_cast<size_t>(r) % g].second];
  return k;
}

// One problem per pass of `passes` and output type (fprop and dgrad: BF16 only).
void add_problem(std::vector<ShapeSpec>& out, const Options& opt, const std::vector<Pass>& passes,
                 const std::string& set, int g, int64_t m, int64_t n, const std::vector<int64_t>& splits) {
  for (Pass pass : passes) {
    const std::vector<OutDtype> dtypes =
        pass == Pass::kWgrad ? opt.out_dtypes : std::vector<OutDtype>{OutDtype::kBf16};
    for (OutDtype dtype : dtypes) {
      ShapeSpec s;
      s.set = set;
      s.pass = pass;
      s.g = g;
      s.m = m;
      s.n = n;
      s.splits = splits;
      s.out = dtype;
      s.accumulate = opt.accumulate;
      s.out_list = opt.out_list;
      out.push_back(std::move(s));
    }
  }
}

void add_grid(std::vector<ShapeSpec>& out, const Options& opt, const std::string& set,
              const std::vector<GridShape>& shapes, const std::vector<int64_t>& avg_ks) {
  for (const GridShape& s : shapes)
    for (int64_t avg_k : avg_ks)
      add_problem(out, opt, opt.passes, set, s.g, s.m, s.n,
                  ragged_splits(s.g, s.g * avg_k, shape_seed(opt.seed, s.g, s.m, s.n, avg_k)));
}

// The fwd set, with the same splits as the other grids for the same (g, m, n, avg K).
void add_fwd_grid(std::vector<ShapeSpec>& out, const Options& opt) {
  const std::vector<Pass> passes = opt.fwd_passes();
  for (int g : opt.quick ? kQuickFwdGroups : kFwdGroups)
    for (const auto& [m, n] : opt.quick ? kQuickFwdDims : kFwdDims)
      for (int64_t avg_k : opt.quick ? kQuickFwdAvgK : kFwdAvgK)
        add_problem(out, opt, passes, "fwd", g, m, n,
                    ragged_splits(g, g * avg_k, shape_seed(opt.seed, g, m, n, avg_k)));
}

}  // namespace

int64_t ShapeSpec::total_tokens() const { return std::accumulate(splits.begin(), splits.end(), int64_t{0}); }

int64_t ShapeSpec::x_elems() const { return pass == Pass::kDgrad ? 0 : total_tokens() * n; }
int64_t ShapeSpec::dy_elems() const { return pass == Pass::kFprop ? 0 : total_tokens() * m; }
int64_t ShapeSpec::w_elems() const { return pass == Pass::kWgrad ? 0 : g * m * n; }
int64_t ShapeSpec::out_elems() const {
  switch (pass) {
    case Pass::kFprop:
      return total_tokens() * m;
    case Pass::kDgrad:
      return total_tokens() * n;
    default:
      return g * m * n;
  }
}

std::vector<int64_t> generate_splits(const SplitSpec& spec, int g, int64_t total, uint64_t seed) {
  if (spec.kind == SplitSpec::Kind::kExplicit) return spec.sizes;
  // A seeded order of the experts: the first `empty` get no tokens, the
  // others follow in Zipf rank order (rank 1 the most tokens).
  const std::vector<int> order = shuffled(g, mix64(seed ^ 0x5EED0DE5ull));
  const auto busy = order.begin() + spec.empty;
  std::vector<double> w(static_cast<size_t>(g), 0.0);
  for (auto it = busy; it != order.end(); ++it) {
    double& weight = w[static_cast<size_t>(*it)];
    switch (spec.kind) {
      case SplitSpec::Kind::kBalanced:
        weight = 1.0;
        break;
      case SplitSpec::Kind::kZipf:
        weight = std::pow(static_cast<double>(it - busy + 1), -spec.param);
        break;
      default:
        weight = gamma_draw(spec.param, seed, static_cast<uint64_t>(*it));
    }
  }
  if (!(std::accumulate(w.begin(), w.end(), 0.0) > 0))  // every Gamma draw underflowed: tiny alpha
    for (auto it = busy; it != order.end(); ++it) w[static_cast<size_t>(*it)] = 1.0;
  std::vector<int64_t> k = split_by_weights(w, total);
  unalign(k);
  return k;
}

std::vector<int64_t> ragged_splits(int g, int64_t total, uint64_t seed) {
  return generate_splits(SplitSpec{}, g, total, seed);
}

std::vector<ShapeSpec> build_shapes(const Options& opt, const Anchors* anchors) {
  std::vector<ShapeSpec> out;
  if (opt.seed_set) {
    std::vector<GridShape> seed_shapes;
    for (int g : opt.quick ? kQuickSeedGroups : kSeedGroups) seed_shapes.push_back({g, kSeedM, kSeedN});
    add_grid(out, opt, "seed", seed_shapes, opt.quick ? kQuickSeedAvgK : kSeedAvgK);
  }
  if (opt.large_set)
    add_grid(out, opt, "large", opt.quick ? kQuickLargeShapes : kLargeShapes,
             opt.quick ? kQuickLargeAvgK : kLargeAvgK);
  if (opt.fwd_set) add_fwd_grid(out, opt);
  for (const CustomShape& c : opt.shapes)
    add_problem(out, opt, opt.passes, "custom", c.g, c.m, c.n,
                ragged_splits(c.g, c.g * c.avg_k, shape_seed(opt.seed, c.g, c.m, c.n, c.avg_k)));
  if (!opt.splits.empty())
    add_problem(out, opt, opt.passes, "custom", static_cast<int>(opt.splits.size()), opt.m, opt.n,
                opt.splits);
  if (const ExpertShape& e = opt.expert_shape; e.given) {
    const int g = e.groups();
    add_problem(out, opt, opt.passes, "custom", g, e.expert_dim, e.hidden_dim,
                generate_splits(e.splits, g, e.tokens,
                                shape_seed(opt.seed, g, e.expert_dim, e.hidden_dim, e.tokens)));
  }
  // The anchors are wgrad problems with their own output types.
  if (anchors != nullptr && opt.wants_pass(Pass::kWgrad)) {
    const size_t rows = anchors->rows.size();
    const size_t take = opt.quick ? std::min(rows, kQuickAnchorRows) : rows;
    for (size_t j = 0; j < take; ++j) {
      const AnchorRow& a = anchors->rows[j * rows / take];  // evenly spread when --quick
      ShapeSpec s;
      s.set = "anchors:" + a.set;
      s.g = a.g;
      s.m = a.m;
      s.n = a.n;
      s.splits = a.splits;
      s.out = a.out;
      s.accumulate = opt.accumulate;
      s.out_list = opt.out_list;
      s.anchor = &a;
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace bench
