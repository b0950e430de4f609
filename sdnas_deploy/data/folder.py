"""``imagefolder``: your own images in class folders (torchvision ``ImageFolder``).

Expected layout under ``--data-dir DIR``::

    DIR/train/<class>/*.jpg|png|...     training images, one folder per class
    DIR/val/<class>/...                 evaluation images (``DIR/test/`` is accepted too)

Class indices are the sorted class folder names of ``train/``; ``val/`` must have the same class
folders so label indices agree. Images are read as RGB. Default input size 224 (ImageNet
recipe: RandomResizedCrop + flip to train; Resize 256 + CenterCrop 224 to evaluate) with the
ImageNet mean/std. Every layout problem is a one-line BadInputError naming the path.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from ..errors import BadInputError
from ..registry import register_into
from .info import DATASETS, DatasetInfo, DatasetSource, check_split
from .transforms import large_image_pipeline

DEFAULT_IMAGE_SIZE = 224
MIN_IMAGE_SIZE = 8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYOUT = "DIR/train/<class>/<image> and DIR/val/<class>/<image>"
EVAL_FOLDERS = ("val", "test")


def _root(data_dir: Path | str | None) -> Path:
    """The dataset root; ``imagefolder`` has no default location."""
    if data_dir is None:
        raise BadInputError(f"dataset 'imagefolder' needs --data-dir DIR laid out as {LAYOUT}")
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise BadInputError(f"image folder not found: {root}; pass --data-dir DIR laid out as {LAYOUT}")
    return root


def split_dir(data_dir: Path | str | None, split: str) -> Path:
    """``DIR/train`` for train, ``DIR/val`` (or ``DIR/test``) for test; missing ones are reported."""
    root = _root(data_dir)
    names = ("train",) if check_split(split) == "train" else EVAL_FOLDERS
    for name in names:
        if (root / name).is_dir():
            return root / name
    wanted = " or ".join(f"{root / n}/" for n in names)
    raise BadInputError(f"missing split folder {wanted}; expected layout {LAYOUT}")


def class_names(folder: Path) -> list[str]:
    """Sorted class folder names under ``folder`` (hidden folders ignored); none is an error."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise BadInputError(f"no class folders in {folder}; expected layout {LAYOUT}")
    return names


def _image_size(image_size: int | None) -> int:
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_IMAGE_SIZE:
        raise BadInputError(f"image size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
    return size


def _load_rgb(path: str) -> object:
    """Open an image as RGB; an unreadable file is bad input, not a crash."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise BadInputError(f"unreadable image {path} ({type(exc).__name__}); remove or replace the file") from None


def folder_info(data_dir: Path | None = None, image_size: int | None = None) -> DatasetInfo:
    """Description of an image folder; ``num_classes`` comes from the class folders of ``train/``."""
    size = _image_size(image_size)
    train = split_dir(data_dir, "train")
    num_classes = len(class_names(train))
    if num_classes < 2:
        raise BadInputError(f"{train} has {num_classes} class folder; a classifier needs at least 2 — add a folder "
                            f"per class ({LAYOUT})")
    return DatasetInfo("imagefolder", num_classes, 3, size, IMAGENET_MEAN, IMAGENET_STD, f"image folder {train.parent}")


def build_folder(
    split: str, data_dir: Path | None, augment: bool, cutout: int, image_size: int | None
) -> Dataset:
    """An ImageFolder split whose class indices follow ``train/``'s class folders."""
    from torchvision.datasets import ImageFolder

    size = _image_size(image_size)
    folder = split_dir(data_dir, split)
    classes = class_names(split_dir(data_dir, "train"))
    found = class_names(folder)
    if found != classes:
        missing = sorted(set(classes) - set(found))
        extra = sorted(set(found) - set(classes))
        raise BadInputError(
            f"{folder}: class folders differ from train/ (missing {missing or 'none'}, extra {extra or 'none'}); "
            f"give both splits the same class folders"
        )
    transform = large_image_pipeline(size, IMAGENET_MEAN, IMAGENET_STD, augment=augment, cutout=cutout)
    try:
        dataset = ImageFolder(str(folder), transform=transform, loader=_load_rgb)
    except FileNotFoundError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "no images"
        raise BadInputError(f"{folder}: {detail}; put image files in every class folder ({LAYOUT})") from None
    return dataset


register_into(DATASETS, "imagefolder")(
    DatasetSource(info=folder_info, build=build_folder, needs_data_dir=True, resizable=True)
)
