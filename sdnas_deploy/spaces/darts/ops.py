"""The eight DARTS candidate operations and their building blocks (DESIGN.md §1).

Every factory in :data:`OPS` has the signature ``(C, stride, affine) -> nn.Module`` and maps a
``C``-channel tensor to a ``C``-channel tensor whose spatial size is kept (stride 1) or halved,
rounding up (stride 2). The supernet builds them with ``affine=False`` BatchNorm, the discrete
networks with ``affine=True``. Nothing here works in place, so the same tensor can feed several
edges and every block exports to ONNX as-is.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import register_into
from ..cpu_layout import DepthwiseConv2d, MaxPool2d
from ..layers import drop_path  # noqa: F401  (re-exported: the cells apply it)

PRIMITIVES: list[str] = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
]

OpFactory = Callable[[int, int, bool], nn.Module]
OPS: dict[str, OpFactory] = {}


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d -> BatchNorm: the 1x1 preprocessing of cell inputs and the stem-like blocks."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BatchNorm (the depthwise conv: cpu_layout's)."""

    def __init__(
        self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int, affine: bool = True
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            DepthwiseConv2d(C_in, kernel_size, stride=stride, padding=padding, dilation=dilation),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked (ReLU, depthwise conv, pointwise conv, BatchNorm) units; only the first may stride."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    """skip_connect at stride 1 (a named class so cells can tell it apart for drop-path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the op's output (spatially halved at stride 2)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the spatial size with two offset 1x1 stride-2 convs (each giving half the channels).

    The second conv sees the input shifted by one pixel. The shifted input is zero-padded by one
    row/column at the bottom/right, which changes nothing for even sizes (the padded row is never
    sampled) and lets odd sizes reduce to ``ceil(H/2)`` like every other stride-2 op.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def cell_preprocess(C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool, affine: bool) -> tuple[nn.Module, nn.Module]:
    """The two input adapters of a DARTS cell (supernet and discrete alike): bring both previous
    states to C channels; the older one is also halved spatially when the previous cell reduced."""
    if reduction_prev:
        pre0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=affine)
    else:
        pre0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=affine)
    return pre0, ReLUConvBN(C_prev, C, 1, 1, 0, affine=affine)


@register_into(OPS, "none")
def _none(C: int, stride: int, affine: bool) -> nn.Module:
    return Zero(stride)


@register_into(OPS, "max_pool_3x3")
def _max_pool_3x3(C: int, stride: int, affine: bool) -> nn.Module:
    return MaxPool2d(3, stride=stride, padding=1)


@register_into(OPS, "avg_pool_3x3")
def _avg_pool_3x3(C: int, stride: int, affine: bool) -> nn.Module:
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


@register_into(OPS, "skip_connect")
def _skip_connect(C: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine)


@register_into(OPS, "sep_conv_3x3")
def _sep_conv_3x3(C: int, stride: int, affine: bool) -> nn.Module:
    return SepConv(C, C, 3, stride, 1, affine=affine)


@register_into(OPS, "sep_conv_5x5")
def _sep_conv_5x5(C: int, stride: int, affine: bool) -> nn.Module:
    return SepConv(C, C, 5, stride, 2, affine=affine)


@register_into(OPS, "dil_conv_3x3")
def _dil_conv_3x3(C: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(C, C, 3, stride, 2, 2, affine=affine)


@register_into(OPS, "dil_conv_5x5")
def _dil_conv_5x5(C: int, stride: int, affine: bool) -> nn.Module:
    return DilConv(C, C, 5, stride, 4, 2, affine=affine)
