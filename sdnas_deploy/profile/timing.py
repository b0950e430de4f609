"""Latency profiling primitives: options, the backend registry, timing loops, and the ORT/torch CPU profilers.

Every backend (``ort``, ``torch``, ``trt``; see backends.py, dispatched by api.profile_model) reports the same figures
(stats.summarize), throughput, a plain sentence saying exactly what was timed (DESIGN.md §3: users
cannot compare numbers whose scope is unclear), a CoV warning, the environment fingerprint, the
model's identity, a trtexec-style H2D/compute/D2H/enqueue breakdown where the backend owns the CUDA
stream, and on a Jetson the power mode, clock state and board power. Warm-up runs by time, then timed
calls run for ``duration_s`` (at least MIN_TIMED_CALLS) or exactly ``iterations``.
:func:`profile_onnx` and :func:`profile_torch` remain the direct entry points older callers use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..device import eval_mode, resolve_device
from ..errors import BadInputError
from ..registry import lookup
from ..runtime.evaluate import InputSpec, input_spec, open_session
from ..runtime.fingerprint import environment_fingerprint, file_sha256
from ..runtime.gpu_timing import timed_statement
from ..export.onnx_export import check_input_shape
from .report import format_profile_table, render_table  # noqa: F401  (re-exported: older callers)
from ..runtime.stats import DEFAULT_PERCENTILES, cov_warning, summarize, throughput

MIN_TIMED_CALLS = 10  # like trtexec's default --iterations=10 floor under --duration


@dataclass(frozen=True)
class ProfileOptions:
    """Everything a backend needs besides the model path (validated by :func:`profile_model`)."""

    device: str = "cpu"
    batch: int = 1
    warmup_s: float = 1.0
    iterations: int | None = None
    duration_s: float = 3.0
    threads: int | None = None
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    cuda_graph: bool = False
    include_data_transfers: bool = False
    force: bool = False


ProfileBackend = Callable[[Path, ProfileOptions], dict[str, Any]]
PROFILE_BACKENDS: dict[str, ProfileBackend] = {}


def profile_backend(name: str) -> Callable[[ProfileBackend], ProfileBackend]:
    """Decorator: register a backend ``fn(model_path, options) -> report`` under ``name``."""
    from ..registry import register_into

    return register_into(PROFILE_BACKENDS, name)


def parse_percentiles(text: str) -> tuple[float, ...]:
    """``"50,90,95,99"`` → ``(50.0, 90.0, 95.0, 99.0)`` (sorted, unique); BadInputError on anything else."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise BadInputError(f"--percentiles {text!r} is empty; pass comma-separated values such as 50,90,95,99")
    values: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise BadInputError(f"--percentiles: {part!r} is not a number; pass values such as 50,90,95,99") from None
        if not 0 <= value <= 100 or value != value:
            raise BadInputError(f"--percentiles: {part} is outside 0..100; pass values such as 50,90,95,99")
        values.append(value)
    return tuple(sorted(set(values)))


def _check_timing_args(batch: int, warmup_s: float, iterations: int | None, duration_s: float) -> None:
    if batch < 1:
        raise BadInputError(f"batch must be >= 1, got {batch}")
    if warmup_s < 0:
        raise BadInputError(f"warm-up must be >= 0 s, got {warmup_s}")
    if iterations is not None and iterations < 1:
        raise BadInputError(f"iterations must be >= 1, got {iterations}")
    if iterations is None and duration_s <= 0:
        raise BadInputError(f"duration must be > 0 s, got {duration_s}; or pass iterations")


def time_calls(
    fn: Callable[[], Any], warmup_s: float, iterations: int | None, duration_s: float
) -> tuple[list[float], int, float]:
    """Warm up for ``warmup_s`` (at least one call), then time calls with ``perf_counter``.

    Returns (per-call latencies in ms, warm-up calls, warm-up seconds actually spent).
    """
    start = time.perf_counter()
    warm_calls = 0
    while warm_calls == 0 or time.perf_counter() - start < warmup_s:
        fn()
        warm_calls += 1
    warm_elapsed = time.perf_counter() - start
    latencies: list[float] = []
    timed_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        latencies.append((time.perf_counter() - t0) * 1000.0)
        if iterations is not None:
            if len(latencies) >= iterations:
                break
        elif len(latencies) >= MIN_TIMED_CALLS and time.perf_counter() - timed_start >= duration_s:
            break
    return latencies, warm_calls, warm_elapsed


def _profile_shape(spec: InputSpec, batch: int, where: str) -> tuple[int, ...]:
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


def _report(
    backend: str, device: str, batch: int, shape: Sequence[int], threads: int | None, latencies: list[float],
    warm_calls: int, warm_s: float, timed: str, percentiles: Sequence[float], extra: dict[str, Any],
) -> dict[str, Any]:
    stats = summarize(latencies, percentiles)
    return {
        "backend": backend,
        "device": device,
        "batch": batch,
        "input_shape": list(shape),
        "threads": threads,
        "unit": "ms",
        "stats": stats,
        "throughput_per_s": throughput(batch, stats["mean"]),
        "timed": timed,
        "warmup": {"seconds": warm_s, "calls": warm_calls},
        "iterations": len(latencies),
        "cov_warning": cov_warning(stats),
        "fingerprint": environment_fingerprint(threads),
        **extra,
    }


def profile_onnx(
    path: Path | str,
    device: str = "cpu",
    batch: int = 1,
    warmup_s: float = 1.0,
    iterations: int | None = None,
    duration_s: float = 3.0,
    threads: int | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> dict[str, Any]:
    """Time ``session.run`` of an ONNX model with ORT on ``cpu`` or ``cuda[:N]``.

    Input: seeded random data of the model's static shape, created once in host memory.
    ``threads`` sets ORT's intra-op thread count (None = ORT's default).
    """
    import onnxruntime as ort

    _check_timing_args(batch, warmup_s, iterations, duration_s)
    session = open_session(path, device, threads)
    spec = input_spec(session)
    shape = _profile_shape(spec, batch, str(path))
    feed = {spec.name: np.random.default_rng(0).standard_normal(shape).astype(spec.dtype)}
    latencies, warm_calls, warm_s = time_calls(lambda: session.run(None, feed), warmup_s, iterations, duration_s)
    provider = session.get_providers()[0]
    on_cpu = provider == "CPUExecutionProvider"
    timed = timed_statement(
        "session.run()" if on_cpu else "session.run() from host memory, no I/O binding,", batch,
        "cpu" if on_cpu else device, include_data_transfers=not on_cpu, cuda_graph=False, warm_calls=warm_calls,
        warm_s=warm_s, iterations=len(latencies), sync=None if on_cpu else "ONNX Runtime synchronizes before returning",
    )
    extra = {
        "runtime": f"onnxruntime {ort.__version__}",
        "provider": provider,
        "model": {"path": str(path), "sha256": file_sha256(path)},
    }
    return _report("onnxruntime", device, batch, shape, threads, latencies, warm_calls, warm_s, timed, percentiles, extra)


def profile_torch(
    model: nn.Module,
    input_shape: Sequence[int],
    device: str = "cpu",
    warmup_s: float = 1.0,
    iterations: int | None = None,
    duration_s: float = 3.0,
    threads: int | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> dict[str, Any]:
    """Time eager PyTorch ``model(x)`` (fp32, inference mode) with the same statistics as ORT.

    On CUDA each call ends with ``torch.cuda.synchronize()`` so the time covers the kernels.
    The model is moved to ``device`` for the run and moved back afterwards.
    """
    shape = check_input_shape(input_shape)
    _check_timing_args(shape[0], warmup_s, iterations, duration_s)
    if threads is not None and threads < 1:
        raise BadInputError(f"threads must be >= 1, got {threads}")
    dev = resolve_device(device)
    home = next(model.parameters(), torch.empty(0)).device
    old_threads = torch.get_num_threads()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dev)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)

    def call() -> None:
        with torch.inference_mode():
            model(x)
        sync()

    try:
        if threads is not None:
            torch.set_num_threads(threads)
        with eval_mode(model):
            model.to(dev)
            latencies, warm_calls, warm_s = time_calls(call, warmup_s, iterations, duration_s)
    finally:
        model.to(home)
        torch.set_num_threads(old_threads)
    synced = "torch.cuda.synchronize() after each call, " if dev.type == "cuda" else ""
    timed = (
        f"model(x) wall time per call in eager PyTorch (fp32, inference_mode), batch {shape[0]}, input already on "
        f"{dev}, output left on {dev}, {synced}after {warm_s:.2f} s warm-up ({warm_calls} calls), "
        f"{len(latencies)} timed calls"
    )
    extra = {
        "runtime": f"torch {torch.__version__}",
        "provider": str(dev),
        "model": {"class": type(model).__name__, "parameters": int(sum(p.numel() for p in model.parameters()))},
    }
    return _report("torch-eager", str(dev), shape[0], shape, threads, latencies, warm_calls, warm_s, timed,
                   percentiles, extra)


def collect_warnings(report: dict[str, Any]) -> list[str]:
    """CoV, backend, fingerprint and Jetson warnings in one de-duplicated list (Jetson block wins on clocks)."""
    jetson = report.get("jetson")
    fp_warnings = list(report.get("fingerprint", {}).get("warnings", []))
    if jetson:  # the Jetson block states the clock problem in more detail
        fp_warnings = [w for w in fp_warnings if not w.startswith("Jetson")]
    found = ([report["cov_warning"]] if report.get("cov_warning") else []) + list(report.get("backend_warnings", []))
    found += fp_warnings + (list(jetson.get("warnings", [])) if jetson else [])
    return list(dict.fromkeys(found))
