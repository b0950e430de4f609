"""The DARTS search space: candidate ops, genotypes, the supernet and the space registry."""

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
from .spaces import SPACES, SpaceSpec, get_space
from .supernet import MixedOp, SearchCell, SearchNetwork, discretized_weights

__all__ = [
    "DARTS_V1", "DARTS_V2", "REFERENCE_GENOTYPES", "Genotype", "derive_genotype", "from_arch_string",
    "load_genotype", "parse_genotype", "save_genotype", "skip_count", "to_arch_string", "OPS", "PRIMITIVES",
    "SPACES", "SpaceSpec", "get_space", "MixedOp", "SearchCell", "SearchNetwork", "discretized_weights",
]
