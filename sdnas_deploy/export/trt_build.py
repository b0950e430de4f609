"""Plan and build a TensorRT engine from ONNX bytes, for both builder eras.

The era is chosen by the installed version (DESIGN.md §3): before 10.12 ("weak") precision comes
from builder flags and INT8 from a calibrator on an fp32 ONNX; from 10.12 ("strong") precision is
baked into the ONNX (fp16 conversion, Q/DQ) and the network is built strongly typed, with no
precision flags. :func:`plan_build` decides everything as plain data (tested without TensorRT);
:func:`build_engine` is the only function that calls the builder.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import (
    BadInputError,
    SdnasError,
    UnsupportedEnvironmentError,
    VerificationError,
)
from ..io_utils import atomic_write_bytes
from ..runtime.trt_env import builder_era, check_supported_version, parse_version
from ..runtime.trt_logging import LogBuffer, get_logger  # noqa: F401  (re-exported)
from .accuracy import PRECISIONS

TRT_CALIB_METHODS = ("entropy", "minmax")  # what TensorRT's own calibrators implement (weak era)
ALL_CALIB_METHODS = ("entropy", "minmax", "percentile")  # strong era: ranges computed by calibration.py


def parse_device(device: str) -> int | None:
    """``"gpu"`` -> None, ``"dla:N"`` -> N; anything else is a one-line BadInputError."""
    text = str(device).strip().lower()
    if text == "gpu":
        return None
    match = re.fullmatch(r"dla:(\d+)", text)
    if not match:
        raise BadInputError(f"--device {device!r}: expected gpu or dla:N (e.g. dla:0 on Jetson Orin)")
    return int(match.group(1))


@dataclass
class TrtBuildOptions:
    """What the user asked for; :meth:`validate` checks it without TensorRT."""

    precision: str = "fp16"
    workspace_gib: float = 2.0
    timing_cache: Path | None = None
    dynamic_batch: tuple[int, int, int] | None = None
    device: str = "gpu"
    calib_method: str = "entropy"
    calib_batch: int = 32

    def validate(self) -> "TrtBuildOptions":
        """Raise BadInputError naming the flag to fix; return self for chaining."""
        if self.precision not in PRECISIONS:
            raise BadInputError(f"--precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        ws = self.workspace_gib
        if isinstance(ws, bool) or not isinstance(ws, (int, float)) or not math.isfinite(ws) or ws <= 0:
            raise BadInputError(f"--workspace-gib {ws!r}: must be a positive number of GiB, e.g. 2")
        dla = parse_device(self.device)
        if dla is not None and self.precision == "fp32":
            raise BadInputError(
                f"--device {self.device}: DLA runs only fp16 or int8; pass --precision fp16 (or int8)"
            )
        if self.dynamic_batch is not None:
            dims = tuple(self.dynamic_batch)
            ok = len(dims) == 3 and all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
            if not ok or not 1 <= dims[0] <= dims[1] <= dims[2]:
                raise BadInputError(
                    f"--batch-range {self.dynamic_batch!r}: need three integers 1 <= min <= opt <= max, e.g. 1,8,32"
                )
            if dla is not None and dims[0] != dims[2]:
                raise BadInputError(
                    f"--device {self.device}: DLA has no dynamic shapes; drop --batch-range or use --device gpu"
                )
            self.dynamic_batch = dims
        if self.calib_method not in ALL_CALIB_METHODS:
            raise BadInputError(f"--calib-method {self.calib_method!r}: choose one of {', '.join(ALL_CALIB_METHODS)}")
        if isinstance(self.calib_batch, bool) or not isinstance(self.calib_batch, int) or self.calib_batch < 1:
            raise BadInputError(f"calibration batch {self.calib_batch!r}: must be an integer >= 1")
        return self


@dataclass(frozen=True)
class BuildPlan:
    """Everything :func:`build_engine` does, decided up front and recorded in the engine sidecar."""

    tensorrt_version: str
    era: str  # "weak" | "strong"
    precision: str
    builder_flags: tuple[str, ...]  # trt.BuilderFlag member names to set
    cleared_flags: tuple[str, ...]  # ... and to clear (TF32 for a true fp32 engine)
    network_flags: tuple[str, ...]  # trt.NetworkDefinitionCreationFlag member names
    needs_calibrator: bool  # weak era + int8: TensorRT's own calibrator
    onnx_precision: str  # precision to bake into the ONNX before parsing
    input_name: str
    input_shape: tuple[int, ...]
    profile_shapes: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None  # (min, opt, max)
    calib_method: str
    calib_batch: int
    workspace_bytes: int
    device: str
    dla_core: int | None
    gpu_fallback: bool
    timing_cache: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def dynamic(self) -> bool:
        return self.profile_shapes is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_build(
    options: TrtBuildOptions, tensorrt_version: str, input_name: str, input_shape: Sequence[int]
) -> BuildPlan:
    """Pure: turn validated options + the installed TensorRT version into a :class:`BuildPlan`."""
    options.validate()
    check_supported_version(tensorrt_version)
    era = builder_era(tensorrt_version)
    shape = tuple(int(d) for d in input_shape)
    dla = parse_device(options.device)
    notes: list[str] = []
    if era == "weak" and options.calib_method not in TRT_CALIB_METHODS and options.precision == "int8":
        raise BadInputError(
            f"--calib-method {options.calib_method}: TensorRT {tensorrt_version} calibrates with its own "
            f"calibrators; choose {' or '.join(TRT_CALIB_METHODS)}"
        )
    if era == "strong" and dla is not None and options.precision == "int8":
        raise UnsupportedEnvironmentError(
            f"TensorRT {tensorrt_version} builds INT8 only from Q/DQ nodes, which DLA does not run; "
            "use --precision fp16 on DLA or --device gpu"
        )
    if era == "weak":
        flags = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}[options.precision]
        network_flags = ("EXPLICIT_BATCH",) if parse_version(tensorrt_version)[0] < 10 else ()
        onnx_precision = "fp32"
    else:
        flags, network_flags, onnx_precision = (), ("STRONGLY_TYPED",), options.precision
        notes.append("strongly typed: precision baked into the ONNX, no precision builder flags")
    profile = None
    if options.dynamic_batch is not None:
        lo, opt, hi = options.dynamic_batch
        profile = ((lo, *shape[1:]), (opt, *shape[1:]), (hi, *shape[1:]))
        calib_batch = min(max(options.calib_batch, lo), hi)
    else:
        calib_batch = shape[0]  # a static network is calibrated at its own batch size
    if dla is not None:
        notes.append(f"DLA core {dla} with GPU fallback for unsupported layers")
    return BuildPlan(
        tensorrt_version=str(tensorrt_version),
        era=era,
        precision=options.precision,
        builder_flags=tuple(flags),
        cleared_flags=("TF32",) if options.precision == "fp32" else (),
        network_flags=network_flags,
        needs_calibrator=era == "weak" and options.precision == "int8",
        onnx_precision=onnx_precision,
        input_name=input_name,
        input_shape=shape,
        profile_shapes=profile,
        calib_method=options.calib_method,
        calib_batch=int(calib_batch),
        workspace_bytes=int(options.workspace_gib * (1 << 30)),
        device=options.device.strip().lower(),
        dla_core=dla,
        gpu_fallback=dla is not None,
        timing_cache=str(options.timing_cache) if options.timing_cache is not None else None,
        notes=tuple(notes),
    )


def default_timing_cache_path(fingerprint: Mapping[str, Any]) -> Path:
    """``$XDG_CACHE_HOME/sdnas/trt/<key>.timing-cache`` (``~/.cache`` by default), keyed by the build fingerprint."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    key = fingerprint.get("key")
    if not key:
        raise BadInputError("build fingerprint has no key; compute it with trt_env.engine_fingerprint")
    return Path(base) / "sdnas" / "trt" / f"{key}.timing-cache"


# ----------------------------------------------------------------------------- build

_BAD_MODEL_CODES = ("MODEL_DESERIALIZE_FAILED", "INVALID_GRAPH", "INVALID_VALUE")


def parser_failure(errors: Sequence[tuple[str, int, str]], version: str) -> SdnasError:
    """One error from the ONNX parser's ``(code name, node index, description)`` list.

    A graph TensorRT cannot read at all is bad input (exit 2); an op it does not support makes
    the export unverifiable (exit 3).
    """
    if not errors:
        return VerificationError(f"TensorRT {version} could not parse the ONNX graph (no parser error recorded); "
                                 "try --format onnx or another TensorRT version")
    parts = []
    for code, node, desc in errors[:3]:
        where = f"node {node}: " if node is not None and node >= 0 else ""
        parts.append(f"{code} {where}{' '.join(str(desc).split())[:160]}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    text = "; ".join(parts) + more
    if all(code in _BAD_MODEL_CODES for code, _, _ in errors):
        return BadInputError(f"TensorRT {version} rejected the ONNX graph ({text}); re-export the model")
    return VerificationError(
        f"TensorRT {version} cannot parse the exported graph ({text}); use --format onnx or a newer TensorRT"
    )


def _load_timing_cache(config: Any, path: Path | None) -> None:
    """Attach the timing cache at ``path`` (empty when absent or unreadable) to ``config``."""
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    try:
        cache = config.create_timing_cache(data)
    except Exception:  # corrupt or foreign cache: start from an empty one rather than fail the build
        cache = None
    if cache is None:
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)


def _save_timing_cache(config: Any, path: Path | None) -> None:
    """Write the (grown) timing cache back atomically, so the next build on this device is faster."""
    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is not None:
        atomic_write_bytes(path, bytes(memoryview(cache.serialize())))


def build_engine(
    trt: Any, onnx_bytes: bytes, plan: BuildPlan, calibrator: Any = None, logger: Any = None
) -> bytes:
    """Parse ``onnx_bytes`` and build a serialized engine as ``plan`` says; returns the raw plan bytes."""
    logger = logger or get_logger(trt)
    buffer: LogBuffer | None = getattr(logger, "buffer", None)
    since = buffer.mark() if buffer is not None else 0
    if plan.needs_calibrator and calibrator is None:
        raise BadInputError("INT8 on this TensorRT needs calibration images; pass --calib-data")

    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        member = getattr(trt.NetworkDefinitionCreationFlag, name, None)
        if member is not None:  # STRONGLY_TYPED is ignored (and may vanish) once it is the only mode
            flags |= 1 << int(member)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            errors.append((getattr(err.code(), "name", str(err.code())), int(err.node()), str(err.desc())))
        raise parser_failure(errors, plan.tensorrt_version)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in plan.cleared_flags:
        member = getattr(trt.BuilderFlag, name, None)
        if member is not None:
            config.clear_flag(member)
    if plan.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if plan.profile_shapes is not None:
        profile = builder.create_optimization_profile()
        profile.set_shape(plan.input_name, *plan.profile_shapes)
        config.add_optimization_profile(profile)
    if calibrator is not None:
        config.int8_calibrator = calibrator
        if plan.profile_shapes is not None:  # calibration needs fixed shapes: its own one-shape profile
            calib_shape = (plan.calib_batch, *plan.input_shape[1:])
            calib_profile = builder.create_optimization_profile()
            calib_profile.set_shape(plan.input_name, calib_shape, calib_shape, calib_shape)
            config.set_calibration_profile(calib_profile)
    cache_path = Path(plan.timing_cache) if plan.timing_cache else None
    _load_timing_cache(config, cache_path)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        last = buffer.last_error(since) if buffer is not None else None
        raise VerificationError(
            f"TensorRT {plan.tensorrt_version} failed to build the {plan.precision} engine "
            f"({last or 'no error logged'}); try another --precision, a larger --workspace-gib, or --format onnx"
        )
    _save_timing_cache(config, cache_path)
    return bytes(memoryview(serialized))
