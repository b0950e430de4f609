"""The NAS-Bench-201 space behind the Space protocol (Dong & Yang, ICLR 2020; DESIGN.md §10).

``cifar`` is the benchmark's network exactly (C=16, N=5 cells per stage, the dataset's image size; the public
device measurements in HELP/HW-NAS-Bench are of this network at 32x32); ``small`` (ours: C=8, N=1) is for
searches on the embedded 16x16 digits on two CPU cores. A searched cell deploys in any setting; its cost is
that of the ``cifar`` network unless a setting is named.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ...errors import BadInputError
from ..base import Setting, Supernet, body_without_space
from ..partial import SUPERNET_OPTIONS
from ..fixed_geometry import FixedLayoutSpace, SettingGeometry
from . import latency
from .arch import EDGES, NODES, CellArch, arch_from_body, arch_from_line, connected, summary
from .network import Nb201Network, Nb201Supernet, Plan
from .ops import OPS

# NB201's training recipe (200 epochs, SGD 0.1 momentum 0.9 Nesterov, cosine, wd 5e-4, batch 256); Nesterov is not
# offered by `sdnas train` (plain momentum, ours).
_NB201_RECIPE = {"epochs": 200, "batch_size": 256, "lr": 0.1, "lr_schedule": "cosine", "weight_decay": 5e-4,
                 "cutout": 0, "label_smoothing": 0.0, "auxiliary": False}
_SMALL_RECIPE = {"epochs": 100, "batch_size": 96, "lr": 0.05, "lr_schedule": "cosine", "weight_decay": 5e-4,
                 "cutout": 4, "label_smoothing": 0.0, "auxiliary": False}  # ours
PLANS = {"cifar": Plan(channels=16, cells=5), "small": Plan(channels=8, cells=1)}
SETTINGS = {
    "cifar": Setting("cifar", "NAS-Bench-201 network: C=16, 5 cells per stage, residual reductions (dataset size)",
                     input_size=None, train_reference=_NB201_RECIPE, table_input_size=32,
                     table_num_classes=100),  # as the public tables: HELP's NB201 experiments are on CIFAR-100
    "small": Setting("small", "ours: NB201 skeleton at C=8, 1 cell per stage (CPU-sized data)", input_size=None,
                     train_reference=_SMALL_RECIPE, table_input_size=16),
}
REFERENCES = {  # the best NB201 cell on CIFAR-10 (benchmark index 9930: 94.37% test) and ResNet-like cell
    "nb201_best_cifar10": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                          "nor_conv_3x3~2|",
    "nb201_resnet": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
}


@dataclass(frozen=True)
class Nb201Geometry(SettingGeometry):
    """An NB201 deployment network: setting (C and N), input side (a multiple of 4), input channels, classes."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_size % 4:
            raise BadInputError(f"nb201 input size {self.input_size} is not a multiple of 4 (two stride-2 reductions); "
                                "resize with --image-size, e.g. 16 or 32")


class Nb201Space(FixedLayoutSpace):
    """``nb201``: architectures are :class:`CellArch` (six edges)."""

    name = "nb201"
    description = "NAS-Bench-201 cell space: 5 ops per edge, 4 nodes / 6 edges, one cell type, 3 stages x N cells"
    settings = SETTINGS
    default_setting = "cifar"
    search_setting = "small"
    key_ops = latency.KEY_OPS
    relaxations = ("softmax", "gumbel")
    supernet_options = SUPERNET_OPTIONS
    geometry_type = Nb201Geometry

    # ---- codec ---------------------------------------------------------------------------------
    def arch_from_dict(self, data: Any, source: str = "architecture") -> CellArch:
        return arch_from_body(body_without_space(data, self.name, source), source)

    def arch_body(self, arch: CellArch) -> dict[str, Any]:
        return {"edges": list(arch.edges), "arch": arch.to_string()}

    def arch_to_string(self, arch: CellArch) -> str:
        return arch.to_string()

    def arch_from_string(self, text: str) -> CellArch:
        return arch_from_line(text)

    def references(self) -> dict[str, CellArch]:
        return {name: arch_from_line(text, name) for name, text in REFERENCES.items()}

    def sample(self, rng: random.Random, setting: str | None = None) -> CellArch:
        return CellArch(tuple(rng.choice(OPS) for _ in EDGES))

    def summary(self, arch: CellArch) -> dict[str, Any]:
        return summary(arch)

    def degenerate(self, arch: CellArch) -> str | None:
        if connected(arch):
            return None
        return "every path from the cell input to its output passes a 'none' edge (the network ignores its input)"

    # ---- settings and networks -----------------------------------------------------------------
    def deploy_setting(self, search_setting: str | None) -> str:
        """A cell deploys in any setting; costs default to the benchmark's network (what device tables measure)."""
        return self.default_setting

    def plan(self, geometry: Nb201Geometry) -> Plan:
        return PLANS[self.setting(geometry.setting).name]

    def feature_points(self, network: nn.Module) -> list[tuple[str, nn.Module]]:
        names = {id(m): name for name, m in network.named_modules()}
        return [("stem", network.stem)] + [(names[id(m)], m) for m in network._stage_modules()]

    def build_network(self, arch: CellArch, geometry: Nb201Geometry, auxiliary: bool = False) -> nn.Module:
        if auxiliary:
            raise BadInputError("space 'nb201' has no auxiliary head; train with --no-auxiliary")
        return Nb201Network(arch, self.plan(geometry), geometry.in_channels, geometry.num_classes)

    # ---- search --------------------------------------------------------------------------------
    def build_supernet(self, geometry: Nb201Geometry, partial_channels: int = 1, edge_norm: bool = False) -> Supernet:
        return Nb201Supernet(self.plan(geometry), geometry.in_channels, geometry.num_classes, partial_channels,
                             edge_norm)

    def choice_names(self, label: str) -> list[str]:
        return list(OPS)

    def draw(self, arch: CellArch, path: Any, setting: str | None = None, engine: str = "auto") -> str:
        """The one NB201 cell: node 0 is its input, node 3 its output; ``none`` edges are left out."""
        from ..drawing import CellGraph, draw_cells

        label = lambda n: "in" if n == 0 else ("out" if n == NODES - 1 else str(n))  # noqa: E731
        edges = tuple((label(src), label(node), op) for (node, src), op in zip(EDGES, arch.edges) if op != "none")
        cell = CellGraph("NB201 cell", ("in",), tuple(str(n) for n in range(1, NODES - 1)), ("out",), edges)
        return draw_cells([cell], path, engine)

    def discretize(self, arch: CellArch, supernet: Supernet) -> dict[str, torch.Tensor]:
        alpha = supernet.alpha("edges")
        mask = torch.zeros_like(alpha, requires_grad=False)
        for i, op in enumerate(arch.edges):
            mask[i, OPS.index(op)] = 1.0
        return {"edges": mask.detach()}

    def arch_from_choices(self, choices: Mapping[str, list[int]], supernet: Supernet) -> CellArch:
        return CellArch(tuple(OPS[k] for k in choices["edges"]))

    # ---- latency tables ------------------------------------------------------------------------
    def network_keys(self, arch: CellArch, geometry: Nb201Geometry) -> Counter[str]:
        return latency.network_keys(arch, self.plan(geometry), geometry)

    def candidate_keys(self, geometry: Nb201Geometry) -> list[str]:
        return latency.candidate_keys(self.plan(geometry), geometry)

    def build_op(self, key: str, geometry: Nb201Geometry) -> tuple[nn.Module, tuple[int, int, int, int]]:
        return latency.build_op(key, geometry)

    def traced_keys(self, arch: CellArch, geometry: Nb201Geometry) -> Counter[str]:
        return latency.traced_keys(self.build_network(arch, geometry), geometry)

    def cost_model(self, geometry: Nb201Geometry, cost: Callable[[str], float], overhead: float = 0.0,
                   unit: str = "ms") -> latency.CellCostModel:
        return latency.cost_model(self.plan(geometry), geometry, cost, overhead, unit)
