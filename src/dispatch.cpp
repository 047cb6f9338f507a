#include "dispatch.h"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "config_select.h"

namespace moegemm::detail {
namespace {

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

std::string str(int64_t v) { return std::to_string(v); }
std::string at(const char* name, int i) { return std::string(name) + "[" + str(i) + "]"; }

Check invalid(const std::string& message) { return Check{MOEGEMM_STATUS_INVALID_ARGUMENT, message}; }
Check misaligned(const std::string& message) { return Check{MOEGEMM_STATUS_MISALIGNED, message}; }

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

const char* dtype_name(moegemm_dtype_t d) {
  switch (d) {
    case MOEGEMM_DTYPE_FP32: return "FP32";
    case MOEGEMM_DTYPE_BF16: return "BF16";
    case MOEGEMM_DTYPE_FP16: return "FP16";
  }
  return "unknown";
}

bool known_dtype(moegemm_dtype_t d) {
  return d == MOEGEMM_DTYPE_FP32 || d == MOEGEMM_DTYPE_BF16 || d == MOEGEMM_DTYPE_FP16;
}
bool known_op(moegemm_op_t op) { return op == MOEGEMM_OP_N || op == MOEGEMM_OP_T; }
bool known_memory(moegemm_memory_t m) { return m == MOEGEMM_MEMORY_HOST || m == MOEGEMM_MEMORY_DEVICE; }

// The dtype rules common to both forms.
Check check_dtypes(moegemm_dtype_t ab, moegemm_dtype_t d) {
  if (!known_dtype(ab)) return invalid("ab_dtype: unknown dtype " + str(ab));
  if (!known_dtype(d)) return invalid("d_dtype: unknown dtype " + str(d));
  if (d != MOEGEMM_DTYPE_FP32 && d != ab)
    return invalid(std::string("d_dtype: must be FP32 or ab_dtype (") + dtype_name(ab) + "), got " + dtype_name(d));
  return Check{};
}

Check check_size(const std::string& name, int64_t v, int64_t min) {
  if (v < min || v > kIntMax)
    return invalid(name + ": must be in [" + str(min) + ", 2^31) (got " + str(v) + ")");
  return Check{};
}

// The rules of the uniform-K kernel that the dtypes and sizes decide.
std::string uniform_k_dtype_rule(moegemm_dtype_t ab, moegemm_dtype_t d) {
  if (ab != MOEGEMM_DTYPE_BF16 && ab != MOEGEMM_DTYPE_FP16)
    return std::string("ab_dtype is ") + dtype_name(ab) + ", the kernel takes BF16 or FP16";
  (void)d;  // FP32 or ab_dtype: already the validation rule
  return "";
}

}  // namespace

size_t dtype_size(moegemm_dtype_t dtype) { return dtype == MOEGEMM_DTYPE_FP32 ? 4 : 2; }

// ---------------------------------------------------------------------------
// List form

Check validate_gemm_list(const moegemm_gemm_list_t* p) {
  if (p == nullptr) return invalid("problem: must not be NULL");
  if (p->num_groups <= 0) return invalid("num_groups: must be >= 1 (got " + str(p->num_groups) + ")");
  if (p->num_groups > MOEGEMM_MAX_HOST_GROUPS)
    return invalid("num_groups: the list form allows at most " + str(MOEGEMM_MAX_HOST_GROUPS) + " groups (got " +
                   str(p->num_groups) + ")");
  if (!known_op(p->op_a)) return invalid("op_a: must be MOEGEMM_OP_N or MOEGEMM_OP_T (got " + str(p->op_a) + ")");
  if (!known_op(p->op_b)) return invalid("op_b: must be MOEGEMM_OP_N or MOEGEMM_OP_T (got " + str(p->op_b) + ")");
  if (Check c = check_dtypes(p->ab_dtype, p->d_dtype); !c.ok()) return c;
  if (p->num_streams < 0 || p->num_streams > 16)
    return invalid("num_streams: must be in [0, 16] (0: default) (got " + str(p->num_streams) + ")");
  if (p->m == nullptr) return invalid("m: must not be NULL");
  if (p->n == nullptr) return invalid("n: must not be NULL");
  if (p->k == nullptr) return invalid("k: must not be NULL");
  if (p->a == nullptr) return invalid("a: must not be NULL");
  if (p->b == nullptr) return invalid("b: must not be NULL");
  if (p->d == nullptr) return invalid("d: must not be NULL");
  const bool epilogue = p->bias != nullptr || p->gelu_input != nullptr;
  if (epilogue && p->accumulate)
    return invalid("accumulate: cannot be combined with bias or gelu_input (the epilogue would apply to the sum)");

  const size_t ab = dtype_size(p->ab_dtype), d = dtype_size(p->d_dtype);
  for (int i = 0; i < p->num_groups; ++i) {
    if (Check c = check_size(at("m", i), p->m[i], 0); !c.ok()) return c;
    if (Check c = check_size(at("n", i), p->n[i], 0); !c.ok()) return c;
    if (Check c = check_size(at("k", i), p->k[i], 0); !c.ok()) return c;
    if (p->m[i] == 0 || p->n[i] == 0) continue;  // nothing to compute or write
    if (p->d[i] == nullptr) return invalid(at("d", i) + ": must not be NULL (group " + str(i) + " is not empty)");
    if (!aligned(p->d[i], d)) return misaligned(at("d", i) + ": must be aligned to its element size");
    if (p->k[i] > 0) {
      if (p->a[i] == nullptr) return invalid(at("a", i) + ": must not be NULL when m, n and k are > 0");
      if (p->b[i] == nullptr) return invalid(at("b", i) + ": must not be NULL when m, n and k are > 0");
      if (!aligned(p->a[i], ab)) return misaligned(at("a", i) + ": must be aligned to its element size");
      if (!aligned(p->b[i], ab)) return misaligned(at("b", i) + ": must be aligned to its element size");
    }
    if (p->bias != nullptr) {
      if (p->bias[i] == nullptr) return invalid(at("bias", i) + ": must not be NULL when bias is given");
      if (!aligned(p->bias[i], 16))
        return misaligned(at("bias", i) + ": must be 16-byte aligned (cuBLASLt's fused bias epilogue)");
    }
    if (p->gelu_input != nullptr) {
      if (p->gelu_input[i] == nullptr)
        return invalid(at("gelu_input", i) + ": must not be NULL when gelu_input is given");
      if (!aligned(p->gelu_input[i], 16))
        return misaligned(at("gelu_input", i) + ": must be 16-byte aligned (cuBLASLt GELU auxiliary output)");
      if (p->n[i] % 8 != 0)
        return misaligned(at("n", i) + ": must be a multiple of 8 with gelu_input (cuBLASLt aligns its rows)");
    }
  }
  return Check{};
}

namespace {

// "" when the list may take the uniform-K kernel, else the first rule it breaks.
std::string uniform_k_rule(const moegemm_gemm_list_t& p) {
  if (std::string r = uniform_k_dtype_rule(p.ab_dtype, p.d_dtype); !r.empty()) return r;
  if (p.op_a != MOEGEMM_OP_N) return "op_a is T, the kernel takes A as [m_i, k] (op_a = N)";
  const int64_t k = p.k[0];
  for (int i = 1; i < p.num_groups; ++i)
    if (p.k[i] != k) return "k differs between groups (k[0] = " + str(k) + ", " + at("k", i) + " = " + str(p.k[i]) + ")";
  if (k == 0) return "k is 0";
  if (k % 8 != 0) return "k = " + str(k) + " is not a multiple of 8 (16-byte rows for TMA)";
  for (int i = 0; i < p.num_groups; ++i) {
    if (p.n[i] % 8 != 0) return at("n", i) + " = " + str(p.n[i]) + " is not a multiple of 8 (16-byte rows for TMA)";
    if (p.m[i] == 0 || p.n[i] == 0) continue;
    if (!aligned(p.a[i], 16)) return at("a", i) + " is not 16-byte aligned";
    if (!aligned(p.b[i], 16)) return at("b", i) + " is not 16-byte aligned";
    if (!aligned(p.d[i], 16)) return at("d", i) + " is not 16-byte aligned";
  }
  return "";
}

// "" when the list is a wgrad whose slices the variable-K kernel can take.
std::string variable_k_rule(const moegemm_gemm_list_t& p) {
  if (p.op_a != MOEGEMM_OP_T || p.op_b != MOEGEMM_OP_N)
    return "not the wgrad layout (op_a = T, op_b = N)";
  if (p.ab_dtype != MOEGEMM_DTYPE_BF16)
    return std::string("ab_dtype is ") + dtype_name(p.ab_dtype) + ", the wgrad kernel takes BF16";
  const int64_t m = p.m[0], n = p.n[0];
  for (int i = 0; i < p.num_groups; ++i) {
    if (p.m[i] != m) return "m differs between groups (m[0] = " + str(m) + ", " + at("m", i) + " = " + str(p.m[i]) + ")";
    if (p.n[i] != n) return "n differs between groups (n[0] = " + str(n) + ", " + at("n", i) + " = " + str(p.n[i]) + ")";
  }
  if (m == 0 || n == 0) return "m or n is 0";
  if (m % 8 != 0) return "m = " + str(m) + " is not a multiple of 8 (16-byte rows for TMA)";
  if (n % 8 != 0) return "n = " + str(n) + " is not a multiple of 8 (16-byte rows for TMA)";
  int64_t total = 0;
  for (int i = 0; i < p.num_groups; ++i) {
    if (p.k[i] > kIntMax - total) return "the k_i sum to 2^31 or more";
    total += p.k[i];
    if (!aligned(p.d[i], 16)) return at("d", i) + " is not 16-byte aligned";
  }
  // A_i and B_i must be consecutive slices of one buffer each. The first
  // non-empty group starts the buffers (every group before it has k = 0).
  const WgradBuffers base = wgrad_buffers_of_list(p);
  if (base.total_tokens == 0) return "";
  int first = 0;
  while (p.k[first] == 0) ++first;
  if (!aligned(base.dy, 16)) return at("a", first) + " (the start of the token buffer of A) is not 16-byte aligned";
  if (!aligned(base.x, 16)) return at("b", first) + " (the start of the token buffer of B) is not 16-byte aligned";
  const size_t e = dtype_size(p.ab_dtype);
  int64_t off = 0;
  for (int i = 0; i < p.num_groups; ++i) {
    if (p.k[i] > 0) {
      if (p.a[i] != static_cast<const char*>(base.dy) + off * m * e)
        return at("a", i) + " is not row " + str(off) + " of the token buffer that " + at("a", first) +
               " starts (A_i must be consecutive slices of one buffer: A_{i+1} = A_i + k_i * m elements)";
      if (p.b[i] != static_cast<const char*>(base.x) + off * n * e)
        return at("b", i) + " is not row " + str(off) + " of the token buffer that " + at("b", first) +
               " starts (B_i must be consecutive slices of one buffer: B_{i+1} = B_i + k_i * n elements)";
    }
    off += p.k[i];
  }
  return "";
}

}  // namespace

WgradBuffers wgrad_buffers_of_list(const moegemm_gemm_list_t& p) {
  const size_t e = dtype_size(p.ab_dtype);
  int64_t off = 0;
  WgradBuffers w{nullptr, nullptr, 0};
  for (int i = 0; i < p.num_groups; ++i) {
    if (p.k[i] > 0 && w.dy == nullptr) {
      // The first non-empty group fixes where row 0 would be.
      w.dy = static_cast<const char*>(p.a[i]) - off * p.m[0] * static_cast<int64_t>(e);
      w.x = static_cast<const char*>(p.b[i]) - off * p.n[0] * static_cast<int64_t>(e);
    }
    off += p.k[i];
  }
  w.total_tokens = off;
  return w;
}

PathChoice choose_list_path(const moegemm_gemm_list_t& p, const DispatchFacts& facts) {
  if (!facts.sm90) return {MOEGEMM_PATH_CUBLAS, "the device is not SM90 (Hopper)"};
  if (!facts.use_cutlass) return {MOEGEMM_PATH_CUBLAS, "MOEGEMM_USE_CUTLASS=0"};
  if (p.bias != nullptr || p.gelu_input != nullptr)
    return {MOEGEMM_PATH_CUBLAS, "bias/GELU epilogue: only the cuBLAS path has it"};
  const std::string uniform = uniform_k_rule(p);
  if (uniform.empty()) return {MOEGEMM_PATH_UNIFORM_K, ""};
  const std::string variable = variable_k_rule(p);
  if (variable.empty()) return {MOEGEMM_PATH_VARIABLE_K, "uniform-K: " + uniform};
  return {MOEGEMM_PATH_CUBLAS, "uniform-K: " + uniform + "; variable-K: " + variable};
}

// ---------------------------------------------------------------------------
// Ragged-M form

Check validate_ragged_m(const moegemm_ragged_m_problem_t* p) {
  if (p == nullptr) return invalid("problem: must not be NULL");
  if (p->num_groups <= 0) return invalid("num_groups: must be >= 1 (got " + str(p->num_groups) + ")");
  if (Check c = check_size("total_rows", p->total_rows, 0); !c.ok()) return c;
  if (Check c = check_size("n", p->n, 1); !c.ok()) return c;
  if (Check c = check_size("k", p->k, 1); !c.ok()) return c;
  if (Check c = check_dtypes(p->ab_dtype, p->d_dtype); !c.ok()) return c;
  if (!known_op(p->op_b)) return invalid("op_b: must be MOEGEMM_OP_N or MOEGEMM_OP_T (got " + str(p->op_b) + ")");
  if (!known_memory(p->group_sizes_location))
    return invalid("group_sizes_location: must be MOEGEMM_MEMORY_HOST or _DEVICE (got " +
                   str(p->group_sizes_location) + ")");
  const size_t ab = dtype_size(p->ab_dtype), d = dtype_size(p->d_dtype);
  if (p->total_rows > 0) {
    if (p->a == nullptr) return invalid("a: must not be NULL when total_rows > 0");
    if (p->d == nullptr) return invalid("d: must not be NULL when total_rows > 0");
    if (!aligned(p->a, ab)) return misaligned("a: must be aligned to its element size");
    if (!aligned(p->d, d)) return misaligned("d: must be aligned to its element size");
  }
  const bool has_b = p->b != nullptr, has_list = p->b_ptrs != nullptr;
  if (has_b == has_list)
    return invalid(std::string("b/b_ptrs: exactly one must be non-NULL (got ") + (has_b ? "both" : "neither") + ")");
  if (has_b && !aligned(p->b, ab)) return misaligned("b: must be aligned to its element size");
  if (has_list) {
    if (!known_memory(p->b_ptrs_location))
      return invalid("b_ptrs_location: must be MOEGEMM_MEMORY_HOST or _DEVICE (got " + str(p->b_ptrs_location) + ")");
    if (p->b_ptrs_location == MOEGEMM_MEMORY_HOST) {
      if (p->num_groups > MOEGEMM_MAX_HOST_GROUPS)
        return invalid("b_ptrs: a host pointer list allows at most " + str(MOEGEMM_MAX_HOST_GROUPS) +
                       " groups (got " + str(p->num_groups) + "); pass it on the device");
      for (int i = 0; i < p->num_groups; ++i) {
        if (p->b_ptrs[i] == nullptr) return invalid(at("b_ptrs", i) + ": must not be NULL");
        if (!aligned(p->b_ptrs[i], ab)) return misaligned(at("b_ptrs", i) + ": must be aligned to its element size");
      }
    } else if (!aligned(p->b_ptrs, alignof(void*))) {
      return misaligned("b_ptrs: the device pointer array must be 8-byte aligned");
    }
  }
  if (p->group_sizes == nullptr) return invalid("group_sizes: must not be NULL");
  if (p->zero_unused_rows != 0 && p->zero_unused_rows != 1)
    return invalid("zero_unused_rows: must be 0 or 1 (got " + str(p->zero_unused_rows) + ")");
  if (p->zero_unused_rows == 1 && p->accumulate != 0)
    return invalid("zero_unused_rows: must be 0 when accumulate is set (D's rows past the groups receive no "
                   "product to add to; they are left as they are)");
  if (p->group_sizes_location == MOEGEMM_MEMORY_DEVICE) {
    if (!aligned(p->group_sizes, alignof(int64_t)))
      return misaligned("group_sizes: the device array must be 8-byte aligned (int64)");
  } else {
    if (p->num_groups > MOEGEMM_MAX_HOST_GROUPS)
      return invalid("group_sizes: host group sizes allow at most " + str(MOEGEMM_MAX_HOST_GROUPS) +
                     " groups (got " + str(p->num_groups) + "); pass them on the device");
    int64_t sum = 0;
    for (int i = 0; i < p->num_groups; ++i) {
      const int64_t m = p->group_sizes[i];
      if (m < 0) return invalid(at("group_sizes", i) + ": must be >= 0 (got " + str(m) + ")");
      if (m > p->total_rows - sum)  // compared before adding: no overflow
        return invalid("group_sizes: sum must be <= total_rows (" + str(p->total_rows) + "), exceeded at group " +
                       str(i) + " (running sum " + str(sum) + " + " + str(m) + ")");
      sum += m;
    }
  }
  return Check{};
}

PathChoice choose_ragged_m_path(const moegemm_ragged_m_problem_t& p, const DispatchFacts& facts) {
  if (!facts.sm90) return {MOEGEMM_PATH_CUBLAS, "the device is not SM90 (Hopper)"};
  if (!facts.use_cutlass) return {MOEGEMM_PATH_CUBLAS, "MOEGEMM_USE_CUTLASS=0"};
  auto cublas = [](const std::string& rule) { return PathChoice{MOEGEMM_PATH_CUBLAS, "uniform-K: " + rule}; };
  if (std::string r = uniform_k_dtype_rule(p.ab_dtype, p.d_dtype); !r.empty()) return cublas(r);
  if (p.k % 8 != 0) return cublas("k = " + str(p.k) + " is not a multiple of 8 (16-byte rows for TMA)");
  if (p.n % 8 != 0) return cublas("n = " + str(p.n) + " is not a multiple of 8 (16-byte rows for TMA)");
  if (!aligned(p.a, 16)) return cublas("a is not 16-byte aligned");
  if (!aligned(p.d, 16)) return cublas("d is not 16-byte aligned");
  if (p.b != nullptr && !aligned(p.b, 16)) return cublas("b is not 16-byte aligned");
  if (p.b_ptrs != nullptr && p.b_ptrs_location == MOEGEMM_MEMORY_HOST)
    for (int i = 0; i < p.num_groups; ++i)
      if (!aligned(p.b_ptrs[i], 16)) return cublas(at("b_ptrs", i) + " is not 16-byte aligned");
  return {MOEGEMM_PATH_UNIFORM_K, ""};
}

std::vector<int64_t> clamp_group_sizes(const int64_t* sizes, int g, int64_t total) {
  std::vector<int64_t> out(static_cast<size_t>(g));
  int64_t off = 0;
  for (int i = 0; i < g; ++i) {
    int64_t v = sizes[i] < 0 ? 0 : sizes[i];
    if (v > total - off) v = total - off;
    out[i] = v;
    off += v;
  }
  return out;
}

int split_large_groups(const moegemm_gemm_list_t& p, ListStorage* large_storage, moegemm_gemm_list_t* large,
                       ListStorage* rest_storage, moegemm_gemm_list_t* rest) {
  const size_t g = static_cast<size_t>(p.num_groups);
  int count = 0;
  for (auto [storage, list] : {std::pair{large_storage, large}, std::pair{rest_storage, rest}}) {
    storage->m.assign(p.m, p.m + g);
    storage->n.assign(p.n, p.n + g);
    storage->k.assign(p.k, p.k + g);
    storage->a.assign(p.a, p.a + g);
    storage->b.assign(p.b, p.b + g);
    storage->d.assign(p.d, p.d + g);
    *list = p;
    list->m = storage->m.data();
    list->n = storage->n.data();
    list->k = storage->k.data();
    list->a = storage->a.data();
    list->b = storage->b.data();
    list->d = storage->d.data();
  }
  for (size_t i = 0; i < g; ++i) {
    const bool is_large = uniform_k_group_prefers_cublas(p.m[i], p.n[i], p.k[i]);
    count += is_large ? 1 : 0;
    (is_large ? rest_storage : large_storage)->m[i] = 0;
  }
  return count;
}

moegemm_gemm_list_t ragged_m_as_list(const moegemm_ragged_m_problem_t& p, const int64_t* sizes,
                                     const void* const* b_list, ListStorage* s) {
  const size_t g = static_cast<size_t>(p.num_groups);
  const size_t ab = dtype_size(p.ab_dtype), d = dtype_size(p.d_dtype);
  s->m.assign(sizes, sizes + g);
  s->n.assign(g, p.n);
  s->k.assign(g, p.k);
  s->a.resize(g);
  s->b.resize(g);
  s->d.resize(g);
  int64_t off = 0;
  for (size_t i = 0; i < g; ++i) {
    s->a[i] = static_cast<const char*>(p.a) + static_cast<size_t>(off * p.k) * ab;
    s->d[i] = static_cast<char*>(p.d) + static_cast<size_t>(off * p.n) * d;
    s->b[i] = b_list != nullptr ? b_list[i]
                                : static_cast<const char*>(p.b) + i * static_cast<size_t>(p.n * p.k) * ab;
    off += sizes[i];
  }
  moegemm_gemm_list_t l{};  // zero: no epilogue, default streams
  l.num_groups = p.num_groups;
  l.op_a = MOEGEMM_OP_N;
  l.op_b = p.op_b;
  l.ab_dtype = p.ab_dtype;
  l.d_dtype = p.d_dtype;
  l.m = s->m.data();
  l.n = s->n.data();
  l.k = s->k.data();
  l.a = s->a.data();
  l.b = s->b.data();
  l.d = s->d.data();
  l.accumulate = p.accumulate;
  return l;
}

}  // namespace moegemm::detail
