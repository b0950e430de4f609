"""Rating every path of a student block against the teacher (DESIGN.md §9).

A path is rated on a fixed held-out set of (input, teacher output) pairs after its BatchNorm statistics are
re-estimated on calibration inputs *for that path alone* (the supernet's running statistics describe a mixture
of paths). Scores: ``score = mean|s − t| / std(t)`` (DNA's selection score) and ``mse``. A block with at most
``rate_max`` paths is rated exhaustively; a larger one is rated on ``rate_max`` uniformly sampled paths, then
refined locally: every single-layer change of the best ``REFINE_TOP`` sampled paths is rated too, once.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ...spaces.blockwise import Path, StudentBlock
from ...spaces.layers import reset_batchnorm

REFINE_TOP = 3  # ours: how many of the best sampled paths get their one-layer neighbourhood rated


@dataclass(frozen=True)
class Rating:
    """Scores of one path: DNA's normalized L1 score (lower is better) and the MSE."""

    path: Path
    score: float
    mse: float


@torch.no_grad()
def rate_path(block: StudentBlock, path: Path, calibration: Sequence[torch.Tensor],
              pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Rating:
    """Re-estimate the path's BatchNorm on ``calibration`` inputs, then score it on ``pairs`` (eval mode)."""
    modules = block.path_modules(path)
    norms = reset_batchnorm(modules)
    block.train()
    for x in calibration:
        block(x, path)
    block.eval()
    abs_sum = sq_sum = 0.0
    count = 0
    targets = []
    for x, target in pairs:
        diff = (block(x, path) - target).float()
        abs_sum += float(diff.abs().sum())
        sq_sum += float((diff * diff).sum())
        count += diff.numel()
        targets.append(target.float().flatten())
    std = float(torch.cat(targets).std()) if targets else 1.0
    for bn in norms:
        bn.momentum = 0.1
    return Rating(path, abs_sum / count / max(std, 1e-12), sq_sum / count)


def all_paths(options: Sequence[Sequence[int]]) -> list[Path]:
    return [tuple(p) for p in itertools.product(*options)]


def paths_to_rate(options: Sequence[Sequence[int]], rate_max: int, seed: int) -> tuple[list[Path], bool]:
    """(paths, exhaustive): every path when there are at most ``rate_max``, else ``rate_max`` sampled ones."""
    total = 1
    for opts in options:
        total *= len(opts)
    if total <= rate_max:
        return all_paths(options), True
    rng = random.Random(seed)
    seen: set[Path] = set()
    while len(seen) < rate_max:
        seen.add(tuple(rng.choice(list(opts)) for opts in options))
    return sorted(seen), False


def neighbours(path: Path, options: Sequence[Sequence[int]]) -> list[Path]:
    """Every path that differs from ``path`` in exactly one layer."""
    found = []
    for i, opts in enumerate(options):
        for k in opts:
            if k != path[i]:
                found.append(path[:i] + (k,) + path[i + 1:])
    return found


def rate_block(block: StudentBlock, calibration: Sequence[torch.Tensor],
               pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], rate_max: int, seed: int,
               progress: Callable[[int], None] | None = None) -> tuple[list[Rating], dict[str, object]]:
    """All ratings of ``block`` (module docstring) and how they were chosen."""
    paths, exhaustive = paths_to_rate(block.options, rate_max, seed)
    ratings = {}
    for path in paths:
        ratings[path] = rate_path(block, path, calibration, pairs)
        if progress is not None:
            progress(1)
    refined = 0
    if not exhaustive:
        for best in sorted(ratings.values(), key=lambda r: r.score)[:REFINE_TOP]:
            for path in neighbours(best.path, block.options):
                if path not in ratings:
                    ratings[path] = rate_path(block, path, calibration, pairs)
                    refined += 1
    how = {"paths": block.num_paths(), "rated": len(ratings), "exhaustive": exhaustive,
           "sampled": 0 if exhaustive else len(paths), "refined": refined}
    return sorted(ratings.values(), key=lambda r: (r.score, r.path)), how
