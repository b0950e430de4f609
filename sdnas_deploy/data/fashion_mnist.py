"""``fashion-mnist``: Zalando's Fashion-MNIST (70,000 28x28 grayscale images, 10 classes, MIT license).

Read from the four original IDX files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, gzipped or not) in the first folder that has
them: ``--data-dir`` (or its ``fashion-mnist/`` subfolder), ``$SDNAS_DATA_DIR`` (likewise), then
``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package). Nothing is downloaded;
missing files → one line naming the apt command and the folders searched. The IDX format is parsed with
NumPy (magic number, dimensions and sizes checked): nothing is unpickled.

``image_size`` resizes (bilinear) for networks that want another input, e.g. 32 for a CIFAR-style layout.
Augmentation: random crop with 2-pixel zero padding and horizontal flip (clothes are left-right symmetric).
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BadInputError
from ..registry import register_into
from .digits import TensorImageDataset
from .info import DATA_DIR_ENV, DATASETS, DatasetInfo, DatasetSource, check_split
from .transforms import small_image_pipeline

NAME = "fashion-mnist"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = "sudo apt-get install dataset-fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SIZES = {"train": 60000, "test": 10000}
NATIVE_SIZE = 28
NUM_CLASSES = 10
PADDING = 2
# Pixel mean/std of the [0, 1] training images (computed from the files; tests/test_data.py checks them).
MEAN = (0.286041,)
STD = (0.353024,)
SOURCE = "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT license), original IDX files"
MAX_IMAGE_SIZE = 512


def _candidates(data_dir: Path | None) -> list[Path]:
    folders: list[Path] = []
    for base in (data_dir, Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else None):
        if base is not None:
            folders += [base.expanduser(), base.expanduser() / NAME]
    return folders + [SYSTEM_DIR]


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def locate(data_dir: Path | None) -> Path:
    """The first folder holding all four IDX files, else a one-line BadInputError naming the fix."""
    folders = _candidates(data_dir)
    for folder in folders:
        if all(_find(folder, stem) is not None for pair in FILES.values() for stem in pair):
            return folder
    searched = ", ".join(str(f) for f in folders)
    raise BadInputError(f"Fashion-MNIST files not found (searched {searched}); install them with `{APT_HINT}` "
                        f"or put the four *-idx?-ubyte.gz files in --data-dir")


def read_idx(path: Path, dims: int, count: int) -> np.ndarray:
    """One IDX array of unsigned bytes with ``dims`` dimensions and ``count`` items, strictly checked."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise BadInputError(f"{path}: unreadable ({type(exc).__name__}); reinstall the dataset ({APT_HINT})") from None
    header = 4 + 4 * dims
    if len(raw) < header or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != dims:
        raise BadInputError(f"{path}: not an IDX file of unsigned bytes with {dims} dimensions; reinstall the dataset")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    if shape[0] != count or len(raw) != header + int(np.prod(shape)):
        raise BadInputError(f"{path}: holds shape {shape} in {len(raw)} bytes, expected {count} items; "
                            "the file is truncated or foreign, reinstall the dataset")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=4)
def load_raw(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N x 28 x 28) and int64 labels of ``split`` from ``folder``."""
    image_stem, label_stem = FILES[check_split(split)]
    images = read_idx(_find(folder, image_stem), 3, SIZES[split])  # type: ignore[arg-type]
    labels = read_idx(_find(folder, label_stem), 1, SIZES[split]).astype(np.int64)  # type: ignore[arg-type]
    if images.shape[1:] != (NATIVE_SIZE, NATIVE_SIZE) or labels.max() >= NUM_CLASSES:
        raise BadInputError(f"{folder}: Fashion-MNIST {split} files have unexpected content; reinstall the dataset")
    return images, labels


def _size(image_size: int | None) -> int:
    size = NATIVE_SIZE if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= MAX_IMAGE_SIZE:
        raise BadInputError(f"fashion-mnist image size must be an integer in 8..{MAX_IMAGE_SIZE}, got {image_size!r}")
    return size


def fashion_info(data_dir: Path | None = None, image_size: int | None = None) -> DatasetInfo:
    """Description of Fashion-MNIST at ``image_size`` (default 28); the files must be present."""
    locate(data_dir)
    return DatasetInfo(NAME, NUM_CLASSES, 1, _size(image_size), MEAN, STD, SOURCE)


def build_fashion(split: str, data_dir: Path | None, augment: bool, cutout: int,
                  image_size: int | None) -> TensorImageDataset:
    """A Fashion-MNIST split in [0, 1], resized once to ``image_size`` when asked."""
    size = _size(image_size)
    images, labels = load_raw(locate(data_dir), split)
    tensor = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if size != NATIVE_SIZE:
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    transform = small_image_pipeline(size, PADDING, flip=True, mean=MEAN, std=STD, augment=augment, cutout=cutout,
                                     to_tensor=False)
    return TensorImageDataset(tensor.contiguous(), torch.from_numpy(labels.copy()), transform)


register_into(DATASETS, NAME)(DatasetSource(info=fashion_info, build=build_fashion, resizable=True))
