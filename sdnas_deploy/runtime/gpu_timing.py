"""trtexec-style per-iteration GPU timing, its summary, and the plain "what was timed" sentence.

Why a breakdown: a single wall-clock figure on a GPU mixes four different costs — the host→device
input copy (H2D), the kernels (compute), the device→host output copy (D2H) and the host time spent
launching work (enqueue). trtexec reports each (NVIDIA TensorRT ``sampleReporting``); so do we.
:func:`time_gpu_iterations` is generic over three callables that enqueue work on one CUDA stream,
so torch eager, a captured CUDA graph and a TensorRT execution context are all timed the same way.

Each iteration is synchronized before the next one starts: the figures are *latency* (one request
in flight), not pipelined throughput. GPU stages are measured with CUDA events recorded on the
stream; enqueue and end-to-end latency with the host clock (``perf_counter``). torch is imported
inside the GPU functions; the summary and the wording are pure and tested on any machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..errors import BadInputError
from .loop import run_timing_loop
from .stats import DEFAULT_PERCENTILES, summarize

# Stage names in report order: the trtexec breakdown plus end-to-end latency.
STAGES: tuple[str, ...] = ("h2d", "compute", "d2h", "enqueue", "latency")
STAGE_LABELS: dict[str, str] = {
    "h2d": "H2D copy (GPU, events)",
    "compute": "GPU compute (events)",
    "d2h": "D2H copy (GPU, events)",
    "enqueue": "enqueue (host clock)",
    "latency": "end-to-end (host clock)",
}
MIN_TIMED_ITERATIONS = 10  # same floor as profiler.MIN_TIMED_CALLS under a duration


@dataclass
class GpuIterations:
    """Per-stage timings (ms, one entry per timed iteration) and the warm-up actually spent."""

    stages: dict[str, list[float]] = field(default_factory=dict)
    warm_calls: int = 0
    warm_s: float = 0.0

    @property
    def iterations(self) -> int:
        return len(self.stages.get("latency", []))


def time_gpu_iterations(
    copy_in: Callable[[], Any] | None,
    compute: Callable[[], Any],
    copy_out: Callable[[], Any] | None,
    stream: Any,
    warmup_s: float,
    iterations: int | None,
    duration_s: float,
    include_data_transfers: bool,
    graph: Any = None,
) -> GpuIterations:
    """Warm up for ``warmup_s`` (at least one iteration), then time iterations on ``stream``.

    One iteration: [H2D] → compute (or ``graph.replay()`` when a captured ``torch.cuda.CUDAGraph`` is
    given) → [D2H] → ``stream.synchronize()``. The copies run only with ``include_data_transfers``
    (then ``copy_in``/``copy_out`` are required). Timed iterations stop after exactly ``iterations``
    or, when it is None, after ``duration_s`` seconds (at least MIN_TIMED_ITERATIONS).
    Returns lists for ``h2d``/``d2h`` (only with transfers), ``compute``, ``enqueue`` and ``latency``.
    """
    import torch

    if include_data_transfers and (copy_in is None or copy_out is None):
        raise BadInputError("including data transfers needs both a copy-in and a copy-out step")
    launch = graph.replay if graph is not None else compute
    events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    if not include_data_transfers:
        del stages["h2d"], stages["d2h"]

    def one(record: bool) -> None:
        t0 = time.perf_counter()
        events[0].record(stream)
        if include_data_transfers:
            copy_in()  # type: ignore[misc]
        events[1].record(stream)
        t_enqueue = time.perf_counter()
        launch()
        enqueue_ms = (time.perf_counter() - t_enqueue) * 1000.0
        events[2].record(stream)
        if include_data_transfers:
            copy_out()  # type: ignore[misc]
        events[3].record(stream)
        stream.synchronize()
        latency_ms = (time.perf_counter() - t0) * 1000.0
        if not record:
            return
        stages["compute"].append(events[1].elapsed_time(events[2]))
        if include_data_transfers:
            stages["h2d"].append(events[0].elapsed_time(events[1]))
            stages["d2h"].append(events[2].elapsed_time(events[3]))
        stages["enqueue"].append(enqueue_ms)
        stages["latency"].append(latency_ms)

    def timed() -> int:
        one(record=True)
        return len(stages["latency"])

    with torch.cuda.stream(stream):
        warm_calls, warm_s = run_timing_loop(lambda: one(record=False), timed, warmup_s, iterations, duration_s,
                                             MIN_TIMED_ITERATIONS)
    return GpuIterations(stages, warm_calls, warm_s)


def summarize_breakdown(
    stages: Mapping[str, Sequence[float]], percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> dict[str, dict[str, float]]:
    """``{stage: stats.summarize(values)}`` in STAGES order, skipping stages with no samples.

    Unknown stage names are a programming error of the caller and raise BadInputError.
    """
    unknown = [name for name in stages if name not in STAGES]
    if unknown:
        raise BadInputError(f"unknown timing stage(s) {', '.join(unknown)}; expected {', '.join(STAGES)}")
    return {name: summarize(stages[name], percentiles) for name in STAGES if stages.get(name)}


def timed_statement(
    call: str,
    batch: int,
    device: str,
    *,
    include_data_transfers: bool,
    cuda_graph: bool,
    warm_calls: int,
    warm_s: float,
    iterations: int,
    breakdown: bool = False,
    sync: str | None = None,
) -> str:
    """One plain sentence saying exactly what a latency figure covers (DESIGN.md §3).

    ``call`` names what one timed call runs (e.g. ``"session.run()"``); ``device`` is ``cpu`` or a
    CUDA device; ``breakdown`` says that GPU stages were timed with CUDA events (gpu_timing);
    ``sync`` says how the host waits for the GPU (default: the stream is synchronized every iteration).
    """
    on_cpu = device == "cpu"
    if on_cpu and cuda_graph:
        raise BadInputError("a CUDA graph needs a CUDA device; drop --cuda-graph or pass --device cuda")
    warm = (f"after {warm_s:.2f} s warm-up ({warm_calls} call{'' if warm_calls == 1 else 's'}), "
            f"{iterations} timed call{'' if iterations == 1 else 's'}")
    if on_cpu:
        flag = " (--include-data-transfers changes nothing here)" if include_data_transfers else ""
        return (
            f"{call} wall time per call, batch {batch}, input already in host memory, output returned in host memory; "
            f"on the CPU there are no host-device copies{flag}; no CUDA graph; {warm}"
        )
    if include_data_transfers:
        copies = "host-to-device input copy and device-to-host output copy included"
    else:
        copies = f"input already on {device} and output left on {device} (no host-device copies)"
    launch = "launched as one CUDA graph replay" if cuda_graph else "kernels launched one by one (no CUDA graph)"
    waits = sync or "the stream synchronized after every call (latency, one request in flight)"
    how = (
        "end-to-end and enqueue timed with the host clock, H2D/compute/D2H with CUDA events on the stream"
        if breakdown else "wall time with the host clock"
    )
    return f"{call} per call, batch {batch} on {device}; {copies}; {launch}; {waits}; {how}; {warm}"


def capture_graph(launch: Callable[[], Any], stream: Any) -> Any:
    """Capture what ``launch()`` enqueues on ``stream`` into a ``torch.cuda.CUDAGraph`` (replayed per call).

    Call ``launch()`` at least once before capturing (lazy initialisation must not be captured).
    A capture the runtime refuses is exit 5 with the fix: profile without ``--cuda-graph``.
    """
    import torch

    from ..errors import UnsupportedEnvironmentError

    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph, stream=stream):
            launch()
    except Exception as exc:  # capture errors surface as RuntimeError or backend-specific types
        text = " ".join(str(exc).split())[:160]
        raise UnsupportedEnvironmentError(
            f"CUDA graph capture failed ({type(exc).__name__}: {text}); profile without --cuda-graph"
        ) from None
    stream.synchronize()
    return graph
