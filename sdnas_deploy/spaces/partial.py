"""PC-DARTS for the cell spaces: partial channel connections and edge normalization (DESIGN.md §1).

Partial channels (Xu et al., PC-DARTS, ICLR 2020): an edge sends only 1/K of its input channels through
the mixture of candidate ops; the other channels bypass it (max-pooled 2x2 when the edge strides), and
a channel shuffle with K groups mixes the two parts, so a different slice of channels is searched at
the next edge. The mixture then costs about 1/K of the compute and memory, which is what makes a
larger batch (and a faster step) affordable. Edge normalization adds one β per edge: each node sums
its incoming edges weighted by softmax(β) over those edges, which steadies the edge choice that
partial channels make noisier; the derived cell ranks edges by softmax(α)·softmax(β).

Both are supernet options of the ``darts`` and ``nb201`` spaces (``Space.supernet_options``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..errors import BadInputError

SUPERNET_OPTIONS = frozenset({"partial_channels", "edge_norm"})


def check_partial_channels(channels: int, k: int, where: str) -> None:
    """Every edge width must split into K equal parts."""
    if k < 1:
        raise BadInputError(f"partial_channels={k} is invalid; use 1 (off) or a divisor of the edge width, e.g. 4")
    if channels % k:
        raise BadInputError(f"{where}: {channels} channels do not split into {k} parts; choose --partial-channels "
                            f"dividing {channels} or change --channels")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups (ShuffleNet): group g's channel i moves to position i·groups + g."""
    if groups == 1:
        return x
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class PartialMixture(nn.Module):
    """Wraps a mixed edge built for C/K channels: the first C/K channels go through it, the rest bypass it."""

    def __init__(self, mixed: nn.Module, k: int) -> None:
        super().__init__()
        self.mixed = mixed
        self.k = k
        self.bypass_pool = nn.MaxPool2d(2, 2, ceil_mode=True)  # a striding edge halves the bypass too (rounding up)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, *args: Any) -> torch.Tensor:
        searched = x.shape[1] // self.k
        out = self.mixed(x[:, :searched], weights, *args)
        rest = x[:, searched:]
        if out.shape[2:] != rest.shape[2:]:
            rest = self.bypass_pool(rest)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)


def partial(mixed: nn.Module, k: int) -> nn.Module:
    """``mixed`` itself when K = 1, else wrapped in :class:`PartialMixture`."""
    return mixed if k == 1 else PartialMixture(mixed, k)


def node_softmax(betas: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """softmax(β) within consecutive groups of edges (the incoming edges of each node), as one flat vector."""
    out, start = [], 0
    for size in groups:
        out.append(torch.softmax(betas[start : start + size], dim=0))
        start += size
    return torch.cat(out)
