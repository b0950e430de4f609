"""`profile_model`: profile an artifact with a registered backend (``ort``, ``torch``, ``trt``) — the one entry
point `sdnas profile`, `sdnas check` and `sdnas run` share. Importing it registers every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import BadInputError
from ..registry import lookup
from ..runtime.stats import DEFAULT_PERCENTILES
from . import backends  # noqa: F401  (fills PROFILE_BACKENDS)
from ..runtime.loop import check_timing_args
from .timing import PROFILE_BACKENDS, ProfileOptions, collect_warnings, parse_percentiles


def profile_model(
    model_path: Path | str,
    backend: str = "ort",
    device: str = "cpu",
    batch: int = 1,
    warmup_s: float = 1.0,
    iterations: int | None = None,
    duration_s: float = 3.0,
    threads: int | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    cuda_graph: bool = False,
    include_data_transfers: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Profile ``model_path`` with the registered ``backend`` (``ort``, ``torch`` or ``trt``).

    Returns the profile_onnx report plus ``breakdown`` (per-stage stats, or None), ``options``,
    ``warnings`` (all of them, one list) and ``jetson`` (None off Jetson; on Jetson: power mode, clocks,
    and board power sampled while the backend ran, warm-up included).
    """
    from ..runtime.jetson import jetson_info, power_sampler

    run = lookup(PROFILE_BACKENDS, backend, "profile backend")
    check_timing_args(batch, warmup_s, iterations, duration_s)
    if threads is not None and threads < 1:
        raise BadInputError(f"threads must be >= 1, got {threads}")
    pcts = parse_percentiles(",".join(str(float(p)) for p in percentiles))
    opts = ProfileOptions(device=(device or "cpu").strip().lower(), batch=batch, warmup_s=warmup_s,
                          iterations=iterations, duration_s=duration_s, threads=threads, percentiles=pcts,
                          cuda_graph=cuda_graph, include_data_transfers=include_data_transfers, force=force)
    jetson = jetson_info()
    sampler = power_sampler() if jetson is not None else None
    if sampler is not None:
        with sampler:
            report = run(Path(model_path), opts)
        jetson["power"] = sampler.summary()  # type: ignore[index]
    else:
        report = run(Path(model_path), opts)
    report.setdefault("breakdown", None)
    report["jetson"] = jetson
    report["options"] = {"backend": backend, "cuda_graph": cuda_graph, "include_data_transfers": include_data_transfers,
                         "percentiles": list(pcts), "force": force}
    report["warnings"] = collect_warnings(report)
    return report
