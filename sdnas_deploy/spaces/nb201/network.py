"""The NB201 network (``TinyNetwork`` of the benchmark) and its supernet (DARTS' mixed op per edge).

Skeleton: stem → N cells at C → residual reduction → N cells at 2C → reduction → N cells at 4C → BN-ReLU,
global pool, linear. Every cell of the network has the same architecture (one α matrix, ``alphas_edges``:
six edges × five ops). A node sums its incoming edges; the cell outputs node 3.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..base import Supernet
from ..layers import DropPathControl
from ..partial import check_partial_channels, node_softmax, partial
from .arch import EDGES, NODES, CellArch
from .ops import OPS, Edge, Head, ResBlock, Stem, edge_op


@dataclass(frozen=True)
class Plan:
    """What one setting builds: C, cells per stage, and the input side (for shapes)."""

    channels: int
    cells: int

    def stages(self) -> list[int]:
        """Channels of the three stages."""
        return [self.channels, 2 * self.channels, 4 * self.channels]


class Cell(nn.Module):
    """A discrete NB201 cell: six edges, node j = Σ_{i<j} edge(i→j)(node i)."""

    def __init__(self, arch: CellArch, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(Edge(op, channels) for op in arch.edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, NODES):
            nodes.append(reduce(operator.add, [self.edges[i](nodes[src]) for i, (n, src) in enumerate(EDGES)
                                               if n == node]))
        return nodes[-1]


class _Skeleton(nn.Module):
    def _build(self, plan: Plan, in_channels: int, num_classes: int, make_cell: Any) -> None:
        widths = plan.stages()
        self.stem = Stem(in_channels, widths[0])
        self.cells = nn.ModuleList()
        self.reductions = nn.ModuleList()
        for stage, width in enumerate(widths):
            if stage:
                self.reductions.append(ResBlock(widths[stage - 1], width))
            self.cells.extend(make_cell(width) for _ in range(plan.cells))
        self.head = Head(widths[-1], num_classes)
        self.cells_per_stage = plan.cells

    def _stage_modules(self) -> list[nn.Module]:
        """Cells and reduction blocks in forward order."""
        order: list[nn.Module] = []
        for stage in range(3):
            if stage:
                order.append(self.reductions[stage - 1])
            order.extend(self.cells[stage * self.cells_per_stage:(stage + 1) * self.cells_per_stage])
        return order


class Nb201Network(DropPathControl, _Skeleton):
    """The deployable network of one cell architecture; ``drop_path_prob`` reaches every edge."""

    drop_path_modules = (Edge,)

    def __init__(self, arch: CellArch, plan: Plan, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        self._build(plan, in_channels, num_classes, lambda width: Cell(arch, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for module in self._stage_modules():
            x = module(x)
        return self.head(x)


class MixedEdge(nn.Module):
    """A supernet edge: ``Σ_k w_k · op_k(x)`` over the five ops (convs with affine=False BN, as NB201's DARTS).

    ``none`` contributes exactly zero and is skipped; α_none still acts through the softmax normalisation.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(edge_op(op, channels, affine=False) for op in OPS)
        self._none = OPS.index("none")

    def forward(self, x: torch.Tensor, weights: torch.Tensor, zero: Sequence[bool] | None = None) -> torch.Tensor:
        out = torch.zeros_like(x)
        for k, op in enumerate(self.ops):
            if k == self._none or (zero is not None and zero[k]):
                continue
            out = out + weights[k] * op(x)
        return out


class SearchCell(nn.Module):
    """A supernet cell: six mixed edges sharing the network's one α matrix."""

    def __init__(self, channels: int, partial_channels: int = 1) -> None:
        super().__init__()
        check_partial_channels(channels, partial_channels, f"a cell of width {channels}")
        self.edges = nn.ModuleList(partial(MixedEdge(channels // partial_channels), partial_channels) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, zero: Sequence[Sequence[bool]] | None,
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """``edge_weights`` (PC-DARTS edge normalization): one factor per edge, softmax(β) within each node."""
        nodes = [x]
        for node in range(1, NODES):
            terms = [self.edges[i](nodes[src], weights[i], None if zero is None else zero[i])
                     * (1.0 if edge_weights is None else edge_weights[i])
                     for i, (n, src) in enumerate(EDGES) if n == node]
            nodes.append(reduce(operator.add, terms))
        return nodes[-1]


class Nb201Supernet(Supernet, _Skeleton):
    """The NB201 supernet (module docstring); ``derive`` = best op per edge, ``none`` allowed (NB201)."""

    ARCH_LABELS = ("edges",)

    def __init__(self, plan: Plan, in_channels: int, num_classes: int, partial_channels: int = 1,
                 edge_norm: bool = False) -> None:
        super().__init__()
        self.init_args: dict[str, Any] = dict(plan=plan, in_channels=in_channels, num_classes=num_classes,
                                              partial_channels=partial_channels, edge_norm=edge_norm)
        self._build(plan, in_channels, num_classes, lambda width: SearchCell(width, partial_channels))
        self.alphas_edges = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(OPS)))
        self.edge_norm = edge_norm
        if edge_norm:  # PC-DARTS: β per edge, normalized over each node's incoming edges (every edge is kept)
            self.betas_edges = nn.Parameter(1e-3 * torch.randn(len(EDGES)))

    def forward(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        mix = self.mixture(weights)["edges"]
        zero = None if mix.requires_grad else (mix == 0).tolist()  # one-hot rows skip their zero-weight ops
        edges = None  # explicit (one-hot) weights compute the derived cell: no edge factors
        if self.edge_norm and "edges" not in (weights or {}):
            edges = node_softmax(self.betas_edges, [node for node in range(1, NODES)])
        x = self.stem(x)
        for module in self._stage_modules():
            x = module(x, mix, zero, edges) if isinstance(module, SearchCell) else module(x)
        return self.head(x)

    def derive(self) -> CellArch:
        with torch.no_grad():
            best = self.probabilities("edges").argmax(dim=1).tolist()
        return CellArch(tuple(OPS[k] for k in best))
