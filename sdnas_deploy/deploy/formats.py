"""Export format table: what ``--format`` accepts, each format's suffix, options and exporter.

A plain dict filled by the :func:`export_format` decorator (ARCHITECTURE.md "Registries"), so the
CLI lists formats and tests parametrize over them without a class hierarchy. ``onnx`` is the
verified path; ``trt`` checks for TensorRT and, where it is missing, says how to install it
(never installs anything at run time, DESIGN.md §3). Building engines is a later issue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch.nn as nn

from ..errors import BadInputError, UnsupportedEnvironmentError
from ..registry import register_into, suggest
from .onnx_export import MAX_OPSET, MIN_OPSET, export_onnx

Exporter = Callable[..., Path]


@dataclass(frozen=True)
class OptionSpec:
    """One exporter option: its default, accepted type and (optionally) the allowed values."""

    default: Any
    kind: type
    choices: tuple[Any, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class FormatSpec:
    """An export format: canonical name, file suffix, aliases, options and the exporter function."""

    name: str
    suffix: str
    exporter: Exporter
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""

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

    def export(self, model: nn.Module, out_path: Path | str, input_shape: Sequence[int], **options: Any) -> Path:
        """Export ``model`` to ``out_path`` with validated options."""
        return self.exporter(model, Path(out_path), tuple(input_shape), **self.resolve_options(options))


def _check_option(fmt: str, key: str, spec: OptionSpec, value: Any) -> Any:
    """Type-check one option value (bool is not an int here)."""
    ok = isinstance(value, spec.kind) and not (spec.kind is int and isinstance(value, bool))
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
) -> Callable[[Exporter], Exporter]:
    """Decorator: register an exporter function under ``name`` (and its aliases) in FORMATS."""

    def deco(fn: Exporter) -> Exporter:
        spec = FormatSpec(name, suffix, fn, dict(options or {}), tuple(aliases), description)
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


def format_for_path(path: Path | str) -> FormatSpec:
    """The format whose suffix ``path`` ends with (``model.onnx`` -> onnx)."""
    suffix = Path(path).suffix.lower()
    for spec in FORMATS.values():
        if spec.suffix == suffix:
            return spec
    known = ", ".join(f"{s.suffix} ({s.name})" for s in FORMATS.values())
    raise BadInputError(f"{path}: unknown model file suffix {suffix!r}; expected one of {known}")


TENSORRT_REMEDIATION = (
    "on Jetson install JetPack's TensorRT (`sudo apt install nvidia-tensorrt` or python3-libnvinfer); "
    "on x86 run `pip install tensorrt` on a machine with the NVIDIA driver; or use --format onnx"
)


def require_tensorrt() -> Any:
    """Import and return the ``tensorrt`` module, or raise UnsupportedEnvironmentError (exit 5)."""
    try:
        import tensorrt  # type: ignore[import-not-found]
    except Exception as exc:  # ImportError, or a broken install raising OSError on missing libs
        raise UnsupportedEnvironmentError(
            f"TensorRT is not importable here ({type(exc).__name__}); {TENSORRT_REMEDIATION}"
        ) from None
    return tensorrt


@export_format(
    "onnx",
    ".onnx",
    options={
        "opset": OptionSpec(MAX_OPSET, int, tuple(range(MIN_OPSET, MAX_OPSET + 1)), "ONNX opset version"),
        "dynamic_batch": OptionSpec(False, bool, (), "make the batch dimension symbolic"),
    },
    description="self-contained ONNX file (legacy TorchScript exporter), checked and verified in ONNX Runtime",
)
def _export_onnx(model: nn.Module, out_path: Path, input_shape: tuple[int, ...], **options: Any) -> Path:
    return export_onnx(model, out_path, input_shape, opset=options["opset"], dynamic_batch=options["dynamic_batch"])


@export_format(
    "trt",
    ".engine",
    options={"precision": OptionSpec("fp32", str, ("fp32", "fp16", "int8"), "engine precision")},
    aliases=("tensorrt", "engine"),
    description="TensorRT engine (raw plan, built on the target; metadata in a sidecar JSON)",
)
def _export_trt(model: nn.Module, out_path: Path, input_shape: tuple[int, ...], **options: Any) -> Path:
    trt = require_tensorrt()
    version = getattr(trt, "__version__", "unknown")
    raise UnsupportedEnvironmentError(
        f"TensorRT {version} found, but building engines is not implemented in this sdnas version; "
        f"export with --format onnx and build on the target with `trtexec --onnx=model.onnx --saveEngine={out_path.name}`"
    )
