"""The blockwise student of a layer-wise space (DNA, DESIGN.md §9): one independent block per stage, single-path.

Block *i* holds, per searchable layer, every candidate the layer allows; ``forward(x, path)`` runs one candidate
per layer (``path``: candidate indices of the space's list). Block 1 also holds the student's stem and fixed
first block, so it starts from the image. Blocks share nothing, which is what lets them train in one pass
(nas/blockwise.py) and be rated one at a time.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..blockwise import Path, StudentBlock
from .blocks import ConvBNAct, build_block
from .layout import LayerShape, Layout, layer_plan
from .network import allowed_matrix, first_block


class LayerwiseStudentBlock(StudentBlock):
    """The layers of one block, each with all its allowed candidates, and (block 1) the stem in front."""

    def __init__(self, shapes: Sequence[LayerShape], allowed: Sequence[Sequence[bool]], candidates: Sequence[str],
                 act: str, expand_conv: bool, prefix: nn.Module | None) -> None:
        super().__init__()
        self.prefix = prefix
        self.options: list[list[int]] = [[k for k, ok in enumerate(row) if ok] for row in allowed]
        self.layers = nn.ModuleList(
            nn.ModuleDict({str(k): build_block(candidates[k], s.c_in, s.c_out, s.stride, act, expand_conv)
                           for k in options})
            for s, options in zip(shapes, self.options))

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        if self.prefix is not None:
            x = self.prefix(x)
        for layer, choice in zip(self.layers, path, strict=True):
            x = layer[str(choice)](x)
        return x

    def path_modules(self, path: Path) -> list[nn.Module]:
        """The modules ``path`` runs (for BatchNorm re-estimation of that path alone)."""
        chosen = [layer[str(k)] for layer, k in zip(self.layers, path, strict=True)]
        return ([self.prefix] if self.prefix is not None else []) + chosen


def _stem(layout: Layout, in_channels: int, act: str) -> nn.Module:
    first = first_block(layout, act)
    return nn.Sequential(ConvBNAct(in_channels, layout.stem_width, 3, layout.stem_stride, act),
                         *([first] if first is not None else []))


class BlockwiseStudent(nn.Module):
    """All blocks of the student (module docstring). ``identity_ops``: candidates allowed only where shapes agree."""

    def __init__(self, layout: Layout, candidates: Sequence[str], identity_ops: Sequence[str], act: str,
                 expand_conv: bool, in_channels: int, input_size: int) -> None:
        super().__init__()
        plan = layer_plan(layout, input_size)
        allowed = allowed_matrix(layout, candidates, identity_ops)
        blocks, start = [], 0
        for i, stage in enumerate(layout.stages):
            rows = range(start, start + stage.layers)
            prefix = _stem(layout, in_channels, act) if i == 0 else None
            blocks.append(LayerwiseStudentBlock([plan[r] for r in rows], [allowed[r] for r in rows], candidates,
                                                act, expand_conv, prefix))
            start += stage.layers
        self.blocks = nn.ModuleList(blocks)

    def layer_ranges(self) -> list[range]:
        """The searchable-layer indices of each block."""
        ranges, start = [], 0
        for block in self.blocks:
            ranges.append(range(start, start + len(block.layers)))
            start += len(block.layers)
        return ranges
