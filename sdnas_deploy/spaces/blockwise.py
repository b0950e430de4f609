"""The blockwise capability of a space: what DNA (``methods/dna``) needs beyond the Space protocol.

A space that offers it is cut into *blocks* (its setting's stages); a block is a run of searchable layers with
one stride at its first layer. DNA matches the blocks to a teacher's stages, builds a student whose blocks each
run one path (one candidate per layer) at a time, rates paths, and turns one path per block back into an
architecture. Layer-wise (MBConv) spaces implement it (``spaces/mbconv``); cell spaces do not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import torch
from torch import nn

Path = tuple[int, ...]


class StudentBlock(ABC, nn.Module):
    """One block of a blockwise student: ``options[l]`` = the candidates layer l may take (indices into the
    space's candidate list); ``forward(x, path)`` runs one of them per layer."""

    options: list[list[int]]

    @abstractmethod
    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        """The block's output for ``path`` (block 1 includes the student's stem)."""

    @abstractmethod
    def path_modules(self, path: Path) -> list[nn.Module]:
        """The modules ``path`` runs (BatchNorm re-estimation of that path alone)."""

    def random_path(self, generator: torch.Generator | None = None) -> Path:
        """One uniformly random candidate per layer (the single-path step)."""
        return tuple(opts[int(torch.randint(len(opts), (1,), generator=generator))] for opts in self.options)

    def num_paths(self) -> int:
        n = 1
        for opts in self.options:
            n *= len(opts)
        return n


class BlockwiseSpace(ABC):
    """Mixin of a :class:`~.base.Space` whose networks are blocks of searchable layers (module docstring).

    ``stages`` below is the space's own value for teacher-matched stages (None: the setting's); it travels in
    the architecture it produces, so the network is rebuilt from the architecture JSON alone."""

    candidates: tuple[str, ...]  # what a layer may take; paths index into it

    @abstractmethod
    def block_count(self, setting: str) -> int:
        """How many blocks (stages of searchable layers) the setting has."""

    @abstractmethod
    def stem_stride(self, setting: str) -> int:
        """Stride of the stem in front of block 1."""

    @abstractmethod
    def teacher_stages(self, setting: str, strides: Sequence[int], out_widths: Sequence[int]) -> Any:
        """The setting's stages with the teacher's stride and output width per block (None if unchanged)."""

    @abstractmethod
    def stage_rows(self, setting: str, stages: Any) -> list[dict[str, int]]:
        """The blocks as plain rows (width, layers, stride[, out_width]) for reports."""

    @abstractmethod
    def blockwise_student(self, setting: str, stages: Any, in_channels: int, input_size: int) -> "nn.ModuleList":
        """The student: one :class:`StudentBlock` per block, every allowed candidate of every layer built."""

    @abstractmethod
    def layer_options(self, setting: str, stages: Any) -> list[list[int]]:
        """Per searchable layer, the candidate indices it allows."""

    @abstractmethod
    def layer_cost_table(self, setting: str, stages: Any, geometry: Any, cost: Callable[[str], float],
                         overhead: float, unit: str) -> tuple[list[list[float]], float]:
        """``(table[l][k], fixed)``: the cost of candidate k at layer l and of the shared parts, by key."""

    @abstractmethod
    def arch_from_layer_choices(self, setting: str, stages: Any, choices: Sequence[int]) -> Any:
        """The architecture of one candidate index per layer (validated)."""
