"""Datasets: embedded ``digits``, ``fashion-mnist`` (Debian package), ``cifar10``/``cifar100`` and ``imagefolder``.

Public API (docs/ARCHITECTURE.md): :class:`DatasetInfo`, ``DATASETS``, :func:`dataset_info`,
:func:`load_split`, :func:`search_halves`, :func:`make_loader`, :func:`load_arrays`.
Importing this package registers every dataset.
"""

from __future__ import annotations

from . import digits, fashion_mnist, folder, torchvision_sets  # noqa: F401  (register the datasets)
from .api import dataset_info, load_arrays, load_split
from .info import DATASETS, SPLITS, DatasetInfo, default_data_dir
from .splits import limit_subset, make_loader, search_halves
from .transforms import Cutout

__all__ = [
    "DATASETS",
    "SPLITS",
    "Cutout",
    "DatasetInfo",
    "dataset_info",
    "default_data_dir",
    "limit_subset",
    "load_arrays",
    "load_split",
    "make_loader",
    "search_halves",
]
