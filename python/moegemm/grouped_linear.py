"""GroupedLinear: g expert linear layers over one ragged token buffer."""

import math
import warnings
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from . import ops as _ops

__all__ = ["GroupedLinear"]


def _row_expert(m_splits: Tensor, total_rows: int, device) -> Tensor:
    """Expert index of every row, without a host sync: rows of group i get i,
    rows past sum(m_splits) get g (a zero bias row). Negative sizes count as
    0, as the kernels clamp them."""
    ends = torch.cumsum(m_splits.to(device=device, non_blocking=True).clamp(min=0), 0)
    rows = torch.arange(total_rows, device=device, dtype=ends.dtype)
    return torch.searchsorted(ends, rows, right=True)


class _GroupedLinearFunction(torch.autograd.Function):
    """y = x_i @ W_i^T (+ b_i) per group. Inputs after the four fixed ones:
    g weights, then g biases (if has_bias), then g main_grads (if use_main_grad)."""

    @staticmethod
    def forward(ctx, x, m_splits, row_expert, meta, *tensors):
        num_gemms, has_bias, use_main_grad = meta
        weights = list(tensors[:num_gemms])
        biases = list(tensors[num_gemms:2 * num_gemms]) if has_bias else []
        y = _ops.grouped_mm(x, weights, m_splits, trans_b=True)
        if has_bias:
            table = torch.cat([torch.stack(biases), biases[0].new_zeros(1, biases[0].shape[0])])
            y = y + table[row_expert]
        ctx.meta = meta
        ctx.save_for_backward(x, m_splits, row_expert, *weights)
        # main_grads are written, not read, by backward: kept as plain references rather than
        # saved tensors, so that another micro-batch's backward accumulating into them first
        # (interleaved pipeline schedules) does not trip autograd's version check
        ctx.main_grads = list(tensors[(2 if has_bias else 1) * num_gemms:]) if use_main_grad else []
        ctx.weight_dtype = weights[0].dtype
        ctx.bias_dtype = biases[0].dtype if has_bias else None
        return y

    @staticmethod
    def backward(ctx, dy):
        num_gemms, has_bias, use_main_grad = ctx.meta
        saved = ctx.saved_tensors
        x, m_splits, row_expert = saved[:3]
        weights = list(saved[3:3 + num_gemms])
        main_grads = ctx.main_grads
        dy = dy.to(ctx.weight_dtype).contiguous()
        needs = ctx.needs_input_grad
        w_needs = any(needs[4:4 + num_gemms])

        dx = _ops.grouped_mm(dy, weights, m_splits, trans_b=False) if needs[0] else None

        wgrads: List[Optional[Tensor]] = [None] * num_gemms
        if w_needs:
            if use_main_grad:
                # Megatron style: dW_i is added to weight_i.main_grad in the kernel
                # (FP32 accumulation, no allocation); autograd gets None.
                _ops.grouped_wgrad_list(x, dy, m_splits, main_grads, accumulate=True)
            else:
                buf = _ops.grouped_wgrad(x, dy, m_splits, out_dtype=ctx.weight_dtype)
                wgrads = list(buf.unbind(0))

        bgrads: List[Optional[Tensor]] = []
        if has_bias:
            if any(needs[4 + num_gemms:4 + 2 * num_gemms]):
                # segment sum per expert, accumulated in FP32; row g collects padding rows
                db = torch.zeros(num_gemms + 1, dy.shape[1], dtype=torch.float32, device=dy.device)
                db.index_add_(0, row_expert, dy.float())
                bgrads = list(db[:num_gemms].to(ctx.bias_dtype).unbind(0))
            else:
                bgrads = [None] * num_gemms
        rest = [None] * num_gemms if use_main_grad else []
        return (dx, None, None, None, *wgrads, *bgrads, *rest)


class GroupedLinear(nn.Module):
    """``num_gemms`` linear layers (experts) applied to one token buffer whose
    rows are grouped by expert: rows [off_i, off_i + m_i) go through expert i.

    Parameters: ``weight0`` .. ``weight{g-1}`` of shape [out_features,
    in_features] and, with bias, ``bias0`` .. ``bias{g-1}`` of [out_features]
    (the naming of TransformerEngine's GroupedLinear, so checkpoints map
    one-to-one). BF16 only; in_features and out_features multiples of 8.

    forward(x [T, in_features], m_splits) -> [T, out_features], where m_splits
    is a 1-D int64 tensor of the g row counts, on the GPU (no host sync;
    capturable in a CUDA graph) or the CPU (a list of ints is accepted too).
    Rows past sum(m_splits) produce zeros and get zero gradient.

    The forward GEMM, the dgrad and the wgrad all run through moegemm
    (no copy of the weights). Weight gradients:

    * by default autograd gets fresh per-expert gradients (views of one
      [g, out, in] buffer of the parameters' dtype, FP32-accumulated);
    * when *every* weight has a ``main_grad`` attribute (Megatron style, an
      FP32 [out, in] tensor), the wgrad kernel adds dW_i into
      ``weight_i.main_grad`` directly (accumulating over micro-batches, no
      allocation) and autograd gets ``None`` for the weights, so ``.grad``
      stays ``None``: zero ``main_grad`` yourself between optimizer steps.

    Bias gradients are ordinary autograd gradients (an FP32 segment sum).
    """

    def __init__(self, num_gemms: int, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        if num_gemms < 1:
            raise ValueError(f"GroupedLinear: num_gemms must be >= 1, got {num_gemms}")
        if dtype != torch.bfloat16:
            raise TypeError(f"GroupedLinear: dtype must be torch.bfloat16 (moegemm's wgrad kernel is BF16), "
                            f"got {dtype}")
        for what, v in (("in_features", in_features), ("out_features", out_features)):
            if v < 8 or v % 8:
                raise ValueError(f"GroupedLinear: {what} must be a positive multiple of 8, got {v}")
        self.num_gemms = num_gemms
        self.in_features = in_features
        self.out_features = out_features
        self.use_bias = bool(bias)
        for i in range(num_gemms):
            self.register_parameter(
                f"weight{i}", nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype)))
        for i in range(num_gemms):
            self.register_parameter(
                f"bias{i}", nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None)
        self.reset_parameters()

    @property
    def weights(self) -> List[nn.Parameter]:
        return [getattr(self, f"weight{i}") for i in range(self.num_gemms)]

    @property
    def biases(self) -> List[Optional[nn.Parameter]]:
        return [getattr(self, f"bias{i}") for i in range(self.num_gemms)]

    def reset_parameters(self) -> None:
        """Each expert as nn.Linear: U(-1/sqrt(in), 1/sqrt(in)) for weights and biases."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            for w in self.weights:
                if w.device.type != "meta":
                    w.uniform_(-bound, bound)
            if self.use_bias:
                for b in self.biases:
                    if b.device.type != "meta":
                        b.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        return (f"num_gemms={self.num_gemms}, in_features={self.in_features}, "
                f"out_features={self.out_features}, bias={self.use_bias}")

    def forward(self, x: Tensor, m_splits: Union[Tensor, Sequence[int]]) -> Tensor:
        if not isinstance(m_splits, Tensor):
            m_splits = torch.tensor([int(k) for k in m_splits], dtype=torch.int64)
        if m_splits.dim() != 1 or m_splits.shape[0] != self.num_gemms:
            raise ValueError(f"GroupedLinear: m_splits must be 1-D with num_gemms = {self.num_gemms} entries, "
                             f"got shape {tuple(m_splits.shape)}")
        if m_splits.dtype != torch.int64:
            raise TypeError(f"GroupedLinear: m_splits must be int64, got {m_splits.dtype}")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"GroupedLinear: x must be [tokens, in_features={self.in_features}], "
                             f"got shape {tuple(x.shape)}")
        weights = self.weights
        if x.dtype != weights[0].dtype:
            raise TypeError(f"GroupedLinear: x is {x.dtype} but the weights are {weights[0].dtype}")
        x = x.contiguous()
        m_splits = m_splits.contiguous()

        main_grads = [getattr(w, "main_grad", None) for w in weights]
        have = [mg is not None for mg in main_grads]
        use_main_grad = all(have)
        if any(have) and not use_main_grad:
            warnings.warn("GroupedLinear: only some weights have a main_grad; ordinary .grad gradients are "
                          "used for all of them", stacklevel=2)
        tensors = list(weights)
        row_expert = None
        if self.use_bias:
            tensors += self.biases
            row_expert = _row_expert(m_splits, x.shape[0], x.device)
        if use_main_grad:
            tensors += main_grads
        meta = (self.num_gemms, self.use_bias, use_main_grad)
        return _GroupedLinearFunction.apply(x, m_splits, row_expert, meta, *tensors)
