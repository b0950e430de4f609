"""Per-epoch schedules of retraining: the learning rate and the drop-path probability.

Both change once per epoch (as in the DARTS reference code), so a run resumed at an epoch boundary
sees exactly the values an uninterrupted run would.
"""

from __future__ import annotations

import torch

from ..errors import BadInputError
from .config import TrainConfig


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """LR scheduler stepped once per epoch: cosine annealing to 0 over ``epochs`` or exponential decay.

    ``config`` must be resolved (see :func:`sdnas_deploy.training.config.resolve`).
    """
    if config.epochs is None or config.lr_schedule is None:
        raise ValueError("make_scheduler needs a resolved TrainConfig (call training.config.resolve first)")
    if config.lr_schedule == "cosine":
        # DARTS: CosineAnnealingLR(optimizer, epochs), eta_min = 0
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=float(config.epochs), eta_min=0.0)
    if config.lr_schedule == "exp":
        if config.lr_decay is None:
            raise ValueError("make_scheduler: exp schedule without lr_decay (resolve the config first)")
        # DARTS ImageNet: StepLR(optimizer, 1, gamma=0.97), i.e. x gamma after every epoch
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    raise BadInputError(f"train config: lr_schedule={config.lr_schedule!r} is unknown; use cosine or exp")


def drop_path_at(epoch: int, config: TrainConfig) -> float:
    """Drop-path probability for 0-based ``epoch``: ramped linearly, ``drop_path_prob * epoch / epochs``."""
    if not config.epochs:
        raise ValueError("drop_path_at needs a resolved TrainConfig (call training.config.resolve first)")
    return config.drop_path_prob * epoch / config.epochs


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """Learning rate of the first parameter group (all groups share it here)."""
    return float(optimizer.param_groups[0]["lr"])
