"""SD-DARTS as a search method: DARTS plus self-distillation from voting teachers (DESIGN.md §1, seeds/sd-darts.txt).

Every ``teacher_interval`` weight steps a frozen snapshot of the supernet joins a ring buffer of K teachers;
after ``distill_warmup_epochs`` the weight loss adds ``λ·T²·KL(vote(teachers) ‖ student_T)`` (and, with
``distill_arch``, so does the α loss). Teachers vote soft (mean) or hard (majority class).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..base import Batch, SearchContext
from ..darts.method import DartsMethod, ExtraLoss
from .teachers import VotingTeachers, distill_loss


class SDDartsMethod(DartsMethod):
    """``sd-darts``: DARTS whose weights (and optionally α) are distilled from voting teachers."""

    name = "sd-darts"
    description = "SD-DARTS: DARTS with self-distillation from K voting teacher snapshots of the supernet"

    def __init__(self, ctx: SearchContext) -> None:
        super().__init__(ctx)
        c = ctx.config
        self.teachers = VotingTeachers(c.teachers, c.teacher_interval, c.vote, c.temperature)

    def distilling(self, epoch: int) -> bool:
        return epoch >= self.ctx.config.distill_warmup_epochs and len(self.teachers) > 0

    def _probs(self, x: torch.Tensor, clock: list[float]) -> torch.Tensor:
        """Voted teacher probabilities for ``x``; adds the (synchronized) milliseconds spent to ``clock[0]``."""
        self.ctx.sync()
        start = time.perf_counter()
        probs = self.teachers.teacher_probs(x)
        self.ctx.sync()
        clock[0] += (time.perf_counter() - start) * 1000.0
        return probs

    def _term(self, probs: torch.Tensor) -> ExtraLoss:
        c = self.ctx.config
        return lambda logits: c.distill_weight * distill_loss(logits, probs, c.temperature)

    def arch_extra(self, val_batch: Batch, epoch: int, clock: list[float]) -> ExtraLoss | None:
        if not (self.ctx.config.distill_arch and self.distilling(epoch)):
            return None
        with self.ctx.autocast():
            probs = self._probs(val_batch[0], clock)
        return self._term(probs)

    def weight_extra(self, x: torch.Tensor, epoch: int, clock: list[float]) -> ExtraLoss | None:
        # per step, not per epoch: the first teacher may appear mid-epoch
        return self._term(self._probs(x, clock)) if self.distilling(epoch) else None

    def after_weight_step(self) -> None:
        self.teachers.observe_step(self.ctx.model)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "teachers": self.teachers.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.teachers.load_state_dict(state["teachers"], self.ctx.model)

    def describe(self) -> str:
        c = self.ctx.config
        return (f"{super().describe()}, {c.teachers} teachers every {c.teacher_interval} steps, vote {c.vote}, "
                f"T={c.temperature:g}, λ={c.distill_weight:g}, warm-up {c.distill_warmup_epochs} epochs")
