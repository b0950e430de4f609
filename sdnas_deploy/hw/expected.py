"""Expected cost of the network a supernet will discretize to, differentiable in α (DESIGN.md §2).

The cost structure is the space's (``Space.cost_model``: the DARTS cell weights each edge by its chance of
surviving discretization; a layer-wise space sums per-layer mixtures); this module builds it from a latency
table, and :func:`expected_cost` evaluates it at α given by label.
"""

from __future__ import annotations

from typing import Mapping

import torch

from ..spaces.base import CostModel
from .lut import LatencyTable


def latency_cost_model(table: LatencyTable) -> CostModel:
    """Cost model in ms from a latency table (its space, geometry, entry means and per-call overhead)."""
    return table.space_impl.cost_model(table.geometry, table.lookup, overhead=table.overhead_ms, unit="ms")


def expected_cost(model: CostModel, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """E[cost] at α (label → tensor); differentiable."""
    return model.expected(alphas)
