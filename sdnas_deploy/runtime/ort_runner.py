"""ONNX Runtime as a :class:`~.runner.Runner`: ``session.run`` on the CPU, I/O binding on a CUDA device.

On the CPU ``compute`` is ``session.run`` on a feed in host memory. On CUDA the input and output live in
device ``OrtValue``s bound once (``run_with_iobinding``), so ``compute`` times kernels and dispatch only;
``copy_in``/``copy_out`` are ``update_inplace``/``numpy``. ORT synchronizes its stream before returning,
so the runner has no stream of its own and is timed with the host clock. With ``cuda_graph`` the session
is built with the CUDA EP's graph capture (ORT replays it on every run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError
from .evaluate import InputSpec, input_spec
from .ort_session import build_session, cuda_index
from .runner import Runner

_OUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def feed_shape(spec: InputSpec, batch: int, where: str) -> tuple[int, ...]:
    """The input shape to feed: the static shape, with ``batch`` only where the batch dim is dynamic."""
    if any(d is None for d in spec.shape[1:]):
        raise BadInputError(
            f"{where}: input {spec.describe()} has dynamic non-batch dims; re-export with a static image size"
        )
    if spec.static_batch is not None and batch != spec.static_batch:
        raise BadInputError(
            f"{where}: model has a static batch of {spec.static_batch}, cannot profile batch {batch}; "
            f"use --batch {spec.static_batch} or re-export with dynamic batch"
        )
    return (batch, *spec.shape[1:])  # type: ignore[return-value]


def _output_shape(session: Any, batch: int) -> tuple[tuple[int, ...], Any] | None:
    """(shape, dtype) of the first output at ``batch``, or None when it has other dynamic dims."""
    meta = session.get_outputs()[0]
    dims = list(meta.shape)
    if dims and not (isinstance(dims[0], int) and dims[0] > 0):
        dims[0] = batch
    if not all(isinstance(d, int) and d > 0 for d in dims):
        return None
    return tuple(dims), _OUT_DTYPES.get(meta.type, np.float32)


class OrtRunner(Runner):
    """One ORT session with its input (and on CUDA its output) in place."""

    backend = "ort"

    def __init__(self, session: Any, device: str = "cpu", batch: int = 1, where: str = "model",
                 cuda_graph: bool = False) -> None:
        import onnxruntime as ort

        self.session = session
        self.device = device
        self.cuda_graph = cuda_graph
        self.spec = input_spec(session)
        self.input_dtype = self.spec.dtype
        self._shape = feed_shape(self.spec, batch, where)
        self.provider = session.get_providers()[0]
        self._host = np.zeros(self._shape, dtype=self.spec.dtype)
        self.on_cuda = self.provider == "CUDAExecutionProvider"
        if not self.on_cuda:
            self.compute_call = self.transfer_call = "session.run()"
            return
        index = cuda_index(device)
        self._x_dev = ort.OrtValue.ortvalue_from_numpy(self._host, "cuda", index)
        self._binding = session.io_binding()
        self._binding.bind_ortvalue_input(self.spec.name, self._x_dev)
        output = session.get_outputs()[0].name
        out = _output_shape(session, batch)
        self._y_dev = None
        if out is not None:  # a fixed device buffer (a CUDA graph needs one)
            self._y_dev = ort.OrtValue.ortvalue_from_shape_and_type(out[0], out[1], "cuda", index)
            self._binding.bind_ortvalue_output(output, self._y_dev)
        elif cuda_graph:
            raise BadInputError(f"{where}: output has dynamic dims; re-export with static shapes for --cuda-graph")
        else:
            self._binding.bind_output(output, "cuda", index)
        self.compute_call = self.graph_call = "session.run_with_iobinding()"
        self.transfer_call = ("OrtValue.update_inplace() + session.run_with_iobinding() + OrtValue.numpy()"
                              if cuda_graph else "session.run() from host memory")
        self.sync_note = "ONNX Runtime synchronizes its CUDA stream before returning"

    @classmethod
    def from_file(cls, path: Path | str, device: str = "cpu", threads: int | None = None, batch: int = 1,
                  cuda_graph: bool = False) -> "OrtRunner":
        """A runner of an ``.onnx`` file (one-line errors for a missing/corrupt file or a missing CUDA EP)."""
        if cuda_graph:
            build_session(path, device, threads)  # the file and EP checks first, with their own messages
        session = build_session(path, device, threads, cuda_graph=cuda_graph)
        return cls(session, device, batch, str(path), cuda_graph)

    @classmethod
    def from_bytes(cls, model: bytes, device: str = "cpu", threads: int | None = 1, batch: int = 1,
                   where: str = "in-memory model") -> "OrtRunner":
        """A runner of a serialized model sdnas made itself (sequential, as latency tables are measured)."""
        return cls(build_session(model, device, threads, sequential=True, where=where), device, batch, where)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._shape

    def set_input(self, array: np.ndarray) -> None:
        array = np.asarray(array, dtype=self.spec.dtype)
        if array.shape != self._shape:
            raise BadInputError(f"input of shape {array.shape} does not fit the model input {self._shape}")
        self._host = np.ascontiguousarray(array)
        if self.on_cuda:
            self._x_dev.update_inplace(self._host)

    def copy_in(self) -> None:
        if self.on_cuda:
            self._x_dev.update_inplace(self._host)

    def compute(self) -> None:
        if self.on_cuda:
            self.session.run_with_iobinding(self._binding)
        else:
            self.session.run(None, {self.spec.name: self._host})

    def copy_out(self) -> None:
        if self.on_cuda:
            if self._y_dev is not None:
                self._y_dev.numpy()
            else:
                self._binding.copy_outputs_to_cpu()

    def with_transfers(self) -> None:
        if self.on_cuda and not self.cuda_graph:  # ORT's own host path: copies and run in one call
            self.session.run(None, {self.spec.name: self._host})
            return
        super().with_transfers()

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"runtime": f"onnxruntime {ort.__version__}", "provider": self.provider}
