"""Latency-table keys, operators and expected cost of a layer-wise space (the protocol's table adapter).

Keys follow ProxylessNAS: each searchable layer is keyed by its block string, shapes and stride, and MBConv
blocks add ``-idskip:0|1`` (whether the identity shortcut is present), e.g.
``k5_e6-input:56x56x24-output:28x28x32-stride:2-idskip:0``. A layer that is an identity (``zero``, or ``skip``
where shapes agree) has no key and costs 0. Fixed parts: ``stem``, ``first_block`` (ProxylessNAS' MB1),
``head`` (1x1 conv) and ``pool_classifier``. Expected cost = fixed + Σ_layers Σ_k p(k|layer)·cost(layer, k),
with p = softmax(α) over the layer's allowed candidates: exact at one-hot α.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import torch
from torch import nn

from ...errors import BadInputError
from ..keys import Hook, key, parse_key, square, stride_between, traced_forward
from ..layers import PoolClassifier
from .blocks import ConvBNAct, MBConv, build_block, decode_block, identity_allowed
from .layout import LayerShape, Layout, layer_plan, stem_out

if TYPE_CHECKING:
    from .space import LayerGeometry

FIXED_OPS = ("stem", "first_block", "head", "pool_classifier")


def layer_key(block: str, shape: LayerShape) -> str | None:
    """Key of ``block`` at ``shape``; None for an identity layer."""
    spec = decode_block(block)
    same = identity_allowed(shape.c_in, shape.c_out, shape.stride)
    if spec.kind in ("zero", "skip") and same:
        return None
    extras = {"idskip": int(same)} if spec.kind == "mbconv" else {}
    return key(block, square(shape.hw_in, shape.c_in), square(shape.hw_out, shape.c_out), shape.stride, **extras)


def fixed_keys(layout: Layout, geometry: "LayerGeometry") -> list[str]:
    """Stem, first block, head and classifier: the parts every architecture shares."""
    size = geometry.input_size
    hw = stem_out(layout, size)[1]
    keys = [key("stem", square(size, geometry.in_channels), square(hw, layout.stem_width), layout.stem_stride)]
    if layout.first is not None:
        keys.append(key("first_block", square(hw, layout.stem_width), square(hw, layout.first[1]), 1))
    last = layer_plan(layout, size)[-1]
    keys.append(key("head", square(last.hw_out, last.c_out), square(last.hw_out, layout.head_width), 1))
    keys.append(key("pool_classifier", square(last.hw_out, layout.head_width), (1, 1, geometry.num_classes), 1))
    return keys


def network_keys(layout: Layout, blocks: Sequence[str], geometry: "LayerGeometry") -> Counter[str]:
    """Multiset of keys of the network ``blocks`` builds."""
    keys: Counter[str] = Counter(fixed_keys(layout, geometry))
    for block, shape in zip(blocks, layer_plan(layout, geometry.input_size)):
        k = layer_key(block, shape)
        if k is not None:
            keys[k] += 1
    return keys


def candidate_keys(layout: Layout, allowed: Sequence[Sequence[bool]], candidates: Sequence[str],
                   geometry: "LayerGeometry") -> list[str]:
    """Every key an architecture can produce at ``geometry``, sorted."""
    keys = set(fixed_keys(layout, geometry))
    for ok, shape in zip(allowed, layer_plan(layout, geometry.input_size)):
        for block, fine in zip(candidates, ok):
            k = layer_key(block, shape) if fine else None
            if k is not None:
                keys.add(k)
    return sorted(keys)


def build_op(layout: Layout, act: str, expand_conv: bool, text: str, geometry: "LayerGeometry",
             ops: Sequence[str]) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """The operator a key names, alone and as deployed (eval mode), and its NCHW input shape."""
    parts = parse_key(text, ops)
    (h, _, c_in), (_, _, c_out), stride = parts.input, parts.output, parts.stride
    if parts.op == "stem":
        if c_in != geometry.in_channels:
            raise BadInputError(f"{text}: stem input has {c_in} channels but the geometry has {geometry.in_channels}")
        module: nn.Module = ConvBNAct(c_in, c_out, 3, stride, act)
    elif parts.op == "first_block":
        if layout.first is None:
            raise BadInputError(f"{text}: setting {layout.name!r} has no fixed first block")
        module = MBConv(c_in, c_out, 1, decode_block(layout.first[0]), act, expand_conv=False)
    elif parts.op == "head":
        module = ConvBNAct(c_in, c_out, 1, 1, act)
    elif parts.op == "pool_classifier":
        if c_out != geometry.num_classes:
            raise BadInputError(f"{text}: classifier has {c_out} classes but the geometry has {geometry.num_classes}")
        module = PoolClassifier(c_in, c_out)
    else:
        module = build_block(parts.op, c_in, c_out, stride, act, expand_conv)
    return module.eval(), (1, c_in, h, h)


@dataclass(frozen=True)
class LayerCostModel:
    """Per (layer, candidate) cost ``table`` [L, K], the ``allowed`` mask and the fixed part (spaces.base.CostModel)."""

    table: torch.Tensor
    allowed: torch.Tensor
    fixed: float
    unit: str

    def expected(self, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        alpha = alphas["layers"]
        probs = torch.softmax(alpha.masked_fill(~self.allowed.to(alpha.device), float("-inf")), dim=-1)
        return self.fixed + (probs * self.table.to(alpha.device, alpha.dtype)).sum()


def cost_model(layout: Layout, allowed: Sequence[Sequence[bool]], candidates: Sequence[str],
               geometry: "LayerGeometry", cost: Callable[[str], float], overhead: float, unit: str) -> LayerCostModel:
    """Sum ``cost(key)`` per (layer, candidate); identity layers cost 0."""
    plan = layer_plan(layout, geometry.input_size)
    table = torch.zeros(len(plan), len(candidates), dtype=torch.float64)
    for i, (ok, shape) in enumerate(zip(allowed, plan)):
        for k, (block, fine) in enumerate(zip(candidates, ok)):
            text = layer_key(block, shape) if fine else None
            if text is not None:
                table[i, k] = cost(text)
    fixed = overhead + sum(cost(k) for k in fixed_keys(layout, geometry))
    return LayerCostModel(table=table.float(), allowed=torch.tensor(allowed, dtype=torch.bool), fixed=float(fixed),
                          unit=unit)


def traced_keys(network: nn.Module, geometry: "LayerGeometry") -> Counter[str]:
    """Keys of a built network read off its real forward shapes (hooks): the check on :func:`network_keys`."""
    seen: Counter[str] = Counter()

    def record(op: str, extras: dict[str, int] | None = None) -> Hook:
        def hook(_module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            x = inputs[0]
            stride = stride_between(x.shape[-2], output.shape[-2]) if output.dim() == 4 else 1
            out = square(output.shape[-2], output.shape[1]) if output.dim() == 4 else (1, 1, output.shape[-1])
            seen[key(op, square(x.shape[-2], x.shape[1]), out, stride, **(extras or {}))] += 1
        return hook

    hooks: list[tuple[nn.Module, Hook]] = [(network.stem, record("stem"))]
    if network.first is not None:
        hooks.append((network.first, record("first_block")))
    for block, layer in zip(network.blocks, network.layers, strict=True):
        if isinstance(layer, MBConv):
            hooks.append((layer, record(block, {"idskip": int(layer.residual)})))
        elif isinstance(layer, ConvBNAct):
            hooks.append((layer, record(block)))
    hooks += [(network.head, record("head")), (network.pool_classifier, record("pool_classifier"))]
    traced_forward(network, (1, geometry.in_channels, geometry.input_size, geometry.input_size), hooks)
    return seen
