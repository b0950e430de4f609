"""Layer-wise (MBConv) building blocks and their block strings (DESIGN.md §8).

A block string names one layer's candidate, timm-style: ``k{kernel}_e{expansion}`` plus optional ``_g{groups}``
(grouped 1x1 convs + channel shuffle, FBNet) and ``_se`` (squeeze-excitation 0.25, DNA); ``skip`` (FBNet:
identity, or 1x1 conv + BN + act where stride or width changes) and ``zero`` (ProxylessNAS: the layer is left
out and the residual carries the input through). An inverted residual is
expand 1x1 → BN → act → [shuffle] → depthwise kxk (stride) → BN → act → [SE] → project 1x1 → BN, plus the
identity shortcut when stride is 1 and the widths match (dropped per sample by drop-path while training).
Nothing works in place, so blocks export to ONNX as-is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import BadInputError
from ..cpu_layout import DepthwiseConv2d
from ..layers import drop_path

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6, "swish": nn.SiLU}
_BLOCK_RE = re.compile(r"^k(\d+)_e(\d+)(?:_g(\d+))?(_se)?$")
SE_RATIO = 0.25  # DNA / EfficientNet: squeeze to 1/4 of the block's input width


@dataclass(frozen=True)
class BlockSpec:
    """A decoded block string. ``kind`` is ``mbconv``, ``skip`` or ``zero``."""

    kind: str
    kernel: int = 0
    expand: int = 0
    groups: int = 1
    se: bool = False

    @property
    def text(self) -> str:
        """The block string again (``k5_e6``, ``k3_e1_g2``, ``skip``...)."""
        if self.kind != "mbconv":
            return self.kind
        return f"k{self.kernel}_e{self.expand}" + (f"_g{self.groups}" if self.groups > 1 else "") + (
            "_se" if self.se else "")


def decode_block(text: str) -> BlockSpec:
    """Parse a block string; malformed → BadInputError."""
    if text in ("skip", "zero"):
        return BlockSpec(kind=text)
    match = _BLOCK_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise BadInputError(f"malformed block {text!r}; write k{{kernel}}_e{{expansion}}[_g{{groups}}][_se], skip or zero")
    kernel, expand = int(match.group(1)), int(match.group(2))
    groups = int(match.group(3) or 1)
    if kernel % 2 == 0 or kernel < 1 or expand < 1 or groups < 1:
        raise BadInputError(f"block {text!r}: kernel must be odd, expansion and groups >= 1")
    return BlockSpec("mbconv", kernel, expand, groups, bool(match.group(4)))


class ConvBNAct(nn.Module):
    """Conv2d (no bias) → BatchNorm → optional activation: stems, heads, the 1x1 ``skip`` and the MBConv convs
    (a depthwise one is cpu_layout's, whose 5x5/7x7 weight gradient is faster on the CPU)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, act: str | None, groups: int = 1) -> None:
        super().__init__()
        depthwise = groups == c_in == c_out > 1
        conv = (DepthwiseConv2d(c_in, kernel, stride, kernel // 2) if depthwise
                else nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False))
        layers: list[nn.Module] = [conv, nn.BatchNorm2d(c_out)]
        if act is not None:
            layers.append(ACTIVATIONS[act]())
        self.op = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: interleave the channels of ``groups`` groups (reshape + transpose)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """Squeeze-excitation: global pool → 1x1 reduce → act → 1x1 expand → sigmoid gate."""

    def __init__(self, channels: int, squeeze: int, act: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = ACTIVATIONS[act]()
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))
        return x * gate


class MBConv(nn.Module):
    """Inverted residual block of ``spec`` (module docstring); ``drop_path_prob`` is set by the trainer."""

    def __init__(self, c_in: int, c_out: int, stride: int, spec: BlockSpec, act: str, expand_conv: bool = True) -> None:
        super().__init__()
        if spec.kind != "mbconv":
            raise ValueError(f"MBConv needs an mbconv block, got {spec.text}")
        g = spec.groups
        mid = c_in * spec.expand
        if c_in % g or mid % g or c_out % g:
            raise BadInputError(f"block {spec.text}: widths {c_in}->{mid}->{c_out} are not divisible by groups {g}")
        layers: list[nn.Module] = []
        if expand_conv or spec.expand != 1:
            layers.append(ConvBNAct(c_in, mid, 1, 1, act, groups=g))
            if g > 1:
                layers.append(ChannelShuffle(g))
        layers.append(ConvBNAct(mid, mid, spec.kernel, stride, act, groups=mid))
        if spec.se:
            layers.append(SqueezeExcite(mid, max(1, int(c_in * SE_RATIO)), act))
        layers.append(ConvBNAct(mid, c_out, 1, 1, None, groups=g))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out
        self.drop_path_prob = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if not self.residual:
            return out
        if self.training and self.drop_path_prob > 0.0:
            out = drop_path(out, self.drop_path_prob)
        return x + out


class Identity(nn.Module):
    """``zero`` (ProxylessNAS) or a same-shape ``skip``: the layer passes its input on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def identity_allowed(c_in: int, c_out: int, stride: int) -> bool:
    """Whether a layer can be left out: only where its input and output shapes agree."""
    return stride == 1 and c_in == c_out


def build_block(text: str, c_in: int, c_out: int, stride: int, act: str, expand_conv: bool = True) -> nn.Module:
    """The layer a block string builds at these widths and stride (``skip`` changes shape with a 1x1 conv)."""
    spec = decode_block(text)
    if spec.kind == "zero":
        if not identity_allowed(c_in, c_out, stride):
            raise BadInputError(f"block 'zero' needs stride 1 and equal widths, got {c_in}->{c_out} stride {stride}")
        return Identity()
    if spec.kind == "skip":
        return Identity() if identity_allowed(c_in, c_out, stride) else ConvBNAct(c_in, c_out, 1, stride, act)
    return MBConv(c_in, c_out, stride, spec, act, expand_conv=expand_conv)
