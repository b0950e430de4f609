"""The SearchMethod protocol: what one search step does, separate from the space it searches.

A method works on any space whose supernet has a differentiable relaxation (``spaces.base.Supernet``). The
search engine (``nas.searcher.SearchRun``) owns data, the weight optimizer and schedule, BN re-estimation,
evaluation, reports, checkpoints and logging; a method owns only its step and its own state (an α
optimizer, teachers, ...). Methods are registered by name in ``methods.METHODS``.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import nn

if TYPE_CHECKING:
    from ..spaces.base import Supernet

Batch = tuple[torch.Tensor, ...]  # (x, y), or (x, y, sample index) for weight-train batches
ArchPenalty = Callable[[torch.Tensor, Sequence[torch.Tensor]], torch.Tensor]


@dataclass
class SearchContext:
    """What the engine hands a method: the supernet, its weight optimizer, AMP and device helpers."""

    model: "Supernet"
    config: Any  # nas.config.SearchConfig (read-only here)
    w_optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: Callable[[], contextlib.AbstractContextManager]
    channels_last: bool
    make_scaler: Callable[[], torch.amp.GradScaler]
    sync: Callable[[], None]
    train_samples: int = 0  # size of the weight-train half (cached teachers keep one record per sample)
    num_classes: int = 0
    train_model: nn.Module | None = None  # what the weight step runs: the DDP wrapper under torchrun, else model
    average_arch_grads: Callable[[Sequence[torch.Tensor]], None] = lambda params: None  # torchrun: mean over ranks
    gather: Callable[[torch.Tensor], torch.Tensor] = lambda t: t  # torchrun: every rank's tensor, concatenated

    @property
    def forward_model(self) -> nn.Module:
        return self.train_model if self.train_model is not None else self.model

    @property
    def weights(self) -> list[nn.Parameter]:
        return list(self.model.weight_parameters())


@dataclass(frozen=True)
class StepResult:
    """One search step: weight loss, α loss, correct predictions, teacher milliseconds, whether it distilled."""

    loss: float
    arch_loss: float
    correct: int
    teacher_ms: float = 0.0
    distilled: bool = False


class MethodInfo:
    """What every registered method says of itself: name, description, which engine runs it, which spaces."""

    name: str = ""
    description: str = ""
    engine: str = "supernet"  # "supernet": nas.searcher calls step(); "blockwise": nas.blockwise runs it (DNA)

    @classmethod
    def unsupported(cls, space: Any) -> str | None:
        """Why the method cannot search ``space`` (None: it can)."""
        return None


class BlockwiseMethod(MethodInfo):
    """A method whose whole search is its own engine (``nas.blockwise``), not a supernet step."""

    engine = "blockwise"


class SearchMethod(MethodInfo, ABC):
    """One search method (module docstring)."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx

    @abstractmethod
    def step(self, batch: Batch, val_batch: Batch, lr: float, epoch: int, penalty: ArchPenalty | None) -> StepResult:
        """One step on a weight-train ``batch`` and an arch-val ``val_batch``; NaN losses are returned, not raised."""

    def distilling(self, epoch: int) -> bool:
        """Whether this epoch's steps distill (SD-DARTS after its warm-up)."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """Top-level checkpoint entries of the method (plain tensors and numbers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from the checkpoint's entries (KeyError/RuntimeError/ValueError on a mismatch)."""

    def apply_changed_settings(self) -> None:
        """Push changed hyperparameters (resume with new flags) into the method's own optimizers."""

    def describe(self) -> str:
        return self.name
