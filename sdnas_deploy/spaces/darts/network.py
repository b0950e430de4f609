"""Discrete DARTS networks built from a Genotype: the CIFAR network and the ImageNet mobile network.

These are what gets retrained, exported and deployed. BatchNorm is affine here (unlike the
supernet). In eval mode the forward pass is a pure function of the input — no drop-path, no
auxiliary head, no in-place ops — so ``torch.onnx.export`` captures it as-is. The auxiliary
head and drop-path only act while ``self.training``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from .genotype import Genotype
from .ops import OPS, Identity, cell_preprocess, drop_path


class Cell(nn.Module):
    """A discrete cell: each node sums two ops applied to earlier states; output concatenates ``concat``."""

    def __init__(
        self, genotype: Genotype, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = cell_preprocess(C_prev_prev, C_prev, C, reduction_prev, affine=True)
        entries, concat = genotype.cell("reduce" if reduction else "normal")
        self._steps = len(entries) // 2
        self._concat = tuple(concat)
        self.multiplier = len(concat)
        self._indices = tuple(index for _, index in entries)
        self._ops = nn.ModuleList(
            OPS[name](C, 2 if reduction and index < 2 else 1, True) for name, index in entries
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self._steps):
            total: torch.Tensor | None = None
            for k in (2 * node, 2 * node + 1):
                op = self._ops[k]
                h = op(states[self._indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            assert total is not None
            states.append(total)
        return torch.cat([states[i] for i in self._concat], dim=1)


def _pool_to_2x2(x: torch.Tensor, stride: int) -> torch.Tensor:
    """DARTS' aux pooling (5x5 avg, no pad) where the map is big enough, then exactly 2x2 for any size."""
    if x.shape[-1] >= 5 and x.shape[-2] >= 5:
        x = F.avg_pool2d(x, 5, stride=stride, padding=0, count_include_pad=False)
    if x.shape[-1] != 2 or x.shape[-2] != 2:
        x = F.adaptive_avg_pool2d(x, 2)
    return x


class _AuxiliaryHead(nn.Module):
    """ReLU, 5x5 avg pool to 2x2, 1x1 conv to 128, 2x2 conv to 768, linear classifier."""

    def __init__(self, C: int, num_classes: int, pool_stride: int, bn_after_768: bool) -> None:
        super().__init__()
        self._pool_stride = pool_stride
        tail: list[nn.Module] = [nn.BatchNorm2d(768)] if bn_after_768 else []
        self.features = nn.Sequential(
            nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), *tail, nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pool_to_2x2(F.relu(x), self._pool_stride)
        return self.classifier(torch.flatten(self.features(x), 1))


class AuxiliaryHeadCIFAR(_AuxiliaryHead):
    """Auxiliary classifier at 2/3 depth of the CIFAR network (8x8 map -> avg pool 5, stride 3)."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__(C, num_classes, pool_stride=3, bn_after_768=True)


class AuxiliaryHeadImageNet(_AuxiliaryHead):
    """Auxiliary head of the mobile network (7x7 map -> avg pool 5, stride 2); like DARTS, no BN after the 768 conv."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__(C, num_classes, pool_stride=2, bn_after_768=False)


class _DartsNetwork(nn.Module, ABC):
    """Shared cell stacking and forward of the CIFAR and mobile networks."""

    stem_reduces: bool = False

    def _build_cells(
        self, genotype: Genotype, C: int, layers: int, C_prev_prev: int, C_prev: int, num_classes: int,
        auxiliary: bool, aux_head: type[nn.Module],
    ) -> None:
        self._layers = layers
        self.auxiliary = auxiliary
        self.drop_path_prob = 0.0
        self.cells = nn.ModuleList()
        reduction_prev = self.stem_reduces
        C_curr = C
        C_aux = C_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = Cell(genotype, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == 2 * layers // 3:
                C_aux = C_prev
        self.auxiliary_head = aux_head(C_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    @abstractmethod
    def _stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs of the first cell."""

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits, or ``(logits, aux_logits)`` while training with the auxiliary head."""
        s0, s1 = self._stems(x)
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == 2 * self._layers // 3 and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        if logits_aux is not None:
            return logits, logits_aux
        return logits


def _check_sizes(C: int, num_classes: int, layers: int, in_channels: int) -> None:
    for name, value in (("C", C), ("num_classes", num_classes), ("layers", layers), ("in_channels", in_channels)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


class NetworkCIFAR(_DartsNetwork):
    """DARTS CIFAR network: 3x3 stem to 3C, ``layers`` cells, aux head at 2/3 depth, global pool, linear."""

    def __init__(
        self, C: int, num_classes: int, layers: int, auxiliary: bool, genotype: Genotype, in_channels: int = 3
    ) -> None:
        super().__init__()
        _check_sizes(C, num_classes, layers, in_channels)
        C_stem = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        self._build_cells(genotype, C, layers, C_stem, C_stem, num_classes, auxiliary, AuxiliaryHeadCIFAR)

    def _stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        return s, s


class NetworkMobile(_DartsNetwork):
    """DARTS ImageNet (mobile setting) network: two stride-2 stems (/4 and /8), cells, adaptive pool, linear."""

    stem_reduces = True

    def __init__(
        self, C: int, num_classes: int, layers: int, auxiliary: bool, genotype: Genotype, in_channels: int = 3
    ) -> None:
        super().__init__()
        _check_sizes(C, num_classes, layers, in_channels)
        if C < 2:
            raise ValueError(f"NetworkMobile needs C >= 2 (its first stem conv has C/2 channels), got {C}")
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
        self._build_cells(genotype, C, layers, C, C, num_classes, auxiliary, AuxiliaryHeadImageNet)

    def _stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)
