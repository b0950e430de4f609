"""Dataset descriptions and the ``DATASETS`` registry shared by every dataset module.

A dataset is registered as a :class:`DatasetSource`: one function that describes it
(:class:`DatasetInfo`: classes, channels, input size, normalization) and one that builds a split.
The public functions in ``sdnas_deploy.data.api`` look names up here, so adding a dataset means
writing one module and registering it, nothing else.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from ..errors import BadInputError

SPLITS = ("train", "test")
DATA_DIR_ENV = "SDNAS_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/sdnas/data"


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset: label count, input shape and normalization."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one normalized sample, C x H x W."""
        return (self.in_channels, self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for reports and export sidecars."""
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data


InfoFn = Callable[[Path | None, int | None], DatasetInfo]
BuildFn = Callable[[str, Path | None, bool, int, int | None], Dataset]


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: ``info(data_dir, image_size)`` and ``build(split, data_dir, augment, cutout, image_size)``.

    ``build`` returns the whole split; subsetting (``limit``) and search halves are applied on top
    by the generic helpers, so every dataset gets them for free. ``needs_data_dir``: no default
    location (the CLI must ask for ``--data-dir``); ``resizable``: accepts an ``image_size``
    (fixed-size datasets reject any size but their own).
    """

    info: InfoFn
    build: BuildFn
    needs_data_dir: bool = False
    resizable: bool = False


DATASETS: dict[str, DatasetSource] = {}


def default_data_dir() -> Path:
    """Where downloadable datasets live: ``$SDNAS_DATA_DIR`` or ``~/.cache/sdnas/data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def resolve_data_dir(data_dir: Path | str | None) -> Path:
    """``data_dir`` as an absolute Path, falling back to :func:`default_data_dir`."""
    path = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return path.resolve()


def check_split(split: str) -> str:
    """Validate a split name (``train`` or ``test``)."""
    if split not in SPLITS:
        raise BadInputError(f"unknown split {split!r}; use 'train' or 'test'")
    return split


def check_fixed_size(name: str, native: int, image_size: int | None) -> None:
    """Reject an ``image_size`` for datasets whose input size is fixed."""
    if image_size is not None and image_size != native:
        raise BadInputError(
            f"dataset {name!r} has fixed {native}x{native} images; drop the image size option "
            f"(only 'imagefolder' and 'fashion-mnist' can be resized)"
        )
