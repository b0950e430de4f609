"""``sdnas export --format trt``: build a TensorRT engine on this device, write it with a sidecar, verify it.

Flow (DESIGN.md §3): check TensorRT first (exit 5 before any work) -> plan for the installed era ->
fp32 ONNX in memory -> strong era: bake the precision into the ONNX (fp16 / Q/DQ from calibrated
ranges); weak era: builder flags + TensorRT calibrator -> build -> write the raw plan (never a header)
and ``model.engine.json`` -> run the engine against PyTorch on held-out images and judge it by
accuracy drop. A failed check leaves the files with ``"verified": false`` and exits 3.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch.nn as nn

from ..errors import BadInputError, VerificationError
from ..io_utils import atomic_write_bytes, atomic_write_json
from ..runtime.evaluate import InputSpec, check_images
from ..runtime.fingerprint import file_sha256
from .onnx_export import (
    INPUT_NAME,
    MAX_OPSET,
    OUTPUT_NAME,
    sidecar_fields,
    check_input_shape,
    onnx_model_proto,
    versions,
)
from .trt_build import (
    BuildPlan,
    TrtBuildOptions,
    build_engine,
    default_timing_cache_path,
    plan_build,
)
from ..runtime.trt_env import (
    engine_fingerprint,
    engine_sidecar_path,
    require_tensorrt,
    tensorrt_version,
)

ENGINE_SCHEMA = "sdnas-engine/1"
ENGINE_SUFFIX = ".engine"


def check_engine_path(out_path: Path | str) -> Path:
    """``out_path`` as a Path ending in ``.engine``, else BadInputError."""
    path = Path(out_path)
    if path.suffix.lower() != ENGINE_SUFFIX:
        raise BadInputError(f"{path}: TensorRT output must end in {ENGINE_SUFFIX}; e.g. model.engine")
    return path


def graph_output(proto: Any) -> dict[str, Any]:
    """Name and shape (None for a symbolic dim) of the ONNX graph's single output."""
    out = proto.graph.output[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in out.type.tensor_type.shape.dim]
    return {"name": out.name, "shape": dims}


def engine_summary(sidecar: Mapping[str, Any]) -> str:
    """One line for the CLI: file, precision, era, build time, accuracy check."""
    verification = sidecar.get("verification") or {}
    drop = verification.get("accuracy_drop")
    check = "verified" if sidecar.get("verified") else "NOT verified"
    acc = f", accuracy drop {drop:.4f}" if isinstance(drop, (int, float)) else ""
    plan = sidecar.get("plan") or {}
    where = plan.get("device", "gpu")
    return (
        f"{sidecar.get('file')}: TensorRT {sidecar.get('tensorrt')} {sidecar.get('precision')} engine "
        f"({sidecar.get('era')}-typed, {where}) built in {sidecar.get('build_seconds', 0):.1f} s, {check}{acc}"
    )


def prepare_onnx(
    proto: Any, plan: BuildPlan, calib_images: np.ndarray | None = None, calib_method: str = "entropy",
    calib_cache: Path | str | None = None, calib_source: str = "",
) -> tuple[Any, dict[str, Any] | None]:
    """The ONNX TensorRT will parse, and the calibration record (strong era; weak era: unchanged, None).

    Strongly typed builds take precision from the graph: fp16 is converted, int8 gets Q/DQ nodes from
    ranges calibrated in ONNX Runtime (cached in ``calib_cache``). The weak era parses fp32 and lets
    builder flags and TensorRT's calibrator choose precision.
    """
    if plan.era != "strong" or plan.onnx_precision == "fp32":
        return proto, None
    from .onnx_precision import bake_precision

    ranges, calibration = None, None
    if plan.onnx_precision == "int8":
        from .calibration import calibrate

        if calib_images is None:
            raise BadInputError("--precision int8 needs calibration images; pass --calib-data")
        ranges, cached = calibrate(proto, calib_images, method=calib_method, cache_path=calib_cache, source=calib_source)
        calibration = {"path": "q/dq", "method": calib_method, "images": int(len(calib_images)), "source": calib_source,
                       "cache": str(calib_cache) if calib_cache is not None else None, "loaded_from_cache": bool(cached),
                       "tensors": len(ranges)}
    return bake_precision(proto, plan.onnx_precision, ranges), calibration


def export_engine(
    model: nn.Module,
    out_path: Path | str,
    input_shape: Sequence[int],
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    precision: str = "fp16",
    calib_images: np.ndarray | None = None,
    calib_method: str = "entropy",
    calib_cache: Path | str | None = None,
    calib_source: str = "",
    workspace_gib: float = 2.0,
    timing_cache: Path | str | None = None,
    dynamic_batch: tuple[int, int, int] | None = None,
    device: str = "gpu",
    max_accuracy_drop: float | None = None,
    opset: int = MAX_OPSET,
    metadata: Mapping[str, Any] | None = None,
    genotype: Any = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Build, write and verify ``out_path`` (+ ``<out_path>.json``); return the sidecar with ``seconds`` and ``summary``.

    Raises UnsupportedEnvironmentError (exit 5) without TensorRT, BadInputError (exit 2) for bad options
    (INT8 without --calib-data), VerificationError (exit 3) when the build fails or the engine's accuracy
    drop exceeds ``max_accuracy_drop`` (default by precision).
    """
    require_tensorrt()
    start = time.perf_counter()
    out_path = check_engine_path(out_path)
    shape = check_input_shape(input_shape)
    spec = InputSpec(INPUT_NAME, (None if dynamic_batch is not None else shape[0], *shape[1:]), np.float32)
    images = check_images(spec, images, str(out_path))  # fail before a build that can take minutes
    sidecar = build_engine_file(
        model, out_path, shape, precision=precision, calib_images=calib_images, calib_method=calib_method,
        calib_cache=calib_cache, calib_source=calib_source, workspace_gib=workspace_gib, timing_cache=timing_cache,
        dynamic_batch=dynamic_batch, device=device, opset=opset, metadata=metadata, genotype=genotype, mean=mean,
        std=std,
    )
    side_path = engine_sidecar_path(out_path)
    delta = _verify(out_path, model, images, labels, precision, max_accuracy_drop)
    sidecar["verified"] = bool(delta.passed)
    sidecar["verification"] = {**delta.to_dict(), "backend": f"tensorrt-{sidecar['tensorrt']}"}
    atomic_write_json(side_path, sidecar)
    if not delta.passed:
        raise VerificationError(
            f"{out_path}: TensorRT {precision} engine fails the accuracy check ({delta.describe()}); kept with "
            f"verified=false in {side_path.name}; try --precision fp16/fp32, more --calib-count, or --max-accuracy-drop"
        )
    sidecar["seconds"] = round(time.perf_counter() - start, 3)
    sidecar["summary"] = engine_summary(sidecar)
    return sidecar


def build_engine_file(
    model: nn.Module,
    out_path: Path | str,
    input_shape: Sequence[int],
    *,
    precision: str = "fp16",
    calib_images: np.ndarray | None = None,
    calib_method: str = "entropy",
    calib_cache: Path | str | None = None,
    calib_source: str = "",
    workspace_gib: float = 2.0,
    timing_cache: Path | str | None = None,
    dynamic_batch: tuple[int, int, int] | None = None,
    device: str = "gpu",
    opset: int = MAX_OPSET,
    metadata: Mapping[str, Any] | None = None,
    genotype: Any = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Build ``model`` into the raw plan ``out_path`` and write its sidecar (``verified: false`` until checked).

    The build half of :func:`export_engine`, shared with `sdnas lut build --backend trt`, which times single
    operators (not classifiers) and so cannot be judged by accuracy.
    """
    trt = require_tensorrt()
    out_path = check_engine_path(out_path)
    shape = check_input_shape(input_shape)
    options = TrtBuildOptions(
        precision=precision, workspace_gib=workspace_gib, dynamic_batch=dynamic_batch, device=device,
        calib_method=calib_method, timing_cache=Path(timing_cache) if timing_cache is not None else None,
    ).validate()
    if precision == "int8" and calib_images is None:
        raise BadInputError("--precision int8 needs calibration images; pass --calib-data (dataset name, image folder or .npy)")
    version = tensorrt_version() or str(trt.__version__)
    fingerprint = engine_fingerprint(precision, options.device)
    if options.timing_cache is None:
        options.timing_cache = default_timing_cache_path(fingerprint)
    plan = plan_build(options, version, INPUT_NAME, shape)

    props = {"producer": "sdnas-deploy", **dict(metadata or {})}
    proto = onnx_model_proto(model, shape, opset=opset, dynamic_batch=dynamic_batch is not None, metadata=props)
    output = graph_output(proto)
    proto, calibration = prepare_onnx(proto, plan, calib_images, calib_method, calib_cache, calib_source)
    calibrator = None
    if plan.needs_calibrator:
        from .trt_calibrator import check_calibration_images, make_calibrator

        calib = check_calibration_images(calib_images, shape)
        calibrator = make_calibrator(trt, calib, calib_method, plan.calib_batch, calib_cache)
    onnx_bytes = proto.SerializeToString()

    build_start = time.perf_counter()
    engine_bytes = build_engine(trt, onnx_bytes, plan, calibrator)
    build_seconds = time.perf_counter() - build_start
    if calibrator is not None:
        calibration = {**calibrator.info(), "source": calib_source, "path": "calibrator"}
    atomic_write_bytes(out_path, engine_bytes)

    sidecar: dict[str, Any] = {
        "schema": ENGINE_SCHEMA,
        "format": "trt",
        "file": out_path.name,
        "sha256": file_sha256(out_path),
        "precision": precision,
        "tensorrt": version,
        "era": plan.era,
        "plan": plan.to_dict(),
        "build_seconds": round(build_seconds, 3),
        "fingerprint": fingerprint,
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "calibration": calibration,
        **sidecar_fields(shape, list(dynamic_batch) if dynamic_batch else None, opset, genotype, metadata, mean, std),
        "output": {"name": output["name"] or OUTPUT_NAME, "shape": output["shape"]},
        "versions": {**versions(), "tensorrt": version},
        "verified": False,
        "verification": None,
    }
    atomic_write_json(engine_sidecar_path(out_path), sidecar)  # TrtRunner checks it on load
    return sidecar


def _verify(
    engine_path: Path, model: nn.Module, images: np.ndarray, labels: np.ndarray | None, precision: str,
    max_accuracy_drop: float | None,
) -> Any:
    """Engine vs PyTorch fp32 on ``images``, judged by accuracy drop (accuracy.compare_logits)."""
    from .accuracy import compare_logits
    from .onnx_export import torch_logits
    from ..runtime.trt_runtime import TrtRunner

    candidate = TrtRunner(engine_path).infer(images)
    reference = torch_logits(model, images)
    return compare_logits(reference, candidate, labels, precision, max_accuracy_drop)
