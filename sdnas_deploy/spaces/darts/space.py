"""The DARTS cell space behind the Space protocol (DESIGN.md §1): 8 ops, 4 nodes, 14 edges, normal + reduce.

Everything DARTS-specific lives in this folder: ops, genotypes, the supernet, the CIFAR/mobile networks,
their geometry and latency-table keys, and the survival-weighted expected cost. This class only wires
them to the protocol.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Callable

import torch
from torch import nn

from ..base import Setting, Space, Supernet, body_without_space
from ..partial import SUPERNET_OPTIONS
from .build_op import build_op, traced_keys
from .expected import CostModel, build_cost_model
from .genotype import REFERENCE_GENOTYPES, Genotype, from_arch_string, skip_count, to_arch_string
from .geometry import KEY_OPS, NetworkGeometry, candidate_keys, network_keys, random_genotype
from .ops import PRIMITIVES
from .settings import SETTINGS, TRAIN_REFERENCE, build_network
from .supernet import SearchNetwork, discretized_weights

SEARCH_LAYERS = 8  # DARTS reference: the search supernet has 8 cells ...
SEARCH_CHANNELS = 16  # ... of 16 initial channels


def _setting(name: str) -> Setting:
    spec = SETTINGS[name]
    return Setting(name=name, description=spec.description, input_size=spec.input_size, mac_budget=spec.mac_budget,
                   train_reference=TRAIN_REFERENCE[name], auxiliary=True, table_input_size=spec.input_size or 32)


class DartsSpace(Space):
    """``darts``: the DARTS cell space; architectures are :class:`Genotype` objects."""

    name = "darts"
    description = "DARTS cell space: 8 ops per edge, 4 nodes / 14 edges per cell, normal + reduction cells"
    settings = {name: _setting(name) for name in SETTINGS}
    default_setting = "cifar"
    search_setting = "cifar"
    key_ops = KEY_OPS
    relaxations = ("softmax", "gumbel")
    supernet_options = SUPERNET_OPTIONS

    # ---- codec ---------------------------------------------------------------------------------
    def arch_from_dict(self, data: Any, source: str = "genotype") -> Genotype:
        return Genotype.from_dict(body_without_space(data, self.name, source), source=source)

    def arch_body(self, arch: Genotype) -> dict[str, Any]:
        return arch.to_dict()

    def arch_to_string(self, arch: Genotype) -> str:
        return to_arch_string(arch)

    def arch_from_string(self, text: str) -> Genotype:
        return from_arch_string(text)

    def references(self) -> dict[str, Genotype]:
        return dict(REFERENCE_GENOTYPES)

    def sample(self, rng: random.Random, setting: str | None = None) -> Genotype:
        return random_genotype(rng)

    def summary(self, arch: Genotype) -> dict[str, Any]:
        return {"skip_count_normal": skip_count(arch, "normal"), "skip_count_reduce": skip_count(arch, "reduce")}

    # ---- settings and networks -----------------------------------------------------------------
    def geometry(self, setting: str | None = None, input_size: int | None = None, in_channels: int = 3,
                 num_classes: int = 10, layers: int | None = None, channels: int | None = None) -> NetworkGeometry:
        setting = self.setting(setting).name
        return NetworkGeometry.from_setting(setting, input_size=input_size, layers=layers, channels=channels,
                                            in_channels=in_channels, num_classes=num_classes)

    def search_geometry(self, input_size: int, in_channels: int, num_classes: int, setting: str | None = None,
                        layers: int | None = None, channels: int | None = None) -> NetworkGeometry:
        """The search supernet's sizes: 8 cells x 16 channels unless given (DARTS reference)."""
        return NetworkGeometry("cifar", SEARCH_LAYERS if layers is None else layers,
                               SEARCH_CHANNELS if channels is None else channels, input_size, in_channels, num_classes)

    def deploy_setting(self, search_setting: str | None) -> str:
        """Cells deploy in any setting; costs default to the CIFAR network."""
        return self.default_setting

    def geometry_from_dict(self, data: Any, source: str = "geometry") -> NetworkGeometry:
        return NetworkGeometry.from_dict(data, source)

    def feature_points(self, network: nn.Module) -> list[tuple[str, nn.Module]]:
        stem = ("stem", network.stem) if hasattr(network, "stem") else ("stem1", network.stem1)
        return [stem] + [(f"cells.{i}", cell) for i, cell in enumerate(network.cells)]

    def build_network(self, arch: Genotype, geometry: NetworkGeometry, auxiliary: bool = False) -> nn.Module:
        return build_network(arch, geometry.setting, geometry.num_classes, in_channels=geometry.in_channels,
                             layers=geometry.layers, channels=geometry.channels, auxiliary=auxiliary)

    # ---- search --------------------------------------------------------------------------------
    def build_supernet(self, geometry: NetworkGeometry, partial_channels: int = 1, edge_norm: bool = False) -> SearchNetwork:
        return SearchNetwork(C=geometry.channels, num_classes=geometry.num_classes, layers=geometry.layers,
                             in_channels=geometry.in_channels, partial_channels=partial_channels, edge_norm=edge_norm)

    def choice_names(self, label: str) -> list[str]:
        return list(PRIMITIVES)

    def draw(self, arch: Genotype, path: Any, setting: str | None = None, engine: str = "auto") -> str:
        """The normal and reduction cells side by side, as DARTS' visualize.py draws them."""
        from ..drawing import CellGraph, draw_cells

        cells = []
        for cell in ("normal", "reduce"):
            entries, concat = arch.cell(cell)
            steps = len(entries) // 2
            name = lambda j: ("c_{k-2}", "c_{k-1}")[j] if j < 2 else str(j - 2)  # noqa: E731
            edges = [(name(index), str(k // 2), op) for k, (op, index) in enumerate(entries)]
            edges += [(name(j), "c_{k}", "concat") for j in concat]
            cells.append(CellGraph(f"{cell} cell", ("c_{k-2}", "c_{k-1}"), tuple(str(i) for i in range(steps)),
                                   ("c_{k}",), tuple(edges)))
        return draw_cells(cells, path, engine)

    def discretize(self, arch: Genotype, supernet: Supernet) -> dict[str, torch.Tensor]:
        device = supernet.arch_parameters()[0].device
        return discretized_weights(arch, device=device)

    # ---- latency tables ------------------------------------------------------------------------
    def network_keys(self, arch: Genotype, geometry: NetworkGeometry) -> Counter[str]:
        return network_keys(arch, geometry)

    def candidate_keys(self, geometry: NetworkGeometry) -> list[str]:
        return candidate_keys(geometry)

    def build_op(self, key: str, geometry: NetworkGeometry) -> tuple[nn.Module, tuple[int, int, int, int]]:
        return build_op(key, geometry)

    def traced_keys(self, arch: Genotype, geometry: NetworkGeometry) -> Counter[str]:
        return traced_keys(self.build_network(arch, geometry), arch, geometry)

    def cost_model(self, geometry: NetworkGeometry, cost: Callable[[str], float], overhead: float = 0.0,
                   unit: str = "ms") -> CostModel:
        return build_cost_model(geometry, cost, overhead=overhead, unit=unit)
