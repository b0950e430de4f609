"""Depthwise convolution and max pooling that run oneDNN's CPU kernels in the layout where those are fast.

Measured by ``bench/cpu_layout.py`` (2-core x86 VM, torch 2.14, one thread), forward + backward at batch 64:
- oneDNN's *weight* gradient of a 5x5 or 7x7 depthwise conv is much slower on NCHW tensors than on channels-last
  ones, while its forward and input gradient are as fast or faster on NCHW: 1.35-4.4x with the weight gradient
  on channels-last copies (copies included);
- a dilated depthwise conv is slow in both layouts, but it is a sum that dense convs compute: 1.2-4.7x;
- max pooling is 1.45-7.6x faster channels-last.
Switching the whole network to channels-last gains far less (1.2x per step): BatchNorm backward gets 4x slower, and
the 1x1 convs, concats and sums of a cell are no faster that way. So only these two ops switch, locally:

- :class:`DepthwiseConv2d` — an ``nn.Conv2d`` (same parameters and state dict) whose backward computes the
  weight gradient on channels-last copies of the input and output gradient (5x5, 7x7), and which computes a
  dilated conv as dense convs (of the subsampled input at stride d, of the d² phase images at stride 1);
- :class:`MaxPool2d` — an ``nn.MaxPool2d`` that pools a channels-last copy and returns NCHW.

The numbers are identical up to float summation order (tests/test_cpu_layout.py). Both run the stock op off the
CPU and while tracing, exporting (ONNX graphs are unchanged) or compiling; ``disabled()`` and
``SDNAS_STOCK_CPU_OPS=1`` switch them off.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS_LAST = torch.channels_last


def channels_last_weight_grad(kernel: int, dilation: int) -> bool:
    """Whether bench/cpu_layout.py measured this depthwise conv's weight gradient faster on channels-last copies:
    undilated 5x5 and 7x7 (1.35-4.4x); not 3x3 (oneDNN has a fast NCHW kernel) nor the dilated ones."""
    return kernel >= 5 and dilation == 1


# SDNAS_STOCK_CPU_OPS=1 turns the switch off for a whole process (bench/search_speed.py's "today's step" rows).
_state = {"enabled": os.environ.get("SDNAS_STOCK_CPU_OPS", "") in ("", "0")}


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the stock ops inside the block (for A/B measurements and for bisecting a numerical question)."""
    before = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = before


def _plain_path(x: torch.Tensor) -> bool:
    """True where the stock op must run: off the CPU, inside tracing / ONNX export / torch.compile."""
    return (not _state["enabled"] or x.device.type != "cpu" or x.dim() != 4 or torch.jit.is_tracing()
            or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


class _DepthwiseConv(torch.autograd.Function):
    """conv2d(groups=C) whose weight gradient runs on channels-last tensors (input gradient and forward on NCHW)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
                dilation: tuple[int, int], groups: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conf = (list(stride), list(padding), list(dilation), groups)
        return F.conv2d(x, weight, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        conv_backward = torch.ops.aten.convolution_backward
        grad_x = grad_w = None
        # aten.convolution_backward is itself differentiable, so double backward (the α Hessian) still works.
        if ctx.needs_input_grad[0]:
            grad_x = conv_backward(grad_out, x, weight, None, stride, padding, dilation, False, [0, 0], groups,
                                   [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = conv_backward(grad_out.contiguous(memory_format=CHANNELS_LAST),
                                   x.contiguous(memory_format=CHANNELS_LAST), weight, None, stride, padding, dilation,
                                   False, [0, 0], groups, [False, True, False])[1]
        return grad_x, grad_w, None, None, None, None


def _dense(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """Undilated depthwise conv; the channels-last weight gradient where it was measured faster."""
    if channels_last_weight_grad(weight.shape[-1], 1) and weight.requires_grad and torch.is_grad_enabled():
        return _DepthwiseConv.apply(x, weight, (stride,) * 2, (padding,) * 2, (1, 1), x.shape[1])
    return F.conv2d(x, weight, None, stride, padding, 1, x.shape[1])


def _polyphase(x: torch.Tensor, weight: torch.Tensor, d: int) -> torch.Tensor:
    """A stride-1, dilation-d "same" conv as the dense conv of the d x d phase images, stacked in the batch.

    Output pixel (d·y + a, d·x + b) only reads input pixels of the same phase (a, b), d apart: so each phase
    image x[:, :, a::d, b::d] goes through the dense k x k conv (padding (k-1)/2). Sizes not divisible by d
    are zero-padded at the bottom/right (exactly what the conv's own zero padding would read) and cropped.
    """
    n, c, h, w = x.shape
    hp, wp = -(-h // d) * d, -(-w // d) * d
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, wp - w, 0, hp - h))
    phases = x.reshape(n, c, hp // d, d, wp // d, d).permute(0, 3, 5, 1, 2, 4).reshape(n * d * d, c, hp // d, wp // d)
    out = _dense(phases, weight, 1, (weight.shape[-1] - 1) // 2)
    out = out.reshape(n, d, d, c, hp // d, wp // d).permute(0, 3, 4, 1, 5, 2).reshape(n, c, hp, wp)
    return out[:, :, :h, :w]


class DepthwiseConv2d(nn.Conv2d):
    """A bias-free depthwise ``nn.Conv2d`` (groups == in_channels), computed the way oneDNN is fastest on the CPU.

    Paths (``path``), chosen once from the geometry:
    - ``channels-last weight grad``: undilated 5x5/7x7: weight gradient on channels-last copies;
    - ``subsample``: dilation d, stride d, "same" padding d(k-1)/2 only reads every d-th pixel: the dense conv
      of x[:, :, ::d, ::d] (the DARTS dil_conv ops of a reduction cell);
    - ``polyphase``: dilation d, stride 1, "same" padding: the dense conv of the d² phase images (:func:`_polyphase`),
      used when a gradient is wanted and each phase image is at least the kernel's size (smaller ones are
      mostly padding: slower);
    - ``stock``: everything else (3x3, and whatever does not match).
    """

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> None:
        super().__init__(channels, channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=channels, bias=False)
        same = kernel_size % 2 == 1 and padding == dilation * (kernel_size - 1) // 2
        if dilation > 1 and same and stride == dilation:
            self.path = "subsample"
        elif dilation > 1 and same and stride == 1:
            self.path = "polyphase"
        elif channels_last_weight_grad(kernel_size, dilation):
            self.path = "channels-last weight grad"
        else:
            self.path = "stock"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, d = self.kernel_size[0], self.dilation[0]
        if self.path == "stock" or _plain_path(x):
            return super().forward(x)
        if self.path == "subsample":
            return _dense(x[:, :, ::d, ::d], self.weight, 1, (k - 1) // 2)
        if self.path == "polyphase":  # it pays in the backward only: the forward alone is faster stock
            if min(x.shape[-2:]) < d * k or not torch.is_grad_enabled():
                return super().forward(x)
            return _polyphase(x, self.weight, d)
        return _dense(x, self.weight, self.stride[0], self.padding[0])


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` computed on a channels-last copy on the CPU; returns the caller's (NCHW) layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _plain_path(x) or self.return_indices or x.is_contiguous(memory_format=CHANNELS_LAST):
            return super().forward(x)
        out = F.max_pool2d(x.contiguous(memory_format=CHANNELS_LAST), self.kernel_size, self.stride, self.padding,
                           self.dilation, ceil_mode=self.ceil_mode)
        return out.contiguous()
