"""Trained-network weights as safetensors with self-describing metadata.

A weights file holds the network's full state dict (auxiliary head included, so training can be
inspected or fine-tuned later) and one metadata entry ``sdnas_meta``: JSON of :class:`NetworkMeta`,
everything needed to rebuild the network (space, architecture, setting, sizes) and to feed it (input size,
normalization). Export and evaluation call :func:`load_network` and need no other file.
Nothing is unpickled: safetensors stores raw tensors and the metadata is plain JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import BadInputError
from ..io_utils import atomic_save_safetensors, load_safetensors, require_file

META_KEY = "sdnas_meta"
FORMAT_KEY = "sdnas_format"
FORMAT = "sdnas-network/1"
AUX_MODULE = "auxiliary"  # nets name the head ``auxiliary_head``; any top-level ``auxiliary*`` module counts


@dataclass
class NetworkMeta:
    """How to rebuild and feed a trained network; stored as JSON inside the safetensors file."""

    genotype: dict[str, Any]  # the architecture JSON (Space.arch_to_dict: names its space)
    setting: str  # the space's deployment setting (darts: cifar | mobile; fbnet/proxyless: imagenet | cifar | small)
    num_classes: int
    in_channels: int
    image_size: int  # side of the square input the network was trained on
    layers: int | None  # darts cells (None for spaces whose layout the setting fixes)
    channels: int | None  # darts initial channels (None likewise)
    dataset: str
    mean: list[float] = field(default_factory=list)  # per-channel normalization applied to inputs
    std: list[float] = field(default_factory=list)
    epoch: int = 0  # epochs trained when saved
    test_top1: float | None = None  # test top-1 (fraction in [0, 1]) at that epoch
    space: str = "darts"  # the search space (files written before the field existed are darts)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, allow_nan=False)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape of a batch of one input, N x C x H x W."""
        return (1, self.in_channels, self.image_size, self.image_size)


_INT_FIELDS = ("num_classes", "in_channels", "image_size", "epoch")
_OPTIONAL_INT_FIELDS = ("layers", "channels")


def meta_from_json(text: str, source: str) -> NetworkMeta:
    """Parse and validate ``sdnas_meta`` JSON; every problem is a one-line BadInputError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{source}: sdnas metadata is not valid JSON ({exc.msg}); re-create the file with `sdnas train`") from None
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: sdnas metadata must be a JSON object; re-create the file with `sdnas train`")
    names = [f.name for f in dataclasses.fields(NetworkMeta)]
    missing = [n for n in ("genotype", "setting", "num_classes", "in_channels", "image_size", "layers", "channels", "dataset") if n not in data]
    unknown = sorted(set(data) - set(names))
    if missing or unknown:
        what = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
        raise BadInputError(f"{source}: invalid sdnas metadata ({what}); re-create the file with `sdnas train`")
    for name in _INT_FIELDS + _OPTIONAL_INT_FIELDS:
        value = data.get(name, 0)
        if name in _OPTIONAL_INT_FIELDS and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (name != "epoch" and value == 0):
            raise BadInputError(f"{source}: invalid sdnas metadata ({name}={value!r}); re-create the file with `sdnas train`")
    if not isinstance(data.get("space", "darts"), str):
        raise BadInputError(f"{source}: invalid sdnas metadata (space={data['space']!r}); re-create the file with `sdnas train`")
    if not isinstance(data["genotype"], dict) or not isinstance(data["setting"], str) or not isinstance(data["dataset"], str):
        raise BadInputError(f"{source}: invalid sdnas metadata (genotype/setting/dataset types); re-create the file with `sdnas train`")
    for name in ("mean", "std"):
        values = data.get(name, [])
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   and math.isfinite(v) for v in values):
            raise BadInputError(f"{source}: invalid sdnas metadata ({name} must be a list of finite numbers); "
                                "re-create the file")
        if values and len(values) != data["in_channels"]:
            raise BadInputError(f"{source}: invalid sdnas metadata ({name} has {len(values)} values for "
                                f"{data['in_channels']} input channels); re-create the file with `sdnas train`")
        data[name] = [float(v) for v in values]
    if any(v <= 0 for v in data.get("std", [])):
        raise BadInputError(f"{source}: invalid sdnas metadata (std {data['std']} has a value <= 0: inputs would be "
                            "divided by it); re-create the file with `sdnas train`")
    top1 = data.get("test_top1")
    if top1 is not None and (isinstance(top1, bool) or not isinstance(top1, (int, float)) or not math.isfinite(top1)):
        raise BadInputError(f"{source}: invalid sdnas metadata (test_top1={top1!r}); re-create the file with `sdnas train`")
    return NetworkMeta(**data)


def is_auxiliary_key(name: str) -> bool:
    """True for state-dict entries of the auxiliary head (training-only, dropped for deployment)."""
    return name.split(".", 1)[0].startswith(AUX_MODULE)


def save_weights(path: Path | str, model: nn.Module, meta: NetworkMeta) -> Path:
    """Write the model's state dict (auxiliary head included) and ``meta`` to ``path`` atomically."""
    state = model.state_dict()
    metadata = {META_KEY: meta.to_json(), FORMAT_KEY: FORMAT}
    return atomic_save_safetensors(Path(path), state, metadata)


def read_weights(path: Path | str) -> tuple[dict[str, torch.Tensor], NetworkMeta]:
    """Tensors and validated metadata of a weights file (no network built)."""
    path = require_file(path, "weights file")
    tensors, metadata = load_safetensors(path)
    if META_KEY not in metadata:
        raise BadInputError(f"{path}: safetensors file has no sdnas metadata; use weights written by `sdnas train`")
    return tensors, meta_from_json(metadata[META_KEY], str(path))


def space_and_arch(meta: NetworkMeta, source: str = "network metadata") -> tuple[Any, Any]:
    """``(space, architecture)`` of a weights file's metadata; the architecture must be of the recorded space."""
    from ..spaces import arch_from_json, get_space

    try:
        get_space(meta.space)
    except BadInputError as exc:
        raise BadInputError(f"{source}: {exc.message}") from None
    return arch_from_json(meta.genotype, f"{source}: architecture in sdnas metadata", meta.space)


def geometry_of(meta: NetworkMeta, space: Any) -> Any:
    """The deployment geometry the weights were trained at."""
    return space.geometry(meta.setting, input_size=meta.image_size, in_channels=meta.in_channels,
                          num_classes=meta.num_classes, layers=meta.layers, channels=meta.channels)


def build_from_meta(meta: NetworkMeta, auxiliary: bool = False, source: str = "network metadata") -> nn.Module:
    """A freshly initialized network with the architecture described by ``meta``."""
    space, arch = space_and_arch(meta, source)
    return space.build_network(arch, geometry_of(meta, space), auxiliary=auxiliary)


def _check_state(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """One-line errors for missing/unexpected keys and shape mismatches before loading."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        raise BadInputError(
            f"{path}: weights lack {len(missing)} tensor(s) the network needs (first: {missing[0]}); "
            "the file does not match its metadata — re-create it with `sdnas train`"
        )
    if unexpected:
        raise BadInputError(
            f"{path}: weights hold {len(unexpected)} tensor(s) the network lacks (first: {unexpected[0]}); "
            "the file does not match its metadata — re-create it with `sdnas train`"
        )
    for name, ref in expected.items():
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise BadInputError(
                f"{path}: shape mismatch for {name}: file {tuple(tensors[name].shape)} vs network {tuple(ref.shape)}; "
                "the file does not match its metadata — re-create it with `sdnas train`"
            )


def load_network(path: Path | str, auxiliary: bool = False) -> tuple[nn.Module, NetworkMeta]:
    """Rebuild the network described by a weights file and load its weights (strict), in eval mode.

    With ``auxiliary=False`` the auxiliary head is not built and its ``auxiliary_head.*`` tensors are
    skipped (the deployable network); with ``auxiliary=True`` the file must contain them.
    """
    path = require_file(path, "weights file")
    tensors, meta = read_weights(path)
    has_aux = any(is_auxiliary_key(k) for k in tensors)
    if auxiliary and not has_aux:
        raise BadInputError(f"{path}: weights have no auxiliary head; load without auxiliary=True")
    if not auxiliary:
        tensors = {k: v for k, v in tensors.items() if not is_auxiliary_key(k)}
    try:
        model = build_from_meta(meta, auxiliary=auxiliary, source=str(path))
    except BadInputError:
        raise
    except Exception as exc:  # the builder rejects impossible sizes with ordinary exceptions
        raise BadInputError(f"{path}: sdnas metadata describes a network that cannot be built ({exc}); re-create the file") from None
    _check_state(path, model, tensors)
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise BadInputError(f"{path}: weights hold NaN or infinite values (first: {bad}); the training run diverged — "
                            "retrain with a lower --lr")
    model.load_state_dict(tensors, strict=True)
    if hasattr(model, "drop_path_prob"):
        model.drop_path_prob = 0.0
    model.eval()
    return model, meta


WEIGHT_FILES = ("best.safetensors", "last.safetensors")


def run_candidates(run: Path, name: str) -> list[Path]:
    """Places a file may sit in a search, train or pipeline run directory."""
    return [run / name, run / "train" / name, run / "search" / name]


def resolve_weights_path(arg: str) -> Path:
    """A .safetensors file, or a train/pipeline run directory (its best weights, else last)."""
    path = Path(arg)
    if path.is_dir():
        for name in WEIGHT_FILES:
            for cand in run_candidates(path, name):
                if cand.is_file():
                    return cand
        raise BadInputError(f"{path}: no trained weights (best/last.safetensors) in this run directory; run `sdnas train` first")
    if not path.exists():
        raise BadInputError(f"weights not found: {arg}; pass a .safetensors file or a train run directory")
    if path.suffix != ".safetensors":
        raise BadInputError(f"{path}: expected a .safetensors weights file written by `sdnas train`")
    return path
