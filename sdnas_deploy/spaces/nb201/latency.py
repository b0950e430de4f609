"""Latency-table keys, operators and expected cost of the NB201 space (the protocol's table adapter).

Keys: ``stem``, each edge op per stage (``nor_conv_3x3-input:32x32x16-output:32x32x16-stride:1``; ``none`` is a
real multiply and has a key, ``skip_connect`` is an identity and costs 0), the two residual reduction blocks
(``resblock``, stride 2) and ``head`` (BN-ReLU, pool, linear). Every cell shares the architecture and every edge of
a stage has the same shape, so a network's cost is fixed + Σ_stages cells · Σ_edges cost(op, stage), and the
expected cost under softmax(α) is exact at one-hot α. The three node sums of a cell do not depend on the
architecture; they fall into a fitted table's overhead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

import torch
from torch import nn

from ...errors import BadInputError
from ..keys import Hook, key, parse_key, square, stride_between, traced_forward
from .arch import EDGES, CellArch
from .network import Nb201Network, Plan
from .ops import OPS, Edge, Head, ResBlock, Stem, edge_op

if TYPE_CHECKING:
    from .space import Nb201Geometry

FIXED_OPS = ("stem", "resblock", "head")
KEY_OPS = tuple(op for op in OPS if op != "skip_connect") + FIXED_OPS


def stage_sides(input_size: int) -> list[int]:
    """Feature-map side of each stage (the reductions halve it)."""
    return [input_size, input_size // 2, input_size // 4]


def edge_key(op: str, side: int, width: int) -> str | None:
    """Key of edge op ``op`` in a stage of ``side`` x ``side`` x ``width``; None for the identity."""
    if op == "skip_connect":
        return None
    return key(op, square(side, width), square(side, width), 1)


def fixed_keys(plan: Plan, geometry: "Nb201Geometry") -> list[str]:
    """Stem, the two reduction blocks and the head: the parts every architecture shares."""
    sides, widths = stage_sides(geometry.input_size), plan.stages()
    keys = [key("stem", square(sides[0], geometry.in_channels), square(sides[0], widths[0]), 1)]
    for s in (1, 2):
        keys.append(key("resblock", square(sides[s - 1], widths[s - 1]), square(sides[s], widths[s]), 2))
    keys.append(key("head", square(sides[2], widths[2]), (1, 1, geometry.num_classes), 1))
    return keys


def network_keys(arch: CellArch, plan: Plan, geometry: "Nb201Geometry") -> Counter[str]:
    """Multiset of keys of the network ``arch`` builds."""
    keys: Counter[str] = Counter(fixed_keys(plan, geometry))
    for side, width in zip(stage_sides(geometry.input_size), plan.stages()):
        for op in arch.edges:
            k = edge_key(op, side, width)
            if k is not None:
                keys[k] += plan.cells
    return keys


def candidate_keys(plan: Plan, geometry: "Nb201Geometry") -> list[str]:
    """Every key an architecture can produce at ``geometry``, sorted."""
    keys = set(fixed_keys(plan, geometry))
    for side, width in zip(stage_sides(geometry.input_size), plan.stages()):
        keys.update(k for k in (edge_key(op, side, width) for op in OPS) if k is not None)
    return sorted(keys)


def build_op(text: str, geometry: "Nb201Geometry") -> tuple[nn.Module, tuple[int, int, int, int]]:
    """The operator a key names, alone and as deployed (eval mode), and its NCHW input shape."""
    parts = parse_key(text, KEY_OPS)
    (h, _, c_in), (_, _, c_out) = parts.input, parts.output
    if parts.op == "stem":
        if c_in != geometry.in_channels:
            raise BadInputError(f"{text}: stem input has {c_in} channels but the geometry has {geometry.in_channels}")
        module: nn.Module = Stem(c_in, c_out)
    elif parts.op == "resblock":
        module = ResBlock(c_in, c_out)
    elif parts.op == "head":
        if c_out != geometry.num_classes:
            raise BadInputError(f"{text}: classifier has {c_out} classes but the geometry has {geometry.num_classes}")
        module = Head(c_in, c_out)
    else:
        if c_in != c_out or parts.stride != 1:
            raise BadInputError(f"{text}: NB201 edge ops keep their shape (stride 1, same width)")
        module = edge_op(parts.op, c_in)
    return module.eval(), (1, c_in, h, h)


@dataclass(frozen=True)
class CellCostModel:
    """Per (edge, op) cost ``table`` [6, 5] summed over the network's cells, and the fixed part."""

    table: torch.Tensor
    fixed: float
    unit: str

    def expected(self, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        alpha = alphas["edges"]
        probs = torch.softmax(alpha, dim=-1)
        return self.fixed + (probs * self.table.to(alpha.device, alpha.dtype)).sum()


def cost_model(plan: Plan, geometry: "Nb201Geometry", cost: Callable[[str], float], overhead: float,
               unit: str) -> CellCostModel:
    """``cost(key)`` per op summed over the stages' cells (the same for every edge); the identity costs 0."""
    per_op = torch.zeros(len(OPS), dtype=torch.float64)
    for side, width in zip(stage_sides(geometry.input_size), plan.stages()):
        for k, op in enumerate(OPS):
            text = edge_key(op, side, width)
            if text is not None:
                per_op[k] += plan.cells * cost(text)
    table = per_op.repeat(len(EDGES), 1)
    fixed = overhead + sum(cost(k) for k in fixed_keys(plan, geometry))
    return CellCostModel(table=table.float(), fixed=float(fixed), unit=unit)


def traced_keys(network: Nb201Network, geometry: "Nb201Geometry") -> Counter[str]:
    """Keys of a built network read off its real forward shapes (hooks): the check on :func:`network_keys`."""
    seen: Counter[str] = Counter()

    def record(op: str) -> Hook:
        def hook(_module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            x = inputs[0]
            if output.dim() == 4:
                out, stride = square(output.shape[-2], output.shape[1]), stride_between(x.shape[-2], output.shape[-2])
            else:
                out, stride = (1, 1, output.shape[-1]), 1
            seen[key(op, square(x.shape[-2], x.shape[1]), out, stride)] += 1
        return hook

    hooks: list[tuple[nn.Module, Hook]] = [(network.stem, record("stem")), (network.head, record("head"))]
    hooks += [(block, record("resblock")) for block in network.reductions]
    hooks += [(m.op, record(m.name)) for m in network.modules() if isinstance(m, Edge) and m.name != "skip_connect"]
    traced_forward(network, (1, geometry.in_channels, geometry.input_size, geometry.input_size), hooks)
    return seen
