"""Micro-benchmarks of single operators for latency tables (docs/HARDWARE.md "Measuring").

:func:`build_op` turns a table key into the operator alone, exactly as the deployed network runs
it (affine BatchNorm, eval mode), reusing the blocks of ``space/ops.py`` and ``nets/darts_net.py``.
:func:`time_module` times it through the backend's runner (``runtime.runner``, the same ones `sdnas profile`
and `sdnas check` use): ONNX Runtime (legacy exporter, in memory, sequential; CPU provider, or the CUDA
provider with input and output bound on the GPU so only the kernels and dispatch are timed), eager PyTorch
(CPU, or CUDA on the runner's stream, synchronized per call) or TensorRT (the op's engine built by the export
path, enqueue + synchronize timed, input already on the GPU), drops outliers above median + 5·MAD and summarizes
with ``deploy/stats.summarize``. ``device`` is ``cpu`` or ``cuda[:N]``; asking for CUDA where it is
absent is refused (exit 5) rather than silently timed on the CPU.
:func:`session_overhead_ms` times a trivial model: the fixed cost of one runtime call, which the
table subtracts from every entry and adds back once per network.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..errors import BadInputError
from ..export.onnx_export import onnx_model_proto
from ..runtime.ort_runner import OrtRunner
from ..runtime.runner import BACKENDS, Runner
from ..runtime.torch_runner import TorchRunner

ONNX_OPSET = 17
OUTLIER_MADS = 5.0
# A floor on the MAD (fraction of the median): with a perfectly flat timer MAD would be 0 and
# "median + 5·MAD" would drop every sample above the median.
MAD_FLOOR_FRACTION = 0.01
OUTLIER_RULE = f"drop samples above median + {OUTLIER_MADS:g}*MAD (MAD floored at {MAD_FLOOR_FRACTION:g}*median)"


def check_backend(backend: str) -> str:
    """``backend`` if it can time here; unknown → exit 2; trt without TensorRT → exit 5 with the remediation."""
    if backend not in BACKENDS:
        raise BadInputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "trt":
        from ..runtime.trt_env import require_tensorrt

        require_tensorrt()
    return backend


def check_device(backend: str, device: str) -> str:
    """``device`` normalised (``cpu``/``cuda:N``) if ``backend`` can run there now; exit 5 when CUDA is missing."""
    spec = (device or "cpu").strip().lower()
    if spec == "cpu":
        if backend == "trt":
            raise BadInputError("TensorRT runs on a GPU: use --device cuda (the target's device)")
        return "cpu"
    if backend == "ort":
        from ..runtime.evaluate import providers_for

        provider = providers_for(spec)[0]  # exit 5 without onnxruntime-gpu's CUDAExecutionProvider
        return f"cuda:{provider[1]['device_id']}"
    return str(resolve_device(spec))  # torch / trt: exit 5 without a CUDA GPU


def module_runner(module: nn.Module, input_shape: Sequence[int], backend: str, threads: int, device: str,
                  precision: str, stack: ExitStack) -> Runner:
    """The runner that times ``module`` alone: the same ``runtime`` runners `sdnas profile` and `sdnas check` use.

    ORT runs the legacy-exported graph in memory (sequential, ``threads`` intra-op threads); torch runs the
    module eagerly; TensorRT runs the op's engine built like `sdnas export --format trt` builds (same planner,
    precision baking and builder) in a temporary folder ``stack`` removes.
    """
    if backend == "ort":
        proto = onnx_model_proto(module, input_shape, opset=ONNX_OPSET)
        return OrtRunner.from_bytes(proto.SerializeToString(), device, threads, batch=int(input_shape[0]),
                                    where=f"{type(module).__name__} {tuple(input_shape)}")
    if backend == "torch":
        return stack.enter_context(TorchRunner(module, input_shape, device, threads))
    from ..export.trt_export import build_engine_file
    from ..runtime.trt_runtime import TrtRunner

    engine = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sdnas-lut-"))) / "op.engine"
    build_engine_file(module, engine, tuple(input_shape), precision=precision, opset=ONNX_OPSET)
    return TrtRunner(engine, device=device)


def _timed(fn: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
    """``warmup`` untimed calls, then ``repeats`` calls timed with perf_counter (ms)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples


def drop_outliers(samples: Sequence[float]) -> tuple[list[float], int]:
    """Samples at or below median + 5·MAD (MAD floored, see OUTLIER_RULE) and how many were dropped."""
    values = np.asarray(samples, dtype=np.float64)
    median = float(np.median(values))
    mad = max(float(np.median(np.abs(values - median))), MAD_FLOOR_FRACTION * median)
    kept = values[values <= median + OUTLIER_MADS * mad]
    return kept.tolist(), int(values.size - kept.size)


def time_module(
    module: nn.Module, input_shape: Sequence[int], backend: str = "ort", warmup: int = 5, repeats: int = 50,
    threads: int = 1, device: str = "cpu", precision: str = "fp32",
) -> dict[str, Any]:
    """Latency of one call of ``module`` on a fixed random input on ``device``, in ms.

    Returns count (samples kept), mean, std, p50, p90, min, dropped (outliers removed), repeats,
    outlier_rule, backend, device and precision. ORT times ``session.run`` (CPU) or ``run_with_iobinding``
    (CUDA); torch times the eager forward pass with ``threads`` torch threads (restored afterwards);
    trt times enqueue + synchronize of an engine built at ``precision`` (fp32/fp16; ort and torch: fp32 only).
    """
    from ..runtime.stats import summarize

    check_backend(backend)
    device = check_device(backend, device)
    if repeats < 1 or warmup < 0 or threads < 1:
        raise BadInputError(f"need repeats >= 1, warmup >= 0, threads >= 1; got {repeats}, {warmup}, {threads}")
    if precision not in (("fp32", "fp16") if backend == "trt" else ("fp32",)):
        raise BadInputError(f"backend {backend} times {'fp32/fp16' if backend == 'trt' else 'fp32'} only, not "
                            f"{precision!r} (an INT8 table would need calibration data per operator)")
    module = module.eval()
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0))
    with ExitStack() as stack:
        runner = module_runner(module, tuple(x.shape), backend, threads, device, precision, stack)
        runner.set_input(x.numpy())
        runner.copy_in()
        runner.synchronize()
        samples = _timed(runner.blocking_call(), warmup, repeats)
    kept, dropped = drop_outliers(samples)
    s = summarize(kept, percentiles=(50, 90))
    return {
        "count": int(s["n"]), "mean": s["mean"], "std": s["std"], "p50": s["p50"], "p90": s["p90"],
        "min": s["min"], "dropped": dropped, "repeats": repeats, "outlier_rule": OUTLIER_RULE, "backend": backend,
        "device": device, "precision": precision,
    }


class _Trivial(nn.Module):
    """An identity-like model (x * 1) whose export keeps one node, so ORT runs a real graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0


def session_overhead_ms(
    backend: str = "ort", threads: int = 1, warmup: int = 20, repeats: int = 200, device: str = "cpu",
    precision: str = "fp32",
) -> float:
    """Median cost of one runtime call on a trivial model and a 1-element tensor (ms)."""
    stats = time_module(_Trivial(), (1, 1, 1, 1), backend, warmup, repeats, threads, device, precision)
    return float(stats["p50"])
