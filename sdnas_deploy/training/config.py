"""Retraining configuration: the ``train:`` section of a recipe, and the reference recipes it falls back to.

Fields left ``None`` mean "the reference value of the chosen setting"; :func:`resolve` fills them in, so a
recipe only names what it changes. The references belong to the space's settings (``Setting.train_reference``):
for darts the DARTS paper's retraining recipes (DESIGN.md §1: ``cifar`` and the ImageNet ``mobile`` setting).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config_utils import from_mapping
from ..errors import BadInputError

LrSchedule = Literal["cosine", "exp"]


@dataclass
class TrainConfig:
    """Hyperparameters of ``sdnas train``; ``None`` = the setting's reference value (``Setting.train_reference``)."""

    dataset: str = "digits"  # embedded 16x16 digits: runs anywhere without downloads
    data_dir: str | None = None  # folder for cifar10/cifar100/imagefolder
    limit: int | None = None  # a fixed subset of N samples of the train and of the test split (quick runs)
    image_size: int | None = None  # resize the images (resizable datasets; default: the setting's input size, else native)
    setting: str | None = None  # the space's deployment setting and reference recipe (None: the space's default)
    layers: int | None = None  # darts cells; None -> the setting's reference
    channels: int | None = None  # darts initial channels; None -> the setting's reference
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: LrSchedule | None = None  # cosine (to 0 over the epochs) | exp (x lr_decay per epoch)
    lr_decay: float | None = None  # per-epoch factor of the exp schedule (None -> 0.97 when exp)
    momentum: float = 0.9  # SGD momentum (no Nesterov), as DARTS
    weight_decay: float | None = None
    grad_clip: float = 5.0  # max global gradient norm; 0 disables clipping
    auxiliary: bool | None = None  # auxiliary head at 2/3 depth (training only; None: the setting's, darts True)
    auxiliary_weight: float = 0.4
    drop_path_prob: float = 0.2  # final drop-path probability, ramped linearly from 0 over the epochs
    cutout: int | None = None  # cutout square side in pixels; 0 disables
    label_smoothing: float | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto | bf16 | fp16 | off (auto: bf16/fp16 on CUDA, fp32 on CPU)
    channels_last: bool | None = None  # None: on for CUDA only
    steps_per_epoch: int | None = None  # cap on training batches per epoch (quick runs, smoke tests)
    tensorboard: str | None = None  # ours: folder for TensorBoard scalars (needs the tensorboard package)
    sync_bn: bool = False  # ours: torchrun on GPUs: BatchNorm statistics over all processes' batches (SyncBatchNorm)
    eval_batch_size: int = 256
    # ours: distillation from a trained network (e.g. the DNA teacher): loss = (1 - w) CE + w T² KL(t/T ‖ s/T)
    teacher: str | None = None  # weights or run directory of `sdnas train` (same dataset, classes and input size)
    kd_weight: float = 0.5  # ours: w, equal weight to labels and teacher
    kd_temperature: float = 4.0  # ours: T (Hinton et al.'s usual range 2-4; the top of it for soft targets)


# Per-epoch decay of the exp schedule when a reference leaves it unset: DARTS' ImageNet value.
EXP_LR_DECAY = 0.97


def _check(condition: bool, field: str, value: Any, need: str) -> None:
    if not condition:
        raise BadInputError(f"train config: {field}={value!r} is invalid; {need}")


def validate(config: TrainConfig) -> TrainConfig:
    """Reject values no run can use, with a one-line message per problem; returns ``config``."""
    c = config
    if c.limit is not None:
        _check(c.limit >= 1, "limit", c.limit, "use a positive sample count or leave it unset")
    for name in ("layers", "channels", "epochs", "batch_size", "steps_per_epoch", "image_size"):
        value = getattr(c, name)
        if value is not None:
            _check(value >= 1, name, value, "use a positive integer")
    _check(c.eval_batch_size >= 1, "eval_batch_size", c.eval_batch_size, "use a positive integer")
    if c.lr is not None:
        _check(math.isfinite(c.lr) and c.lr > 0, "lr", c.lr, "use a positive finite learning rate")
    if c.lr_decay is not None:
        _check(0 < c.lr_decay <= 1, "lr_decay", c.lr_decay, "use a factor in (0, 1]")
    if c.weight_decay is not None:
        _check(c.weight_decay >= 0, "weight_decay", c.weight_decay, "use 0 or a positive value")
    if c.cutout is not None:
        _check(c.cutout >= 0, "cutout", c.cutout, "use 0 (off) or a side length in pixels")
    if c.label_smoothing is not None:
        _check(0 <= c.label_smoothing < 1, "label_smoothing", c.label_smoothing, "use a value in [0, 1)")
    _check(0 <= c.momentum < 1, "momentum", c.momentum, "use a value in [0, 1)")
    _check(c.grad_clip >= 0, "grad_clip", c.grad_clip, "use 0 (off) or a positive norm")
    _check(c.auxiliary_weight >= 0, "auxiliary_weight", c.auxiliary_weight, "use 0 or a positive weight")
    _check(0 <= c.drop_path_prob < 1, "drop_path_prob", c.drop_path_prob, "use a probability in [0, 1)")
    _check(c.seed >= 0, "seed", c.seed, "use a non-negative integer")
    _check(0 <= c.kd_weight <= 1, "kd_weight", c.kd_weight, "use a weight in [0, 1]")
    _check(math.isfinite(c.kd_temperature) and c.kd_temperature > 0, "kd_temperature", c.kd_temperature,
           "use a positive temperature")
    if c.setting is not None:
        from ..spaces import SPACES

        known = sorted({name for space in SPACES.values() for name in space.settings})
        _check(isinstance(c.setting, str) and c.setting in known, "setting", c.setting,
               f"use a setting of the architecture's space ({', '.join(known)})")
    return c


def resolve(config: TrainConfig, space: str = "darts") -> TrainConfig:
    """Copy of ``config`` with every ``None`` recipe field set to the reference value of its setting in ``space``."""
    from ..spaces import get_space

    validate(config)
    impl = get_space(space)
    try:
        setting = impl.setting(config.setting)
    except BadInputError as exc:
        raise BadInputError(f"train config: {exc.message}") from None
    if config.auxiliary and not setting.auxiliary:
        raise BadInputError(f"train config: space {space!r} has no auxiliary head; set auxiliary: false")
    changes: dict[str, Any] = {"setting": setting.name} if config.setting is None else {}
    changes.update({k: v for k, v in setting.train_reference.items() if getattr(config, k) is None})
    schedule = changes.get("lr_schedule", config.lr_schedule)
    if schedule == "exp" and config.lr_decay is None:
        changes["lr_decay"] = EXP_LR_DECAY
    if changes.get("auxiliary", config.auxiliary) is None:
        changes["auxiliary"] = False
    return validate(dataclasses.replace(config, **changes))


def train_config_from_mapping(data: Any, source: str) -> TrainConfig:
    """Build a TrainConfig from a mapping (the ``train:`` section), rejecting unknown keys."""
    if data is None:
        return TrainConfig()
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: expected a mapping of train settings, got {type(data).__name__}")
    return validate(from_mapping(TrainConfig, data, source))


def load_train_config(path: str | Path) -> TrainConfig:
    """Read the ``train:`` section of a recipe YAML (other sections are left to their owners)."""
    from ..recipe_sections import read_sections

    return train_config_from_mapping(read_sections(Path(path)).get("train"), f"{path} [train]")
