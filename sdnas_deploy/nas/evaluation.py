"""Evaluating a supernet during search: accuracy after BatchNorm re-estimation, and sharpness w.r.t. α.

Accuracy re-estimates BN running statistics on weight-train batches *for the network being evaluated*
(the supernet, or the derived architecture through one-hot weights), then restores them: the supernet's own
statistics describe the α mixture, so the derived architecture evaluated with them measures BN mismatch (near
chance), not the architecture.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..device import DevicePolicy
from ..methods.losses import task_loss
from ..spaces.layers import reset_batchnorm
from .batches import SearchData
from .sharpness import dominant_eigenvalue, preserved_state

BN_RECALIBRATION_BATCHES = 4  # ours: weight-train batches that re-estimate BN statistics before each evaluation


@torch.no_grad()
def accuracy(model: nn.Module, data: SearchData, dataset: Any, policy: DevicePolicy,
             weights: dict[str, torch.Tensor] | None = None) -> float:
    """Top-1 accuracy (fraction) of the supernet, or of the derived architecture when ``weights`` are its
    one-hot masks (by α label)."""
    correct = seen = 0
    with preserved_state(model), policy.autocast():
        norms = reset_batchnorm([model])
        model.train()
        for i, (x, *_) in enumerate(data.eval_batches(data.train_half)):
            if i == BN_RECALIBRATION_BATCHES:
                break
            model(x, weights)
        data.par.average_([t for bn in norms for t in (bn.running_mean, bn.running_var) if t is not None])
        model.eval()
        for x, y in data.eval_batches(dataset):
            correct += int((model(x, weights).argmax(dim=1) == y).sum())
            seen += y.numel()
    correct, seen = data.par.sum([correct, seen])  # every rank scored its own share
    return correct / max(seen, 1)


def sharpness(model: nn.Module, data: SearchData, config: Any) -> float:
    """Dominant Hessian eigenvalue of the arch-val loss w.r.t. α (BN in batch-statistics mode, fp32)."""
    batches = []
    for batch in data.eval_batches(data.val_half, sharded=False):  # the same batches on every rank
        batches.append(batch)
        if len(batches) == config.sharpness_batches:
            break
    loss_fn = lambda m, b: task_loss(m(b[0]), b[1])  # noqa: E731
    model.train()
    return dominant_eigenvalue(model, loss_fn, batches, iters=config.sharpness_iters, seed=config.seed)
