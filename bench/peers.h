// The implementations under test, behind one interface: prepare() once per
// problem (everything that is not per call), run() per call.
//
//   cublas_ms4      one cublasGemmEx per non-empty group, round-robin on 4 streams
//                   (one handle and workspace each) forked from and joined back to
//                   the bench stream with events; an empty wgrad group's output
//                   is zeroed with a memset (unless accumulating)
//   cublas_loop     the same GEMMs, one after the other on the bench stream
//   cublas_grouped  every group's GEMM in one cublasGemmGroupedBatchedEx call (one
//                   group of one problem each, empty groups included: cuBLAS takes
//                   k = 0); BF16 output only, cuBLAS refuses BF16 in / FP32 out;
//                   m and n multiples of 8 (16-byte aligned device pointers)
//   moegemm         wgrad: moegemm_wgrad() for one tile configuration; fprop and
//                   dgrad: moegemm_ragged_m() (the AUTO peers only: the tile
//                   configurations are wgrad's), whichever path it takes (the
//                   uniform-K kernel or its cuBLAS fallback, reported per row);
//                   split sizes on the host or on the device
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "device.h"
#include "workload.h"

namespace bench {

// Every peer's name, in the order they run (--peers).
const std::vector<std::string>& peer_names();

struct PeerInfo {
  std::string name;  // one of peer_names()
  bool is_moegemm = false;
  moegemm_wgrad_config_t config = MOEGEMM_WGRAD_CONFIG_AUTO;  // moegemm only
  moegemm_memory_t sizes = MOEGEMM_MEMORY_HOST;               // moegemm only: where the splits live

  std::string config_name() const;  // moegemm_wgrad_config_name() ("" for cuBLAS)
  std::string sizes_name() const;   // "host", "device" ("" for cuBLAS)
  std::string label() const;        // e.g. "moegemm[auto,device]"
};

// Name of a configuration: the library's own (moegemm_wgrad_config_name).
inline std::string short_config_name(moegemm_wgrad_config_t config) { return moegemm_wgrad_config_name(config); }

// The configuration a name stands for; MOEGEMM_WGRAD_CONFIG_COUNT_ if none.
inline moegemm_wgrad_config_t parse_config_name(const std::string& name) {
  for (int c = 0; c < MOEGEMM_WGRAD_CONFIG_COUNT_; ++c)
    if (name == moegemm_wgrad_config_name(static_cast<moegemm_wgrad_config_t>(c)))
      return static_cast<moegemm_wgrad_config_t>(c);
  return MOEGEMM_WGRAD_CONFIG_COUNT_;
}

inline std::string config_name_list() {
  std::string names;
  for (int c = 1; c < MOEGEMM_WGRAD_CONFIG_COUNT_; ++c)
    names += std::string(c > 1 ? ", " : "") + moegemm_wgrad_config_name(static_cast<moegemm_wgrad_config_t>(c));
  return names;
}

inline std::string PeerInfo::config_name() const { return is_moegemm ? short_config_name(config) : ""; }
inline std::string PeerInfo::sizes_name() const {
  if (!is_moegemm) return "";
  return sizes == MOEGEMM_MEMORY_HOST ? "host" : "device";
}
inline std::string PeerInfo::label() const {
  return is_moegemm ? name + "[" + config_name() + "," + sizes_name() + "]" : name;
}

class Peer {
 public:
  virtual ~Peer() = default;
  const PeerInfo& info() const { return info_; }

  // Per problem. The workload must outlive every later run().
  virtual void prepare(const Workload& w) = 0;
  // Enqueues one computation of operand set `set` on the bench stream; the
  // stream sees its completion.
  virtual void run(int set) = 0;
  // The concrete configuration that runs for the prepared problem ("" if n/a).
  virtual std::string resolved_config() const { return ""; }
  // Why this peer cannot compute `spec`, as shown in its place ("n/a (...)"),
  // or "" when it can. Such a problem is neither prepared nor run.
  virtual std::string not_applicable(const ShapeSpec&) const { return ""; }
  // moegemm_ragged_m: the path it takes for the prepared problem
  // (moegemm_path_name()) and why it left the faster ones ("" if n/a).
  virtual std::string path() const { return ""; }
  virtual std::string path_reason() const { return ""; }
  // Why the prepared problem cannot be captured in a CUDA graph ("" if it can):
  // only its eager timings are taken.
  virtual std::string graph_not_applicable() const { return ""; }

 protected:
  explicit Peer(PeerInfo info) : info_(std::move(info)) {}
  PeerInfo info_;
};

// cuBLAS on `num_streams` worker streams (1: directly on `stream`).
std::unique_ptr<Peer> make_cublas_peer(const std::string& name, int num_streams, cudaStream_t stream);

// cublasGemmGroupedBatchedEx on `stream` ("cublas_grouped").
std::unique_ptr<Peer> make_cublas_grouped_peer(cudaStream_t stream);

// Device workspace shared by the moegemm peers (they never run at the same
// time): grows to the largest need, never shrinks. reserve() may reallocate,
// so it is called from Peer::prepare() only (nothing in flight then), and
// run() reads get()/bytes() at every call.
class SharedWorkspace {
 public:
  void reserve(size_t bytes);
  void* get() const { return buffer_.get(); }
  size_t bytes() const { return buffer_.bytes(); }

 private:
  DeviceBuffer buffer_;
};

// moegemm_wgrad (configuration `config`) and, for the AUTO configuration,
// moegemm_ragged_m, with the split sizes in `sizes`; `workspace` outlives the peer.
std::unique_ptr<Peer> make_moegemm_peer(moegemm_wgrad_config_t config, moegemm_memory_t sizes,
                                        SharedWorkspace* workspace, cudaStream_t stream);

}  // namespace bench
