"""``cifar10`` and ``cifar100`` through torchvision, with an offline-friendly error.

Files live in ``--data-dir`` (default ``$SDNAS_DATA_DIR`` or ``~/.cache/sdnas/data``) as the
extracted official archives: ``cifar-10-batches-py/`` or ``cifar-100-python/``. When they are
missing the official archive is downloaded once; when that fails (offline machine) a one-line
BadInputError says which folder to put where.

Safety note: torchvision's CIFAR reader unpickles the official batch files, but only after it has
checked every file against the official MD5 sums (``_check_integrity`` runs before any
``pickle.load``), so a tampered or foreign file is refused rather than unpickled.

Augmentation is the DARTS standard: random crop 32 with 4 zero-padding, horizontal flip, and
Cutout when requested. Mean/std are the usual per-channel train-set statistics.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from torch.utils.data import Dataset

from ..errors import BadInputError
from ..progress import log
from ..registry import register_into
from .info import DATASETS, DatasetInfo, DatasetSource, check_fixed_size, check_split, resolve_data_dir
from .transforms import Transform, small_image_pipeline

IMAGE_SIZE = 32
PADDING = 4
CIFAR_HOME = "https://www.cs.toronto.edu/~kriz/cifar.html"
DOWNLOAD_SOCKET_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CifarSpec:
    """One CIFAR variant: torchvision class name, folder/archive names, classes, statistics."""

    name: str
    label: str
    class_name: str
    folder: str
    archive: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CIFAR10 = CifarSpec(
    "cifar10", "CIFAR-10", "CIFAR10", "cifar-10-batches-py", "cifar-10-python.tar.gz", 10,
    (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
)
CIFAR100 = CifarSpec(
    "cifar100", "CIFAR-100", "CIFAR100", "cifar-100-python", "cifar-100-python.tar.gz", 100,
    (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound each network wait: torchvision's downloader sets no timeout, so a firewalled machine would hang."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def open_cifar(spec: CifarSpec, root: Path, train: bool, transform: Transform) -> Dataset:
    """Open a CIFAR split from ``root``, downloading the official archive once if it is missing."""
    from torchvision import datasets

    cls = getattr(datasets, spec.class_name)
    try:
        return cls(str(root), train=train, transform=transform, download=False)
    except (RuntimeError, OSError):
        pass  # not there (or not matching the official MD5s): try the official download
    log(f"{spec.label} not found in {root}; downloading {spec.archive} from {CIFAR_HOME} ...")
    try:
        with _socket_timeout(DOWNLOAD_SOCKET_TIMEOUT_S):
            return cls(str(root), train=train, transform=transform, download=True)
    except Exception as exc:  # URLError, SSL, HTTP, disk, bad archive: all mean "put the files there yourself"
        raise BadInputError(
            f"{spec.label} not found in {root} and the download failed ({_first_line(exc)}); "
            f"put {spec.folder}/ (extracted from {spec.archive}, {CIFAR_HOME}) in {root} or pass --data-dir DIR"
        ) from None


def _make_source(spec: CifarSpec) -> DatasetSource:
    """Registry entry for one CIFAR variant."""

    def info(data_dir: Path | None = None, image_size: int | None = None) -> DatasetInfo:
        check_fixed_size(spec.name, IMAGE_SIZE, image_size)
        source = f"{spec.label} via torchvision, {resolve_data_dir(data_dir) / spec.folder}"
        return DatasetInfo(spec.name, spec.num_classes, 3, IMAGE_SIZE, spec.mean, spec.std, source)

    def build(split: str, data_dir: Path | None, augment: bool, cutout: int, image_size: int | None) -> Dataset:
        check_fixed_size(spec.name, IMAGE_SIZE, image_size)
        check_split(split)
        transform = small_image_pipeline(
            IMAGE_SIZE, PADDING, flip=True, mean=spec.mean, std=spec.std,
            augment=augment, cutout=cutout, to_tensor=True,
        )
        return open_cifar(spec, resolve_data_dir(data_dir), split == "train", transform)

    return DatasetSource(info=info, build=build)


for _spec in (CIFAR10, CIFAR100):
    register_into(DATASETS, _spec.name)(_make_source(_spec))
