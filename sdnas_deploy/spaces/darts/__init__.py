"""The DARTS cell space (DESIGN.md §1): ops, genotypes, supernet, networks, geometry and latency keys."""

from __future__ import annotations

from .genotype import (
    DARTS_V1,
    DARTS_V2,
    REFERENCE_GENOTYPES,
    Genotype,
    derive_genotype,
    from_arch_string,
    load_genotype,
    parse_genotype,
    save_genotype,
    skip_count,
    to_arch_string,
)
from .ops import OPS, PRIMITIVES
from .supernet import MixedOp, SearchCell, SearchNetwork, discretized_weights

__all__ = [
    "DARTS_V1", "DARTS_V2", "REFERENCE_GENOTYPES", "Genotype", "derive_genotype", "from_arch_string",
    "load_genotype", "parse_genotype", "save_genotype", "skip_count", "to_arch_string", "OPS", "PRIMITIVES",
    "MixedOp", "SearchCell", "SearchNetwork", "discretized_weights",
]
