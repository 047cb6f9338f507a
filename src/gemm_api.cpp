// The C API of the general grouped GEMM: validation, path choice (dispatch.h),
// then the uniform-K kernel, the variable-K wgrad kernel or the multi-stream
// cuBLAS path. Each failure leaves a message for moegemm_last_error().
#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "cublas_fallback.h"
#include "dispatch.h"
#include "env.h"
#include "kernels/uniform_k_sm90.h"
#include "moegemm/moegemm.h"
#include "runtime.h"
#include "validate.h"

namespace moegemm::detail {
namespace {

thread_local std::string last_reason;

// The device and the facts the path choice needs. No device at all still
// chooses (the cuBLAS path, which then fails with the CUDA error).
struct Context {
  DeviceInfo device;
  bool has_device = false;
  DispatchFacts facts;
};

Context context() {
  Context c;
  c.has_device = current_device(&c.device).ok();
  c.facts.sm90 = c.has_device && c.device.major == 9 && c.device.minor == 0;
  c.facts.use_cutlass = process_dispatch_env().use_cutlass;
  return c;
}

// MOEGEMM_WARN_FALLBACK: one line per distinct reason, for the whole process.
void warn_fallback(const std::string& entry, const std::string& reason) {
  if (!process_dispatch_env().warn_fallback) return;
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  if (!seen.insert(entry + reason).second) return;
  std::fprintf(stderr, "moegemm: %s falls back to multi-stream cuBLAS: %s\n", entry.c_str(), reason.c_str());
}

size_t round_up_256(size_t bytes) { return (bytes + 255) / 256 * 256; }

int streams_for(int requested) { return requested > 0 ? requested : process_dispatch_env().num_streams; }

size_t path_workspace(moegemm_path_t path, int num_groups, int sm_count, int num_streams) {
  switch (path) {
    case MOEGEMM_PATH_UNIFORM_K: return round_up_256(uniform_k_sm90_workspace_size(num_groups, sm_count));
    case MOEGEMM_PATH_VARIABLE_K: return round_up_256(wgrad_workspace_bytes_on(num_groups, sm_count));
    case MOEGEMM_PATH_CUBLAS: return round_up_256(cublas_list_workspace_size(num_streams));
  }
  return 0;
}

// The two forms side by side, for the steps their entry points share.
Check validate_problem(const moegemm_gemm_list_t* p) { return validate_gemm_list(p); }
Check validate_problem(const moegemm_ragged_m_problem_t* p) { return validate_ragged_m(p); }
PathChoice choose_path(const moegemm_gemm_list_t& p, const DispatchFacts& f) { return choose_list_path(p, f); }
PathChoice choose_path(const moegemm_ragged_m_problem_t& p, const DispatchFacts& f) {
  return choose_ragged_m_path(p, f);
}
int streams_of(const moegemm_gemm_list_t& p) { return streams_for(p.num_streams); }
int streams_of(const moegemm_ragged_m_problem_t&) { return streams_for(0); }

// The large-group rule (config_select.h) needs the group sizes on the host:
// always so in the list form; in the ragged-M form unless the sizes or the B
// list are on the device (then the grouped kernel takes every group).
bool sizes_on_host(const moegemm_gemm_list_t&) { return true; }
bool sizes_on_host(const moegemm_ragged_m_problem_t& p) {
  return p.group_sizes_location == MOEGEMM_MEMORY_HOST &&
         (p.b_ptrs == nullptr || p.b_ptrs_location == MOEGEMM_MEMORY_HOST);
}

// Whether the ragged-M one-launch kernel can serve `p` (config_select.h).
bool onelaunch_serves(const moegemm_ragged_m_problem_t& p) {
  RaggedOneLaunchInputs one;
  one.num_groups = p.num_groups;
  one.total_rows = p.total_rows;
  one.n = p.n;
  one.k = p.k;
  one.accumulate = p.accumulate != 0;
  one.zero_rows_on_device = p.zero_unused_rows != 0 && p.group_sizes_location == MOEGEMM_MEMORY_DEVICE;
  one.b_list = p.b_ptrs != nullptr;
  return ragged_m_onelaunch_serves(one);
}

// Whether AUTO's one-launch kernel takes every group of a ragged-M call, large
// ones too: with k <= kOneLaunchStoreBoundMaxK it measured faster than
// cuBLAS on groups of any size (docs/perf-notes.md U16; e.g. dgrad, 8 groups
// of ~2048 x 7168 with k = 512: 373 µs against 413 with the large groups on
// cuBLAS).
bool onelaunch_takes_large_groups(const moegemm_ragged_m_problem_t& p) {
  const UniformKTile requested = process_dispatch_env().uniform_k_tile;
  return (requested == UniformKTile::kAuto || requested == UniformKTile::kOneLaunch128x128 ||
          requested == UniformKTile::kOneLaunch128x128Cluster1x4) &&
         p.k <= kOneLaunchStoreBoundMaxK && onelaunch_serves(p);
}

// Whether some group of a uniform-K call may run as its own cuBLAS GEMM: the
// workspace then has a cuBLAS part. Ragged M: decided from the total rows (a
// group can only be large if all rows together are), so that one workspace
// serves every split of the same total.
bool may_split_large_groups(const moegemm_ragged_m_problem_t& p) {
  return sizes_on_host(p) && p.total_rows >= uniform_k_cublas_min_rows(p.n, p.k) && !onelaunch_takes_large_groups(p);
}
bool may_split_large_groups(const moegemm_gemm_list_t& p) {
  for (int i = 0; i < p.num_groups; ++i)
    if (uniform_k_group_prefers_cublas(p.m[i], p.n[i], p.k[0])) return true;
  return false;
}
template <class Problem>
bool large_groups_apply(const Problem& p, const PathChoice& choice) {
  return choice.path == MOEGEMM_PATH_UNIFORM_K && process_dispatch_env().large_groups_cublas &&
         may_split_large_groups(p);
}

template <class Problem>
size_t workspace_for(const Problem& p, const Context& ctx, const PathChoice& choice) {
  size_t bytes = path_workspace(choice.path, p.num_groups, ctx.device.sm_count, streams_of(p));
  if (large_groups_apply(p, choice)) bytes += round_up_256(cublas_list_workspace_size(streams_of(p)));
  return bytes;
}

// What the uniform-K tile choice looks at (UniformKTileInputs): rows of all
// groups, their 128-row and 64-row tiles when the sizes are on the host, and
// n when every group has the same (0 otherwise: that keeps the default tile).
int64_t row_tiles_of_rows(int64_t rows, int64_t tile_rows) { return (rows + tile_rows - 1) / tile_rows; }
void add_row_tiles(UniformKTileInputs& in, int64_t rows) {
  in.row_tiles += row_tiles_of_rows(rows, 128);
  in.row_tiles_64 += row_tiles_of_rows(rows, 64);
}

UniformKTileInputs tile_inputs_of(const moegemm_ragged_m_problem_t& p) {
  UniformKTileInputs in;
  in.total_rows = p.total_rows;
  in.num_groups = p.num_groups;
  in.n = p.n;
  in.k = p.k;
  in.op_b = p.op_b;
  in.onelaunch_serves = onelaunch_serves(p);
  if (p.group_sizes_location == MOEGEMM_MEMORY_HOST) {
    // The setup kernel's clamping rule (moegemm.h): sizes clamped to [0, T],
    // each group's rows cut at T.
    in.row_tiles = in.row_tiles_64 = 0;
    int64_t start = 0;
    for (int i = 0; i < p.num_groups; ++i) {
      const int64_t size = std::clamp<int64_t>(p.group_sizes[i], 0, p.total_rows);
      const int64_t end = std::min(start + size, p.total_rows);
      add_row_tiles(in, end - start);
      start = end;
    }
  }
  return in;
}
UniformKTileInputs tile_inputs_of(const moegemm_gemm_list_t& p) {
  UniformKTileInputs in;
  in.num_groups = p.num_groups;
  in.op_b = p.op_b;
  in.n = p.n[0];
  in.k = p.k[0];
  in.row_tiles = in.row_tiles_64 = 0;
  for (int i = 0; i < p.num_groups; ++i) {
    in.total_rows += p.m[i];
    if (p.n[i] != p.n[0]) in.n = 0;
    if (p.n[i] > 0) add_row_tiles(in, p.m[i]);
  }
  return in;
}

// Whether the large groups of a call run as cuBLAS GEMMs: the rule applies
// (large_groups_apply) and the grouped kernel does not keep them
// (uniform_k_keeps_large_groups: long k and many waves of tiles).
template <class Problem>
bool splits_large_groups(const Problem& p, const PathChoice& choice, const Context& ctx) {
  if (!large_groups_apply(p, choice)) return false;
  UniformKTileInputs whole = tile_inputs_of(p);
  whole.sm_count = ctx.device.sm_count;
  return !uniform_k_keeps_large_groups(whole, process_dispatch_env().uniform_k_tile);
}

// A uniform-K launch of either form (the caller sets `list` or `ragged`),
// its tile chosen from `tiles`.
template <class Problem>
UniformKLaunch uniform_k_launch(const Problem& p, UniformKTileInputs tiles, const Context& ctx, void* workspace,
                                cudaStream_t stream) {
  UniformKLaunch l;
  l.ab_dtype = p.ab_dtype;
  l.d_dtype = p.d_dtype;
  l.op_b = p.op_b;
  l.accumulate = p.accumulate != 0;
  l.workspace = workspace;
  l.stream = stream;
  l.device = ctx.device.device;
  l.sm_count = ctx.device.sm_count;
  tiles.sm_count = ctx.device.sm_count;
  if (tiles.onelaunch_serves) {
    // A failed query leaves 0 (the rule then assumes sm_count / cluster
    // size); the launch itself reports the error.
    if (!uniform_k_sm90_onelaunch_clusters(l, 2, &tiles.onelaunch_clusters_1x2).ok()) tiles.onelaunch_clusters_1x2 = 0;
    if (!uniform_k_sm90_onelaunch_clusters(l, 4, &tiles.onelaunch_clusters_1x4).ok()) tiles.onelaunch_clusters_1x4 = 0;
  }
  l.tile = choose_uniform_k_tile(tiles, process_dispatch_env().uniform_k_tile);
  return l;
}
template <class Problem>
UniformKLaunch uniform_k_launch(const Problem& p, const Context& ctx, void* workspace, cudaStream_t stream) {
  return uniform_k_launch(p, tile_inputs_of(p), ctx, workspace, stream);
}

Check cuda_check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Check{};
  cudaGetLastError();
  return Check{MOEGEMM_STATUS_CUDA_ERROR, std::string(what) + ": " + cudaGetErrorString(err)};
}

Check run_uniform_k_list(const moegemm_gemm_list_t& p, const Context& ctx, void* workspace, cudaStream_t stream) {
  UniformKLaunch l = uniform_k_launch(p, ctx, workspace, stream);
  l.list = &p;
  return uniform_k_sm90(l);
}

// The ragged form in one grouped launch (rows past the groups are the
// caller's business when the sizes are on the host).
Check run_uniform_k_ragged(const moegemm_ragged_m_problem_t& p, const Context& ctx, void* workspace,
                           cudaStream_t stream) {
  UniformKLaunch l = uniform_k_launch(p, ctx, workspace, stream);
  l.ragged = &p;
  l.zero_rows_past_groups = p.group_sizes_location == MOEGEMM_MEMORY_DEVICE && p.zero_unused_rows != 0;
  return uniform_k_sm90(l);
}

// The uniform-K path with the large-group rule: the large groups as cuBLAS
// GEMMs on side streams, the others in the grouped kernel on `stream` beside
// them. `p` lists all g groups; for the ragged form (host sizes) `ragged` is
// the call it was made from. With no large group, one grouped launch (of
// `ragged` when given). Otherwise the grouped kernel takes the rest: the
// one-launch kernel straight from `ragged`, skipping the large groups' rows,
// the CUTLASS kernels as a list of g slots. The workspace holds the grouped
// kernel's part, then cuBLAS's (workspace_for).
Check run_uniform_k_split(const moegemm_gemm_list_t& p, const Context& ctx, void* workspace, int streams,
                          cudaStream_t stream, const moegemm_ragged_m_problem_t* ragged = nullptr) {
  ListStorage large_storage, rest_storage;
  moegemm_gemm_list_t large{}, rest{};
  const int count = split_large_groups(p, &large_storage, &large, &rest_storage, &rest);
  if (count == 0)
    return ragged != nullptr ? run_uniform_k_ragged(*ragged, ctx, workspace, stream)
                             : run_uniform_k_list(p, ctx, workspace, stream);
  const size_t grouped_bytes = path_workspace(MOEGEMM_PATH_UNIFORM_K, p.num_groups, ctx.device.sm_count, streams);
  UniformKTileInputs rest_tiles = tile_inputs_of(rest);
  rest_tiles.onelaunch_serves = ragged != nullptr && onelaunch_serves(*ragged);
  const std::unique_ptr<bool[]> skip(new bool[static_cast<size_t>(p.num_groups)]);
  for (int i = 0; i < p.num_groups; ++i) skip[i] = large.m[i] > 0;
  const CallerStreamWork grouped = [&](cudaStream_t s) -> Check {
    if (count == p.num_groups) return Check{};
    UniformKLaunch l = uniform_k_launch(rest, rest_tiles, ctx, workspace, s);
    if (l.tile == UniformKTile::kOneLaunch128x128 || l.tile == UniformKTile::kOneLaunch128x128Cluster1x4) {
      l.ragged = ragged;
      l.skip_groups = skip.get();
    } else {
      l.list = &rest;
    }
    return uniform_k_sm90(l);
  };
  return cublas_gemm_list(large, streams, static_cast<char*>(workspace) + grouped_bytes,
                          round_up_256(cublas_list_workspace_size(streams)), stream, &grouped);
}

// ---------------------------------------------------------------------------
// List form

Check run_list(const moegemm_gemm_list_t& p, const Context& ctx, const PathChoice& choice, void* workspace,
               cudaStream_t stream) {
  switch (choice.path) {
    case MOEGEMM_PATH_UNIFORM_K: {
      if (splits_large_groups(p, choice, ctx)) return run_uniform_k_split(p, ctx, workspace, streams_of(p), stream);
      return run_uniform_k_list(p, ctx, workspace, stream);
    }
    case MOEGEMM_PATH_VARIABLE_K: {
      const WgradBuffers buffers = wgrad_buffers_of_list(p);
      moegemm_wgrad_problem_t w = moegemm_wgrad_problem_default();
      w.num_groups = p.num_groups;
      w.m = p.m[0];
      w.n = p.n[0];
      w.total_tokens = buffers.total_tokens;
      w.x = buffers.x;
      w.dy = buffers.dy;
      w.group_sizes = p.k;
      w.group_sizes_location = MOEGEMM_MEMORY_HOST;
      w.out_ptrs = p.d;
      w.out_ptrs_location = MOEGEMM_MEMORY_HOST;
      w.out_dtype = p.d_dtype;
      w.accumulate = p.accumulate;
      const size_t bytes = wgrad_workspace_bytes_on(p.num_groups, ctx.device.sm_count);
      const moegemm_status_t st = moegemm_wgrad(&w, workspace, round_up_256(bytes), stream);
      return Check{st, st == MOEGEMM_STATUS_SUCCESS ? "" : moegemm_last_error()};
    }
    case MOEGEMM_PATH_CUBLAS: {
      const int streams = streams_of(p);
      return cublas_gemm_list(p, streams, workspace, cublas_list_workspace_size(streams), stream);
    }
  }
  return Check{MOEGEMM_STATUS_INTERNAL_ERROR, "unknown path"};
}

// ---------------------------------------------------------------------------
// Ragged-M form

// zero_unused_rows with the groups' total rows known on the host: rows
// [used_rows, T) of D (contiguous) set to zero on `stream`.
Check zero_rows_past_groups(const moegemm_ragged_m_problem_t& p, int64_t used_rows, cudaStream_t stream) {
  if (p.zero_unused_rows == 0 || used_rows >= p.total_rows) return Check{};
  const size_t row_bytes = static_cast<size_t>(p.n) * dtype_size(p.d_dtype);
  return cuda_check(cudaMemsetAsync(static_cast<char*>(p.d) + static_cast<size_t>(used_rows) * row_bytes, 0,
                                    static_cast<size_t>(p.total_rows - used_rows) * row_bytes, stream),
                    "cudaMemsetAsync(rows of d past the groups)");
}

int64_t sum_of(const int64_t* sizes, int g) {
  int64_t total = 0;
  for (int i = 0; i < g; ++i) total += sizes[i];
  return total;
}

// The cuBLAS path needs the group sizes (and a device B list) on the host.
Check ragged_m_on_cublas(const moegemm_ragged_m_problem_t& p, void* workspace, cudaStream_t stream) {
  const int g = p.num_groups;
  const bool device_sizes = p.group_sizes_location == MOEGEMM_MEMORY_DEVICE;
  const bool device_b = p.b_ptrs != nullptr && p.b_ptrs_location == MOEGEMM_MEMORY_DEVICE;
  std::vector<int64_t> sizes(p.group_sizes, p.group_sizes + (device_sizes ? 0 : g));
  std::vector<const void*> b_list;
  if (device_sizes || device_b) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (Check c = cuda_check(cudaStreamIsCapturing(stream, &capture), "cudaStreamIsCapturing"); !c.ok()) return c;
    if (capture != cudaStreamCaptureStatusNone)
      return Check{MOEGEMM_STATUS_INVALID_ARGUMENT,
                   std::string(device_sizes ? "group_sizes" : "b_ptrs") +
                       ": on the device, and this call takes the cuBLAS path, which must copy them to the host "
                       "(a synchronisation) - impossible while the stream is captured into a CUDA graph"};
    if (device_sizes) {
      sizes.resize(static_cast<size_t>(g));
      if (Check c = cuda_check(cudaMemcpyAsync(sizes.data(), p.group_sizes, sizeof(int64_t) * g,
                                               cudaMemcpyDeviceToHost, stream),
                               "cudaMemcpyAsync(group_sizes)");
          !c.ok())
        return c;
    }
    if (device_b) {
      b_list.resize(static_cast<size_t>(g));
      if (Check c = cuda_check(cudaMemcpyAsync(b_list.data(), p.b_ptrs, sizeof(void*) * g, cudaMemcpyDeviceToHost,
                                               stream),
                               "cudaMemcpyAsync(b_ptrs)");
          !c.ok())
        return c;
    }
    if (Check c = cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); !c.ok()) return c;
    if (device_sizes) sizes = clamp_group_sizes(sizes.data(), g, p.total_rows);
  }
  const void* const* b = device_b ? b_list.data() : (p.b_ptrs != nullptr ? p.b_ptrs : nullptr);
  ListStorage storage;
  const moegemm_gemm_list_t list = ragged_m_as_list(p, sizes.data(), b, &storage);
  // A device B list is seen only now: a NULL or misaligned entry of a group
  // with rows is an error here, before anything is enqueued.
  if (device_b)
    if (Check c = validate_gemm_list(&list); !c.ok())
      return Check{c.status, "b_ptrs (the device list, read for the cuBLAS path): " + c.message};
  if (Check c = zero_rows_past_groups(p, sum_of(sizes.data(), g), stream); !c.ok()) return c;
  const int streams = streams_of(p);
  return cublas_gemm_list(list, streams, workspace, cublas_list_workspace_size(streams), stream);
}

std::string device_copy_note(const moegemm_ragged_m_problem_t& p) {
  const bool device_sizes = p.group_sizes_location == MOEGEMM_MEMORY_DEVICE;
  const bool device_b = p.b_ptrs != nullptr && p.b_ptrs_location == MOEGEMM_MEMORY_DEVICE;
  return (device_sizes || device_b) ? " (device group sizes/pointers are copied to the host: the stream is synchronised)"
                                    : "";
}

Check run_ragged_m(const moegemm_ragged_m_problem_t& p, const Context& ctx, const PathChoice& choice,
                   void* workspace, cudaStream_t stream) {
  if (p.total_rows == 0) return Check{};  // no row of D exists
  // zero_unused_rows: with sizes on the host (validated: each >= 0, sum <= T,
  // or copied and clamped by the cuBLAS path) a memset of the rows past them
  // just before the GEMMs, after every check, so that a rejected call writes
  // nothing; with device sizes on the uniform-K path, its setup kernel.
  if (choice.path != MOEGEMM_PATH_UNIFORM_K) {
    warn_fallback("moegemm_ragged_m", choice.reason + device_copy_note(p));
    return ragged_m_on_cublas(p, workspace, stream);
  }
  if (splits_large_groups(p, choice, ctx)) {
    // Host sizes (clamped as on the device) and host or contiguous B.
    const std::vector<int64_t> sizes = clamp_group_sizes(p.group_sizes, p.num_groups, p.total_rows);
    ListStorage storage;
    const moegemm_gemm_list_t list = ragged_m_as_list(p, sizes.data(), p.b_ptrs, &storage);
    if (Check c = zero_rows_past_groups(p, sum_of(sizes.data(), p.num_groups), stream); !c.ok()) return c;
    return run_uniform_k_split(list, ctx, workspace, streams_of(p), stream, &p);
  }
  if (p.group_sizes_location == MOEGEMM_MEMORY_HOST)
    if (Check c = zero_rows_past_groups(p, sum_of(p.group_sizes, p.num_groups), stream); !c.ok()) return c;
  return run_uniform_k_ragged(p, ctx, workspace, stream);
}

// ---------------------------------------------------------------------------
// The entry points of both forms

template <class Problem>
moegemm_status_t path_entry(const Problem* problem, moegemm_path_t* path, const char** reason) {
  if (path == nullptr) return report({MOEGEMM_STATUS_INVALID_ARGUMENT, "path: must not be NULL"});
  if (Check c = validate_problem(problem); !c.ok()) return report(c);
  const Context ctx = context();
  PathChoice choice = choose_path(*problem, ctx.facts);
  if (!ctx.has_device) choice.reason = "no usable CUDA device (the kernels need SM90)";
  else if (large_groups_apply(*problem, choice) && !splits_large_groups(*problem, choice, ctx))
    choice.reason = "uniform-K, large groups kept in the grouped kernel: k >= " + std::to_string(kCublasGroupLongK) +
                    ", at least " + std::to_string(kUniformKKeepMinGroups) + " groups and at least " +
                    std::to_string(kUniformKCooperativeMinWaves) + " waves of 128x256 tiles on the SMs";
  else if (large_groups_apply(*problem, choice))
    choice.reason = "uniform-K with large groups: groups with rows x n >= " + std::to_string(kCublasGroupMinOutput) +
                    " (>= " + std::to_string(kCublasGroupLongKMinOutput) + " when k >= " +
                    std::to_string(kCublasGroupLongK) + " and n >= " + std::to_string(kCublasGroupLongKMinN) +
                    ") run as cuBLAS GEMMs on side streams beside the grouped kernel (MOEGEMM_LARGE_GROUPS_CUBLAS=0 "
                    "keeps them in it)";
  *path = choice.path;
  last_reason = choice.reason;
  if (reason != nullptr) *reason = last_reason.c_str();
  return report(Check{});
}

template <class Problem>
moegemm_status_t workspace_size_entry(const Problem* problem, size_t* workspace_bytes) {
  if (workspace_bytes == nullptr)
    return report({MOEGEMM_STATUS_INVALID_ARGUMENT, "workspace_bytes: must not be NULL"});
  if (Check c = validate_problem(problem); !c.ok()) return report(c);
  const Context ctx = context();
  const PathChoice choice = choose_path(*problem, ctx.facts);
  *workspace_bytes = workspace_for(*problem, ctx, choice);
  return report(Check{});
}

// `run` does the call once the problem, the device and the workspace are
// checked; `size_query` names the workspace size function, for the message.
template <class Problem, class Run>
moegemm_status_t call_entry(const Problem* problem, void* workspace, size_t workspace_bytes, const char* size_query,
                            Run run) {
  if (Check c = validate_problem(problem); !c.ok()) return report(c);
  const Context ctx = context();
  if (!ctx.has_device) {
    DeviceInfo unused;
    return report(current_device(&unused));
  }
  const PathChoice choice = choose_path(*problem, ctx.facts);
  const size_t need = workspace_for(*problem, ctx, choice);
  if (Check c = validate_workspace(workspace, workspace_bytes, need, size_query); !c.ok()) return report(c);
  return report(run(*problem, ctx, choice));
}

}  // namespace
}  // namespace moegemm::detail

using namespace moegemm::detail;

extern "C" {

moegemm_gemm_list_t moegemm_gemm_list_default(void) {
  moegemm_gemm_list_t p{};
  p.op_a = MOEGEMM_OP_N;
  p.op_b = MOEGEMM_OP_N;
  p.ab_dtype = MOEGEMM_DTYPE_BF16;
  p.d_dtype = MOEGEMM_DTYPE_FP32;
  return p;
}

moegemm_ragged_m_problem_t moegemm_ragged_m_problem_default(void) {
  moegemm_ragged_m_problem_t p{};
  p.ab_dtype = MOEGEMM_DTYPE_BF16;
  p.d_dtype = MOEGEMM_DTYPE_BF16;
  p.op_b = MOEGEMM_OP_T;
  p.b_ptrs_location = MOEGEMM_MEMORY_HOST;
  p.group_sizes_location = MOEGEMM_MEMORY_HOST;
  return p;
}

const char* moegemm_path_name(moegemm_path_t path) {
  switch (path) {
    case MOEGEMM_PATH_UNIFORM_K: return "uniform_k";
    case MOEGEMM_PATH_VARIABLE_K: return "variable_k";
    case MOEGEMM_PATH_CUBLAS: return "cublas";
  }
  return "unknown";
}

moegemm_status_t moegemm_gemm_list_path(const moegemm_gemm_list_t* problem, moegemm_path_t* path,
                                        const char** reason) {
  return path_entry(problem, path, reason);
}

moegemm_status_t moegemm_gemm_list_workspace_size(const moegemm_gemm_list_t* problem, size_t* workspace_bytes) {
  return workspace_size_entry(problem, workspace_bytes);
}

moegemm_status_t moegemm_gemm_list(const moegemm_gemm_list_t* problem, void* workspace, size_t workspace_bytes,
                                   cudaStream_t stream) {
  return call_entry(problem, workspace, workspace_bytes, "moegemm_gemm_list_workspace_size",
                    [&](const moegemm_gemm_list_t& p, const Context& ctx, const PathChoice& choice) {
                      if (choice.path == MOEGEMM_PATH_CUBLAS) warn_fallback("moegemm_gemm_list", choice.reason);
                      return run_list(p, ctx, choice, workspace, stream);
                    });
}

moegemm_status_t moegemm_ragged_m_path(const moegemm_ragged_m_problem_t* problem, moegemm_path_t* path,
                                       const char** reason) {
  return path_entry(problem, path, reason);
}

moegemm_status_t moegemm_ragged_m_workspace_size(const moegemm_ragged_m_problem_t* problem,
                                                 size_t* workspace_bytes) {
  return workspace_size_entry(problem, workspace_bytes);
}

moegemm_status_t moegemm_ragged_m(const moegemm_ragged_m_problem_t* problem, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream) {
  return call_entry(problem, workspace, workspace_bytes, "moegemm_ragged_m_workspace_size",
                    [&](const moegemm_ragged_m_problem_t& p, const Context& ctx, const PathChoice& choice) {
                      return run_ragged_m(p, ctx, choice, workspace, stream);
                    });
}

}  // extern "C"
