"""Deployment targets (device + runtime + precision) and where their latency tables live.

A table is only ever written by measuring on the device itself (latency_tables/README.md), so a
target may be registered without a table; asking for it then says the exact command to run there.

Two kinds of table per setting: ``microbenchmark`` (`sdnas lut build`: every operator timed alone) and
``fitted`` (`sdnas lut fit`: per-operator costs fitted to whole-network latencies). ``auto`` prefers
the fitted table where one is shipped: on this project's CPU target it predicts held-out networks
with 4.0% mean error against 7.3% (cifar) and 10.8% (mobile) for the micro-benchmarks, because
ONNX Runtime fuses and schedules ops differently inside a network than alone (README, bench/lut_accuracy.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from ..errors import BadInputError, UnsupportedEnvironmentError
from ..registry import lookup, register_into
from ..resources import data_dir

BACKENDS = ("ort", "torch", "trt")
TABLE_KINDS = ("auto", "microbenchmark", "fitted")


@dataclass(frozen=True)
class Target:
    """A deployment target; ``table_files``/``fitted_files`` map ``"space/setting"`` to a file in ``latency_tables/``."""

    name: str
    table_files: dict[str, str] = field(default_factory=dict)
    fitted_files: dict[str, str] = field(default_factory=dict)
    backend: str = "ort"
    precision: str = "fp32"
    description: str = ""
    provider: str = "CPUExecutionProvider"  # ONNX Runtime execution provider the table is measured with (ort)
    origin: str = "measured"  # measured: tables timed on the device by sdnas; public: fitted from published data
    aliases: tuple[str, ...] = ()

    @property
    def device(self) -> str:
        """Where the target's tables are measured: ``cpu``, or ``cuda`` for GPU providers and TensorRT."""
        return "cuda" if self.backend == "trt" or self.provider == "CUDAExecutionProvider" else "cpu"


TARGETS: dict[str, Target] = {}
TARGET_ALIASES: dict[str, str] = {}
ORIGINS = ("measured", "public")


def register_target(target: Target) -> Target:
    """Add ``target`` to :data:`TARGETS` under its name and aliases (duplicates are a programming error)."""
    if target.origin not in ORIGINS:
        raise ValueError(f"target {target.name}: unknown origin {target.origin!r}")
    if target.origin == "measured" and target.backend not in BACKENDS:
        raise ValueError(f"target {target.name}: unknown backend {target.backend!r}")
    for alias in target.aliases:
        if alias in TARGETS or alias in TARGET_ALIASES:
            raise ValueError(f"target alias {alias!r} is taken")
        TARGET_ALIASES[alias] = target.name
    return register_into(TARGETS, target.name)(target)


def get_target(name: str) -> Target:
    """The registered target ``name`` or alias (BadInputError suggesting the closest name if unknown)."""
    return lookup(TARGETS, TARGET_ALIASES.get(name, name), "target")


def few_shot_hint(target: str, space: str, setting: str) -> str:
    """The fast way to a table on a device: 10 measured networks and a fit with the shipped tables as prior."""
    return (f"fast: on the device `sdnas lut measure --target {target} --space {space} --setting {setting} --n 10`, then "
            f"`sdnas lut fit --space {space} --measurements {target}_{space}_{setting}_measurements.csv --prior auto "
            f"--out {target}_{space}_{setting}_fitted.json`")


def table_slot(space: str, setting: str) -> str:
    """The key of a target's table files: ``"space/setting"``."""
    return f"{space}/{setting}"


def build_command(target: Target | str, setting: str, space: str = "darts") -> str:
    """The command that measures ``target``'s table for ``setting`` of ``space`` (run it on the device)."""
    t = get_target(target) if isinstance(target, str) else target
    return f"sdnas lut build --target {t.name} --space {space} --setting {setting} --backend {t.backend}"


def _check_kind(kind: str) -> str:
    if kind not in TABLE_KINDS:
        raise BadInputError(f"table kind {kind!r} is unknown; use one of {', '.join(TABLE_KINDS)}")
    return kind


def table_path(target: Target | str, setting: str, kind: str = "microbenchmark", space: str = "darts") -> Path | None:
    """Where ``target``'s ``kind`` table for ``setting`` of ``space`` lives, None if the target names no file."""
    t = get_target(target) if isinstance(target, str) else target
    files = t.fitted_files if _check_kind(kind) == "fitted" else t.table_files
    filename = files.get(table_slot(space, setting))
    return None if filename is None else data_dir("latency_tables") / filename


def require_measurable(target: Target | str, device: str | None = None) -> Target:
    """The target, if it can be measured here on ``device`` (default: the target's own); else exit 5, so no
    table is ever mislabelled — a CUDA-provider or TensorRT target is never timed on the CPU, and a missing
    CUDA provider / GPU / TensorRT is said plainly."""
    from .measure import check_backend, check_device

    t = get_target(target) if isinstance(target, str) else target
    if t.origin == "public":
        raise BadInputError(f"target {t.name!r} is built from public measurements ({t.description}); it cannot be "
                            "timed here. On your own device pick a new target name: `sdnas lut measure --target "
                            "MY_DEVICE --space SPACE --n 10`")
    device = t.device if device is None else device
    if t.device != "cpu" and device == "cpu":
        raise UnsupportedEnvironmentError(
            f"target {t.name!r} is measured on the GPU ({t.provider if t.backend == 'ort' else t.backend}), "
            "not on the CPU; run this on the device with its GPU"
        )
    check_backend(t.backend)
    check_device(t.backend, device)
    return t


def measuring_target(name: str, backend: str | None = None, device: str | None = None) -> Target:
    """The target `lut measure` times: a registered one (checked measurable here), or — for a name that is not
    registered — a device of the user's own, timed here with ``backend`` (default ort) on ``device`` (default cpu)."""
    if name in TARGETS or name in TARGET_ALIASES:
        t = get_target(name)
        if backend not in (None, t.backend):
            raise BadInputError(f"target {t.name!r} is measured with backend {t.backend!r}; drop --backend, or pick a "
                                "new target name for another runtime")
        return require_measurable(t, device)
    backend = backend or "ort"
    if backend not in BACKENDS:
        raise BadInputError(f"--backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    spec = (device or "cpu").strip().lower()
    cuda = spec != "cpu"
    t = Target(name=name, backend=backend, precision="fp32",
               provider="CUDAExecutionProvider" if cuda and backend == "ort" else "CPUExecutionProvider",
               description=f"{name}: a device of your own, measured here ({backend} on {spec})")
    return require_measurable(t, spec)


def resolve_table(target: str, setting: str, kind: str = "auto", space: str = "darts") -> Path:
    """Path of the shipped table of ``kind`` (auto: fitted if shipped, else micro-benchmark) for ``space`` at
    ``setting``; a target without one → BadInputError with the exact command that makes it."""
    t = get_target(target)
    if _check_kind(kind) == "fitted" or kind == "auto":
        fitted = table_path(t, setting, "fitted", space)
        if fitted is not None and fitted.is_file():
            return fitted
        if kind == "fitted":
            raise BadInputError(
                f"target {t.name!r} ships no fitted table for space {space!r} setting {setting!r}; on the device run "
                f"`sdnas lut measure --target {t.name} --space {space} --setting {setting}` then "
                "`sdnas lut fit --measurements FILE`, or use --lut-kind microbenchmark"
            )
    path = table_path(t, setting, space=space)
    if path is None or not path.is_file():
        what = "ships no latency table" if path is None else f"has no latency table yet ({path.name} missing)"
        if t.origin == "public":
            slots = ", ".join(sorted(t.fitted_files))
            raise BadInputError(f"target {t.name!r} (public measurements) has tables for {slots}, not {space}/{setting}; "
                                "search that space and setting")
        raise BadInputError(
            f"target {t.name!r} {what} for space {space!r} setting {setting!r}; {few_shot_hint(t.name, space, setting)}; "
            f"precise: the full per-op build `{build_command(t, setting, space)}`"
        )
    return path


register_target(Target(
    name="x86-cpu-ort",
    table_files={"darts/cifar": "x86-cpu-ort_cifar.json", "darts/mobile": "x86-cpu-ort_mobile.json",
                 "fbnet/small": "x86-cpu-ort_fbnet_small.json", "proxyless/small": "x86-cpu-ort_proxyless_small.json"},
    fitted_files={"darts/cifar": "x86-cpu-ort_cifar_fitted.json", "darts/mobile": "x86-cpu-ort_mobile_fitted.json",
                  "fbnet/small": "x86-cpu-ort_fbnet_small_fitted.json",
                  "proxyless/small": "x86-cpu-ort_proxyless_small_fitted.json"},
    backend="ort", precision="fp32",
    description="this workplace's x86 CPU: ONNX Runtime CPUExecutionProvider, fp32, batch 1, 1 thread",
))
register_target(Target(
    name="jetson-orin",
    backend="trt", precision="fp16", aliases=("jetson",),
    description="NVIDIA Jetson Orin: TensorRT, fp16, batch 1 (no table shipped: measure on the device)",
))
register_target(Target(
    name="x86-cuda-ort",
    backend="ort", precision="fp32", provider="CUDAExecutionProvider",
    description="x86 + NVIDIA GPU: ONNX Runtime CUDAExecutionProvider, fp32, batch 1 (no table shipped)",
))


def _register_public() -> None:
    """One target per public device setting (hw/public.py), with its fitted tables per space."""
    from .public import DEVICES, table_filename

    for device in DEVICES:
        register_target(Target(
            name=device.name, origin="public", backend="not stated", precision="not stated", provider="not stated",
            fitted_files={f"{space}/cifar": table_filename(device.name, space) for space in device.columns},
            description=device.description,
            aliases=device.aliases,
        ))


_register_public()


def table_geometry(space: str, setting: str, layers: int | None = None, channels: int | None = None,
                   input_size: int | None = None, in_channels: int = 3, num_classes: int | None = None) -> Any:
    """The deployment geometry a table of ``space`` at ``setting`` describes: the setting's defaults
    (its input size, or the table input size where the setting takes the dataset's), the flags given,
    and ImageNet's 1000 classes for 224-pixel settings, else CIFAR's 10."""
    from ..spaces import get_space

    impl = get_space(space)
    spec = impl.setting(setting)
    if input_size is None:
        input_size = spec.input_size or spec.table_input_size
    if num_classes is None:  # the setting's table network, else the reference tasks: ImageNet and CIFAR-10
        num_classes = spec.table_num_classes or (1000 if spec.input_size == 224 else 10)
    return impl.geometry(setting, input_size=input_size, in_channels=in_channels, num_classes=num_classes,
                         layers=layers, channels=channels)
