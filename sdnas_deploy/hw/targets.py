"""Deployment targets (device + runtime + precision) and where their latency tables live.

A table is only ever written by measuring on the device itself (latency_tables/README.md), so a
target may be registered without a table; asking for it then says the exact command to run there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError, UnsupportedEnvironmentError
from ..registry import lookup, register_into
from ..resources import data_dir

BACKENDS = ("ort", "torch", "trt")


@dataclass(frozen=True)
class Target:
    """A deployment target; ``table_files`` maps a setting to its table file in ``latency_tables/``."""

    name: str
    table_files: dict[str, str] = field(default_factory=dict)
    backend: str = "ort"
    precision: str = "fp32"
    default_input: dict[str, int] = field(default_factory=dict)
    description: str = ""
    provider: str = "CPUExecutionProvider"  # ONNX Runtime execution provider the table is measured with (ort)


TARGETS: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    """Add ``target`` to :data:`TARGETS` under its name (duplicate names are a programming error)."""
    if target.backend not in BACKENDS:
        raise ValueError(f"target {target.name}: unknown backend {target.backend!r}")
    return register_into(TARGETS, target.name)(target)


def get_target(name: str) -> Target:
    """The registered target ``name`` (BadInputError suggesting the closest name if unknown)."""
    return lookup(TARGETS, name, "target")


def build_command(target: Target | str, setting: str) -> str:
    """The command that measures ``target``'s table for ``setting`` (run it on the device)."""
    t = get_target(target) if isinstance(target, str) else target
    return f"sdnas lut build --target {t.name} --setting {setting} --backend {t.backend}"


def table_path(target: Target | str, setting: str) -> Path | None:
    """Where ``target``'s table for ``setting`` lives (or would live), None if the target names no file."""
    t = get_target(target) if isinstance(target, str) else target
    filename = t.table_files.get(setting)
    return None if filename is None else data_dir("latency_tables") / filename


def require_measurable(target: Target | str) -> Target:
    """The target, if this version can measure it here; exit 5 otherwise, so no table is ever mislabelled.

    Measurements run on ONNX Runtime's CPU provider (or torch eager / TensorRT by backend); a target whose
    table must come from another provider (e.g. CUDA) is refused rather than silently timed on the CPU.
    """
    t = get_target(target) if isinstance(target, str) else target
    if t.backend == "ort" and t.provider != "CPUExecutionProvider":
        raise UnsupportedEnvironmentError(
            f"target {t.name!r} is measured with ONNX Runtime's {t.provider}, which `sdnas lut` cannot time yet "
            "(CPU provider only); measure whole networks there with `sdnas profile --device cuda` meanwhile"
        )
    return t


def resolve_table(target: str, setting: str) -> Path:
    """Path of the shipped table; a target without one → BadInputError with the exact build command."""
    t = get_target(target)
    path = table_path(t, setting)
    if path is None or not path.is_file():
        what = "ships no latency table" if path is None else f"has no latency table yet ({path.name} missing)"
        raise BadInputError(
            f"target {t.name!r} {what} for setting {setting!r}; measure one on the device with "
            f"`{build_command(t, setting)}`"
        )
    return path


register_target(Target(
    name="x86-cpu-ort",
    table_files={"cifar": "x86-cpu-ort_cifar.json", "mobile": "x86-cpu-ort_mobile.json"},
    backend="ort", precision="fp32", default_input={"cifar": 32, "mobile": 224},
    description="this workplace's x86 CPU: ONNX Runtime CPUExecutionProvider, fp32, batch 1, 1 thread",
))
register_target(Target(
    name="jetson-orin",
    backend="trt", precision="fp16", default_input={"cifar": 32, "mobile": 224},
    description="NVIDIA Jetson Orin: TensorRT, fp16, batch 1 (no table shipped: measure on the device)",
))
register_target(Target(
    name="x86-cuda-ort",
    backend="ort", precision="fp32", default_input={"cifar": 32, "mobile": 224}, provider="CUDAExecutionProvider",
    description="x86 + NVIDIA GPU: ONNX Runtime CUDAExecutionProvider, fp32, batch 1 (no table shipped)",
))
