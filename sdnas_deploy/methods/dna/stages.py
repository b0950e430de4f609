"""Cutting a teacher into stages and matching them to the student's blocks (DESIGN.md §9).

One forward of a probe batch records each feature point's output shape. A teacher *stage* is a maximal run of
points with the same width and resolution: it ends right before the next change (so each stage is a changing
point followed by the points that keep its shape). The student has as many blocks as its setting has stages;
when the teacher has more stages, its leading ones are merged into block 1 (the student's stem and fixed first
block stand for them, as in DNA, where the student's stem + MB1 face EfficientNet's stem + first stage).
``--stages`` names the last point of each block instead. Block *i* takes the teacher's feature at the end of
block *i−1* (block 1: the image, through the student's stem) and must reproduce the feature at its own end;
its stride is the resolution change between the two (1 or 2), its output width the teacher's width there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...errors import BadInputError
from ...spaces.blockwise import BlockwiseSpace
from .teacher import Teacher


@dataclass(frozen=True)
class PointShape:
    """A teacher feature point: index, module name, output width and side."""

    index: int
    name: str
    width: int
    side: int


@dataclass(frozen=True)
class BlockPlan:
    """What one student block learns: the teacher points it starts after (-1: the image) and ends at."""

    start: int
    end: int
    in_width: int
    in_side: int
    out_width: int
    out_side: int
    stride: int


def probe(teacher: Teacher, in_channels: int, side: int) -> list[PointShape]:
    """Output shapes of every feature point for a ``side`` x ``side`` input (one forward, zeros)."""
    x = torch.zeros(1, in_channels, side, side)
    outputs = teacher.features(x, list(range(len(teacher.points))))
    shapes = []
    for i, ((name, _), out) in enumerate(zip(teacher.points, outputs)):
        if out.dim() != 4 or out.shape[-1] != out.shape[-2]:
            raise BadInputError(f"teacher point {name} gives a {tuple(out.shape)} output, not a square feature map; "
                                "use --stages with points that give N x C x H x H maps")
        shapes.append(PointShape(i, name, int(out.shape[1]), int(out.shape[-1])))
    return shapes


def stage_ends(shapes: Sequence[PointShape]) -> list[int]:
    """Index of the last point of each automatic stage (runs of equal width and side)."""
    ends = [a.index for a, b in zip(shapes, shapes[1:]) if (a.width, a.side) != (b.width, b.side)]
    return ends + [shapes[-1].index]


def _stride(before: int, after: int) -> int | None:
    if after == before:
        return 1
    return 2 if after == math.ceil(before / 2) else None  # a padded odd-kernel conv of stride 2


def match_blocks(shapes: Sequence[PointShape], space: BlockwiseSpace, setting: str, in_channels: int,
                 image_side: int, override: Sequence[int] | None = None) -> list[BlockPlan]:
    """The block plans of a student of ``space``/``setting`` (module docstring); mismatches → one line each."""
    blocks = space.block_count(setting)
    auto = stage_ends(shapes)
    if override:
        ends = list(override)
        bad = [e for e in ends if not 0 <= e < len(shapes)]
        if bad or any(b <= a for a, b in zip(ends, ends[1:])):
            raise BadInputError(f"--stages {','.join(map(str, ends))}: give increasing point indices in "
                                f"0..{len(shapes) - 1} (the table lists them)")
    else:
        ends = auto[-blocks:] if len(auto) >= blocks else auto
    if len(ends) != blocks:
        raise BadInputError(f"the teacher has {len(ends)} stage(s) ({_describe(shapes, ends)}) but setting "
                            f"{setting!r} has {blocks} blocks; pass --stages with {blocks} point indices (see the "
                            "table) or another --setting")
    plans: list[BlockPlan] = []
    width, side, start = in_channels, image_side, -1
    stem_side = math.ceil(image_side / space.stem_stride(setting))
    for i, end in enumerate(ends):
        point = shapes[end]
        before = stem_side if i == 0 else side
        stride = _stride(before, point.side)
        if stride is None:
            where = "the student's stem output" if i == 0 else f"point {start}"
            raise BadInputError(f"block {i + 1} must go from side {before} ({where}) to side {point.side} (point {end}, "
                                f"{point.name}): a block changes resolution by 1 or 2 at most; pass --stages with "
                                "other points (see the table) or another --setting")
        plans.append(BlockPlan(start, end, width, side, point.width, point.side, stride))
        width, side, start = point.width, point.side, end
    return plans


def _describe(shapes: Sequence[PointShape], ends: Sequence[int]) -> str:
    return ", ".join(f"{shapes[e].width}ch@{shapes[e].side}" for e in ends)


def stage_table(shapes: Sequence[PointShape], plans: Sequence[BlockPlan]) -> list[dict[str, object]]:
    """Rows of the table shown before training: every point, and the block that ends there."""
    block_at = {p.end: i + 1 for i, p in enumerate(plans)}
    return [{"index": s.index, "point": s.name, "width": s.width, "side": s.side,
             "block": block_at.get(s.index)} for s in shapes]
