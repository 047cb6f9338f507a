#include "shapes.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

// --quick: corners of the same grids.
const std::vector<int> kQuickSeedGroups = {4, 32};
const std::vector<int64_t> kQuickSeedAvgK = {128, 2048};
const std::vector<GridShape> kQuickLargeShapes = {{16, 1536, 2048}};
const std::vector<int64_t> kQuickLargeAvgK = {1024};
constexpr size_t kQuickAnchorRows = 6;

uint64_t shape_seed(uint64_t seed, int g, int64_t m, int64_t n, int64_t avg_k) {
  uint64_t h = seed;
  for (uint64_t v : {static_cast<uint64_t>(g), static_cast<uint64_t>(m), static_cast<uint64_t>(n),
                     static_cast<uint64_t>(avg_k)})
    h = mix64(h ^ v);
  return h;
}

// Moves single tokens between groups until no non-empty group holds a
// multiple of 8 tokens; keeps the total.
void unalign(std::vector<int64_t>& k) {
  const size_t g = k.size();
  if (g < 2) return;
  for (size_t i = 0; i + 1 < g; ++i) {
    if (k[i] > 0 && k[i] % 8 == 0) {  // k[i]-1 is 7 mod 8; the next group is fixed in turn
      --k[i];
      ++k[i + 1];
    }
  }
  int64_t& last = k[g - 1];
  if (last > 0 && last % 8 == 0) {
    // Either direction leaves `last` at 7 or 1 mod 8; pick the one that keeps k[0] unaligned.
    if (k[0] % 8 != 7) {
      --last;
      ++k[0];
    } else {
      ++last;
      --k[0];
    }
  }
}

void add_problem(std::vector<ShapeSpec>& out, const Options& opt, const std::string& set, int g, int64_t m,
                 int64_t n, const std::vector<int64_t>& splits) {
  for (OutDtype dtype : opt.out_dtypes) {
    ShapeSpec s;
    s.set = set;
    s.g = g;
    s.m = m;
    s.n = n;
    s.splits = splits;
    s.out = dtype;
    s.accumulate = opt.accumulate;
    out.push_back(std::move(s));
  }
}

void add_grid(std::vector<ShapeSpec>& out, const Options& opt, const std::string& set,
              const std::vector<GridShape>& shapes, const std::vector<int64_t>& avg_ks) {
  for (const GridShape& s : shapes)
    for (int64_t avg_k : avg_ks)
      add_problem(out, opt, set, s.g, s.m, s.n,
                  ragged_splits(s.g, s.g * avg_k, shape_seed(opt.seed, s.g, s.m, s.n, avg_k)));
}

}  // namespace

int64_t ShapeSpec::total_tokens() const { return std::accumulate(splits.begin(), splits.end(), int64_t{0}); }

std::vector<int64_t> ragged_splits(int g, int64_t total, uint64_t seed) {
  std::vector<double> w(g);
  for (int i = 0; i < g; ++i) {
    const double u = (static_cast<double>(mix64(seed ^ mix64(i)) >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
    w[i] = -std::log(u);  // Exp(1): normalised, a Dirichlet(1, ..., 1) draw
  }
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<int64_t> k(g);
  std::vector<std::pair<double, int>> remainder(g);
  int64_t assigned = 0;
  for (int i = 0; i < g; ++i) {
    const double exact = static_cast<double>(total) * w[i] / sum;
    k[i] = static_cast<int64_t>(std::floor(exact));
    remainder[i] = {exact - static_cast<double>(k[i]), i};
    assigned += k[i];
  }
  std::sort(remainder.begin(), remainder.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (int64_t r = 0; r < total - assigned; ++r) ++k[remainder[static_cast<size_t>(r % g)].second];
  unalign(k);
  return k;
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
  for (const CustomShape& c : opt.shapes)
    add_problem(out, opt, "custom", c.g, c.m, c.n,
                ragged_splits(c.g, c.g * c.avg_k, shape_seed(opt.seed, c.g, c.m, c.n, c.avg_k)));
  if (!opt.splits.empty())
    add_problem(out, opt, "custom", static_cast<int>(opt.splits.size()), opt.m, opt.n, opt.splits);
  if (anchors != nullptr) {
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
      s.anchor = &a;
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace bench
