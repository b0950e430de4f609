"""Export an ONNX model with its precision baked in (fp16 or INT8 Q/DQ) and verify it by accuracy.

The file written is what a strongly typed TensorRT (>= 10.12) build consumes (DESIGN.md §3):
fp16 weights and activations, or explicit INT8 Q/DQ calibrated on ``calib_images``. It is
verified in ONNX Runtime CPU against the fp32 PyTorch model on held-out images, judged by
accuracy (:mod:`accuracy`). fp16 is judged on a verification copy that rounds every activation
to fp16 (:func:`onnx_precision.wrap_fp32_ops`: ORT CPU has no fp16 Conv and would otherwise skip
most of the rounding); the shipped file itself is also run to prove it loads. fp32 is delegated
to :func:`onnx_export.export_and_verify` unchanged.

The sidecar has the layout of ``export_and_verify``'s plus ``precision``, ``calibration`` and an
accuracy-based ``verification``. A failed check still writes the file and a ``"verified": false``
sidecar, then raises VerificationError (exit 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch.nn as nn

from ..errors import BadInputError, VerificationError
from ..io_utils import atomic_write_bytes, atomic_write_json
from .accuracy import compare_logits
from .calibration import calibrate
from ..runtime.evaluate import check_images, input_spec, run_batched
from ..runtime.fingerprint import file_sha256
from .onnx_export import (
    MAX_OPSET,
    check_input_shape,
    export_and_verify,
    load_sidecar,
    onnx_model_proto,
    sidecar_fields,
    sidecar_path,
    torch_logits,
)
from .onnx_precision import (
    ORT_CPU_NO_FP16_OPS,
    PRECISIONS,
    bake_precision,
    cpu_session,
    wrap_fp32_ops,
)

FP16_CPU_EMULATION = ("fp16 weights; every activation rounded to fp16 at each op boundary, ops without an ORT CPU "
                      "fp16 kernel computed in fp32 between casts")
INT8_CPU_EMULATION = "Q/DQ graph run by ORT CPU (int8 kernels where it fuses Q/DQ)"


def _logits(proto: Any, images: np.ndarray, where: str) -> np.ndarray:
    session = cpu_session(proto)
    return run_batched(session, check_images(input_spec(session), images, where), 64)


def _export_fp32(model: nn.Module, out_path: Path, shape: tuple[int, ...], images: np.ndarray,
                 labels: np.ndarray | None, **kwargs: Any) -> dict[str, Any]:
    """export_and_verify, then record ``precision`` in its sidecar (also when it raised)."""
    def mark() -> dict[str, Any]:
        sidecar = load_sidecar(out_path) or {}
        sidecar.update(precision="fp32", calibration=None)
        atomic_write_json(sidecar_path(out_path), sidecar)
        return sidecar

    try:
        export_and_verify(model, out_path, shape, images, labels, **kwargs)
    except VerificationError:
        mark()
        raise
    return mark()


def export_precision_onnx(
    model: nn.Module,
    out_path: Path | str,
    input_shape: Sequence[int],
    images: np.ndarray,
    labels: np.ndarray | None,
    *,
    precision: str,
    calib_images: np.ndarray | None = None,
    calib_method: str = "entropy",
    calib_cache: Path | str | None = None,
    calib_source: str = "",
    max_accuracy_drop: float | None = None,
    opset: int = 17,
    dynamic_batch: bool = False,
    genotype: Any = None,
    metadata: Mapping[str, Any] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Export ``model`` at ``precision``, verify it on ``images`` in ORT CPU, write the sidecar; return it."""
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".onnx":
        raise BadInputError(f"{out_path}: ONNX output must end in .onnx; e.g. model.onnx")
    shape = check_input_shape(input_shape)
    common = dict(opset=opset, dynamic_batch=dynamic_batch, genotype=genotype, metadata=metadata, mean=mean, std=std)
    if precision == "fp32":
        return _export_fp32(model, out_path, shape, images, labels, **common)
    if precision == "int8" and calib_images is None:
        raise BadInputError("int8 needs calibration images; pass --calib-data (a dataset name, an image folder or "
                            "a .npy file)")
    if not 13 <= opset <= MAX_OPSET:
        raise BadInputError(f"opset {opset} is not supported for {precision}; choose 13..{MAX_OPSET}")
    props = {"producer": "sdnas-deploy", **dict(metadata or {})}
    reference = onnx_model_proto(model, shape, opset=opset, dynamic_batch=dynamic_batch, metadata=props)
    calibration = None
    ranges = None
    if precision == "int8":
        ranges, from_cache = calibrate(reference, calib_images, calib_method, cache_path=calib_cache, source=calib_source)
        calibration = {"method": calib_method, "count": int(len(calib_images)), "source": calib_source,
                       "cache": str(calib_cache) if calib_cache is not None else None, "from_cache": from_cache,
                       "tensors": len(ranges)}
    baked = bake_precision(reference, precision, ranges)
    atomic_write_bytes(out_path, baked.SerializeToString())

    where = str(out_path)
    shipped = _logits(baked, images, where)  # the written graph itself loads and runs in ORT CPU
    if precision == "fp16":
        candidate = _logits(wrap_fp32_ops(baked, ORT_CPU_NO_FP16_OPS), images, where)
        emulation = FP16_CPU_EMULATION
    else:
        candidate, emulation = shipped, INT8_CPU_EMULATION
    ref_logits = torch_logits(model, np.ascontiguousarray(images, dtype=np.float32))
    delta = compare_logits(ref_logits, candidate, labels, precision, max_accuracy_drop)
    sidecar = {
        "format": "onnx",
        "file": out_path.name,
        "sha256": file_sha256(out_path),
        "verified": delta.passed,
        "precision": precision,
        "calibration": calibration,
        "verification": {
            **delta.to_dict(),
            "backend": "onnxruntime-cpu",
            "cpu_emulation": emulation,
            "shipped_file_top1_agreement": float(np.mean(shipped.argmax(1) == ref_logits.argmax(1))),
        },
        **sidecar_fields(shape, dynamic_batch, opset, genotype, metadata, mean, std),
    }
    atomic_write_json(sidecar_path(out_path), sidecar)
    if not delta.passed:
        raise VerificationError(
            f"{out_path}: {precision} model fails verification ({delta.describe()}); the file is kept with "
            f"verified=false in {sidecar_path(out_path).name}; "
            + ("calibrate on more representative images (--calib-data) or try another --calib-method"
               if precision == "int8" else "export at fp32, or allow a larger drop with --max-accuracy-drop")
        )
    return sidecar
