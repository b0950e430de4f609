"""Layers shared by several spaces: drop-path (and a network-wide switch for it) and the global-pool + linear head."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (training only).

    Out of place, so the op's output may still be needed by autograd.
    """
    if drop_prob <= 0.0:
        return x
    keep_prob = 1.0 - drop_prob
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep_prob)
    return x * mask / keep_prob


class PoolClassifier(nn.Module):
    """The network head: global average pool, flatten, linear."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


class DropPathControl:
    """Mixin for a deployable network: setting ``drop_path_prob`` (the trainer ramps it per epoch) sets it on every
    submodule of the types in :attr:`drop_path_modules`, which apply it to their own output."""

    drop_path_modules: tuple[type, ...] = ()
    _drop_path_prob = 0.0

    @property
    def drop_path_prob(self) -> float:
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, value: float) -> None:
        self._drop_path_prob = float(value)
        for module in self.modules():  # type: ignore[attr-defined]
            if isinstance(module, self.drop_path_modules):
                module.drop_path_prob = float(value)


def reset_batchnorm(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Reset every BatchNorm inside ``modules`` to re-estimate its statistics as a cumulative average.

    (``torch.optim.swa_utils.update_bn`` does the same but forwards ``model(x)`` only; supernets here
    take α weights or a path.) Returns the BatchNorms so callers can restore their momentum.
    """
    norms = [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the re-estimation batches
    return norms
