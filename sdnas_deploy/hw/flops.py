"""FLOPs tables: multiply-adds per latency-table key, so a FLOPs budget needs no device (DESIGN.md §2).

Every key is built alone with :func:`measure.build_op` (the operator exactly as deployed) and counted
with ``nets.complexity.count_macs`` — the DARTS rule: conv + linear multiply-accumulates via fvcore,
BatchNorm, pools, adds and ReLU not counted. The unit everywhere is **MMAC** (millions of multiply-adds),
the same number ``sdnas inspect`` reports as ``macs_m``. Because the network is a sum of its keys
(stems, cell preprocessing, edge ops, pool + classifier), ``predict_flops`` equals ``count_macs`` of the
built network exactly.
"""

from __future__ import annotations

from functools import lru_cache

from ..space.genotype import Genotype
from .expected import CostModel, build_cost_model
from .geometry import NetworkGeometry, network_keys

UNIT = "MMAC"


@lru_cache(maxsize=None)
def _cached_flops(key: str, geometry: NetworkGeometry) -> float:
    from ..nets.complexity import count_macs
    from .measure import build_op

    module, input_shape = build_op(key, geometry)
    return count_macs(module, input_shape).macs / 1e6


def flops_of(key: str, geometry: NetworkGeometry) -> float:
    """Multiply-adds of the operator ``key`` names at ``geometry``, in MMAC (cached per geometry and key)."""
    return _cached_flops(key, geometry)


def predict_flops(genotype: Genotype, geometry: NetworkGeometry) -> float:
    """Multiply-adds of the network ``genotype`` builds at ``geometry``, in MMAC (Σ count · flops_of)."""
    keys = network_keys(genotype, geometry)
    return sum(count * flops_of(k, geometry) for k, count in sorted(keys.items()))


def flops_cost_model(geometry: NetworkGeometry) -> CostModel:
    """Cost model in MMAC for ``expected_cost``: differentiable expected multiply-adds of the derived network."""
    return build_cost_model(geometry, lambda k: flops_of(k, geometry), overhead=0.0, unit=UNIT)
