"""Losses every gradient-based search method shares: cross-entropy in fp32 whatever autocast handed back."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upcast(logits: torch.Tensor) -> torch.Tensor:
    """Logits in at least fp32 (autocast may hand back bf16/fp16; fp64 stays fp64)."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in fp32 (logits may come out of autocast in bf16/fp16)."""
    return F.cross_entropy(upcast(logits), y)
