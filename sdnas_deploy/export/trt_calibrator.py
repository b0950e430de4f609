"""TensorRT INT8 calibrators for the weak-typing era (TensorRT < 10.12, e.g. JetPack 6's 10.3).

TensorRT's calibrators are pybind classes that must be subclassed, so the class is created at call
time from the imported module (``tensorrt`` stays a lazy import). Batches live in a torch CUDA tensor
(no pycuda); TensorRT's own calibration cache bytes are read back and written atomically, so a second
build on the same device skips calibration. :func:`calibration_batches` is the pure batching logic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError, UnsupportedEnvironmentError
from ..io_utils import atomic_write_bytes

CALIBRATOR_BASES = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}


def calibrator_base_name(method: str) -> str:
    """The TensorRT calibrator class implementing ``method``; BadInputError for others (e.g. percentile)."""
    if method not in CALIBRATOR_BASES:
        raise BadInputError(
            f"--calib-method {method!r}: TensorRT's calibrators offer {', '.join(CALIBRATOR_BASES)}; "
            "percentile needs TensorRT >= 10.12 (Q/DQ path)"
        )
    return CALIBRATOR_BASES[method]


def calibration_batches(n_images: int, batch: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of every full batch; the remainder (< batch images) is dropped.

    TensorRT feeds each calibration batch through a fixed-shape profile, so a short last batch
    cannot be used; fewer images than one batch is a BadInputError naming --calib-count.
    """
    if batch < 1:
        raise BadInputError(f"calibration batch {batch} must be >= 1")
    if n_images < batch:
        raise BadInputError(
            f"{n_images} calibration images cannot fill one batch of {batch}; raise --calib-count to at least {batch}"
        )
    return [(start, start + batch) for start in range(0, n_images - batch + 1, batch)]


def check_calibration_images(images: np.ndarray, input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Calibration images as contiguous float32 NCHW; shape mismatch with the model -> BadInputError."""
    images = np.asarray(images)
    if images.ndim < 2 or images.shape[0] == 0 or not np.issubdtype(images.dtype, np.floating):
        raise BadInputError(
            f"calibration images have shape {images.shape} and dtype {images.dtype}; pass float images (N, C, H, W) via --calib-data"
        )
    if input_shape is not None and tuple(images.shape[1:]) != tuple(input_shape[1:]):
        raise BadInputError(
            f"calibration images have shape {tuple(images.shape[1:])} per image but the model takes "
            f"{tuple(input_shape[1:])}; use data from the model's dataset for --calib-data"
        )
    if not np.all(np.isfinite(images)):
        raise BadInputError("calibration images contain NaN or inf; check --calib-data")
    return np.ascontiguousarray(images, dtype=np.float32)


def make_calibrator(
    trt: Any, images: np.ndarray, method: str = "entropy", batch: int = 32, cache_path: Path | str | None = None,
    device: str = "cuda:0",
) -> Any:
    """An ``IInt8EntropyCalibrator2`` / ``IInt8MinMaxCalibrator`` instance feeding ``images`` in ``batch``es.

    ``cache_path`` (optional) holds TensorRT's calibration table: read back when it exists, written
    atomically after calibration. ``info()`` on the returned object describes the run for the sidecar.
    """
    import torch

    base = getattr(trt, calibrator_base_name(method))
    images = check_calibration_images(images)
    spans = calibration_batches(len(images), batch)
    if not torch.cuda.is_available():
        raise UnsupportedEnvironmentError("INT8 calibration needs a CUDA GPU visible to torch; run on the target device")
    cache = Path(cache_path) if cache_path is not None else None

    class _Calibrator(base):  # type: ignore[misc, valid-type]
        """Feeds full batches from host images through one reusable CUDA buffer."""

        def __init__(self) -> None:
            base.__init__(self)  # pybind base classes must be initialised explicitly
            self.device_buffer = torch.empty((batch, *images.shape[1:]), dtype=torch.float32, device=device)
            self.next_index = 0
            self.batches_served = 0
            self.loaded_from_cache = False

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str], *_: Any) -> list[int] | None:
            if self.next_index >= len(spans):
                return None  # tells TensorRT calibration data is exhausted
            start, stop = spans[self.next_index]
            self.next_index += 1
            self.device_buffer.copy_(torch.from_numpy(images[start:stop]))
            torch.cuda.current_stream(self.device_buffer.device).synchronize()  # TensorRT reads on its own stream
            self.batches_served += 1
            return [int(self.device_buffer.data_ptr())] * max(1, len(names))

        def read_calibration_cache(self, *_: Any) -> bytes | None:
            if cache is not None and cache.is_file():
                data = cache.read_bytes()
                if data:
                    self.loaded_from_cache = True
                    return data
            return None

        def write_calibration_cache(self, data: Any, *_: Any) -> None:
            if cache is not None:
                atomic_write_bytes(cache, bytes(memoryview(data)))

        def info(self) -> dict[str, Any]:
            return {
                "method": method,
                "calibrator": base.__name__,
                "batch": batch,
                "images_used": len(spans) * batch,
                "images_given": int(len(images)),
                "batches_served": self.batches_served,
                "cache": str(cache) if cache is not None else None,
                "loaded_from_cache": self.loaded_from_cache,
            }

    return _Calibrator()
