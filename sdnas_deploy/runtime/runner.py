"""The Runner protocol: one loaded model on one device, with its input in place, ready to be timed.

`sdnas profile`, `sdnas check` (through profile) and `sdnas lut build|measure` all time a model the same
way: a runner per backend — :class:`~.ort_runner.OrtRunner` (ONNX Runtime, CPU or CUDA EP),
:class:`~.torch_runner.TorchRunner` (eager PyTorch) and :class:`~.trt_runtime.TrtRunner` (a TensorRT
engine) — exposes the same four steps ``set_input`` / ``copy_in`` / ``compute`` / ``copy_out``, so the
timing loops (host clock, or CUDA events on the runner's stream) and the "what was timed" sentence are
written once, in ``profile.timing`` and ``hw.measure``. ``BACKENDS_BY_SUFFIX`` is the one table that says
which backend runs which artifact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

import numpy as np

ENGINE_SUFFIXES: tuple[str, ...] = (".engine", ".plan")
# Which backends can run an artifact, by suffix; the first is the default (an .onnx's sidecar names the weights
# the torch backend runs).
BACKENDS_BY_SUFFIX: dict[str, tuple[str, ...]] = {
    ".onnx": ("ort", "torch"), ".safetensors": ("torch",), ".engine": ("trt",), ".plan": ("trt",),
}
BACKENDS: tuple[str, ...] = ("ort", "torch", "trt")


def backend_for(path: Path | str) -> str:
    """The backend that runs ``path`` by default (``.engine``/``.plan`` → trt, ``.safetensors`` → torch,
    anything else → ort, which then refuses a file it cannot load with one line)."""
    return BACKENDS_BY_SUFFIX.get(Path(path).suffix.lower(), ("ort",))[0]


def backends_for(path: Path | str) -> tuple[str, ...] | None:
    """Every backend that can run ``path``, or None for a suffix sdnas does not know."""
    return BACKENDS_BY_SUFFIX.get(Path(path).suffix.lower())


def is_engine(path: Path | str) -> bool:
    """Whether ``path`` names a serialized TensorRT engine."""
    return Path(path).suffix.lower() in ENGINE_SUFFIXES


def seeded_input(shape: tuple[int, ...], dtype: Any = np.float32, seed: int = 0) -> np.ndarray:
    """The fixed random input every runner is timed on (standard normal, seeded)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


class Runner(ABC):
    """A model loaded for one backend on one device.

    ``compute()`` runs one inference on the input already in place (on the device for a GPU runner) and leaves
    the output there. ``stream`` is the CUDA stream ``compute`` enqueues on, or None when ``compute`` returns
    finished (CPU, and ONNX Runtime, which synchronizes inside ``run``). ``compute_call``/``transfer_call``/
    ``graph_call`` name the statement for the "timed" sentence; ``sync_note`` says how the host waits.
    """

    backend: str = ""
    device: str = "cpu"
    stream: Any = None
    input_dtype: Any = np.float32
    compute_call: str = ""
    transfer_call: str = ""
    graph_call: str = ""
    sync_note: str | None = None

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """The shape of the input ``compute`` consumes (batch first)."""

    @abstractmethod
    def set_input(self, array: np.ndarray) -> None:
        """Place ``array`` in the runner's host input buffer (``copy_in`` moves it to the device)."""

    @abstractmethod
    def compute(self) -> None:
        """One inference on the input in place; asynchronous on ``stream`` when there is one."""

    def copy_in(self) -> None:
        """Host → device copy of the input (nothing to do on the CPU)."""

    def copy_out(self) -> None:
        """Device → host copy of the output (nothing to do on the CPU)."""

    def synchronize(self) -> None:
        """Wait until everything enqueued on ``stream`` has finished."""
        if self.stream is not None:
            self.stream.synchronize()

    def with_transfers(self) -> None:
        """One complete call with the input copied in and the output copied out, finished on return."""
        self.copy_in()
        self.compute()
        self.copy_out()
        self.synchronize()

    def blocking_call(self, include_data_transfers: bool = False) -> Callable[[], None]:
        """What a host-clock timer calls: one inference that has finished when the call returns."""
        if include_data_transfers:
            return self.with_transfers
        if self.stream is None:
            return self.compute

        def call() -> None:
            self.compute()
            self.synchronize()

        return call

    def prime(self) -> None:
        """Seeded input in place and one complete call (lazy initialisation happens before any timing or capture)."""
        self.set_input(seeded_input(self.input_shape, self.input_dtype))
        self.copy_in()
        self.compute()
        self.synchronize()

    def describe(self) -> dict[str, Any]:
        """``runtime`` and ``provider`` for reports."""
        return {}

    def close(self) -> None:
        """Give back what the runner changed (threads, the model's device); idempotent."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
