"""``digits``: the UCI optical-recognition handwritten digits, embedded in the package.

Source: UCI ML repository "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak 1998,
CC BY 4.0) as redistributed by scikit-learn (BSD-3); see ``assets/DIGITS_LICENSE.txt``. The asset
``assets/digits.npz`` (1797 uint8 8x8 images with values 0..16, int64 labels) was written once by
``tools/make_digits_asset.py``; scikit-learn is not needed at run time.

Why it exists: a real, tiny, offline dataset so search/train/export/evaluate run end to end in
seconds on a CPU and in tests. Images are scaled to [0, 1] and upsampled bilinearly to 16x16 so a
DARTS network (stem + two stride-2 reductions) still has a 4x4 map at the end.

The train/test split (1437/360, stratified) is fixed and independent of ``--seed``: it comes
from ``numpy.random.RandomState``, whose stream NumPy guarantees never to change (NEP 19).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import BadInputError
from ..registry import register_into
from .info import DATASETS, DatasetInfo, DatasetSource, check_fixed_size, check_split
from .transforms import Transform, small_image_pipeline

ASSET_PATH = Path(__file__).resolve().parent / "assets" / "digits.npz"
NUM_IMAGES = 1797
NUM_CLASSES = 10
RAW_SIZE = 8
RAW_MAX = 16.0
IMAGE_SIZE = 16
TEST_SIZE = 360
SPLIT_SEED = 1998
TRANSLATE_PIXELS = 2
# Pixel mean/std of the 16x16 [0, 1] train split, printed by tools/make_digits_asset.py and
# checked against the data by tests/test_data.py.
DIGITS_MEAN = (0.305840,)
DIGITS_STD = (0.319313,)
SOURCE = "UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998, CC BY 4.0), embedded"


@functools.lru_cache(maxsize=1)
def load_raw() -> tuple[np.ndarray, np.ndarray]:
    """The embedded images (uint8, N x 8 x 8, 0..16) and labels (int64, N), validated."""
    if not ASSET_PATH.is_file():
        raise BadInputError(f"embedded digits asset missing: {ASSET_PATH}; reinstall sdnas-deploy")
    try:
        with np.load(ASSET_PATH, allow_pickle=False) as archive:
            images = np.asarray(archive["images"])
            labels = np.asarray(archive["labels"])
    except (OSError, KeyError, ValueError) as exc:
        raise BadInputError(f"embedded digits asset unreadable: {ASSET_PATH} ({type(exc).__name__}); reinstall sdnas-deploy") from None
    valid = (
        images.shape == (NUM_IMAGES, RAW_SIZE, RAW_SIZE) and images.dtype == np.uint8 and images.max() <= RAW_MAX
        and labels.shape == (NUM_IMAGES,) and labels.dtype == np.int64
        and labels.min() == 0 and labels.max() == NUM_CLASSES - 1
    )
    if not valid:
        raise BadInputError(f"embedded digits asset has unexpected content: {ASSET_PATH}; reinstall sdnas-deploy")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _test_quota(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Per-class test counts proportional to class sizes, summing exactly to ``total`` (largest remainder)."""
    exact = class_counts * total / class_counts.sum()
    quota = np.floor(exact).astype(np.int64)
    shortfall = total - int(quota.sum())
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[:shortfall]] += 1
    return quota


@functools.lru_cache(maxsize=1)
def split_indices() -> dict[str, np.ndarray]:
    """Fixed stratified split: ``{"train": idx, "test": idx}``, each in a class-mixed, fixed order."""
    _, labels = load_raw()
    order = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
    quota = _test_quota(np.bincount(labels, minlength=NUM_CLASSES), TEST_SIZE)
    is_test = np.zeros(len(labels), dtype=bool)
    for cls in range(NUM_CLASSES):
        members = order[labels[order] == cls]
        is_test[members[: quota[cls]]] = True
    split = {"train": order[~is_test[order]], "test": order[is_test[order]]}
    for idx in split.values():
        idx.setflags(write=False)
    return split


def scaled_images(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of ``split`` in [0, 1] as N x 1 x 16 x 16 float32 (bilinear upsampling) and their labels."""
    images, labels = load_raw()
    idx = split_indices()[check_split(split)]
    small = torch.from_numpy(images[idx].astype(np.float32) / RAW_MAX).unsqueeze(1)
    big = F.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return big.clamp_(0.0, 1.0).contiguous(), torch.from_numpy(labels[idx].copy())


def compute_train_stats() -> tuple[float, float]:
    """Pixel mean and (population) std of the scaled train split: the source of DIGITS_MEAN/STD."""
    images, _ = scaled_images("train")
    pixels = images.double()
    return float(pixels.mean()), float(pixels.std(unbiased=False))


class TensorImageDataset(Dataset):
    """Images held in memory as C x H x W tensors in [0, 1], transformed on access."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Transform) -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), self.targets[index]


def digits_info(data_dir: Path | None = None, image_size: int | None = None) -> DatasetInfo:
    """Description of the embedded digits dataset (``data_dir`` is ignored)."""
    check_fixed_size("digits", IMAGE_SIZE, image_size)
    return DatasetInfo("digits", NUM_CLASSES, 1, IMAGE_SIZE, DIGITS_MEAN, DIGITS_STD, SOURCE)


def build_digits(
    split: str, data_dir: Path | None, augment: bool, cutout: int, image_size: int | None
) -> TensorImageDataset:
    """A digits split; augmentation is a random shift of up to 2 pixels (no flips: digits are not symmetric)."""
    check_fixed_size("digits", IMAGE_SIZE, image_size)
    images, labels = scaled_images(split)
    transform = small_image_pipeline(
        IMAGE_SIZE, TRANSLATE_PIXELS, flip=False, mean=DIGITS_MEAN, std=DIGITS_STD,
        augment=augment, cutout=cutout, to_tensor=False,
    )
    return TensorImageDataset(images, labels, transform)


register_into(DATASETS, "digits")(DatasetSource(info=digits_info, build=build_digits))
