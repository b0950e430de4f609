"""Latency-table keys shared by every space: ProxylessNAS-style strings naming an op and its shapes.

``{op}-input:{H}x{W}x{C}-output:{H}x{W}x{C}-stride:{s}`` optionally followed by ``-{name}:{int}`` fields
(e.g. ``-idskip:1``, as ProxylessNAS writes whether the identity skip is present). Which op names exist
is the space's business (``Space.key_ops``); the grammar is one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..errors import BadInputError
from ..registry import suggest

HWC = tuple[int, int, int]
_KEY_RE = re.compile(
    r"^([a-z0-9_]+)-input:(\d+)x(\d+)x(\d+)-output:(\d+)x(\d+)x(\d+)-stride:(\d+)((?:-[a-z_]+:\d+)*)$"
)
_EXTRA_RE = re.compile(r"-([a-z_]+):(\d+)")
KEY_HINT = "expected '{op}-input:{H}x{W}x{C}-output:{H}x{W}x{C}-stride:{s}[-name:N...]'"


@dataclass(frozen=True)
class KeyParts:
    """A parsed key: op name, input and output ``(H, W, C)``, stride and any extra integer fields."""

    op: str
    input: HWC
    output: HWC
    stride: int
    extras: Mapping[str, int] = field(default_factory=dict)


def key(op: str, in_hwc: Sequence[int], out_hwc: Sequence[int], stride: int, **extras: int) -> str:
    """The table key of ``op`` mapping an ``H x W x C`` input to an ``H x W x C`` output at ``stride``."""
    (hi, wi, ci), (ho, wo, co) = in_hwc, out_hwc
    tail = "".join(f"-{name}:{int(value)}" for name, value in extras.items())
    return f"{op}-input:{hi}x{wi}x{ci}-output:{ho}x{wo}x{co}-stride:{stride}{tail}"


def square(hw: int, c: int) -> HWC:
    """``(hw, hw, c)``: every network here has square feature maps."""
    return (hw, hw, c)


def parse_key(text: Any, ops: Sequence[str]) -> KeyParts:
    """Inverse of :func:`key` for a space whose op names are ``ops``; malformed → one-line BadInputError."""
    match = _KEY_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise BadInputError(f"malformed latency-table key {text!r}; {KEY_HINT}")
    op = match.group(1)
    if op not in ops:
        raise BadInputError(f"latency-table key {text!r}: unknown op {op!r}{suggest(op, list(ops))}")
    hi, wi, ci, ho, wo, co, stride = (int(g) for g in match.groups()[1:8])
    if min(hi, wi, ci, ho, wo, co, stride) < 1:
        raise BadInputError(f"latency-table key {text!r}: sizes and stride must be >= 1; {KEY_HINT}")
    extras = {name: int(value) for name, value in _EXTRA_RE.findall(match.group(9) or "")}
    return KeyParts(op, (hi, wi, ci), (ho, wo, co), stride, extras)


def stride_between(h_in: int, h_out: int) -> int:
    """The stride that maps side ``h_in`` to ``h_out`` with ceil rounding (what padded odd-kernel ops give)."""
    s = 1
    while math.ceil(h_in / s) != h_out and s < h_in:
        s += 1
    return s


Hook = Callable[[nn.Module, tuple, torch.Tensor], None]


def traced_forward(network: nn.Module, input_shape: Sequence[int], hooks: Sequence[tuple[nn.Module, Hook]]) -> None:
    """One eval-mode, no-grad forward of a random ``input_shape`` batch with forward ``hooks`` attached, then
    removed (each space's ``traced_keys`` records keys from the real shapes the hooks see)."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    try:
        with torch.no_grad():
            network.eval()(torch.randn(tuple(input_shape)))
    finally:
        for handle in handles:
            handle.remove()
