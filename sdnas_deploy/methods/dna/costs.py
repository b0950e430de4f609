"""Per-layer costs of every candidate of a student layout, so a block path's cost is a sum (exact selection).

Three metrics, each additive over the latency-table keys of the space: multiply-adds (MMAC, ``hw.flops``),
parameters (millions, the key's operator built and counted) and latency (ms, the target's table through the
space's keys, plus the table's overhead). Identity layers cost 0; stem, first block, head and classifier are the
fixed part every architecture pays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ...spaces.blockwise import BlockwiseSpace

METRICS = {"mmac": "MMAC", "params_m": "M params", "latency_ms": "ms"}


@dataclass(frozen=True)
class LayerCosts:
    """``table[l][k]``: cost of candidate k at searchable layer l; ``fixed``: the shared part; ``unit``."""

    metric: str
    table: list[list[float]]
    fixed: float
    unit: str

    def path_cost(self, layers: Sequence[int], path: Sequence[int]) -> float:
        """Cost of ``path`` (candidate indices) on the searchable ``layers`` (indices), fixed part excluded."""
        return float(sum(self.table[layer][k] for layer, k in zip(layers, path, strict=True)))

    def arch_cost(self, choices: Sequence[int]) -> float:
        """Cost of a whole architecture (one candidate index per layer), fixed part included."""
        return self.fixed + self.path_cost(range(len(choices)), choices)


def _params_m(space: Any, geometry: Any) -> Callable[[str], float]:
    cache: dict[str, float] = {}

    def cost(key: str) -> float:
        if key not in cache:
            module, _ = space.build_op(key, geometry)
            cache[key] = sum(p.numel() for p in module.parameters()) / 1e6
        return cache[key]

    return cost


def layer_costs(space: BlockwiseSpace, setting: str, stages: Any, geometry: Any, metric: str,
                table: Any = None) -> LayerCosts:
    """The :class:`LayerCosts` of ``metric`` (``mmac``, ``params_m``, or ``latency_ms`` with a latency ``table``)
    for the student of ``space``/``setting`` with ``stages``."""
    overhead = 0.0
    if metric == "mmac":
        from ...hw.flops import flops_of

        cost: Callable[[str], float] = lambda key: flops_of(space, key, geometry)  # noqa: E731
    elif metric == "params_m":
        cost = _params_m(space, geometry)
    elif metric == "latency_ms":
        cost, overhead = table.lookup, float(table.overhead_ms)
    else:
        raise ValueError(f"unknown cost metric {metric!r}")
    table_, fixed = space.layer_cost_table(setting, stages, geometry, cost, overhead, METRICS[metric])
    return LayerCosts(metric, table_, fixed, METRICS[metric])
