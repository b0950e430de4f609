"""SD-DARTS as a search method: DARTS plus self-distillation from voting teachers (DESIGN.md §1, seeds/sd-darts.txt).

Every ``teacher_interval`` weight steps a frozen snapshot of the supernet joins a ring buffer of K teachers;
after ``distill_warmup_epochs`` the weight loss adds ``λ·T²·KL(vote(teachers) ‖ student_T)`` (and, with
``distill_arch``, so does the α loss). Teachers vote soft (mean) or hard (majority class). With
``teachers_from: cache`` the teachers are instead each sample's recorded probabilities of the previous K
epochs (``cache.CachedTeachers``): no extra forward pass, weight loss only.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..base import Batch, SearchContext
from ..darts.method import DartsMethod, ExtraLoss
from .cache import CachedTeachers
from .teachers import VotingTeachers, distill_loss


class SDDartsMethod(DartsMethod):
    """``sd-darts``: DARTS whose weights (and optionally α) are distilled from voting teachers."""

    name = "sd-darts"
    description = "SD-DARTS: DARTS with self-distillation from K voting teacher snapshots of the supernet"

    def __init__(self, ctx: SearchContext) -> None:
        super().__init__(ctx)
        c = ctx.config
        self.teachers: VotingTeachers | CachedTeachers = (
            CachedTeachers(c.teachers, ctx.train_samples, ctx.num_classes, c.vote, c.temperature)
            if c.teachers_from == "cache" else VotingTeachers(c.teachers, c.teacher_interval, c.vote, c.temperature))

    def distilling(self, epoch: int) -> bool:
        return epoch >= self.ctx.config.distill_warmup_epochs and len(self.teachers) > 0

    def _probs(self, batch: Batch, clock: list[float]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(voted teacher probabilities, mask of distilled samples or None = all) for ``batch``; adds the
        (synchronized) milliseconds spent to ``clock[0]``."""
        self.ctx.sync()
        start = time.perf_counter()
        if isinstance(self.teachers, CachedTeachers):
            probs, mask = self.teachers.teacher_probs(batch[2], batch[0].device)
        else:
            probs, mask = self.teachers.teacher_probs(batch[0]), None
        self.ctx.sync()
        clock[0] += (time.perf_counter() - start) * 1000.0
        return probs, mask

    def _term(self, probs: torch.Tensor, mask: torch.Tensor | None) -> ExtraLoss | None:
        c = self.ctx.config
        if mask is None:
            return lambda logits: c.distill_weight * distill_loss(logits, probs, c.temperature)
        if not bool(mask.any()):
            return None  # no sample of this batch was seen in the previous K epochs
        return lambda logits: c.distill_weight * distill_loss(logits[mask], probs[mask], c.temperature)

    def arch_extra(self, val_batch: Batch, epoch: int, clock: list[float]) -> ExtraLoss | None:
        if not (self.ctx.config.distill_arch and self.distilling(epoch)):
            return None
        with self.ctx.autocast():
            probs, mask = self._probs(val_batch, clock)
        return self._term(probs, mask)

    def weight_extra(self, batch: Batch, epoch: int, clock: list[float]) -> ExtraLoss | None:
        if isinstance(self.teachers, CachedTeachers):
            self.teachers.start_epoch(epoch)
        # per step, not per epoch: the first teacher may appear mid-epoch
        return self._term(*self._probs(batch, clock)) if self.distilling(epoch) else None

    def observe_logits(self, batch: Batch, logits: torch.Tensor) -> None:
        if isinstance(self.teachers, CachedTeachers):  # torchrun: every rank records every rank's samples
            self.teachers.record(self.ctx.gather(batch[2]), self.ctx.gather(logits.detach()))

    def after_weight_step(self) -> None:
        if isinstance(self.teachers, VotingTeachers):
            self.teachers.observe_step(self.ctx.model)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "teachers": self.teachers.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if isinstance(self.teachers, CachedTeachers):
            self.teachers.load_state_dict(state["teachers"])
        else:
            self.teachers.load_state_dict(state["teachers"], self.ctx.model)

    def describe(self) -> str:
        c = self.ctx.config
        source = (f"{c.teachers} cached epochs of each sample's own probabilities"
                  if isinstance(self.teachers, CachedTeachers) else f"{c.teachers} teachers every {c.teacher_interval} steps")
        return (f"{super().describe()}, {source}, vote {c.vote}, "
                f"T={c.temperature:g}, λ={c.distill_weight:g}, warm-up {c.distill_warmup_epochs} epochs")
