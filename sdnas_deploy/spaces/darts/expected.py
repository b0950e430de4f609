"""Expected latency of the network a DARTS supernet will discretize to, differentiable in α (DESIGN.md §2).

A plain Σ_edges Σ_ops softmax(α)·LUT over all 14 edges of a cell overestimates: discretization keeps only
2 incoming edges per node (8 of 14) and never the ``none`` op. So each edge is weighted by how likely it is to
survive, and its op mixture is renormalised over the ops that can be chosen:

- strength of edge e: s_e = max over non-none ops of softmax(α)[e] (the quantity the genotype rule ranks by);
- survival of e into node j: p_e = min(1, 2·s_e / Σ_{e'→j} s_e'), so a node's survivals sum to ~2;
- op given survival: q(op|e) = softmax(α)[e, op] / Σ_{op'≠none} softmax(α)[e, op'].

E[LAT] = overhead + fixed parts (stem, preprocess, classifier) + Σ_cells Σ_e p_e Σ_op q(op|e)·LUT(cell, e, op).
Normal cells share ``alphas_normal`` and reduction cells ``alphas_reduce``, but each cell has its own shapes,
so the table is read per cell. The same code gives expected FLOPs from a FLOPs table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from typing import Mapping

from .genotype import DARTS_STEPS, edge_index
from .geometry import NetworkGeometry, cell_plan, edge_keys, fixed_keys, preprocess_keys
from .ops import PRIMITIVES

_NONE = PRIMITIVES.index("none")


@dataclass(frozen=True)
class CostModel:
    """Per-edge costs summed over the cells of each type, plus the genotype-independent part.

    ``normal``/``reduce``: [14, 8] tensors (α layout; the ``none`` column is 0); ``fixed``: stems, cell
    preprocessing, classifier and the per-call overhead, identical for every genotype of the space.
    """

    normal: torch.Tensor
    reduce: torch.Tensor
    fixed: float
    unit: str

    def expected(self, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """E[cost] at α given by label (``normal``, ``reduce``); differentiable (spaces.base.CostModel)."""
        return expected_cost(self, alphas["normal"], alphas["reduce"])


def build_cost_model(geometry: NetworkGeometry, cost: Callable[[str], float], overhead: float = 0.0,
                     unit: str = "ms") -> CostModel:
    """Sum ``cost(key)`` per (edge, op) over the normal and the reduction cells of ``geometry``."""
    plan = cell_plan(geometry)
    per_cell = edge_keys(geometry)
    sums = {False: torch.zeros(len(per_cell[0]), len(PRIMITIVES), dtype=torch.float64),
            True: torch.zeros(len(per_cell[0]), len(PRIMITIVES), dtype=torch.float64)}
    fixed = overhead + sum(cost(k) for k in fixed_keys(geometry, plan))
    for cell, rows in zip(plan, per_cell):
        fixed += sum(cost(k) for k in preprocess_keys(cell))
        for e, ops in enumerate(rows):
            for op, k in ops.items():
                sums[cell.reduction][e, PRIMITIVES.index(op)] += cost(k)
    return CostModel(normal=sums[False].float(), reduce=sums[True].float(), fixed=float(fixed), unit=unit)


def survival_and_choice(weights: torch.Tensor, steps: int = DARTS_STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """From softmax(α) [14, 8]: per-edge survival probability [14] and op-given-survival [14, 8] (none = 0)."""
    choosable = weights.clone()
    choosable[:, _NONE] = 0.0
    mass = choosable.sum(dim=1, keepdim=True).clamp_min(1e-12)
    choice = choosable / mass
    strength = choosable.max(dim=1).values
    survival = []
    for node in range(steps):
        rows = [edge_index(node, j) for j in range(2 + node)]
        s = strength[rows]
        if len(rows) == 2:  # a node with exactly two inputs always keeps both
            survival.append(torch.ones_like(s))
        else:
            survival.append(torch.clamp(2.0 * s / s.sum().clamp_min(1e-12), max=1.0))
    return torch.cat(survival), choice


def expected_cost(model: CostModel, alphas_normal: torch.Tensor, alphas_reduce: torch.Tensor) -> torch.Tensor:
    """E[cost] of the architecture the supernet will discretize to; differentiable w.r.t. both α."""
    total = torch.tensor(model.fixed, dtype=alphas_normal.dtype, device=alphas_normal.device)
    for alphas, table in ((alphas_normal, model.normal), (alphas_reduce, model.reduce)):
        survival, choice = survival_and_choice(torch.softmax(alphas, dim=-1))
        per_edge = (choice * table.to(alphas.device, alphas.dtype)).sum(dim=1)
        total = total + (survival * per_edge).sum()
    return total
