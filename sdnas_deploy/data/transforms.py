"""Image transforms shared by the datasets: Cutout and the train/eval pipelines.

Pipelines follow the DARTS reference order: geometric augmentation, to-tensor, normalize, then
Cutout, so a cut square holds the dataset mean (0 after normalization), not black.
All randomness comes from torch's global RNG, which ``checkpoint.seed_everything`` seeds and
``checkpoint.rng_state`` saves, so augmented runs are reproducible and resumable.
torchvision is imported inside the builders: importing it costs about a second (it pulls in its
model zoo), which commands that never touch data should not pay.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..errors import BadInputError

Transform = Callable[[object], object]


class Cutout:
    """Zero a random ``length`` x ``length`` square of a C x H x W tensor (DeVries & Taylor 2017).

    As in DARTS the square's centre is uniform over the image and the square is clipped at the
    borders, so it can be smaller near edges. Returns a new tensor; the input is left untouched.
    """

    def __init__(self, length: int) -> None:
        if length <= 0:
            raise BadInputError(f"cutout length must be positive, got {length}; use 0 to disable cutout")
        self.length = int(length)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 3:
            raise ValueError(f"Cutout expects a C x H x W tensor, got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        cy = int(torch.randint(height, (1,)).item())
        cx = int(torch.randint(width, (1,)).item())
        half = self.length // 2
        y0, y1 = max(cy - half, 0), min(cy + half, height)
        x0, x1 = max(cx - half, 0), min(cx + half, width)
        out = image.clone()
        out[:, y0:y1, x0:x1] = 0
        return out

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


def check_cutout(cutout: int) -> int:
    """Validate a cutout length (0 disables it)."""
    if cutout < 0:
        raise BadInputError(f"cutout must be >= 0, got {cutout}; use 0 to disable it")
    return int(cutout)


def finish(
    steps: list[Transform],
    mean: Sequence[float],
    std: Sequence[float],
    augment: bool,
    cutout: int,
    to_tensor: bool,
) -> Transform:
    """Append to-tensor (for PIL inputs), normalization and, when augmenting, Cutout."""
    from torchvision import transforms as T

    tail: list[Transform] = [T.ToTensor()] if to_tensor else []
    tail.append(T.Normalize(mean=list(mean), std=list(std)))
    if augment and check_cutout(cutout) > 0:
        tail.append(Cutout(cutout))
    return T.Compose(list(steps) + tail)


def small_image_pipeline(
    size: int,
    padding: int,
    flip: bool,
    mean: Sequence[float],
    std: Sequence[float],
    augment: bool,
    cutout: int,
    to_tensor: bool,
) -> Transform:
    """CIFAR-style pipeline: random crop with zero padding (+ optional flip) when augmenting."""
    from torchvision import transforms as T

    steps: list[Transform] = []
    if augment:
        steps.append(T.RandomCrop(size, padding=padding))
        if flip:
            steps.append(T.RandomHorizontalFlip())
    return finish(steps, mean, std, augment, cutout, to_tensor)


def resize_for(image_size: int) -> int:
    """Short-side resize before the eval centre crop (256 for 224, the ImageNet ratio 0.875)."""
    return int(round(image_size / 0.875))


def large_image_pipeline(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    augment: bool,
    cutout: int,
) -> Transform:
    """ImageNet-style pipeline for PIL images: RandomResizedCrop + flip to train, Resize + CenterCrop to evaluate."""
    from torchvision import transforms as T

    if augment:
        steps: list[Transform] = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(resize_for(image_size)), T.CenterCrop(image_size)]
    return finish(steps, mean, std, augment, cutout, to_tensor=True)
