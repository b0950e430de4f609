"""Export format table: what ``--format`` accepts, each format's suffix, options, preflight and exporter.

A plain dict filled by the :func:`export_format` decorator (ARCHITECTURE.md "Registries"), so the CLI
validates options, suggests fixes for typos and loops over formats without a class hierarchy, and
tests parametrize over it. Every exporter takes an :class:`ExportJob` (the model and the data to
verify/calibrate with) and returns the artifact's sidecar dict after verifying the artifact:
``onnx`` (fp32: elementwise vs PyTorch; fp16/int8 baked into the graph: accuracy delta in ONNX
Runtime) and ``trt`` (a TensorRT engine, verified by accuracy delta on the device). A format's
``preflight`` runs before any format is exported, so ``--format onnx,trt`` without TensorRT fails
(exit 5, with the remediation) before writing anything; nothing is ever installed at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch.nn as nn

from ..errors import BadInputError
from ..registry import register_into, suggest
from .accuracy import PRECISIONS
from .calibration import CALIB_METHODS
from .onnx_export import MAX_OPSET, MIN_OPSET, sidecar_path
from ..runtime.trt_env import TENSORRT_REMEDIATION, engine_sidecar_path, require_tensorrt


@dataclass
class ExportJob:
    """What every exporter needs besides its options: the eval-mode model, where to write, and data.

    ``images``/``labels`` are held-out test images for verification; ``calib_images`` loads calibration
    images (a training split or a folder) only when an INT8 export asks for them.
    """

    model: nn.Module
    out_dir: Path
    input_shape: tuple[int, ...]
    images: np.ndarray
    labels: np.ndarray | None = None
    calib_images: Callable[[], np.ndarray] | None = None
    calib_source: str = ""
    genotype: Any = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def calibration_images(self, precision: str) -> np.ndarray | None:
        """Calibration images for ``int8`` (loaded now), None for other precisions."""
        if precision != "int8":
            return None
        if self.calib_images is None:
            raise BadInputError("int8 export needs calibration images; pass --calib-data (a dataset name, an image "
                                "folder or a .npy file)")
        return self.calib_images()


Exporter = Callable[..., dict]


@dataclass(frozen=True)
class OptionSpec:
    """One exporter option: its default, accepted type and (optionally) the allowed values."""

    default: Any
    kind: type
    choices: tuple[Any, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class FormatSpec:
    """An export format: canonical name, file suffix, aliases, options, preflight check and exporter."""

    name: str
    suffix: str
    exporter: Exporter
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    preflight: Callable[[], Any] | None = None
    sidecar_of: Callable[[Path], Path] = sidecar_path  # artifact -> its sidecar JSON

    def resolve_options(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown option or bad value -> BadInputError."""
        resolved = {key: opt.default for key, opt in self.options.items()}
        for key, value in dict(given or {}).items():
            norm = str(key).replace("-", "_")
            if norm not in self.options:
                known = ", ".join(sorted(self.options)) or "(none)"
                raise BadInputError(
                    f"format {self.name!r}: unknown option {key!r}{suggest(norm, sorted(self.options))}; known: {known}"
                )
            resolved[norm] = _check_option(self.name, norm, self.options[norm], value)
        return resolved

    def output_path(self, out_dir: Path | str) -> Path:
        """``<out_dir>/model<suffix>``."""
        return Path(out_dir) / f"model{self.suffix}"

    def export(self, job: ExportJob, **options: Any) -> dict[str, Any]:
        """Export ``job.model`` to :meth:`output_path` with validated options; returns the verified sidecar."""
        resolved = self.resolve_options(options)
        if self.preflight is not None:
            self.preflight()
        return self.exporter(job, self.output_path(job.out_dir), **resolved)


def _check_option(fmt: str, key: str, spec: OptionSpec, value: Any) -> Any:
    """Type-check one option value (bool is not a number here; an int is a valid float; None keeps a None default)."""
    if value is None and spec.default is None:
        return None
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if spec.kind is tuple and isinstance(value, list):
        value = tuple(value)
    ok = isinstance(value, spec.kind) and not (spec.kind in (int, float) and isinstance(value, bool))
    if not ok:
        raise BadInputError(f"format {fmt!r}: option {key} expects {spec.kind.__name__}, got {value!r}")
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(map(str, spec.choices))
        raise BadInputError(f"format {fmt!r}: option {key}={value!r} is not one of {allowed}")
    return value


FORMATS: dict[str, FormatSpec] = {}
ALIASES: dict[str, str] = {}


def export_format(
    name: str,
    suffix: str,
    options: Mapping[str, OptionSpec] | None = None,
    aliases: tuple[str, ...] = (),
    description: str = "",
    preflight: Callable[[], Any] | None = None,
    sidecar_of: Callable[[Path], Path] = sidecar_path,
) -> Callable[[Exporter], Exporter]:
    """Decorator: register an exporter function under ``name`` (and its aliases) in FORMATS."""

    def deco(fn: Exporter) -> Exporter:
        spec = FormatSpec(name, suffix, fn, dict(options or {}), tuple(aliases), description, preflight, sidecar_of)
        register_into(FORMATS, name)(spec)
        for alias in aliases:
            register_into(ALIASES, alias)(name)
        return fn

    return deco


def resolve_format(name: str) -> FormatSpec:
    """Look up a format by name or alias (case-insensitive); typos get a suggestion."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key in FORMATS:
        return FORMATS[key]
    known = ", ".join(
        f"{n} (aliases: {', '.join(FORMATS[n].aliases)})" if FORMATS[n].aliases else n for n in sorted(FORMATS)
    )
    raise BadInputError(f"unknown export format {name!r}{suggest(key, [*FORMATS, *ALIASES])}; known: {known}")


def resolve_formats(names: str | Sequence[str]) -> list[FormatSpec]:
    """``"onnx,trt"`` (or a list) -> the formats in order, each once; empty -> BadInputError."""
    items = names.split(",") if isinstance(names, str) else list(names)
    specs: list[FormatSpec] = []
    for item in (str(i).strip() for i in items):
        if item:
            spec = resolve_format(item)
            if spec not in specs:
                specs.append(spec)
    if not specs:
        raise BadInputError(f"no export format given; pass --format with one or more of {', '.join(sorted(FORMATS))}")
    return specs


def split_options(specs: Sequence[FormatSpec], given: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Hand each format the given options it takes; an option no chosen format takes -> BadInputError.

    ``given`` holds only options the user set (None values are dropped), so ``--workspace-gib`` with
    ``--format onnx`` is an error naming the format that takes it, not something silently ignored.
    """
    chosen = {spec.name: {} for spec in specs}  # type: dict[str, dict[str, Any]]
    for key, value in given.items():
        if value is None:
            continue
        takers = [spec for spec in specs if key in spec.options]
        if not takers:
            others = sorted(n for n, s in FORMATS.items() if key in s.options)
            flag = "--" + key.replace("_", "-")
            where = f"it applies to --format {' / '.join(others)}" if others else "no format takes it"
            raise BadInputError(f"{flag} does not apply to --format {','.join(s.name for s in specs)}; {where}")
        for spec in takers:
            chosen[spec.name][key] = value
    return {name: FORMATS[name].resolve_options(opts) for name, opts in chosen.items()}


def format_for_path(path: Path | str) -> FormatSpec:
    """The format whose suffix ``path`` ends with (``model.onnx`` -> onnx)."""
    suffix = Path(path).suffix.lower()
    for spec in FORMATS.values():
        if spec.suffix == suffix:
            return spec
    known = ", ".join(f"{s.suffix} ({s.name})" for s in FORMATS.values())
    raise BadInputError(f"{path}: unknown model file suffix {suffix!r}; expected one of {known}")


_PRECISION = OptionSpec("fp32", str, PRECISIONS, "fp32, or fp16/int8 baked into the artifact")
_COMMON = {
    "opset": OptionSpec(17, int, tuple(range(MIN_OPSET, MAX_OPSET + 1)), "ONNX opset (17: read by ORT and TensorRT 8.6+)"),
    "max_accuracy_drop": OptionSpec(None, float, (), "max top-1 drop vs PyTorch (default by precision)"),
    "calib_method": OptionSpec("entropy", str, CALIB_METHODS, "INT8 activation-range calibration"),
    "calib_cache": OptionSpec(None, str, (), "calibration cache file, reused when it matches"),
}


@export_format(
    "onnx",
    ".onnx",
    options={
        **_COMMON,
        "precision": _PRECISION,
        "dynamic_batch": OptionSpec(False, bool, (), "make the batch dimension symbolic"),
        "atol": OptionSpec(1e-4, float, (), "fp32: max |ORT - PyTorch| logit difference"),
    },
    description="self-contained ONNX file, checked and verified in ONNX Runtime (fp16/int8 Q/DQ baked in on request)",
)
def _export_onnx(job: ExportJob, out_path: Path, **o: Any) -> dict[str, Any]:
    from .onnx_export import export_and_verify

    common = dict(genotype=job.genotype, metadata=job.metadata, mean=job.mean, std=job.std)
    if o["precision"] == "fp32":
        return export_and_verify(job.model, out_path, job.input_shape, job.images, job.labels, opset=o["opset"],
                                 dynamic_batch=o["dynamic_batch"], atol=o["atol"], **common)
    from .precision_export import export_precision_onnx

    return export_precision_onnx(
        job.model, out_path, job.input_shape, job.images, job.labels, precision=o["precision"],
        calib_images=job.calibration_images(o["precision"]), calib_method=o["calib_method"],
        calib_cache=Path(o["calib_cache"]) if o["calib_cache"] else None, calib_source=job.calib_source,
        max_accuracy_drop=o["max_accuracy_drop"], opset=o["opset"], dynamic_batch=o["dynamic_batch"], **common,
    )


@export_format(
    "trt",
    ".engine",
    options={
        **_COMMON,
        "precision": OptionSpec("fp16", str, PRECISIONS, "engine precision"),
        "batch_range": OptionSpec(None, tuple, (), "dynamic batch: (min, opt, max) of the optimization profile"),
        "workspace_gib": OptionSpec(2.0, float, (), "builder workspace memory pool"),
        "timing_cache": OptionSpec(None, str, (), "timing cache file (default keyed by the device fingerprint)"),
        "device": OptionSpec("gpu", str, (), "gpu, or dla:N (Jetson DLA core N, GPU fallback on)"),
    },
    aliases=("tensorrt", "engine"),
    description="TensorRT engine (raw plan, built on the target; metadata in a sidecar JSON)",
    preflight=require_tensorrt,
    sidecar_of=engine_sidecar_path,
)
def _export_trt(job: ExportJob, out_path: Path, **o: Any) -> dict[str, Any]:
    from .trt_export import export_engine

    return export_engine(
        job.model, out_path, job.input_shape, job.images, job.labels, precision=o["precision"],
        calib_images=job.calibration_images(o["precision"]), calib_method=o["calib_method"],
        calib_cache=Path(o["calib_cache"]) if o["calib_cache"] else None, calib_source=job.calib_source,
        workspace_gib=o["workspace_gib"], timing_cache=Path(o["timing_cache"]) if o["timing_cache"] else None,
        dynamic_batch=o["batch_range"], device=o["device"], max_accuracy_drop=o["max_accuracy_drop"],
        opset=o["opset"], metadata=job.metadata, genotype=job.genotype, mean=job.mean, std=job.std,
    )


__all__ = [
    "ALIASES", "CALIB_METHODS", "ExportJob", "FORMATS", "FormatSpec", "OptionSpec", "PRECISIONS",
    "TENSORRT_REMEDIATION", "export_format", "format_for_path", "require_tensorrt", "resolve_format",
    "resolve_formats", "split_options",
]
