"""Losses shared by training and the search methods: fp32 cross-entropy and Hinton's distillation term."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upcast(logits: torch.Tensor) -> torch.Tensor:
    """Logits in at least fp32 (autocast may hand back bf16/fp16; fp64 stays fp64)."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in fp32 (logits may come out of autocast in bf16/fp16)."""
    return F.cross_entropy(upcast(logits), y)


def distill_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(teacher ‖ softmax(student / T))`` averaged over the batch (computed in fp32).

    The T² factor keeps the gradient scale of the soft term independent of T (Hinton et al., 2015).
    """
    log_student = F.log_softmax(upcast(student_logits) / temperature, dim=1)
    kl = F.kl_div(log_student, teacher_probs.to(log_student.dtype), reduction="batchmean")
    return kl * (temperature**2)
