"""Glue between trained weights, datasets and the deploy package.

`sdnas export`, `sdnas check` and `sdnas run` call these so the loading logic is written once:
weights → network (eval, no aux head) → one artifact per requested format, each exported through the
format table, timed and verified on real held-out images, with one result line; an ONNX model + gate
profile → the images it is scored on → :func:`deploy.gates.run_check`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInputError
from .recipes import ExportConfig

# ExportConfig fields that are per-format options (the format table says which format takes which).
FORMAT_OPTION_FIELDS: tuple[str, ...] = (
    "opset", "dynamic_batch", "atol", "precision", "max_accuracy_drop", "calib_method", "calib_cache",
    "batch_range", "workspace_gib", "timing_cache", "device",
)


@dataclass(frozen=True)
class ExportResult:
    """One exported artifact: its format, file, verified sidecar and the seconds export + verification took."""

    format: str
    path: Path
    sidecar: dict[str, Any]
    seconds: float

    @property
    def line(self) -> str:
        """One result line, e.g. ``onnx fp32 export/model.onnx: verified in 1.9 s (top-1 agreement 1.000, ...)``."""
        ver = self.sidecar.get("verification") or {}
        ref = ver.get("reference_accuracy", ver.get("torch_accuracy"))
        got = ver.get("candidate_accuracy", ver.get("onnx_accuracy"))
        parts = [f"top-1 agreement {ver['top1_agreement']:.3f}"] if "top1_agreement" in ver else []
        if isinstance(ref, float) and isinstance(got, float):
            parts.append(f"accuracy {ref:.4f} -> {got:.4f}")
        if "max_abs_diff" in ver and ver.get("max_abs_diff") is not None:
            parts.append(f"max |diff| {ver['max_abs_diff']:.1e}")
        status = "verified" if self.sidecar.get("verified") else "NOT verified"
        precision = self.sidecar.get("precision", "fp32")
        detail = f" ({', '.join(parts)})" if parts else ""
        return f"{self.format} {precision} {self.path}: {status} in {self.seconds:.1f} s{detail}"


def format_options(config: ExportConfig) -> dict[str, Any]:
    """The per-format options ``config`` sets (None = not set, left to the format's default)."""
    return {name: getattr(config, name) for name in FORMAT_OPTION_FIELDS}


def check_export_config(config: ExportConfig) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """The formats and their options, validated, and every format's preflight run (TensorRT present: exit 5) —
    what `export` and `sdnas run` check before anything is written or trained."""
    from .export.formats import resolve_formats, split_options

    specs = resolve_formats(config.format)
    options = split_options(specs, format_options(config))
    for spec in specs:
        if spec.preflight is not None:
            spec.preflight()  # exit 5 (with the remediation) before anything is written
    if config.verify_images < 1:
        raise BadInputError(f"verify_images={config.verify_images}: export verification needs at least 1 real image")
    if config.calib_count < 1:
        raise BadInputError(f"calib_count={config.calib_count}: INT8 calibration needs at least 1 image")
    return specs, options


def export_all(
    weights: Path, out_dir: Path, config: ExportConfig | None = None, data_dir: str | None = None,
    log_lines: bool = True,
) -> list[ExportResult]:
    """Export a `sdnas train` weights file to every format of ``config.format`` (``onnx``, ``trt``, ``onnx,trt``).

    Options are validated against the format table and every format's preflight (e.g. TensorRT present)
    runs before anything is written. Verification uses ``config.verify_images`` real test images;
    INT8 calibration uses ``config.calib_count`` images of ``config.calib_data`` (default: the model's
    dataset, train split — never the images it is verified on).
    """
    from .data import load_arrays
    from .export.formats import ExportJob
    from .progress import log
    from .training.weights import load_network

    config = config or ExportConfig()
    specs, options = check_export_config(config)
    model, meta = load_network(weights, auxiliary=False)
    model.eval()
    image_size = meta.image_size if _resizable(meta.dataset) else None
    images, labels = load_arrays(meta.dataset, "test", data_dir=data_dir, limit=config.verify_images,
                                 image_size=image_size)
    calib_source = config.calib_data or meta.dataset

    @functools.cache
    def calib_images() -> Any:  # loaded once, however many formats calibrate (onnx,trt at int8)
        from .export.calibration import load_calibration_images

        return load_calibration_images(calib_source, config.calib_count, meta.input_shape, mean=meta.mean,
                                       std=meta.std, data_dir=data_dir)

    job = ExportJob(
        model=model, out_dir=Path(out_dir), input_shape=tuple(meta.input_shape), images=images, labels=labels,
        calib_images=calib_images, calib_source=calib_source, genotype=meta.genotype, mean=meta.mean, std=meta.std,
        metadata={**local_weights(weights, Path(out_dir)), "space": meta.space, "dataset": meta.dataset, "setting": meta.setting,
                  "num_classes": meta.num_classes, "layers": meta.layers, "channels": meta.channels,
                  "trained_epochs": meta.epoch, "test_top1_torch": meta.test_top1},
    )
    results = []
    for spec in specs:
        start = time.perf_counter()
        sidecar, path = _export_staged(spec, job, options[spec.name])
        result = ExportResult(spec.name, path, sidecar, time.perf_counter() - start)
        if log_lines:
            log(result.line)
        results.append(result)
    return results


def local_weights(weights: Path, out_dir: Path) -> dict[str, str]:
    """The PyTorch weights an export describes, copied beside it (``weights-<sha12>.safetensors``) so the sidecar
    names a file in its own folder, with its sha256 (``check`` and ``profile --backend torch`` verify both)."""
    from .io_utils import atomic_write_bytes
    from .runtime.fingerprint import file_sha256

    sha = file_sha256(weights)
    local = Path(out_dir) / f"weights-{sha[:12]}.safetensors"
    if not local.is_file() or file_sha256(local) != sha:
        atomic_write_bytes(local, Path(weights).read_bytes())
    return {"weights": local.name, "weights_sha256": sha}


def _export_staged(spec: Any, job: Any, options: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """Export one format in a staging folder, then publish it (``export.publish``): a failed verification never
    replaces a verified pair, and the pair is moved into place artifact first, sidecar last."""
    from .errors import VerificationError
    from .export.publish import publish, staging

    final = spec.output_path(job.out_dir)
    with staging(job.out_dir) as stage:
        try:
            sidecar = spec.export(dataclasses.replace(job, out_dir=stage), **options)
        except VerificationError as exc:
            where = publish(stage, final, spec.sidecar_of, passed=False)
            message = exc.message.replace(str(stage / final.name), str(where)).replace(str(stage), str(job.out_dir))
            kept = f"; the verified {final.name} there is kept" if where != final else ""
            raise VerificationError(message + kept) from None
        return sidecar, publish(stage, final, spec.sidecar_of, passed=True)


def export_weights(weights: Path, out_dir: Path, config: ExportConfig | None = None, data_dir: str | None = None) -> dict[str, Any]:
    """Export to ``config.format`` and return the sidecar of the ONNX artifact (the pipeline profiles and gates it).

    The pipeline needs ONNX among the formats: asking it for ``trt`` alone is a BadInputError.
    """
    config = config or ExportConfig()
    results = export_all(weights, out_dir, config, data_dir, log_lines=False)
    for result in results:
        if result.format == "onnx":
            return result.sidecar
    raise BadInputError(f"export format {config.format!r} has no onnx artifact for profiling and gates; "
                        "use format: onnx (or onnx,trt) in the recipe's export section")


def _resizable(dataset: str) -> bool:
    from .data import DATASETS

    return bool(DATASETS[dataset].resizable) if dataset in DATASETS else False


def check_model(onnx_path: Path, gates: Any) -> Any:
    """Load the images the gate profile names (when an accuracy gate is set) and run the check.

    ``onnx_path`` is the artifact the profile's backend runs (an .onnx for ort/torch, an .engine for
    trt); an unknown dataset is BadInputError (exit 2) before anything is measured.
    """
    from .data import load_arrays
    from .gate.gates import run_check

    images = labels = None
    if gates.needs_data:
        size = _artifact_input_size(onnx_path) if _resizable(gates.dataset) else None
        images, labels = load_arrays(gates.dataset, gates.split, data_dir=gates.data_dir, limit=gates.limit,
                                     image_size=size)
    return run_check(onnx_path, gates, images, labels)


def _artifact_input_size(path: Path) -> int | None:
    """The input side an artifact's sidecar records (a resizable dataset is scored at the size it was trained at)."""
    from .export.onnx_export import sidecar_path
    from .io_utils import load_json
    from .runtime.runner import is_engine
    from .runtime.trt_env import engine_sidecar_path

    side = engine_sidecar_path(path) if is_engine(path) else sidecar_path(path)
    if not side.is_file():
        return None
    shape = ((load_json(side, "model sidecar") or {}).get("input") or {}).get("shape")
    return int(shape[2]) if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[2], int) else None
