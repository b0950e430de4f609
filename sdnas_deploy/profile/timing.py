"""Latency profiling primitives: options, the backend registry, timing loops, and the ORT/torch CPU profilers.

Every backend (``ort``, ``torch``, ``trt``; see backends.py, dispatched by api.profile_model) reports the same figures
(stats.summarize), throughput, a plain sentence saying exactly what was timed (DESIGN.md §3: users
cannot compare numbers whose scope is unclear), a CoV warning, the environment fingerprint, the
model's identity, a trtexec-style H2D/compute/D2H/enqueue breakdown where the backend owns the CUDA
stream, and on a Jetson the power mode, clock state and board power. Warm-up runs by time, then timed
calls run for ``duration_s`` (at least MIN_TIMED_CALLS) or exactly ``iterations``.
:func:`profile_runner` times any ``runtime.runner.Runner`` — the one loop every backend goes through;
:func:`profile_onnx` and :func:`profile_torch` remain the direct entry points older callers use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch.nn as nn

from ..errors import BadInputError, SdnasError, UnsupportedEnvironmentError
from ..runtime.fingerprint import environment_fingerprint, file_sha256
from ..runtime.gpu_timing import capture_graph, summarize_breakdown, time_gpu_iterations, timed_statement
from ..runtime.ort_runner import OrtRunner, feed_shape as _profile_shape  # noqa: F401  (older callers)
from ..runtime.runner import Runner
from ..runtime.torch_runner import TorchRunner
from ..export.onnx_export import check_input_shape
from .report import format_profile_table, render_table  # noqa: F401  (re-exported: older callers)
from ..runtime.loop import check_timing_args, run_timing_loop
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


def time_calls(
    fn: Callable[[], Any], warmup_s: float, iterations: int | None, duration_s: float
) -> tuple[list[float], int, float]:
    """Warm up for ``warmup_s`` (at least one call), then time calls with ``perf_counter``.

    Returns (per-call latencies in ms, warm-up calls, warm-up seconds actually spent).
    """
    latencies: list[float] = []

    def timed() -> int:
        t0 = time.perf_counter()
        fn()
        latencies.append((time.perf_counter() - t0) * 1000.0)
        return len(latencies)

    warm_calls, warm_elapsed = run_timing_loop(fn, timed, warmup_s, iterations, duration_s, MIN_TIMED_CALLS)
    return latencies, warm_calls, warm_elapsed


MAX_KEPT_SAMPLES = 5000


def _sample(latencies: list[float]) -> list[float]:
    """At most MAX_KEPT_SAMPLES of the timed calls, evenly spaced in time order (all of them when fewer)."""
    step = max(1, -(-len(latencies) // MAX_KEPT_SAMPLES))
    return [round(v, 5) for v in latencies[::step]]


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
        "samples_ms": _sample(latencies),  # for the latency histogram (sdnas report)
        "cov_warning": cov_warning(stats),
        "fingerprint": environment_fingerprint(threads),
        **extra,
    }


REPORT_BACKENDS = {"ort": "onnxruntime", "torch": "torch-eager", "trt": "tensorrt"}


def profile_runner(runner: Runner, opts: ProfileOptions, where: str) -> dict[str, Any]:
    """Time ``runner`` as ``opts`` say and return the report (without the model's identity).

    A runner without a stream (CPU, ONNX Runtime) is timed with the host clock; one that owns a CUDA stream
    (torch, TensorRT) per iteration with CUDA events (``gpu_timing``), optionally as a CUDA graph replay,
    which adds the trtexec-style breakdown.
    """
    device = str(runner.device)
    on_cpu = device == "cpu"
    if opts.cuda_graph and on_cpu:
        raise BadInputError("--cuda-graph needs a CUDA device (there are no CUDA graphs on the CPU); "
                            "drop --cuda-graph or pass --device cuda")
    batch = int(runner.input_shape[0])
    try:
        runner.prime()
        if runner.stream is None:
            latencies, warm_calls, warm_s = time_calls(runner.blocking_call(opts.include_data_transfers),
                                                       opts.warmup_s, opts.iterations, opts.duration_s)
            breakdown, graph = None, opts.cuda_graph
            call = runner.transfer_call if opts.include_data_transfers else runner.compute_call
        else:
            captured = capture_graph(runner.compute, runner.stream) if opts.cuda_graph else None
            result = time_gpu_iterations(runner.copy_in, runner.compute, runner.copy_out, runner.stream, opts.warmup_s,
                                         opts.iterations, opts.duration_s, opts.include_data_transfers, graph=captured)
            latencies, warm_calls, warm_s = result.stages["latency"], result.warm_calls, result.warm_s
            breakdown, graph = summarize_breakdown(result.stages, opts.percentiles), captured is not None
            call = runner.graph_call if graph else runner.compute_call
    except SdnasError:
        raise
    except Exception as exc:
        if on_cpu:
            raise
        text = " ".join(str(exc).split())[:160]
        fix = "profile without --cuda-graph" if opts.cuda_graph else "check the model with `sdnas check`"
        raise UnsupportedEnvironmentError(f"{where}: {runner.backend} failed on {device} "
                                          f"({type(exc).__name__}: {text}); {fix}") from None
    timed = timed_statement(call, batch, device,
                            include_data_transfers=opts.include_data_transfers, cuda_graph=graph and not on_cpu,
                            warm_calls=warm_calls, warm_s=warm_s, iterations=len(latencies),
                            breakdown=breakdown is not None, sync=runner.sync_note)
    name = "torch-cuda-graph" if runner.backend == "torch" and graph else REPORT_BACKENDS[runner.backend]
    extra = {**runner.describe(), "breakdown": breakdown}
    return _report(name, device, batch, runner.input_shape, opts.threads, latencies, warm_calls, warm_s,
                   timed, opts.percentiles, extra)


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
    """Time ``session.run`` of an ONNX model with ORT on ``cpu`` or ``cuda[:N]`` (input in host memory).

    Input: seeded random data of the model's static shape. ``threads`` sets ORT's intra-op thread count
    (None = ORT's default). :func:`profile.api.profile_model` is the full entry point (I/O binding, graphs).
    """
    check_timing_args(batch, warmup_s, iterations, duration_s)
    opts = ProfileOptions(device=device, batch=batch, warmup_s=warmup_s, iterations=iterations, duration_s=duration_s,
                          threads=threads, percentiles=tuple(percentiles), include_data_transfers=device != "cpu")
    runner = OrtRunner.from_file(path, device, threads, batch)
    report = profile_runner(runner, opts, str(path))
    report["model"] = {"path": str(path), "sha256": file_sha256(path)}
    return report


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
    """Time eager PyTorch ``model(x)`` (fp32) with the same statistics as ORT; the model goes back where it was."""
    shape = check_input_shape(input_shape)
    check_timing_args(shape[0], warmup_s, iterations, duration_s)
    opts = ProfileOptions(device=device, batch=shape[0], warmup_s=warmup_s, iterations=iterations,
                          duration_s=duration_s, threads=threads, percentiles=tuple(percentiles))
    with TorchRunner(model, shape, device, threads) as runner:
        report = profile_runner(runner, opts, type(model).__name__)
    report["model"] = {"class": type(model).__name__, "parameters": int(sum(p.numel() for p in model.parameters()))}
    return report


def collect_warnings(report: dict[str, Any]) -> list[str]:
    """CoV, backend, fingerprint and Jetson warnings in one de-duplicated list (Jetson block wins on clocks)."""
    jetson = report.get("jetson")
    fp_warnings = list(report.get("fingerprint", {}).get("warnings", []))
    if jetson:  # the Jetson block states the clock problem in more detail
        fp_warnings = [w for w in fp_warnings if not w.startswith("Jetson")]
    found = ([report["cov_warning"]] if report.get("cov_warning") else []) + list(report.get("backend_warnings", []))
    found += fp_warnings + (list(jetson.get("warnings", [])) if jetson else [])
    return list(dict.fromkeys(found))
