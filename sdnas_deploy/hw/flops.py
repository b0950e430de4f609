"""FLOPs tables: multiply-adds per latency-table key, so a FLOPs budget needs no device (DESIGN.md §2).

Every key is built alone with the space's ``build_op`` (the operator exactly as deployed) and counted
with ``spaces.complexity.count_macs`` — the DARTS/FBNet/ProxylessNAS papers' rule: conv + linear
multiply-accumulates via fvcore, BatchNorm, pools, adds, activations and channel shuffles not counted.
The unit everywhere is **MMAC** (millions of multiply-adds), the same number ``sdnas inspect`` reports as
``macs_m``. Because a network is the sum of its keys, ``predict_flops`` equals ``count_macs`` of the built
network exactly (a conformance test checks it for every space).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..spaces import Geometry, Space, get_space
from ..spaces.base import CostModel

UNIT = "MMAC"


@lru_cache(maxsize=None)
def _cached_flops(space: str, key: str, geometry: Geometry) -> float:
    from ..spaces.complexity import count_macs

    module, input_shape = get_space(space).build_op(key, geometry)
    return count_macs(module, input_shape).macs / 1e6


def flops_of(space: Space, key: str, geometry: Geometry) -> float:
    """Multiply-adds of the operator ``key`` names at ``geometry``, in MMAC (cached per space, geometry and key)."""
    return _cached_flops(space.name, key, geometry)


def predict_flops(space: Space, arch: Any, geometry: Geometry) -> float:
    """Multiply-adds of the network ``arch`` builds at ``geometry``, in MMAC (Σ count · flops_of)."""
    keys = space.network_keys(arch, geometry)
    return sum(count * flops_of(space, k, geometry) for k, count in sorted(keys.items()))


def flops_cost_model(space: Space, geometry: Geometry) -> CostModel:
    """Cost model in MMAC: differentiable expected multiply-adds of the derived network."""
    return space.cost_model(geometry, lambda k: flops_of(space, k, geometry), overhead=0.0, unit=UNIT)
