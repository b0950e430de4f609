"""The DNA teacher: a frozen network whose stage outputs the student's blocks learn to reproduce (DESIGN.md §9).

A teacher is either a network ``sdnas train`` wrote (any space; a weights file or a train/pipeline run), or a
torchvision classification model whose weights the user has on disk (``torchvision:NAME`` + a weights file,
read with ``weights_only=True`` or as safetensors; nothing is ever downloaded). Its *feature points* are the
modules of its main path in forward order (stem, blocks or cells, never the classifier head; an sdnas network's
space names them, ``Space.feature_points``); a forward hook on each records its output. ``stages.py`` cuts
them into stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ...errors import BadInputError

TORCHVISION_PREFIX = "torchvision:"
TORCHVISION_TEACHERS = (*(f"efficientnet_b{i}" for i in range(8)), "mobilenet_v2", "mobilenet_v3_small",
                        "mobilenet_v3_large", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass
class Teacher:
    """A frozen teacher in eval mode, its feature points, and how it sees the student's input."""

    model: nn.Module
    points: list[tuple[str, nn.Module]]
    name: str
    in_channels: int  # channels the teacher's first conv takes (a grey image is repeated for an RGB teacher)
    num_classes: int
    image_size: int | None  # the side it was trained at (None: torchvision, any side)

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        """The student's input as the teacher takes it (grey → RGB by repetition)."""
        if x.shape[1] == self.in_channels:
            return x
        return x.expand(-1, self.in_channels, -1, -1)

    @torch.no_grad()
    def features(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        """Outputs of the feature points ``indices`` for batch ``x`` (one teacher forward)."""
        wanted = {i: self.points[i][1] for i in indices}
        found: dict[int, torch.Tensor] = {}
        hooks = [module.register_forward_hook(_recorder(found, i)) for i, module in wanted.items()]
        try:
            self.model(self.adapt(x))
        finally:
            for hook in hooks:
                hook.remove()
        return [found[i] for i in indices]


def _recorder(found: dict[int, torch.Tensor], index: int) -> Callable[..., None]:
    def hook(_module: nn.Module, _inputs: tuple, output: Any) -> None:
        found[index] = output.detach()
    return hook


def _freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ---- feature points of each kind of network -------------------------------------------------------------
def _names(model: nn.Module) -> dict[int, str]:
    return {id(m): name for name, m in model.named_modules()}


def _named(model: nn.Module, modules: list[nn.Module]) -> list[tuple[str, nn.Module]]:
    names = _names(model)
    return [(names[id(m)], m) for m in modules]


def _torchvision_features_points(model: nn.Module) -> list[nn.Module]:
    """EfficientNet / MobileNet: the blocks of ``features`` (stages flattened), without the final 1x1 head conv."""
    points: list[nn.Module] = []
    for child in list(model.features)[:-1]:
        points.extend(child if isinstance(child, nn.Sequential) and len(child) and
                      not isinstance(child[0], (nn.Conv2d, nn.BatchNorm2d)) else [child])
    return points


def _resnet_points(model: nn.Module) -> list[nn.Module]:
    return [model.relu, model.maxpool, *model.layer1, *model.layer2, *model.layer3, *model.layer4]


def feature_points(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The main-path modules of a torchvision model in forward order (module docstring); others → one line."""
    if isinstance(getattr(model, "features", None), nn.Sequential):
        return _named(model, _torchvision_features_points(model))
    if all(hasattr(model, a) for a in ("layer1", "layer4", "maxpool", "relu")):
        return _named(model, _resnet_points(model))
    raise BadInputError(f"teacher {type(model).__name__}: cannot find its stages; use a network `sdnas train` wrote "
                        f"or torchvision:NAME with NAME one of {', '.join(TORCHVISION_TEACHERS)}")


# ---- loading ---------------------------------------------------------------------------------------------
def load_teacher(spec: str, weights: str | None = None) -> Teacher:
    """The teacher ``spec`` names: a weights file / run directory of ``sdnas train``, or ``torchvision:NAME``."""
    if spec.startswith(TORCHVISION_PREFIX):
        return _torchvision_teacher(spec[len(TORCHVISION_PREFIX):], weights)
    if weights is not None:
        raise BadInputError("--teacher-weights is for --teacher torchvision:NAME; an sdnas teacher's weights are the "
                            "--teacher file itself")
    from ...spaces import get_space
    from ...training.weights import load_network, resolve_weights_path

    path = resolve_weights_path(spec)
    model, meta = load_network(path)
    return Teacher(_freeze(model), get_space(meta.space).feature_points(model), f"{meta.space} network {path}",
                   meta.in_channels, meta.num_classes, meta.image_size)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch file (``weights_only=True``: tensors, never pickled code)."""
    if path.suffix == ".safetensors":
        from ...io_utils import load_safetensors

        return load_safetensors(path)[0]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickled objects weights_only refuses, ...
        raise BadInputError(f"{path}: not a readable weights file ({type(exc).__name__}); save the state dict with "
                            "torch.save(model.state_dict(), FILE) or as .safetensors") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInputError(f"{path}: holds no state dict of tensors; save it with torch.save(model.state_dict(), FILE)")
    return state


def _torchvision_teacher(name: str, weights: str | None) -> Teacher:
    if name not in TORCHVISION_TEACHERS:
        from ...registry import suggest

        raise BadInputError(f"torchvision teacher {name!r} is not supported{suggest(name, list(TORCHVISION_TEACHERS))}; "
                            f"use one of {', '.join(TORCHVISION_TEACHERS)}")
    if weights is None:
        raise BadInputError(f"--teacher torchvision:{name} needs --teacher-weights FILE (its state dict on disk; "
                            "weights are never downloaded)")
    path = Path(weights)
    if not path.is_file():
        raise BadInputError(f"teacher weights not found: {weights}; pass the state dict file of torchvision {name}")
    state = _read_state(path)
    matrices = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    if not matrices:
        raise BadInputError(f"{path}: has no classifier weight; it is not a {name} state dict")
    import torchvision

    model = torchvision.models.get_model(name, weights=None, num_classes=int(matrices[-1].shape[0]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)[:200]
        raise BadInputError(f"{path}: does not match torchvision {name} ({first}); pass that model's state dict") from None
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return Teacher(_freeze(model), feature_points(model), f"torchvision {name} ({path})", first_conv.in_channels,
                   int(matrices[-1].shape[0]), None)
