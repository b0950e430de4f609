"""The one warm-up + timed-iterations loop every latency measurement runs (host clock or CUDA events).

Bounded by iterations *and* wall time whatever the caller passes: at most ``MAX_ITERATIONS`` timed calls and
``MAX_SECONDS`` of timing, so no input (a NaN duration, a huge count) can make a profile run forever. Callers
validate their arguments with :func:`check_timing_args` first, so the bounds are a safety net, not the rule.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from ..errors import BadInputError

MAX_ITERATIONS = 1_000_000
MAX_SECONDS = 3600.0


def check_timing_args(batch: int, warmup_s: float, iterations: int | None, duration_s: float) -> None:
    """One line per bad value: batch ≥ 1, warm-up and duration finite and in range, iterations in range."""
    if batch < 1:
        raise BadInputError(f"batch must be >= 1, got {batch}")
    if not (math.isfinite(warmup_s) and 0 <= warmup_s <= MAX_SECONDS):
        raise BadInputError(f"warm-up must be a number of seconds in 0..{MAX_SECONDS:g}, got {warmup_s}")
    if iterations is not None and not 1 <= iterations <= MAX_ITERATIONS:
        raise BadInputError(f"iterations must be in 1..{MAX_ITERATIONS}, got {iterations}")
    if iterations is None and not (math.isfinite(duration_s) and 0 < duration_s <= MAX_SECONDS):
        raise BadInputError(f"duration must be a number of seconds in (0, {MAX_SECONDS:g}], got {duration_s}; "
                            "or pass iterations")


def run_timing_loop(warm: Callable[[], None], timed: Callable[[], int], warmup_s: float, iterations: int | None,
                    duration_s: float, min_calls: int) -> tuple[int, float]:
    """Call ``warm`` for ``warmup_s`` (at least once), then ``timed`` (returns the samples so far) until
    ``iterations`` samples, or ``min_calls`` samples and ``duration_s`` elapsed. Returns (warm-up calls, seconds)."""
    start = time.perf_counter()
    warm_calls = 0
    while warm_calls == 0 or time.perf_counter() - start < min(warmup_s, MAX_SECONDS):
        warm()
        warm_calls += 1
    warm_s = time.perf_counter() - start
    timed_start = time.perf_counter()
    limit = min(duration_s, MAX_SECONDS) if math.isfinite(duration_s) else MAX_SECONDS
    while True:
        n = timed()
        elapsed = time.perf_counter() - timed_start
        if n >= MAX_ITERATIONS or elapsed >= MAX_SECONDS:
            break
        if iterations is not None:
            if n >= iterations:
                break
        elif n >= min_calls and elapsed >= limit:
            break
    return warm_calls, warm_s
