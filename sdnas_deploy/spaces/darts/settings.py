"""DARTS network settings (``cifar``, ``mobile``) and the one entry point that builds a discrete network.

A setting fixes the network family and its published defaults (DESIGN.md §1): ``cifar`` is the
DARTS CIFAR network (20 cells, 36 channels, the dataset's own image size); ``mobile`` is the
DARTS ImageNet mobile network (14 cells, 48 channels, 224x224 input, ≤ 600M multiply-adds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from ...errors import BadInputError
from ...registry import lookup, register_into
from .genotype import Genotype
from .network import NetworkCIFAR, NetworkMobile

NetworkFactory = Callable[[int, int, int, bool, Genotype, int], nn.Module]


@dataclass(frozen=True)
class NetworkSetting:
    """Defaults of a network family. ``input_size`` None means "the dataset's image size"."""

    name: str
    build: NetworkFactory
    layers: int
    channels: int
    input_size: int | None
    mac_budget: float | None
    description: str
    min_channels: int = 1


SETTINGS: dict[str, NetworkSetting] = {}


def network_setting(
    name: str,
    layers: int,
    channels: int,
    input_size: int | None,
    mac_budget: float | None,
    description: str,
    min_channels: int = 1,
) -> Callable[[NetworkFactory], NetworkFactory]:
    """Decorator registering a factory ``(C, num_classes, layers, auxiliary, genotype, in_channels)``."""

    def deco(factory: NetworkFactory) -> NetworkFactory:
        register_into(SETTINGS, name)(
            NetworkSetting(name, factory, layers, channels, input_size, mac_budget, description, min_channels)
        )
        return factory

    return deco


@network_setting("cifar", layers=20, channels=36, input_size=None, mac_budget=None,
                 description="DARTS CIFAR network: 3x3 stem, 20 cells, 36 channels, dataset image size")
def _cifar(C: int, num_classes: int, layers: int, auxiliary: bool, genotype: Genotype, in_channels: int) -> nn.Module:
    return NetworkCIFAR(C, num_classes, layers, auxiliary, genotype, in_channels=in_channels)


@network_setting("mobile", layers=14, channels=48, input_size=224, mac_budget=600e6, min_channels=2,
                 description="DARTS ImageNet mobile network: /8 stems, 14 cells, 48 channels, 224x224, <=600M MACs")
def _mobile(C: int, num_classes: int, layers: int, auxiliary: bool, genotype: Genotype, in_channels: int) -> nn.Module:
    return NetworkMobile(C, num_classes, layers, auxiliary, genotype, in_channels=in_channels)


def get_setting(name: str) -> NetworkSetting:
    """The registered setting ``name`` (BadInputError with a suggestion if unknown)."""
    return lookup(SETTINGS, name, "network setting")


def resolve_input_size(setting: str, dataset_size: int | None = None, input_size: int | None = None) -> int:
    """Input side length: explicit ``input_size``, else the setting's default, else the dataset's."""
    if input_size is None:
        input_size = get_setting(setting).input_size or dataset_size
    if input_size is None:
        raise BadInputError(f"setting {setting!r} takes the dataset's image size; pass --input-size or a dataset")
    _positive("input size", input_size)
    return int(input_size)


def _positive(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInputError(f"{what} must be a positive integer, got {value!r}")


def build_network(
    genotype: Genotype | Mapping[str, Any],
    setting: str,
    num_classes: int,
    in_channels: int = 3,
    layers: int | None = None,
    channels: int | None = None,
    auxiliary: bool = False,
) -> nn.Module:
    """Build the discrete network of ``genotype`` in ``setting``; None layers/channels take the setting's defaults."""
    spec = get_setting(setting)
    if not isinstance(genotype, Genotype):
        genotype = Genotype.from_dict(genotype)
    layers = spec.layers if layers is None else layers
    channels = spec.channels if channels is None else channels
    for what, value in (("num_classes", num_classes), ("in_channels", in_channels), ("layers", layers),
                        ("channels", channels)):
        _positive(what, value)
    if channels < spec.min_channels:
        raise BadInputError(f"setting {setting!r} needs channels >= {spec.min_channels}, got {channels}; raise it")
    return spec.build(channels, num_classes, layers, auxiliary, genotype, in_channels)


# The DARTS reference retraining recipes (Liu et al., 2019, §A.2 / §3.3), filled in by training.config.resolve.
TRAIN_REFERENCE: dict[str, dict[str, Any]] = {
    "cifar": {
        "layers": 20,  # DARTS reference: 20 cells ...
        "channels": 36,  # ... of 36 initial channels
        "auxiliary": True,  # DARTS reference: auxiliary head at 2/3 depth, weight 0.4
        "epochs": 600,  # DARTS reference: 600 epochs on CIFAR-10
        "batch_size": 96,  # DARTS reference: batch 96
        "lr": 0.025,  # DARTS reference: SGD lr 0.025 ...
        "lr_schedule": "cosine",  # ... annealed to 0 by a cosine schedule
        "weight_decay": 3e-4,  # DARTS reference: weight decay 3e-4
        "cutout": 16,  # DARTS reference: cutout of length 16
        "label_smoothing": 0.0,  # DARTS reference: no label smoothing on CIFAR
    },
    "mobile": {
        "layers": 14,  # DARTS reference: 14 cells ...
        "channels": 48,  # ... of 48 initial channels (ImageNet mobile setting)
        "auxiliary": True,  # DARTS reference: auxiliary head, weight 0.4
        "epochs": 250,  # DARTS reference: 250 epochs on ImageNet
        "batch_size": 128,  # DARTS reference: batch 128
        "lr": 0.1,  # DARTS reference: SGD lr 0.1 ...
        "lr_schedule": "exp",  # ... decayed x0.97 after each epoch
        "weight_decay": 3e-5,  # DARTS reference: weight decay 3e-5
        "cutout": 0,  # DARTS reference: no cutout on ImageNet
        "label_smoothing": 0.1,  # DARTS reference: label smoothing 0.1
    },
}
