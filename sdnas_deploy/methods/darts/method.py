"""DARTS as a search method: an α step (first or second order, ``architect.py``) then a weight step (DESIGN.md §1).

The α step minimizes the arch-val loss (plus the hardware penalty, if any) with Adam; the weight step
minimizes the weight-train cross-entropy with the engine's SGD, gradient clipping and AMP scaler.
``extra_weight_loss`` / ``extra_arch_loss`` are the hooks SD-DARTS fills in; plain DARTS leaves them empty.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from ..base import ArchPenalty, Batch, SearchContext, SearchMethod, StepResult
from ..losses import task_loss
from .architect import Architect

ExtraLoss = Callable[[torch.Tensor], torch.Tensor]


class DartsMethod(SearchMethod):
    """``darts``: bilevel DARTS, first order by default, ``unrolled`` second order."""

    name = "darts"
    description = "DARTS: alternate Adam steps on alpha (arch-val half) and SGD steps on the weights"

    def __init__(self, ctx: SearchContext) -> None:
        super().__init__(ctx)
        c = ctx.config
        self.architect = Architect(
            ctx.model, c.arch_lr, c.arch_betas, c.arch_weight_decay, unrolled=c.unrolled,
            network_momentum=c.momentum, network_weight_decay=c.weight_decay,
            autocast=ctx.autocast, scaler=ctx.make_scaler(), channels_last=ctx.channels_last,
            average_grads=ctx.average_arch_grads,
        )
        self.weights = ctx.weights

    # ---- hooks for subclasses --------------------------------------------------------------------
    def arch_extra(self, val_batch: Batch, epoch: int, clock: list[float]) -> ExtraLoss | None:
        """An extra term of the α loss (None for DARTS)."""
        return None

    def weight_extra(self, batch: Batch, epoch: int, clock: list[float]) -> ExtraLoss | None:
        """An extra term of the weight loss (None for DARTS); called inside autocast. ``batch`` is (x, y[, index])."""
        return None

    def observe_logits(self, batch: Batch, logits: torch.Tensor) -> None:
        """Called with the weight step's own logits (SD-DARTS' cached teachers record them)."""

    def after_weight_step(self) -> None:
        """Called once the weights moved (SD-DARTS counts steps for its snapshots)."""

    # ---- the step --------------------------------------------------------------------------------
    def step(self, batch: Batch, val_batch: Batch, lr: float, epoch: int, penalty: ArchPenalty | None) -> StepResult:
        ctx, c = self.ctx, self.ctx.config
        (x, y), (x_val, y_val) = batch[:2], val_batch[:2]
        clock = [0.0]
        arch_loss = 0.0  # PC-DARTS warms the weights up before α moves (arch_warmup_epochs)
        if epoch >= c.arch_warmup_epochs:
            extra = self.arch_extra(val_batch, epoch, clock)
            arch_loss = self.architect.step(x, y, x_val, y_val, lr, ctx.w_optimizer, extra, penalty)
        ctx.w_optimizer.zero_grad(set_to_none=True)
        with ctx.autocast():
            logits = ctx.forward_model(x)  # through DDP under torchrun: the weights' gradients are averaged
            loss = task_loss(logits, y)
            weight_extra = self.weight_extra(batch, epoch, clock)
            self.observe_logits(batch, logits)
            if weight_extra is not None:
                loss = loss + weight_extra(logits)
        loss_value = float(loss.detach())
        if not (math.isfinite(loss_value) and math.isfinite(arch_loss)):
            return StepResult(math.nan, math.nan, 0, clock[0], weight_extra is not None)
        # inputs=weights: the weight loss must not leave gradients on α (the architect owns those).
        ctx.scaler.scale(loss).backward(inputs=self.weights)
        if c.grad_clip > 0:
            ctx.scaler.unscale_(ctx.w_optimizer)
            nn.utils.clip_grad_norm_(self.weights, c.grad_clip)
        ctx.scaler.step(ctx.w_optimizer)
        ctx.scaler.update()
        self.after_weight_step()
        correct = int((logits.detach().argmax(dim=1) == y).sum())
        return StepResult(loss_value, arch_loss, correct, clock[0], weight_extra is not None)

    # ---- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"architect": self.architect.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.architect.load_state_dict(state["architect"])

    def apply_changed_settings(self) -> None:
        c = self.ctx.config
        for group in self.architect.optimizer.param_groups:
            group.update(lr=c.arch_lr, betas=c.arch_betas, weight_decay=c.arch_weight_decay)

    def describe(self) -> str:
        return f"{self.name} ({'second' if self.ctx.config.unrolled else 'first'} order)"
