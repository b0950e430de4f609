"""Run an ONNX model in ONNX Runtime: open a session safely, feed batches, measure accuracy.

Verification, profiling and gates all open sessions through ``ort_session`` (re-exported here) so a missing or corrupt
file, a missing CUDA provider or a shape mismatch is always the same one-line error, never a
raw ONNX Runtime traceback. onnxruntime is imported inside functions (ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError
from .ort_session import open_session, providers_for  # noqa: F401  (the one session builder, re-exported)

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@dataclass(frozen=True)
class InputSpec:
    """The model's single input: name, shape (None for a symbolic dim) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: type

    @property
    def static_batch(self) -> int | None:
        """The fixed batch size, or None when the batch dimension is dynamic."""
        return self.shape[0] if self.shape else None

    def describe(self) -> str:
        return "x".join("?" if d is None else str(d) for d in self.shape)


def input_spec(session: Any) -> InputSpec:
    """Describe the session's input (symbolic dims become None)."""
    meta = session.get_inputs()[0]
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in meta.shape)
    dtype = _ORT_DTYPES.get(meta.type)
    if dtype is None:
        raise BadInputError(f"model input {meta.name!r} has type {meta.type}; only float inputs are supported")
    return InputSpec(meta.name, shape, dtype)


def check_images(spec: InputSpec, images: np.ndarray, where: str) -> np.ndarray:
    """Validate ``images`` against the model input (rank, channels, H, W); return them in its dtype."""
    images = np.asarray(images)
    if images.ndim != len(spec.shape) or images.shape[0] == 0:
        raise BadInputError(
            f"{where}: images have shape {tuple(images.shape)} but the model expects input {spec.describe()}; "
            "pass a non-empty batch in the model's layout (N, C, H, W)"
        )
    for got, want in zip(images.shape[1:], spec.shape[1:]):
        if want is not None and got != want:
            raise BadInputError(
                f"{where}: images have shape {tuple(images.shape)} but the model expects input {spec.describe()}; "
                "use the dataset (channels, image size) the model was trained for"
            )
    return np.ascontiguousarray(images, dtype=spec.dtype)


def run_batched(session: Any, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """First output of the model over all ``images``, in chunks of ``batch`` (or the static batch).

    A model exported with a fixed batch size gets chunks of exactly that size; the last chunk
    is zero-padded and the padding rows are dropped from the result.
    """
    spec = input_spec(session)
    if batch < 1:
        raise BadInputError(f"batch must be >= 1, got {batch}")
    step = spec.static_batch or batch
    outputs = []
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        real = len(chunk)
        if spec.static_batch is not None and real < step:
            pad = np.zeros((step - real, *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        out = session.run(None, {spec.name: chunk})[0]
        outputs.append(np.asarray(out, dtype=np.float32)[:real])
    return np.concatenate(outputs)


def check_labels(labels: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Labels as int64 of length ``n`` within ``[0, num_classes)``, else BadInputError."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise BadInputError(f"got {labels.shape} labels for {n} images; pass one integer label per image")
    if not np.issubdtype(labels.dtype, np.integer):
        raise BadInputError(f"labels have dtype {labels.dtype}; pass integer class indices")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise BadInputError(
            f"labels span [{labels.min()}, {labels.max()}] but the model has {num_classes} classes; check the dataset"
        )
    return labels.astype(np.int64)


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose label is among the ``k`` largest logits."""
    if k == 1:
        return float(np.mean(logits.argmax(axis=1) == labels))
    top = np.argpartition(-logits, kth=k - 1, axis=1)[:, :k]
    return float(np.mean((top == labels[:, None]).any(axis=1)))


def evaluate_onnx(path: Path | str, images: np.ndarray, labels: np.ndarray, batch: int = 64) -> dict[str, Any]:
    """Top-1 (and top-5 when there are at least 5 classes) accuracy of an ONNX model in ORT CPU.

    Returns ``{"top1", "top5" (or None), "n", "num_classes", "prediction_counts"}``; the per-class
    prediction counts reveal a collapsed model that always answers the same class.
    """
    session = open_session(path, "cpu")
    images = check_images(input_spec(session), images, str(path))
    return classification_summary(run_batched(session, images, batch), labels, str(path))


def classification_summary(logits: np.ndarray, labels: np.ndarray, where: str) -> dict[str, Any]:
    """Top-1/top-5 accuracy and per-class prediction counts of (N, num_classes) ``logits``: the one summary
    that ONNX Runtime, TensorRT and PyTorch evaluations all report."""
    if logits.ndim != 2:
        raise BadInputError(f"{where}: model output has shape {logits.shape}; expected (N, num_classes) logits")
    num_classes = int(logits.shape[1])
    labels = check_labels(labels, len(logits), num_classes)
    return {
        "top1": topk_accuracy(logits, labels, 1),
        "top5": topk_accuracy(logits, labels, 5) if num_classes >= 5 else None,
        "n": int(len(logits)),
        "num_classes": num_classes,
        "prediction_counts": np.bincount(logits.argmax(axis=1), minlength=num_classes).astype(int).tolist(),
    }
