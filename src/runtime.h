// What every C entry point shares (defined in api.cpp): the thread-local
// error message and the current device's properties.
#ifndef MOEGEMM_SRC_RUNTIME_H_
#define MOEGEMM_SRC_RUNTIME_H_

#include <cstddef>

#include "moegemm/moegemm.h"
#include "validate.h"

namespace moegemm::detail {

// Stores the message for moegemm_last_error() ("" on success); returns the status.
moegemm_status_t report(const Check& c);

struct DeviceInfo {
  int device = -1;
  int major = 0, minor = 0;
  int sm_count = 0;
};

// The current device's properties (queried once per device).
Check current_device(DeviceInfo* info);
// current_device(), then an error unless it is SM90.
Check require_sm90(DeviceInfo* info);

// moegemm_wgrad's workspace for g groups on a device with sm_count SMs.
size_t wgrad_workspace_bytes_on(int num_groups, int sm_count);

}  // namespace moegemm::detail

#endif  // MOEGEMM_SRC_RUNTIME_H_
