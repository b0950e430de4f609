"""Latency profiling of an ONNX model in ONNX Runtime, or of a module in eager PyTorch.

Both report the same figures (stats.summarize), throughput, a plain sentence saying exactly
what was timed (DESIGN.md §3: users cannot compare numbers whose scope is unclear), a CoV
warning, the environment fingerprint, and the model's identity. Warm-up runs by time, then
timed calls run for ``duration_s`` (at least MIN_TIMED_CALLS) or exactly ``iterations``.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..device import eval_mode, resolve_device
from ..errors import BadInputError
from .evaluate import InputSpec, input_spec, open_session
from .fingerprint import environment_fingerprint, file_sha256
from .onnx_export import check_input_shape
from .stats import DEFAULT_PERCENTILES, cov_warning, summarize, throughput

MIN_TIMED_CALLS = 10  # like trtexec's default --iterations=10 floor under --duration


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
    copies = "; host-device copies included" if provider != "CPUExecutionProvider" else ""
    timed = (
        f"session.run() wall time per call, batch {batch}, input already in host memory, output copied to host, "
        f"no I/O binding, after {warm_s:.2f} s warm-up ({warm_calls} calls), {len(latencies)} timed calls{copies}"
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


def render_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A title line and a rich table rendered to plain text (no colour codes): logs, files and terminals alike."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=110, color_system=None, force_terminal=False, soft_wrap=False)
    console.print(table)
    return title + "\n" + console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def format_profile_table(report: dict[str, Any]) -> str:
    """Human-readable profile: a stats table, throughput, what was timed, environment, warnings."""
    stats = report["stats"]
    skip = {"n", "cov", "std", "p50"}  # p50 is the median, shown once
    rows = [[name, f"{value:.4g}"] for name, value in stats.items() if name not in skip]
    rows.append(["std", f"{stats['std']:.4g}"])
    rows.append(["cov", f"{stats['cov'] * 100:.2f} %"])
    title = f"{report['backend']} ({report['provider']}) latency in ms, batch {report['batch']}, {stats['n']} calls"
    fp = report["fingerprint"]
    threads = report["threads"] if report["threads"] is not None else "runtime default"
    lines = [
        render_table(title, ["statistic", "value"], rows),
        f"throughput: {report['throughput_per_s']:.1f} items/s",
        f"timed: {report['timed']}",
        f"environment: {fp['cpu_model']}, {fp['logical_cores']} logical cores, threads {threads}, "
        f"{fp['os']} {fp['kernel']}, {report['runtime']}" + (f", GPU {fp['gpu_name']}" if fp.get("gpu_name") else ""),
    ]
    warnings = ([report["cov_warning"]] if report.get("cov_warning") else []) + list(fp.get("warnings", []))
    lines += [f"warning: {w}" for w in warnings]
    return "\n".join(lines)
