"""Cached voting teachers: each sample's own probabilities from the previous K epochs, voted (DESIGN.md §1).

The snapshot teachers (``teachers.VotingTeachers``) cost K extra forward passes per step. Here the
teachers are the supernet itself as it was in earlier epochs, read back instead of recomputed: every
weight step records softmax(logits / T) of its batch — the forward the step runs anyway — under each
sample's index, in a ring of K + 1 epoch slots (this epoch plus the K before it). A sample's teacher
is the vote (soft or hard, as for snapshots) over the slots of the previous K epochs that saw it; a
sample none of them saw (the first epoch, or a step cap) is not distilled. Memory: samples × (K + 1) ×
classes in float16 on the CPU (25,000 × 4 × 10 × 2 bytes = 2 MB for CIFAR-10's weight-train half),
saved in the checkpoint so a resumed run votes exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...errors import BadInputError
from ..losses import upcast
from .teachers import VoteRule


def masked_vote(probs: torch.Tensor, seen: torch.Tensor, rule: VoteRule) -> torch.Tensor:
    """The soft or hard vote of ``probs`` [S, N, C] over the teachers with ``seen`` [S, N] True.

    With every teacher present this is exactly ``teachers.soft_vote`` / ``teachers.hard_vote``.
    """
    weight = seen.to(probs.dtype)  # [S, N]
    soft = (probs * weight[..., None]).sum(0) / weight.sum(0).clamp_min(1)[:, None]
    if rule == "soft":
        return soft
    votes = probs.argmax(dim=2)  # [S, N]
    counts = (F.one_hot(votes, probs.shape[2]) * seen[..., None]).sum(dim=0)  # [N, C]
    top = counts.max(dim=1).values
    winner = counts.argmax(dim=1)
    tie = (counts == top[:, None]).sum(dim=1) > 1
    agree = ((votes == winner[None]) & seen).to(probs.dtype)  # [S, N]
    agreeing = (probs * agree[..., None]).sum(0) / agree.sum(0).clamp_min(1)[:, None]
    return torch.where(tie[:, None], soft, agreeing)


class CachedTeachers:
    """Per-sample probability records of the last K + 1 epochs (module docstring)."""

    def __init__(self, k: int, samples: int, classes: int, vote: VoteRule = "soft", temperature: float = 2.0) -> None:
        if k < 1 or samples < 1 or classes < 2:
            raise BadInputError(f"cached teachers: k={k}, samples={samples}, classes={classes}; use k >= 1")
        self.k, self.vote, self.temperature = k, vote, temperature
        self.probs = torch.zeros(k + 1, samples, classes, dtype=torch.float16)
        self.seen = torch.zeros(k + 1, samples, dtype=torch.bool)
        self.epoch = -1  # the epoch whose slot is being written

    def start_epoch(self, epoch: int) -> None:
        """Clear the slot this epoch writes into (it held epoch ``epoch - K - 1``)."""
        if epoch != self.epoch:
            slot = epoch % (self.k + 1)
            self.seen[slot] = False
            self.epoch = epoch

    def _teacher_slots(self) -> list[int]:
        return [(self.epoch - d) % (self.k + 1) for d in range(1, self.k + 1) if self.epoch - d >= 0]

    def __len__(self) -> int:
        """Epochs that can teach now (at most K)."""
        return len(self._teacher_slots())

    @torch.no_grad()
    def record(self, index: torch.Tensor, logits: torch.Tensor) -> None:
        """Store softmax(logits / T) of the samples ``index`` in this epoch's slot."""
        slot = self.epoch % (self.k + 1)
        idx = index.cpu().long()
        self.probs[slot, idx] = F.softmax(upcast(logits.detach()) / self.temperature, dim=1).cpu().half()
        self.seen[slot, idx] = True

    @torch.no_grad()
    def teacher_probs(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(voted probabilities [N, classes] fp32, mask [N] of samples that have at least one teacher).

        Samples seen by only some of the K epochs are voted over those epochs only.
        """
        idx = index.cpu().long()
        slots = self._teacher_slots()
        if not slots:
            n = len(idx)
            return torch.zeros(n, self.probs.shape[2], device=device), torch.zeros(n, dtype=torch.bool, device=device)
        probs = self.probs[slots][:, idx].float()  # [S, N, C]
        seen = self.seen[slots][:, idx]  # [S, N]
        voted = masked_vote(probs, seen, self.vote)
        have = seen.any(dim=0)
        return voted.to(device), have.to(device)

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k, "epoch": self.epoch, "probs": self.probs, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["probs"].shape) != tuple(self.probs.shape) or int(state["k"]) != self.k:
            raise ValueError(f"cached teachers of shape {tuple(state['probs'].shape)}, expected {tuple(self.probs.shape)}")
        self.probs = state["probs"].to(torch.float16).clone()
        self.seen = state["seen"].to(torch.bool).clone()
        self.epoch = int(state["epoch"])
