"""SD-DARTS self-distillation: voting teachers built from earlier snapshots of the supernet.

Every ``interval`` weight steps the current supernet (weights *and* α) is deep-copied into a ring
buffer of at most K frozen teachers. Their softened predictions on the student's batch are combined
by a vote into one teacher distribution, and the student is pulled toward it with a T²-scaled KL.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import BadInputError
from ..losses import distill_loss, upcast  # noqa: F401  (distill_loss: this module's API)

VoteRule = Literal["soft", "hard"]


def soft_vote(probs: torch.Tensor) -> torch.Tensor:
    """Mean of the teachers' probabilities; ``probs`` is [K, N, classes]."""
    return probs.mean(dim=0)


def hard_vote(probs: torch.Tensor) -> torch.Tensor:
    """Per sample: the majority class of the teachers' argmaxes; average the teachers that voted for it.

    A tie between classes (no single majority) falls back to the soft vote for that sample.
    """
    k, n, classes = probs.shape
    votes = probs.argmax(dim=2)  # [K, N]
    counts = F.one_hot(votes, classes).sum(dim=0)  # [N, classes]
    top = counts.max(dim=1).values  # [N]
    winner = counts.argmax(dim=1)  # [N]
    tie = (counts == top.unsqueeze(1)).sum(dim=1) > 1  # [N]
    agree = (votes == winner.unsqueeze(0)).to(probs.dtype)  # [K, N]
    agreeing_mean = (probs * agree.unsqueeze(2)).sum(dim=0) / agree.sum(dim=0).clamp_min(1).unsqueeze(1)
    return torch.where(tie.unsqueeze(1), soft_vote(probs), agreeing_mean)


def _as_teacher(model: nn.Module) -> nn.Module:
    """Make a snapshot an inert teacher: no gradients, BatchNorm running mean/var never updated, train mode
    (batch statistics, see VotingTeachers), channels-last weights."""
    for param in model.parameters():
        param.grad = None
        param.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0  # running = (1 - 0)·running + 0·batch: forwards leave the buffers untouched
    if hasattr(model, "relax"):
        model.relax = "softmax"  # a Gumbel-relaxed supernet teaches with its expected mixture, not noisy samples
    return model.to(memory_format=torch.channels_last).train()


class VotingTeachers:
    """Up to ``k`` frozen supernet snapshots taken every ``interval`` weight steps (ring buffer).

    BN mode: teachers run in *train* mode, i.e. normalize with the batch statistics, because that
    is how the student computes its logits during search; a teacher in eval mode would differ from
    the student by the BN mode alone (the supernet's running statistics lag behind the changing
    α mixture). Their running mean/var are frozen, so a forward never changes what a snapshot predicts.

    Layout: teachers only run forward, so they hold channels-last weights and see a channels-last batch, whose
    convolutions oneDNN (CPU) and cuDNN run faster without a backward to pay for it (bench/cpu_layout.py:
    1.38x per teacher forward at the demo shape on the CPU); the probabilities agree to float rounding.
    """

    def __init__(self, k: int, interval: int, vote: VoteRule = "soft", temperature: float = 2.0) -> None:
        if k < 1 or interval < 1:
            raise BadInputError(f"voting teachers: k={k}, interval={interval}; use positive integers")
        if vote not in ("soft", "hard"):
            raise BadInputError(f"voting teachers: vote={vote!r}; use soft or hard")
        self.k = k
        self.interval = interval
        self.vote = vote
        self.temperature = temperature
        self.snapshots: list[nn.Module] = []  # oldest first
        self.steps_seen = 0

    def __len__(self) -> int:
        return len(self.snapshots)

    def snapshot(self, model: nn.Module) -> None:
        """Add a frozen copy of ``model``, replacing the oldest when K are held.

        Once the buffer is full the oldest teacher's module is recycled (its tensors overwritten
        with ``model``'s state), which avoids a Python-level deep copy of the whole supernet.
        """
        if len(self.snapshots) >= self.k:
            teacher = self.snapshots.pop(0)
            with torch.no_grad():
                teacher.load_state_dict(model.state_dict())
        else:
            teacher = _as_teacher(copy.deepcopy(model))
        self.snapshots.append(teacher)

    def observe_step(self, model: nn.Module) -> bool:
        """Count one weight step; snapshot ``model`` every ``interval`` steps. Returns True when it did."""
        self.steps_seen += 1
        if self.steps_seen % self.interval == 0:
            self.snapshot(model)
            return True
        return False

    @torch.no_grad()
    def teacher_probs(self, x: torch.Tensor) -> torch.Tensor:
        """The voted teacher distribution at temperature T for batch ``x`` ([N, classes], fp32)."""
        if not self.snapshots:
            raise RuntimeError("teacher_probs called before any snapshot was taken")
        x = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
        probs = torch.stack(
            [F.softmax(upcast(teacher(x)) / self.temperature, dim=1) for teacher in self.snapshots]
        )
        return soft_vote(probs) if self.vote == "soft" else hard_vote(probs)

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors/numbers only, so it survives ``torch.load(weights_only=True)``."""
        return {
            "k": self.k,
            "interval": self.interval,
            "steps_seen": self.steps_seen,
            "snapshots": [teacher.state_dict() for teacher in self.snapshots],
        }

    def load_state_dict(self, state: dict[str, Any], template: nn.Module) -> None:
        """Restore snapshots into deep copies of ``template`` (a supernet of the same structure)."""
        self.steps_seen = int(state["steps_seen"])
        self.snapshots = []
        for weights in state["snapshots"][-self.k :]:
            teacher = copy.deepcopy(template)
            teacher.load_state_dict(weights)
            self.snapshots.append(_as_teacher(teacher))
