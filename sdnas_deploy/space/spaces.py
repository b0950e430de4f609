"""Registry of search spaces: what a search builds and how it discretizes.

Only the DARTS cell space ships today; the registry keeps the searcher independent of it so a
second space (e.g. a DNA-style MBConv space) plugs in under a new name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..registry import lookup, register_into
from .genotype import Genotype, derive_genotype
from .ops import PRIMITIVES
from .supernet import SearchNetwork, discretized_weights


@dataclass(frozen=True)
class SpaceSpec:
    """A search space: its candidate op names and the functions the searcher calls."""

    name: str
    primitives: tuple[str, ...]
    build_supernet: Callable[..., nn.Module]
    derive: Callable[[Any, Any], Genotype]
    discretize: Callable[[Genotype], tuple[torch.Tensor, torch.Tensor]]
    description: str = ""


SPACES: dict[str, SpaceSpec] = {}


def _build_darts_supernet(**kwargs: Any) -> SearchNetwork:
    """``SearchNetwork(C, num_classes, layers, in_channels=3, steps=4, multiplier=4, stem_multiplier=3)``."""
    return SearchNetwork(**kwargs)


register_into(SPACES, "darts")(
    SpaceSpec(
        name="darts",
        primitives=tuple(PRIMITIVES),
        build_supernet=_build_darts_supernet,
        derive=derive_genotype,
        discretize=discretized_weights,
        description="DARTS cell space: 8 ops, 4 nodes, 14 edges, normal + reduction cells",
    )
)


def get_space(name: str) -> SpaceSpec:
    """The registered space ``name`` (BadInputError with a suggestion if unknown)."""
    return lookup(SPACES, name, "search space")
