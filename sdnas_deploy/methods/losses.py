"""Losses every gradient-based search method shares (defined once in ``training.losses``)."""

from __future__ import annotations

from ..training.losses import distill_loss, task_loss, upcast

__all__ = ["distill_loss", "task_loss", "upcast"]
