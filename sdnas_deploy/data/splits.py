"""Deterministic subsets and loaders: ``limit``, DARTS search halves, seeded DataLoaders.

Everything here depends only on dataset length and an integer seed, so a run (and a resumed run)
sees the same samples in the same order on every machine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from ..errors import BadInputError

LIMIT_SEED = 20240531
EPOCH_STRIDE = 1000003


def _is_int(value: object) -> bool:
    """True for Python/NumPy integers, False for bools and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def limit_subset(dataset: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` samples of a fixed, seed-independent shuffle (classes stay mixed).

    ``None`` or a limit at least the dataset length returns ``dataset`` itself. The chosen indices
    are kept in ascending order and are nested: ``limit=N`` is a subset of ``limit=M`` for N < M.
    """
    if limit is None:
        return dataset
    if not _is_int(limit) or limit <= 0:
        raise BadInputError(f"limit must be a positive integer, got {limit!r}; omit it to use the whole split")
    limit = int(limit)
    size = len(dataset)  # type: ignore[arg-type]
    if limit >= size:
        return dataset
    order = np.random.RandomState(LIMIT_SEED).permutation(size)
    return Subset(dataset, sorted(int(i) for i in order[:limit]))


def search_halves(dataset: Dataset, seed: int, fraction: float = 0.5) -> tuple[Subset, Subset]:
    """Split a *training* set into (weight-train, arch-val) parts by a seeded random permutation.

    DARTS trains the weights on one part and the architecture on the other; the test set is never
    used during search. ``fraction`` is the weight-train share; both parts are non-empty and
    disjoint and together cover ``dataset``.
    """
    if not 0.0 < fraction < 1.0:
        raise BadInputError(f"search train fraction must be between 0 and 1 (exclusive), got {fraction}; the default is 0.5")
    size = len(dataset)  # type: ignore[arg-type]
    if size < 2:
        raise BadInputError(f"need at least 2 training samples to split into search halves, got {size}; raise --limit")
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(size, generator=generator).tolist()
    cut = min(max(int(round(size * fraction)), 1), size - 1)
    return Subset(dataset, order[:cut]), Subset(dataset, order[cut:])


def loader_generator(seed: int, epoch: int = 0) -> torch.Generator:
    """The generator driving a loader's shuffle for ``epoch`` (seed + epoch * 1000003)."""
    return torch.Generator().manual_seed(int(seed) + int(epoch) * EPOCH_STRIDE)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_last: bool = False,
    epoch: int = 0,
    pin_memory: bool = False,
    shard: tuple[int, int] | None = None,
) -> DataLoader:
    """A single-process DataLoader whose order depends only on ``seed`` and ``epoch``.

    Build one loader per epoch with ``epoch=e``: the shuffle of epoch ``e`` is then the same
    whether the run went straight through or was resumed at ``e``. Augmentation randomness uses
    torch's global RNG, which the trainers checkpoint separately.
    """
    if not _is_int(batch_size) or batch_size <= 0:
        raise BadInputError(f"batch size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    size = len(dataset)  # type: ignore[arg-type]
    if size == 0:
        raise BadInputError("dataset is empty; check the data directory or --limit")
    if drop_last and size < batch_size:
        raise BadInputError(
            f"batch size {batch_size} is larger than the {size} samples available, so no full batch exists; "
            f"lower --batch-size or raise --limit"
        )
    if shard is not None and shard[1] > 1:  # torchrun: this rank's part (parallel.py)
        rank, world = shard
        if not shuffle:  # evaluation: a strided slice, every sample on exactly one rank (no padding)
            return DataLoader(Subset(dataset, list(range(rank, size, world))), batch_size=batch_size,
                              shuffle=False, drop_last=drop_last, num_workers=0, pin_memory=pin_memory)
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=int(seed),
                                     drop_last=drop_last)
        sampler.set_epoch(int(epoch))  # every rank draws the same permutation of (seed, epoch), then its part
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=0,
                          pin_memory=pin_memory)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=0,
        pin_memory=pin_memory,
        generator=loader_generator(seed, epoch),
    )
