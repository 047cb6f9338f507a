#include "env.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace moegemm::detail {
namespace {

// "1", "true", "on", "yes" / "0", "false", "off", "no" (case-insensitive).
bool parse_bool(const char* name, const char* value, bool fallback, std::string* problems) {
  if (value == nullptr) return fallback;
  std::string v(value);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "1" || v == "true" || v == "on" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "off" || v == "no") return false;
  *problems += std::string(problems->empty() ? "" : "; ") + name + "=\"" + value +
               "\" is not a boolean (0/1, true/false, on/off, yes/no; ignored)";
  return fallback;
}

}  // namespace

DispatchEnv parse_dispatch_env(const char* use_cutlass, const char* warn_fallback, const char* num_streams,
                               const char* uniform_k_tile, const char* large_groups_cublas) {
  DispatchEnv env;
  env.use_cutlass = parse_bool("MOEGEMM_USE_CUTLASS", use_cutlass, true, &env.problems);
  env.warn_fallback = parse_bool("MOEGEMM_WARN_FALLBACK", warn_fallback, false, &env.problems);
  env.large_groups_cublas =
      parse_bool("MOEGEMM_LARGE_GROUPS_CUBLAS", large_groups_cublas, true, &env.problems);
  if (num_streams != nullptr) {
    char* end = nullptr;
    const long v = std::strtol(num_streams, &end, 10);
    if (end == num_streams || *end != '\0' || v < 1 || v > 16)
      env.problems += std::string(env.problems.empty() ? "" : "; ") + "MOEGEMM_NUM_STREAMS=\"" + num_streams +
                      "\" is not an integer in [1, 16] (ignored)";
    else
      env.num_streams = static_cast<int>(v);
  }
  if (uniform_k_tile != nullptr) {
    const std::string v(uniform_k_tile);
    if (v == "auto") env.uniform_k_tile = UniformKTile::kAuto;
    else if (v == "pingpong") env.uniform_k_tile = UniformKTile::kPingpong128x128;
    else if (v == "cooperative") env.uniform_k_tile = UniformKTile::kCooperative128x256;
    else if (v == "cooperative-nocluster") env.uniform_k_tile = UniformKTile::kCooperative128x256NoCluster;
    else if (v == "pingpong-64x256") env.uniform_k_tile = UniformKTile::kPingpong64x256;
    else if (v == "pingpong-1x4") env.uniform_k_tile = UniformKTile::kPingpong128x128Cluster1x4;
    else if (v == "onelaunch") env.uniform_k_tile = UniformKTile::kOneLaunch128x128;
    else if (v == "onelaunch-1x4") env.uniform_k_tile = UniformKTile::kOneLaunch128x128Cluster1x4;
    else if (v == "cutlass") env.uniform_k_tile = UniformKTile::kAutoCutlass;
    else
      env.problems += std::string(env.problems.empty() ? "" : "; ") + "MOEGEMM_UNIFORM_K_TILE=\"" + v +
                      "\" is not auto, cutlass, onelaunch, onelaunch-1x4, pingpong, pingpong-1x4, pingpong-64x256, "
                      "cooperative or cooperative-nocluster (ignored)";
  }
  return env;
}

const DispatchEnv& process_dispatch_env() {
  static const DispatchEnv env = [] {
    DispatchEnv e = parse_dispatch_env(std::getenv("MOEGEMM_USE_CUTLASS"), std::getenv("MOEGEMM_WARN_FALLBACK"),
                                       std::getenv("MOEGEMM_NUM_STREAMS"), std::getenv("MOEGEMM_UNIFORM_K_TILE"),
                                       std::getenv("MOEGEMM_LARGE_GROUPS_CUBLAS"));
    if (!e.problems.empty()) std::fprintf(stderr, "moegemm: %s\n", e.problems.c_str());
    return e;
  }();
  return env;
}

}  // namespace moegemm::detail
