"""Latency statistics: percentiles, spread and throughput of a list of per-call timings.

One place computes these so ORT and PyTorch profiles, gates and latency tables report the
same figures the same way (DESIGN.md §3: min/mean/median/p90/p95/p99, throughput, CoV warning).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import BadInputError

DEFAULT_PERCENTILES: tuple[float, ...] = (50, 90, 95, 99)

# Coefficient-of-variation warning threshold (std / mean), after trtexec's convention of warning
# when timings are "unstable" (NVIDIA/TensorRT samples/common/sampleReporting.cpp, printEpilog:
# population std / mean, in percent). Note: trtexec's constant kUNSTABLE_PERF_REPORTING_THRESHOLD
# is 1.0% and applies to pure GPU compute time; we time a whole host-side call (Python, runtime
# dispatch, output copy), which jitters more, so we warn at 2.5% as the project's design asks.
COV_WARN_THRESHOLD = 0.025

# Names accepted wherever a single figure of a summary is chosen (gates' latency_stat, LUTs).
LATENCY_STATS: tuple[str, ...] = ("min", "mean", "median", "p90", "p95", "p99")


def percentile_key(p: float) -> str:
    """``90 -> 'p90'``, ``99.9 -> 'p99.9'``."""
    return f"p{int(p)}" if float(p).is_integer() else f"p{p:g}"


def summarize(latencies_ms: Sequence[float], percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, float]:
    """Summary of per-call latencies in milliseconds.

    Returns n, min, max, mean, median, one ``pNN`` entry per requested percentile (linear
    interpolation between closest ranks, numpy's default), std (sample, ddof=1; 0 for one sample)
    and cov = std / mean (a fraction: 0.025 means 2.5%).
    """
    values = np.asarray(list(latencies_ms), dtype=np.float64)
    if values.size == 0:
        raise BadInputError("no latency samples to summarize; increase the profiling duration or iterations")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise BadInputError("latency samples must be finite and non-negative; check the timer source")
    for p in percentiles:
        if not 0 <= float(p) <= 100:
            raise BadInputError(f"percentile {p} is outside 0..100; pass values such as 50, 90, 99")
    mean = float(values.mean())
    std = float(values.std(ddof=0))
    summary: dict[str, float] = {
        "n": int(values.size),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": mean,
        "median": float(np.median(values)),
    }
    for p in percentiles:
        summary[percentile_key(p)] = float(np.percentile(values, float(p)))
    summary["std"] = std
    summary["cov"] = std / mean if mean > 0 else 0.0
    return summary


def throughput(batch: int, mean_ms: float) -> float:
    """Items per second when one call of ``batch`` items takes ``mean_ms`` on average."""
    if batch < 1:
        raise BadInputError(f"batch must be >= 1, got {batch}")
    if not math.isfinite(mean_ms) or mean_ms <= 0:
        raise BadInputError(f"mean latency must be a positive number of ms, got {mean_ms}")
    return batch * 1000.0 / mean_ms


def cov_warning(summary: dict[str, float], threshold: float = COV_WARN_THRESHOLD) -> str | None:
    """A one-line warning when the run-to-run spread is too high to trust a single figure."""
    cov = summary.get("cov", 0.0)
    if cov <= threshold:
        return None
    return (
        f"coefficient of variation {cov * 100:.1f}% exceeds {threshold * 100:.1f}%: timings are unstable; "
        "close other workloads, pin threads/clocks, or profile longer"
    )


def pick_stat(summary: dict[str, float], stat: str) -> float:
    """One named figure of a summary (``median``, ``p90``, ...), BadInputError if absent."""
    if stat not in summary:
        raise BadInputError(f"latency statistic {stat!r} not in the profile; use one of {', '.join(LATENCY_STATS)}")
    return float(summary[stat])
