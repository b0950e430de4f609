"""Layouts of layer-wise spaces: stem, optional fixed first block, searchable stages, head (DESIGN.md §8).

A :class:`Layout` is one deployment setting of a space; :func:`layer_plan` turns it and an input size into the
shapes every searchable layer sees (``ceil(H/2)`` for every stride-2 op, as padded odd-kernel convs give).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class Stage:
    """``layers`` searchable layers of output width ``width``; the first one has ``stride``. ``out_width`` (DNA):
    the last layer's output width when it differs — a DNA block's last layer outputs its teacher stage's width."""

    width: int
    layers: int
    stride: int
    out_width: int | None = None

    @property
    def last_width(self) -> int:
        return self.width if self.out_width is None else self.out_width

    def to_dict(self) -> dict[str, int]:
        data = {"width": self.width, "layers": self.layers, "stride": self.stride}
        if self.out_width is not None and self.out_width != self.width:
            data["out_width"] = self.out_width
        return data


@dataclass(frozen=True)
class Layout:
    """One setting's network: ``stem`` conv (width, stride), ``first`` fixed block (block string, width) or None,
    the searchable ``stages``, a 1x1 ``head`` conv width, then global pool and a linear classifier."""

    name: str
    description: str
    stem_width: int
    stem_stride: int
    stages: tuple[Stage, ...]
    head_width: int
    first: tuple[str, int] | None = None
    input_size: int | None = None  # None: the dataset's own size
    mac_budget: float | None = None
    train_reference: Mapping[str, Any] = field(default_factory=dict)
    table_input_size: int = 32
    table_num_classes: int | None = None  # classes of the table network (None: 1000 at 224 px, else 10)

    @property
    def num_layers(self) -> int:
        return sum(stage.layers for stage in self.stages)


@dataclass(frozen=True)
class LayerShape:
    """One searchable layer: index, input/output widths, stride, input/output side."""

    index: int
    c_in: int
    c_out: int
    stride: int
    hw_in: int
    hw_out: int


def half(size: int, stride: int) -> int:
    """Side after a padded odd-kernel conv of ``stride`` (1 or 2)."""
    return math.ceil(size / stride)


def stem_out(layout: Layout, input_size: int) -> tuple[int, int]:
    """(width, side) after the stem and the fixed first block."""
    side = half(input_size, layout.stem_stride)
    width = layout.stem_width if layout.first is None else layout.first[1]
    return width, side


def layer_plan(layout: Layout, input_size: int) -> list[LayerShape]:
    """Shapes of the searchable layers of ``layout`` at ``input_size``."""
    c, hw = stem_out(layout, input_size)
    plan: list[LayerShape] = []
    for stage in layout.stages:
        for i in range(stage.layers):
            stride = stage.stride if i == 0 else 1
            hw_out = half(hw, stride)
            width = stage.last_width if i == stage.layers - 1 else stage.width
            plan.append(LayerShape(len(plan), c, width, stride, hw, hw_out))
            c, hw = width, hw_out
    return plan


def with_stages(layout: Layout, stages: tuple[Stage, ...] | None) -> Layout:
    """``layout`` with its searchable stages replaced (a DNA student takes its teacher's widths and strides)."""
    return layout if stages is None else replace(layout, stages=tuple(stages))
