"""NAS-Bench-201 operators, as the benchmark defines them (Dong & Yang 2020, ``xautodl`` cell_operations).

Edge ops: ``none`` (zero: ``x * 0``, computed as NB201 computes it), ``skip_connect`` (identity),
``nor_conv_1x1`` and ``nor_conv_3x3`` (ReLU → conv → BN), ``avg_pool_3x3`` (3x3, stride 1, padding 1,
``count_include_pad=False``). Between stages a residual reduction block (ReLUConvBN 3x3/2 → ReLUConvBN 3x3,
shortcut 2x2 average pool → 1x1 conv). Stem: 3x3 conv + BN; head: BN + ReLU, global pool, linear.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import PoolClassifier, drop_path

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
PARAMETER_FREE: tuple[str, ...] = ("none", "skip_connect", "avg_pool_3x3")


class ReLUConvBN(nn.Sequential):
    """ReLU → k×k conv (no bias) → BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class Zero(nn.Module):
    """NB201's ``none``: ``x * 0`` (a real multiply, as the benchmark's networks were timed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def edge_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """The edge operator ``name`` at ``channels`` (every NB201 cell edge keeps shape, stride 1)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {name!r}")


class Stem(nn.Sequential):
    """3x3 conv (no bias) + BatchNorm."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))


class ResBlock(nn.Module):
    """NB201's ``ResNetBasicblock`` at stride 2: ReLUConvBN 3x3/2 → ReLUConvBN 3x3, plus avg-pool → 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0),
                                        nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Head(nn.Module):
    """BatchNorm + ReLU (``lastact``), then global average pool and the linear classifier."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=False))
        self.pool_classifier = PoolClassifier(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_classifier(self.lastact(x))


class Edge(nn.Module):
    """One discrete cell edge; drop-path (training only) on ops that compute something new."""

    def __init__(self, name: str, channels: int) -> None:
        super().__init__()
        self.name = name
        self.op = edge_op(name, channels)
        self.drop_path_prob = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.op(x)
        if self.training and self.drop_path_prob > 0 and self.name not in ("none", "skip_connect"):
            out = drop_path(out, self.drop_path_prob)
        return out
