"""The dataset entry points other modules call: describe, load a split, load arrays for ONNX Runtime.

Names are looked up in the ``DATASETS`` registry (unknown names get a suggestion). ``image_size``
is an optional extension of the contract for ``imagefolder`` (default 224); fixed-size datasets
reject a different size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..registry import lookup
from .info import DATASETS, DatasetInfo, DatasetSource, check_split
from .splits import limit_subset
from .transforms import check_cutout

ARRAY_BATCH = 256


def _source(name: str) -> DatasetSource:
    return lookup(DATASETS, name, "dataset")


def dataset_info(name: str, data_dir: Path | str | None = None, image_size: int | None = None) -> DatasetInfo:
    """Classes, input shape, normalization and source of dataset ``name``."""
    return _source(name).info(Path(data_dir) if data_dir is not None else None, image_size)


def load_split(
    name: str,
    split: str,
    data_dir: Path | str | None = None,
    augment: bool = False,
    cutout: int = 0,
    limit: int | None = None,
    image_size: int | None = None,
) -> Dataset:
    """Split ``train`` or ``test`` of ``name`` yielding ``(normalized C x H x W float tensor, int label)``.

    ``augment`` turns on the dataset's training augmentation, ``cutout`` (> 0, only with augment)
    adds Cutout of that side length, ``limit`` keeps a fixed subset of that many samples.
    """
    source = _source(name)
    check_split(split)
    check_cutout(cutout)
    dataset = source.build(split, Path(data_dir) if data_dir is not None else None, augment, cutout, image_size)
    return limit_subset(dataset, limit)


def load_arrays(
    name: str,
    split: str,
    data_dir: Path | str | None = None,
    limit: int | None = None,
    image_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A whole split without augmentation as (float32 N x C x H x W normalized, int64 N) NumPy arrays.

    Exactly the samples and preprocessing of ``load_split(..., augment=False)``, for feeding
    ONNX Runtime during verification and evaluation.
    """
    dataset = load_split(name, split, data_dir, augment=False, cutout=0, limit=limit, image_size=image_size)
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    for batch_images, batch_labels in DataLoader(dataset, batch_size=ARRAY_BATCH, shuffle=False, num_workers=0):
        images.append(batch_images)
        labels.append(torch.as_tensor(batch_labels))
    x = torch.cat(images).to(torch.float32).numpy()
    y = torch.cat(labels).to(torch.int64).numpy()
    return np.ascontiguousarray(x), np.ascontiguousarray(y)
