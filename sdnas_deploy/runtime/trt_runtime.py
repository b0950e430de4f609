"""Run a serialized TensorRT engine with torch CUDA buffers (no pycuda): infer, profile, evaluate.

:class:`TrtRunner` checks the engine's sidecar first (fingerprint, sha256; DESIGN.md §3: engines are
not portable), deserializes it, and binds one input and one output through the named-tensor API
(``set_tensor_address`` + ``execute_async_v3`` on a dedicated ``torch.cuda.Stream``). The four steps
``set_input`` / ``copy_in`` / ``enqueue`` / ``copy_out`` are separate so the profiler can time them
apart. Chunk planning and dtype mapping are pure helpers, tested without TensorRT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError, UnsupportedEnvironmentError, VerificationError
from ..io_utils import require_file
from .evaluate import InputSpec, check_images, classification_summary
from .runner import Runner
from .trt_env import check_engine_sidecar, require_tensorrt, tensorrt_version

_IO_DTYPES = {"FLOAT": ("float32", np.float32), "HALF": ("float16", np.float16)}


def trt_dtype_name(dtype: Any) -> str:
    """``trt.DataType.HALF`` (or the string ``"DataType.HALF"``) -> ``"HALF"``."""
    return str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1].upper()


def io_dtypes(dtype: Any) -> tuple[Any, Any]:
    """(numpy dtype, torch dtype) for an engine IO tensor; only float32/float16 IO is supported."""
    import torch

    name = trt_dtype_name(dtype)
    if name not in _IO_DTYPES:
        raise BadInputError(
            f"engine IO tensor has type {name}; sdnas runs engines with float32 or float16 inputs/outputs only, "
            "re-export with `sdnas export --format trt`"
        )
    torch_name, np_dtype = _IO_DTYPES[name]
    return np.dtype(np_dtype), getattr(torch, torch_name)


def chunk_plan(
    n_images: int, batch: int, static_batch: int | None, profile: tuple[int, int, int] | None = None
) -> list[tuple[int, int, int]]:
    """``(start, real, run)`` per chunk: ``real`` images from ``start`` run as a batch of ``run``.

    A static engine runs exactly its batch, zero-padding the last chunk (like evaluate.run_batched);
    a dynamic engine runs ``batch`` clamped to the profile's [min, max], padding only below min.
    """
    if batch < 1:
        raise BadInputError(f"batch must be >= 1, got {batch}")
    if static_batch is not None:
        step, lo = static_batch, static_batch
    elif profile is not None:
        lo, _, hi = profile
        step = min(max(batch, lo), hi)
    else:
        step, lo = batch, 1
    plan = []
    for start in range(0, n_images, step):
        real = min(step, n_images - start)
        plan.append((start, real, max(real, lo)))
    return plan


class TrtRunner(Runner):
    """One engine, one execution context, torch CUDA device buffers and pinned host buffers (a Runner:
    ``compute`` is ``enqueue``, asynchronous on :attr:`stream`)."""

    backend = "trt"
    compute_call = "context.execute_async_v3()"
    transfer_call = "context.execute_async_v3()"
    graph_call = "CUDA graph replay of execute_async_v3()"

    def __init__(self, engine_path: Path | str, device: str = "cuda:0", force: bool = False, batch: int | None = None):
        import torch

        self.trt = require_tensorrt()
        self.engine_path = require_file(engine_path, "TensorRT engine")
        sidecar, self.warnings = check_engine_sidecar(self.engine_path, force=force)
        self.sidecar: dict[str, Any] = sidecar or {}
        if not torch.cuda.is_available():
            raise UnsupportedEnvironmentError("TensorRT engines run on a CUDA GPU and torch sees none; run on the target")
        if not str(device).startswith("cuda"):
            raise BadInputError(f"--device {device!r}: TensorRT engines run on cuda or cuda:N")
        self.device = torch.device(device)
        torch.cuda.set_device(self.device)
        from .trt_logging import get_logger

        runtime = self.trt.Runtime(get_logger(self.trt))
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise BadInputError(
                f"{self.engine_path}: TensorRT could not deserialize the engine (corrupt, or built by another "
                "TensorRT); rebuild it here with `sdnas export --format trt`"
            )
        self._runtime = runtime  # the runtime must outlive the engine
        self.context = self.engine.create_execution_context()
        self.input_name, self.output_name = self._io_names()
        self.in_np, self.in_torch = io_dtypes(self.engine.get_tensor_dtype(self.input_name))
        self.out_np, self.out_torch = io_dtypes(self.engine.get_tensor_dtype(self.output_name))
        engine_shape = tuple(int(d) for d in self.engine.get_tensor_shape(self.input_name))
        self.static_batch = engine_shape[0] if engine_shape[0] > 0 else None
        self.profile: tuple[int, int, int] | None = None
        if self.static_batch is None:
            lo, opt, hi = (int(dims[0]) for dims in self.engine.get_tensor_profile_shape(self.input_name, 0))
            self.profile = (lo, opt, hi)
        self.sample_shape = engine_shape[1:]
        self.stream = torch.cuda.Stream(self.device)
        self._allocate(self._capacity_for(batch))
        self.input_dtype = self.in_np

    # ------------------------------------------------------------------ setup
    def _io_names(self) -> tuple[str, str]:
        inputs, outputs = [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            mode = self.engine.get_tensor_mode(name)
            (inputs if mode == self.trt.TensorIOMode.INPUT else outputs).append(name)
        if len(inputs) != 1 or len(outputs) != 1:
            raise BadInputError(
                f"{self.engine_path}: engine has {len(inputs)} inputs and {len(outputs)} outputs; "
                "sdnas runs single-input, single-output classifiers"
            )
        return inputs[0], outputs[0]

    def _capacity_for(self, batch: int | None) -> int:
        if self.static_batch is not None:
            return self.static_batch
        lo, opt, hi = self.profile  # type: ignore[misc]
        wanted = opt if batch is None else batch
        if not lo <= wanted <= hi:
            raise BadInputError(f"batch {wanted} is outside the engine's dynamic range {lo}..{hi}; pick a batch in it")
        return wanted

    def _allocate(self, capacity: int) -> None:
        """(Re)allocate device + pinned host buffers for ``capacity`` images and bind their addresses."""
        import torch

        self.capacity = capacity
        self._set_batch(capacity)
        out_shape = tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))
        self.d_in = torch.empty((capacity, *self.sample_shape), dtype=self.in_torch, device=self.device)
        self.d_out = torch.empty(out_shape, dtype=self.out_torch, device=self.device)
        self.h_in = torch.empty(self.d_in.shape, dtype=self.in_torch, pin_memory=True)
        self.h_out = torch.empty(out_shape, dtype=self.out_torch, pin_memory=True)
        self.context.set_tensor_address(self.input_name, int(self.d_in.data_ptr()))
        self.context.set_tensor_address(self.output_name, int(self.d_out.data_ptr()))

    def _set_batch(self, n: int) -> None:
        self.current_batch = n
        if self.static_batch is None and not self.context.set_input_shape(self.input_name, (n, *self.sample_shape)):
            raise BadInputError(f"engine rejected input batch {n}; its dynamic range is {self.profile}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.current_batch, *self.sample_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))

    # ------------------------------------------------------------------ the four timed steps
    def set_input(self, array: np.ndarray) -> None:
        """Copy ``array`` (batch within the engine's range) into the pinned host input buffer."""
        array = np.asarray(array)
        n = int(array.shape[0]) if array.ndim else 0
        if array.ndim != 1 + len(self.sample_shape) or tuple(array.shape[1:]) != self.sample_shape or n < 1:
            raise BadInputError(f"input of shape {array.shape} does not fit the engine input {self.input_shape}")
        if self.static_batch is not None and n != self.static_batch:
            raise BadInputError(f"this engine has a static batch of {self.static_batch}; got {n} images")
        if n > self.capacity:
            self._allocate(self._capacity_for(n))
        if n != self.current_batch:
            self._set_batch(n)
        self.h_in[:n].numpy()[...] = array.astype(self.in_np, copy=False)

    def copy_in(self) -> None:
        """Host -> device copy of the current batch, async on :attr:`stream`."""
        import torch

        n = self.current_batch
        with torch.cuda.stream(self.stream):
            self.d_in[:n].copy_(self.h_in[:n], non_blocking=True)

    def enqueue(self) -> None:
        """Launch the engine on :attr:`stream` (``execute_async_v3``)."""
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise VerificationError(f"{self.engine_path}: TensorRT failed to enqueue the engine; rebuild it here")

    def copy_out(self) -> None:
        """Device -> host copy of the output, async on :attr:`stream`."""
        import torch

        n = self.current_batch
        with torch.cuda.stream(self.stream):
            self.h_out[:n].copy_(self.d_out[:n], non_blocking=True)

    def compute(self) -> None:
        self.enqueue()

    def describe(self) -> dict[str, Any]:
        return {"runtime": f"tensorrt {tensorrt_version() or 'unknown'}", "provider": "TensorRT"}

    def infer(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """Float32 logits for all ``images`` (static engines pad the last chunk; padding is dropped)."""
        images = check_images(self.input_spec(), images, str(self.engine_path))
        outputs = []
        for start, real, run in chunk_plan(len(images), batch, self.static_batch, self.profile):
            chunk = images[start : start + real]
            if run > real:
                chunk = np.concatenate([chunk, np.zeros((run - real, *chunk.shape[1:]), dtype=chunk.dtype)])
            self.set_input(chunk)
            self.copy_in()
            self.enqueue()
            self.copy_out()
            self.synchronize()
            outputs.append(self.h_out[:real].float().numpy().copy())
        return np.concatenate(outputs)

    def input_spec(self) -> InputSpec:
        """The engine input as evaluate.InputSpec (None for a dynamic batch dim)."""
        return InputSpec(self.input_name, (self.static_batch, *self.sample_shape), self.in_np.type)


def evaluate_engine(
    engine_path: Path | str, images: np.ndarray, labels: np.ndarray, device: str = "cuda:0", force: bool = False,
    batch: int = 64,
) -> dict[str, Any]:
    """Top-1/top-5 accuracy of an engine; same keys as evaluate.evaluate_onnx, plus ``warnings`` (forced runs)."""
    runner = TrtRunner(engine_path, device=device, force=force)
    logits = runner.infer(images, batch=batch)
    return {**classification_summary(logits, labels, str(engine_path)), "warnings": list(runner.warnings)}
