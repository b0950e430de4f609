"""Build a latency table by micro-benchmarking every candidate key of a geometry (`sdnas lut build`).

Each key is built alone (the space's ``build_op``), timed (:func:`measure.time_module`) and stored
as ``{count, mean, std, p50, p90}`` with the session overhead subtracted (floored at 0); the
overhead itself goes into ``overhead_ms``. The partial table is written atomically every few
entries, so an interrupted build keeps what it measured and ``resume=True`` measures only the
missing keys of a table made here, with the same geometry and backend.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..spaces import Geometry, get_space
from .lut import LatencyTable, load_table, save_table
from .measure import check_backend, check_device, session_overhead_ms, time_module

SAVE_EVERY = 5  # entries between partial saves
PROVIDERS = {("ort", "cpu"): "CPUExecutionProvider", ("ort", "cuda"): "CUDAExecutionProvider",
             ("torch", "cpu"): "torch-eager-cpu", ("torch", "cuda"): "torch-eager-cuda", ("trt", "cuda"): "tensorrt"}


def provider_name(backend: str, device: str) -> str:
    """What a table records as its provider: the ORT execution provider, or the runtime and device."""
    kind = "cpu" if device == "cpu" else "cuda"
    if (backend, kind) not in PROVIDERS:
        raise BadInputError(f"backend {backend!r} does not run on {device!r}; TensorRT needs --device cuda")
    return PROVIDERS[(backend, kind)]


def _tensorrt_version() -> str | None:
    from ..runtime.trt_env import tensorrt_version

    return tensorrt_version()


def build_fingerprint(backend: str, threads: int, device: str = "cpu", precision: str = "fp32") -> dict[str, Any]:
    """environment_fingerprint plus what the table contract adds (backend, provider, device, precision, ...)."""
    from .. import __version__
    from ..runtime.fingerprint import environment_fingerprint

    fp = environment_fingerprint(threads)
    fp.update({
        "backend": backend, "provider": provider_name(backend, device), "device": device, "precision": precision,
        "batch": 1, "threads": threads,
        "tensorrt": _tensorrt_version() if backend == "trt" else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "sdnas_version": __version__,
    })
    return fp


def _check_resumable(
    table: LatencyTable, path: Path, fingerprint: dict[str, Any], geometry: Geometry, backend: str, space: str
) -> None:
    """Refuse to extend a table measured elsewhere, at another geometry or with another backend."""
    old_fp = table.fingerprint
    problems = []
    if old_fp.get("key") != fingerprint["key"]:
        problems.append(f"environment fingerprint {old_fp.get('key')} != this machine's {fingerprint['key']}")
    if old_fp.get("backend") != backend:
        problems.append(f"backend {old_fp.get('backend')!r} != {backend!r}")
    if old_fp.get("device", "cpu") != fingerprint["device"]:
        problems.append(f"device {old_fp.get('device', 'cpu')!r} != {fingerprint['device']!r}")
    if table.space != space:
        problems.append(f"space {table.space!r} != {space!r}")
    if table.method != "microbenchmark":
        problems.append(f"method {table.method!r} is not microbenchmark")
    if table.geometry != geometry:
        problems.append(f"geometry {table.geometry.to_dict()} != {geometry.to_dict()}")
    if problems:
        raise BadInputError(
            f"{path}: cannot resume: {problems[0]}; rerun without --resume or pass another --out"
        )


def _entry(stats: dict[str, Any], overhead_ms: float) -> dict[str, Any]:
    """A table entry: the op's own time (session overhead subtracted, floored at 0)."""
    return {
        "count": int(stats["count"]),
        "mean": max(stats["mean"] - overhead_ms, 0.0),
        "std": float(stats["std"]),
        "p50": max(stats["p50"] - overhead_ms, 0.0),
        "p90": max(stats["p90"] - overhead_ms, 0.0),
    }


def build_table(
    target: str,
    geometry: Geometry,
    backend: str = "ort",
    repeats: int = 50,
    warmup: int = 5,
    threads: int = 1,
    out_path: Path | str | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str = "cpu",
    precision: str = "fp32",
    space: str = "darts",
) -> LatencyTable:
    """Measure every candidate key of ``space`` at ``geometry``; return the LatencyTable (saved to ``out_path``)."""
    from ..progress import Progress, log
    from .targets import TARGETS, require_measurable

    check_backend(backend)  # trt: exit 5 before anything is measured
    device = check_device(backend, device)  # cuda where it is absent: exit 5
    if target in TARGETS:
        require_measurable(target, device)  # never time a CUDA-provider target on the CPU
    if repeats < 1 or warmup < 0 or threads < 1:
        raise BadInputError(f"need --repeats >= 1, --warmup >= 0, --threads >= 1; got {repeats}, {warmup}, {threads}")
    out = Path(out_path) if out_path is not None else None
    fingerprint = build_fingerprint(backend, threads, device, precision)
    entries: dict[str, dict[str, Any]] = {}
    if resume:
        if out is None or not out.is_file():
            raise BadInputError(f"--resume: no partial table at {out}; rerun without --resume")
        old = load_table(out)
        _check_resumable(old, out, fingerprint, geometry, backend, space)
        entries = dict(old.entries)
        overhead = float(old.overhead_ms)  # keep the entries already stored comparable
    else:
        overhead = session_overhead_ms(backend, threads, device=device, precision=precision)
    impl = get_space(space)
    keys = impl.candidate_keys(geometry)
    todo = [k for k in keys if k not in entries]
    table = LatencyTable(
        target=target, metric="latency_ms", fingerprint=fingerprint, geometry=geometry, method="microbenchmark",
        overhead_ms=overhead, entries=entries, space=impl.name,
    )
    start = time.perf_counter()
    with Progress(len(todo), f"lut {target}", enabled=progress) as bar:
        for i, key in enumerate(todo, 1):
            module, shape = impl.build_op(key, geometry)
            stats = time_module(module, shape, backend, warmup, repeats, threads, device, precision)
            table.entries[key] = _entry(stats, overhead)
            bar.advance(ms=table.entries[key]["mean"])
            if out is not None and (i % SAVE_EVERY == 0 or i == len(todo)):
                save_table(out, table)
    if out is not None and not todo:
        save_table(out, table)
    if progress:
        log(f"lut {target}: {len(todo)} measured, {len(keys) - len(todo)} resumed, "
            f"{time.perf_counter() - start:.1f}s" + (f"; wrote {out}" if out else ""))
    return table
