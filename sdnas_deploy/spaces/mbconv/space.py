"""A layer-wise (MBConv) search space behind the Space protocol, parametrized by its definition.

:class:`LayerwiseDefinition` says what a space is — candidates, activation, which candidates are identities,
its settings (:class:`~.layout.Layout`), published architectures — and :class:`LayerwiseSpace` implements the
protocol for any such definition, so FBNet and ProxylessNAS (``spaces.py``) are data, not code.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ...errors import BadInputError
from ..base import Setting, Supernet, body_without_space
from ..blockwise import BlockwiseSpace
from ..fixed_geometry import FixedLayoutSpace, SettingGeometry
from . import latency
from .arch import LayerArch, arch_from_body, arch_from_line, stages_to_json
from .layout import Layout, Stage, with_stages
from .network import LayerwiseNetwork, LayerwiseSupernet, allowed_matrix

@dataclass(frozen=True)
class LayerGeometry(SettingGeometry):
    """A layer-wise deployment network: setting (its layout), input side, input channels, classes."""


@dataclass(frozen=True)
class LayerwiseDefinition:
    """Everything that makes one layer-wise space (see module docstring)."""

    name: str
    description: str
    candidates: tuple[str, ...]
    act: str
    layouts: Mapping[str, Layout]
    identity_ops: tuple[str, ...]  # candidates that become an identity where shapes agree
    identity_anywhere: bool  # FBNet's skip works everywhere (1x1 conv where shapes change); zero only where they agree
    default_setting: str
    search_setting: str
    expand_conv: bool = True  # keep the expansion 1x1 at expansion 1 (FBNet does)
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> blocks (default setting)


class LayerwiseSpace(FixedLayoutSpace, BlockwiseSpace):
    """The protocol for one :class:`LayerwiseDefinition`; architectures are :class:`LayerArch`. Also blockwise
    (DNA): a block is one stage of the layout."""

    relaxations = ("softmax", "gumbel")
    geometry_type = LayerGeometry

    def __init__(self, definition: LayerwiseDefinition) -> None:
        self.d = definition
        self.name = definition.name
        self.description = definition.description
        self.default_setting = definition.default_setting
        self.search_setting = definition.search_setting
        self.candidates = definition.candidates
        self.key_ops = definition.candidates + latency.FIXED_OPS
        self.settings = {
            name: Setting(name=name, description=lay.description, input_size=lay.input_size,
                          mac_budget=lay.mac_budget, train_reference=lay.train_reference, auxiliary=False,
                          table_input_size=lay.table_input_size, table_num_classes=lay.table_num_classes)
            for name, lay in definition.layouts.items()
        }

    # ---- helpers -------------------------------------------------------------------------------
    def layout(self, setting: str | None) -> Layout:
        return self.d.layouts[self.setting(setting).name]

    def arch_layout(self, arch: LayerArch, setting: str | None) -> Layout:
        """The layout ``arch`` is built in: the setting's, with the architecture's own stages if it has them."""
        return with_stages(self.layout(setting), arch.stages)

    def allowed(self, setting: str | None, layout: Layout | None = None) -> list[list[bool]]:
        """Per layer and candidate, whether the layer may take it (``layout``: instead of the setting's)."""
        restricted = () if self.d.identity_anywhere else self.d.identity_ops
        return allowed_matrix(layout or self.layout(setting), self.d.candidates, restricted)

    # ---- codec ---------------------------------------------------------------------------------
    def arch_from_dict(self, data: Any, source: str = "architecture") -> LayerArch:
        arch, setting = arch_from_body(body_without_space(data, self.name, source), self.d.candidates, source)
        if setting is not None:
            self.check_arch(arch, setting, source)
        return arch

    def arch_body(self, arch: LayerArch) -> dict[str, Any]:
        body: dict[str, Any] = {"blocks": list(arch.blocks)}
        if arch.stages is not None:
            body["stages"] = stages_to_json(arch.stages)
        return body

    def arch_to_string(self, arch: LayerArch) -> str:
        return arch.to_string()

    def arch_from_string(self, text: str) -> LayerArch:
        return arch_from_line(text, self.d.candidates)

    def references(self) -> dict[str, LayerArch]:
        return {name: LayerArch(tuple(blocks)) for name, blocks in self.d.references.items()}

    def sample(self, rng: random.Random, setting: str | None = None) -> LayerArch:
        allowed = self.allowed(setting)
        return LayerArch(tuple(rng.choice([c for c, ok in zip(self.d.candidates, row) if ok]) for row in allowed))

    def summary(self, arch: LayerArch) -> dict[str, Any]:
        counts = Counter(arch.blocks)
        return {"identity_layers": sum(counts[op] for op in self.d.identity_ops),
                "block_counts": dict(sorted(counts.items()))}

    def setting_for(self, arch: LayerArch) -> str:
        """The default setting if its layer count fits, else the one setting whose layer count does."""
        fits = [name for name, lay in self.d.layouts.items()
                if with_stages(lay, arch.stages).num_layers == len(arch.blocks)]
        if self.default_setting in fits or len(fits) != 1:
            return self.default_setting
        return fits[0]

    def check_arch(self, arch: LayerArch, setting: str, source: str = "architecture") -> None:
        layout = self.arch_layout(arch, setting)
        if len(arch.blocks) != layout.num_layers:
            raise BadInputError(f"{source}: {len(arch.blocks)} blocks, but setting {layout.name!r} of space "
                                f"{self.name!r} has {layout.num_layers} searchable layers; give one block per layer")
        for i, (block, row) in enumerate(zip(arch.blocks, self.allowed(setting, layout))):
            if not row[self.d.candidates.index(block)]:
                raise BadInputError(f"{source}: layer {i}: block {block!r} is not allowed there (stride or width "
                                    f"changes, so the layer cannot be left out); pick an MBConv block")

    # ---- settings and networks -----------------------------------------------------------------
    def build_network(self, arch: LayerArch, geometry: LayerGeometry, auxiliary: bool = False) -> nn.Module:
        if auxiliary:
            raise BadInputError(f"space {self.name!r} has no auxiliary head; train with --no-auxiliary")
        self.check_arch(arch, geometry.setting)
        return LayerwiseNetwork(self.arch_layout(arch, geometry.setting), arch.blocks, self.d.act, geometry.in_channels,
                                geometry.num_classes, expand_conv=self.d.expand_conv)

    # ---- search --------------------------------------------------------------------------------
    def build_supernet(self, geometry: LayerGeometry) -> Supernet:
        restricted = () if self.d.identity_anywhere else self.d.identity_ops
        return LayerwiseSupernet(self.layout(geometry.setting), self.d.candidates, restricted, self.d.act,
                                 geometry.in_channels, geometry.num_classes, expand_conv=self.d.expand_conv)

    def choice_names(self, label: str) -> list[str]:
        return list(self.d.candidates)

    def draw(self, arch: LayerArch, path: Any, setting: str | None = None, engine: str = "auto") -> str:
        """A strip of the searchable layers, coloured by kernel and expansion, with each stage's size under it."""
        from ..drawing import StripBlock, draw_strip

        layout = self.arch_layout(arch, setting or self.setting_for(arch))
        size = layout.input_size or layout.table_input_size
        size = -(-size // layout.stem_stride)
        blocks, k = [], 0
        for stage in layout.stages:
            size = -(-size // stage.stride)
            for i in range(stage.layers):
                note = f"{size}x{size}\n{stage.width}ch" if i == 0 else None
                blocks.append(StripBlock(arch.blocks[k], note))
                k += 1
        return draw_strip(blocks, f"{self.name} ({layout.name}): {len(arch.blocks)} layers", path)

    def discretize(self, arch: LayerArch, supernet: Supernet) -> dict[str, torch.Tensor]:
        alpha = supernet.alpha("layers")
        mask = torch.zeros_like(alpha, requires_grad=False)
        if len(arch.blocks) != alpha.shape[0]:
            raise BadInputError(f"architecture has {len(arch.blocks)} blocks, the supernet {alpha.shape[0]} layers")
        for i, block in enumerate(arch.blocks):
            mask[i, self.d.candidates.index(block)] = 1.0
        return {"layers": mask.detach()}

    def arch_from_choices(self, choices: Mapping[str, list[int]], supernet: Supernet) -> LayerArch:
        arch = LayerArch(tuple(self.d.candidates[k] for k in choices["layers"]))
        setting = next((name for name, lay in self.d.layouts.items()
                        if lay == getattr(supernet, "init_args", {}).get("layout")), None)
        if setting is not None:
            self.check_arch(arch, setting, "budgeted derive")
        return arch

    # ---- latency tables ------------------------------------------------------------------------
    def network_keys(self, arch: LayerArch, geometry: LayerGeometry) -> Counter[str]:
        self.check_arch(arch, geometry.setting)
        return latency.network_keys(self.arch_layout(arch, geometry.setting), arch.blocks, geometry)

    def candidate_keys(self, geometry: LayerGeometry) -> list[str]:
        return latency.candidate_keys(self.layout(geometry.setting), self.allowed(geometry.setting),
                                      self.d.candidates, geometry)

    def build_op(self, key: str, geometry: LayerGeometry) -> tuple[nn.Module, tuple[int, int, int, int]]:
        return latency.build_op(self.layout(geometry.setting), self.d.act, self.d.expand_conv, key, geometry,
                                self.key_ops)

    def cost_model(self, geometry: LayerGeometry, cost: Callable[[str], float], overhead: float = 0.0,
                   unit: str = "ms") -> latency.LayerCostModel:
        return self.cost_model_at(self.layout(geometry.setting), geometry, cost, overhead, unit)

    def cost_model_at(self, layout: Layout, geometry: LayerGeometry, cost: Callable[[str], float],
                      overhead: float = 0.0, unit: str = "ms") -> latency.LayerCostModel:
        """:meth:`cost_model` of another layout of the setting (a DNA student's teacher-matched stages)."""
        return latency.cost_model(layout, self.allowed(geometry.setting, layout), self.d.candidates, geometry, cost,
                                  overhead, unit)

    @property
    def identity_restricted(self) -> tuple[str, ...]:
        """Candidates allowed only where a layer's input and output shapes agree (ProxylessNAS' zero)."""
        return () if self.d.identity_anywhere else self.d.identity_ops

    def traced_keys(self, arch: LayerArch, geometry: LayerGeometry) -> Counter[str]:
        return latency.traced_keys(self.build_network(arch, geometry), geometry)

    def feature_points(self, network: nn.Module) -> list[tuple[str, nn.Module]]:
        points = [("stem", network.stem)] + ([("first", network.first)] if network.first is not None else [])
        return points + [(f"layers.{i}", layer) for i, layer in enumerate(network.layers)]

    # ---- blockwise (DNA) -----------------------------------------------------------------------
    def block_count(self, setting: str) -> int:
        return len(self.layout(setting).stages)

    def stem_stride(self, setting: str) -> int:
        return self.layout(setting).stem_stride

    def teacher_stages(self, setting: str, strides: Sequence[int], out_widths: Sequence[int]) -> tuple[Stage, ...] | None:
        own = self.layout(setting).stages
        stages = tuple(Stage(s.width, s.layers, stride, width) for s, stride, width in zip(own, strides, out_widths,
                                                                                          strict=True))
        same = all((s.width, s.layers, s.stride, s.last_width) == (t.width, t.layers, t.stride, t.last_width)
                   for s, t in zip(own, stages))
        return None if same else stages

    def stage_rows(self, setting: str, stages: tuple[Stage, ...] | None) -> list[dict[str, int]]:
        return [s.to_dict() for s in with_stages(self.layout(setting), stages).stages]

    def blockwise_student(self, setting: str, stages: tuple[Stage, ...] | None, in_channels: int,
                          input_size: int) -> nn.Module:
        from .blockwise import BlockwiseStudent

        return BlockwiseStudent(with_stages(self.layout(setting), stages), self.d.candidates, self.identity_restricted,
                                self.d.act, self.d.expand_conv, in_channels, input_size)

    def layer_options(self, setting: str, stages: tuple[Stage, ...] | None) -> list[list[int]]:
        allowed = self.allowed(setting, with_stages(self.layout(setting), stages))
        return [[k for k, ok in enumerate(row) if ok] for row in allowed]

    def layer_cost_table(self, setting: str, stages: tuple[Stage, ...] | None, geometry: LayerGeometry,
                         cost: Callable[[str], float], overhead: float, unit: str) -> tuple[list[list[float]], float]:
        model = self.cost_model_at(with_stages(self.layout(setting), stages), geometry, cost, overhead, unit)
        return model.table.double().tolist(), float(model.fixed)

    def arch_from_layer_choices(self, setting: str, stages: tuple[Stage, ...] | None,
                                choices: Sequence[int]) -> LayerArch:
        arch = LayerArch(tuple(self.d.candidates[k] for k in choices), stages)
        self.check_arch(arch, setting, "blockwise selection")
        return arch
