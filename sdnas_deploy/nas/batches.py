"""The data a search sees: the weight-train / arch-val halves of the train split, the test split, and batches.

Halves are deterministic by seed (``data.search_halves``); training batches are reshuffled from (seed, epoch),
the arch-val half by its own stream; evaluation batches are in fixed order and capped at ``steps_per_epoch``.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch

from .. import data as datasets
from ..device import DevicePolicy
from ..parallel import Parallel

Batch = tuple[torch.Tensor, ...]  # (x, y), or (x, y, index of each sample in its half) for the weight-train stream
VAL_LOADER_SEED_OFFSET = 7919  # the arch-val half is shuffled by its own stream, independent of the train half


class WithIndex(torch.utils.data.Dataset):
    """``dataset`` whose items also carry their own index (cached teachers key their records by sample)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return (*self.dataset[i], i)


class SearchData:
    """Dataset description, the two halves, the test split, and the batch iterators of one search."""

    def __init__(self, config: Any, policy: DevicePolicy, par: Parallel | None = None) -> None:
        self.config = config
        self.policy = policy
        self.par = par or Parallel()
        self.info = datasets.dataset_info(config.dataset, config.data_dir, image_size=config.image_size)
        train_set = datasets.load_split(config.dataset, "train", config.data_dir, limit=config.limit,
                                        image_size=config.image_size)
        self.train_half, self.val_half = datasets.search_halves(train_set, config.seed, config.train_portion)
        self.test_set = datasets.load_split(config.dataset, "test", config.data_dir, limit=config.limit,
                                            image_size=config.image_size)

    def sizes(self) -> dict[str, int]:
        return {"weight_train": len(self.train_half), "arch_val": len(self.val_half), "test": len(self.test_set)}

    def steps_per_epoch(self) -> int:
        """Steps of one epoch: one pass over (this rank's share of) the weight-train half, capped by
        ``steps_per_epoch``; ``batch_size`` is per process."""
        c = self.config
        n_batches = math.ceil(math.ceil(len(self.train_half) / self.par.world_size) / c.batch_size)
        return min(n_batches, c.steps_per_epoch) if c.steps_per_epoch else n_batches

    def to_device(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        x = x.to(self.policy.device, non_blocking=True)
        if self.policy.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.policy.device, non_blocking=True)

    def cycle(self, dataset: Any, seed: int, epoch: int) -> Iterator[Batch]:
        """Endless batches of ``dataset``, reshuffled deterministically from (seed, epoch)."""
        loader = datasets.make_loader(dataset, self.config.batch_size, shuffle=True, seed=seed, epoch=epoch,
                                      shard=self.par.shard)
        while True:
            for x, y, *index in loader:
                yield (*self.to_device(x, torch.as_tensor(y)), *index)

    def epoch_batches(self, epoch: int) -> tuple[Iterator[Batch], Iterator[Batch]]:
        """(weight-train, arch-val) batch streams of ``epoch``; weight-train batches are (x, y, sample index)."""
        seed = self.config.seed
        return (self.cycle(WithIndex(self.train_half), seed, epoch),
                self.cycle(self.val_half, seed + VAL_LOADER_SEED_OFFSET, epoch))

    def eval_batches(self, dataset: Any, sharded: bool = True) -> Iterator[Batch]:
        """Fixed-order batches (this rank's strided share when ``sharded``), capped at ``steps_per_epoch``."""
        loader = datasets.make_loader(dataset, self.config.batch_size, shuffle=False, seed=0,
                                      shard=self.par.shard if sharded else None)
        for i, (x, y) in enumerate(loader):
            if self.config.steps_per_epoch is not None and i >= self.config.steps_per_epoch:
                break
            yield self.to_device(x, torch.as_tensor(y))
