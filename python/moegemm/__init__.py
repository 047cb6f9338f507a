"""moegemm: grouped GEMMs for Mixture-of-Experts training on NVIDIA Hopper (SM90), for PyTorch.

    import moegemm
    dw = moegemm.grouped_wgrad(x, dy, group_sizes)                  # [g, m, n] FP32
    y = moegemm.grouped_mm(x, w, group_sizes, trans_b=True)         # ragged-M forward
    layer = moegemm.GroupedLinear(num_experts, 1024, 4096).cuda()

The ops are registered as torch custom ops (torch.ops.moegemm.*) with fake
implementations, so torch.compile(fullgraph=True) traces through them. They
call libmoegemm.so through ctypes (see moegemm._lib for where it is found).
"""

from ._lib import MoegemmError, library_path
from .ops import device_supported, grouped_mm, grouped_wgrad, grouped_wgrad_list, offsets_to_group_sizes
from .grouped_linear import GroupedLinear

__version__ = "0.1.0"

__all__ = [
    "GroupedLinear",
    "MoegemmError",
    "device_supported",
    "grouped_mm",
    "grouped_wgrad",
    "grouped_wgrad_list",
    "library_path",
    "offsets_to_group_sizes",
]
