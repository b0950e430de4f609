"""The DARTS supernet: every edge is a softmax(α)-weighted mixture of all candidate ops (DESIGN.md §1).

``SearchNetwork`` owns two architecture matrices, labelled ``normal`` and ``reduce`` (attributes
``alphas_normal``/``alphas_reduce``: one row per edge, one column per primitive). They are registered
``nn.Parameter``s so they travel in the ``state_dict`` and checkpoints, but the weight optimizer must use
:meth:`weight_parameters` and the architecture optimizer :meth:`arch_parameters` (spaces.base.Supernet).
``forward`` accepts explicit per-edge weights by label in place of softmax(α): one-hot masks from
:func:`discretized_weights` evaluate the *derived* architecture inside the supernet (the discretization gap).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from typing import Mapping

from ..base import Supernet
from ..partial import check_partial_channels, node_softmax, partial
from .genotype import DARTS_STEPS, Genotype, derive_genotype, edge_index, num_edges
from .ops import OPS, PRIMITIVES, cell_preprocess


class MixedOp(nn.Module):
    """One supernet edge: ``Σ_k w_k · op_k(x)`` over all primitives; pools get a BatchNorm (affine=False).

    The ``none`` term is identically zero, so it is skipped: the sum and every gradient are unchanged
    (α_none still acts through the softmax normalisation).
    """

    def __init__(self, C: int, stride: int) -> None:
        super().__init__()
        self._ops = nn.ModuleList()
        for primitive in PRIMITIVES:
            op = OPS[primitive](C, stride, False)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)
        self._none = PRIMITIVES.index("none")

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor | None = None
        for k, op in enumerate(self._ops):
            if k == self._none:
                continue
            term = weights[k] * op(x)
            out = term if out is None else out + term
        assert out is not None
        return out


class SearchCell(nn.Module):
    """A supernet cell: 2 inputs, ``steps`` nodes fed by MixedOps from every earlier state, concat of the last nodes."""

    def __init__(
        self, steps: int, multiplier: int, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool,
        partial_channels: int = 1,
    ) -> None:
        super().__init__()
        check_partial_channels(C, partial_channels, f"a {'reduction' if reduction else 'normal'} cell of width {C}")
        self.reduction = reduction
        self._steps = steps
        self._multiplier = multiplier
        self.preprocess0, self.preprocess1 = cell_preprocess(C_prev_prev, C_prev, C, reduction_prev, affine=False)
        self._ops = nn.ModuleList()
        for node in range(steps):
            for j in range(2 + node):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(partial(MixedOp(C // partial_channels, stride), partial_channels))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """``edge_weights`` (PC-DARTS edge normalization): one factor per edge, softmax(β) within each node."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self._steps):
            start = edge_index(node, 0)
            terms = [self._ops[start + j](h, weights[start + j]) for j, h in enumerate(states)]
            if edge_weights is not None:
                terms = [edge_weights[start + j] * t for j, t in enumerate(terms)]
            states.append(sum(terms))
        return torch.cat(states[-self._multiplier :], dim=1)


class SearchNetwork(Supernet):
    """DARTS supernet: stem, ``layers`` SearchCells (reductions at 1/3 and 2/3 depth), global pool, classifier."""

    def __init__(
        self,
        C: int,
        num_classes: int,
        layers: int,
        in_channels: int = 3,
        steps: int = DARTS_STEPS,
        multiplier: int = 4,
        stem_multiplier: int = 3,
        partial_channels: int = 1,
        edge_norm: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("C", C), ("num_classes", num_classes), ("layers", layers), ("in_channels", in_channels),
                            ("steps", steps), ("stem_multiplier", stem_multiplier)):
            if value < 1:
                raise ValueError(f"SearchNetwork: {name} must be >= 1, got {value}")
        if not 1 <= multiplier <= steps:
            raise ValueError(f"SearchNetwork: multiplier must be in 1..steps={steps}, got {multiplier}")
        self.init_args = dict(C=C, num_classes=num_classes, layers=layers, in_channels=in_channels,
                              steps=steps, multiplier=multiplier, stem_multiplier=stem_multiplier,
                              partial_channels=partial_channels, edge_norm=edge_norm)
        self._steps = steps
        self._multiplier = multiplier

        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = SearchCell(steps, multiplier, C_prev_prev, C_prev, C_curr, reduction, reduction_prev,
                              partial_channels)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

        shape = (num_edges(steps), len(PRIMITIVES))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(shape))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(shape))
        self.edge_norm = edge_norm
        if edge_norm:  # PC-DARTS: β per edge, normalized over each node's incoming edges
            self.betas_normal = nn.Parameter(1e-3 * torch.randn(num_edges(steps)))
            self.betas_reduce = nn.Parameter(1e-3 * torch.randn(num_edges(steps)))

    ARCH_LABELS = ("normal", "reduce")

    def edge_weights(self, label: str) -> torch.Tensor | None:
        """softmax(β) over each node's incoming edges of ``label``'s cells (None without edge normalization)."""
        if not self.edge_norm:
            return None
        return node_softmax(getattr(self, f"betas_{label}"), [2 + node for node in range(self._steps)])

    def arch_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """softmax(α) per edge for the normal and reduction cells (differentiable)."""
        return self.probabilities("normal"), self.probabilities("reduce")

    def forward(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits; ``weights`` ({label: [edges, ops]}) replaces the relaxed α of that cell type."""
        mix = self.mixture(weights)
        given = set(weights or ())  # explicit (one-hot) weights compute the derived cell: no edge factors
        edges = {label: None if label in given else self.edge_weights(label) for label in self.ARCH_LABELS}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            label = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, mix[label], edges[label])
        out = self.global_pooling(s1)
        return self.classifier(torch.flatten(out, 1))

    def derive(self) -> Genotype:
        """The discrete architecture the current α select (DARTS rule)."""
        with torch.no_grad():
            normal, reduce = self.arch_weights()
            if self.edge_norm:  # PC-DARTS ranks edges by softmax(α)·softmax(β)
                normal = normal * self.edge_weights("normal")[:, None]
                reduce = reduce * self.edge_weights("reduce")[:, None]
        return derive_genotype(normal, reduce, steps=self._steps, multiplier=self._multiplier)


def discretized_weights(
    genotype: Genotype, steps: int = DARTS_STEPS, device: torch.device | str | None = None
) -> dict[str, torch.Tensor]:
    """One-hot ``[edges, ops]`` masks by label (normal, reduce): 1 on each derived edge's op, 0 elsewhere.

    Passed to ``SearchNetwork.forward`` they make the supernet compute exactly the derived cell
    structure with the supernet's shared weights.
    """
    masks = []
    for cell in ("normal", "reduce"):
        mask = torch.zeros(num_edges(steps), len(PRIMITIVES), device=device)
        entries, _ = genotype.cell(cell)
        for k, (op, index) in enumerate(entries):
            mask[edge_index(k // 2, index), PRIMITIVES.index(op)] = 1.0
        masks.append(mask)
    return {"normal": masks[0], "reduce": masks[1]}
