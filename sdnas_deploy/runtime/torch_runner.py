"""Eager PyTorch as a :class:`~.runner.Runner` (fp32, eval mode).

On the CPU ``compute`` is ``model(x)`` under ``inference_mode`` with ``threads`` torch threads (restored on
``close``). On CUDA the runner owns a stream: the input sits in a device tensor filled from a pinned host
buffer (``copy_in``), ``compute`` enqueues ``model(x)`` under ``no_grad`` on the stream (so it can be
captured into a CUDA graph), and ``copy_out`` copies the output into pinned host memory. Three forward
passes run at construction so cuDNN autotuning and allocations happen before anything is timed or captured.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..errors import BadInputError
from .runner import Runner

CUDA_PRIMING_CALLS = 3


class TorchRunner(Runner):
    """``model`` on ``device`` with a fixed input of ``input_shape``; ``close`` moves it back where it was."""

    backend = "torch"

    def __init__(self, model: nn.Module, input_shape: Sequence[int], device: str = "cpu",
                 threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise BadInputError(f"threads must be >= 1, got {threads}")
        self._shape = tuple(int(d) for d in input_shape)
        self.dev = resolve_device(device)
        self.device = str(self.dev)
        self.model = model
        self._home = next(model.parameters(), torch.empty(0)).device
        self._was_training = model.training
        self._old_threads = torch.get_num_threads()
        self._closed = False
        if threads is not None:
            torch.set_num_threads(threads)
        model.eval().to(self.dev)
        self._x_host = torch.zeros(self._shape)
        self._out: list[torch.Tensor] = []
        if self.dev.type == "cpu":
            self._x = self._x_host
            self.compute_call = self.transfer_call = "model(x) in eager PyTorch (fp32, inference_mode)"
            return
        self.stream = torch.cuda.Stream(self.dev)
        self._x_host = self._x_host.pin_memory()
        self._x = self._x_host.to(self.dev)
        with torch.cuda.stream(self.stream), torch.no_grad():
            for _ in range(CUDA_PRIMING_CALLS):
                self._out[:] = [model(self._x)]
        self.stream.synchronize()
        self._out_host = torch.empty(self._out[0].shape, dtype=self._out[0].dtype, pin_memory=True)
        self.compute_call = "model(x) in eager PyTorch (fp32, no_grad)"
        self.graph_call = "CUDA graph replay of model(x)"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._shape

    def set_input(self, array: np.ndarray) -> None:
        array = np.asarray(array, dtype=np.float32)
        if tuple(array.shape) != self._shape:
            raise BadInputError(f"input of shape {array.shape} does not fit the model input {self._shape}")
        self._x_host.copy_(torch.from_numpy(array))
        if self.dev.type == "cuda":
            self.copy_in()
            self.synchronize()

    def copy_in(self) -> None:
        if self.dev.type == "cuda":
            with torch.cuda.stream(self.stream):
                self._x.copy_(self._x_host, non_blocking=True)

    def compute(self) -> None:
        if self.dev.type == "cpu":
            with torch.inference_mode():
                self.model(self._x)
            return
        with torch.cuda.stream(self.stream), torch.no_grad():
            self._out[0] = self.model(self._x)

    def copy_out(self) -> None:
        if self.dev.type == "cuda":
            with torch.cuda.stream(self.stream):
                self._out_host.copy_(self._out[0], non_blocking=True)

    def describe(self) -> dict[str, Any]:
        return {"runtime": f"torch {torch.__version__}", "provider": self.device}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.model.to(self._home).train(self._was_training)
        torch.set_num_threads(self._old_threads)
