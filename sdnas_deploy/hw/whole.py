"""Whole-network latency on this device, and the measurements CSV that `lut fit` / `lut validate` read.

Per-op tables predict; whole networks are the ground truth. :func:`measure_network` builds the discrete
network (the space's ``build_network``, no auxiliary head, eval mode) and times it with
``measure.time_module`` — the same export, runtime session, warm-up and outlier rule as the per-op
micro-benchmarks, so predicted and measured latencies differ only in what the model gets wrong.

CSV format (one architecture per row, all times in ms)::

    # target=x86-cpu-ort
    # space=darts
    # backend=ort
    # geometry={"setting": "cifar", ...}
    # date=2026-01-01T00:00:00+00:00
    arch,latency_ms,p90_ms,mean_ms,count
    "normal=sep_conv_3x3:0,...|reduce=...",1.234,1.301,1.25,30

``#`` lines hold provenance (one ``key=value`` each; ``space`` names the space, ``darts`` when absent);
``arch`` is the space's one-line arch string;
``latency_ms`` (the median) is required, the other columns optional. Reading is strict.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import BadInputError
from ..io_utils import atomic_write_text, require_file
from ..progress import Progress
from ..registry import suggest
from ..spaces import LEGACY_SPACE, Geometry, Space, get_space
from .measure import time_module

REQUIRED_COLUMNS: tuple[str, ...] = ("arch", "latency_ms")
OPTIONAL_COLUMNS: tuple[str, ...] = ("p90_ms", "mean_ms", "count")
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
HEADER_HINT = "header must be arch,latency_ms[,p90_ms,mean_ms,count] (a wide CSV with one column per device: --column)"
WIDE_ARCH_COLUMNS: tuple[str, ...] = ("arch", "arch_str", "blocks")
_MAX_DRAWS_PER_ARCH = 100


def _space(space: Space | str) -> Space:
    return get_space(space) if isinstance(space, str) else space


def measure_network(
    arch: Any, geometry: Geometry, backend: str = "ort", threads: int = 1, warmup: int = 5,
    repeats: int = 30, device: str = "cpu", precision: str = "fp32", space: Space | str = LEGACY_SPACE,
    sessions: int = 1,
) -> dict[str, Any]:
    """Latency of the whole discrete network of ``arch`` at ``geometry`` on this device, in ms.

    Returns ``measure.time_module``'s stats (count, mean, std, p50, p90, min, dropped, ...) plus ``arch``.
    ``sessions`` > 1 times the network in that many fresh runtime sessions and reports the one with the median
    p50 (plus ``session_p50s``): on a shared VM one session of a sub-millisecond network can sit 25% off
    another's (memory layout, scheduling), which repeats inside a session do not average away.
    """
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1:
        raise BadInputError(f"sessions must be a positive integer, got {sessions!r}")
    impl = _space(space)
    model = impl.build_network(arch, geometry, auxiliary=False).eval()
    shape = (1, geometry.in_channels, geometry.input_size, geometry.input_size)
    runs = [time_module(model, shape, backend=backend, warmup=warmup, repeats=repeats, threads=threads,
                        device=device, precision=precision) for _ in range(sessions)]
    runs.sort(key=lambda stats: stats["p50"])
    stats = dict(runs[len(runs) // 2])
    if sessions > 1:
        stats["session_p50s"] = [float(r["p50"]) for r in runs]
    return {"arch": impl.arch_to_string(arch), **stats}


def sample_architectures(n: int, seed: int, space: Space | str = LEGACY_SPACE, setting: str | None = None) -> list[Any]:
    """``n`` distinct uniformly random architectures of the space (``Space.sample``), reproducible by seed."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInputError(f"number of architectures must be a positive integer, got {n!r}")
    impl = _space(space)
    rng = random.Random(seed)
    seen: set[str] = set()
    result: list[Any] = []
    for _ in range(n * _MAX_DRAWS_PER_ARCH):
        arch = impl.sample(rng, setting)
        text = impl.arch_to_string(arch)
        if text not in seen:
            seen.add(text)
            result.append(arch)
            if len(result) == n:
                return result
    raise BadInputError(f"could not draw {n} distinct architectures; ask for fewer")


def measure_many(
    archs: Sequence[Any], geometry: Geometry, backend: str = "ort", threads: int = 1,
    repeats: int = 30, progress: bool = True, warmup: int = 5, device: str = "cpu", precision: str = "fp32",
    space: Space | str = LEGACY_SPACE, sessions: int = 1,
) -> list[dict[str, Any]]:
    """Measure each architecture; rows ``{arch, latency_ms (median), p90_ms, mean_ms, count}`` in ms."""
    rows: list[dict[str, Any]] = []
    with Progress(len(archs), "measure networks", enabled=progress) as bar:
        for genotype in archs:
            stats = measure_network(genotype, geometry, backend, threads, warmup, repeats, device, precision, space,
                                    sessions)
            rows.append({"arch": stats["arch"], "latency_ms": float(stats["p50"]), "p90_ms": float(stats["p90"]),
                         "mean_ms": float(stats["mean"]), "count": int(stats["count"])})
            bar.advance(latency_ms=rows[-1]["latency_ms"])
    return rows


def _meta_value(value: Any) -> str:
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text.replace("\n", " ")


def write_measurements_csv(path: Path | str, rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> Path:
    """Write ``rows`` (``measure_many`` form) atomically, ``meta`` as ``# key=value`` provenance lines."""
    if not rows:
        raise BadInputError("no measurements to write; measure at least one architecture")
    columns = [c for c in COLUMNS if c in REQUIRED_COLUMNS or all(c in row for row in rows)]
    buffer = io.StringIO()
    for name, value in meta.items():
        buffer.write(f"# {name}={_meta_value(value)}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    return atomic_write_text(Path(path), buffer.getvalue())


def read_measurements_meta(path: Path | str) -> dict[str, Any]:
    """The ``# key=value`` provenance lines of a measurements CSV (JSON values decoded where they parse)."""
    meta: dict[str, Any] = {}
    for line in require_file(path, "measurements CSV").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            name, sep, value = line[1:].strip().partition("=")
            if sep:
                try:
                    meta[name.strip()] = json.loads(value)
                except json.JSONDecodeError:
                    meta[name.strip()] = value
    return meta


def _number(text: str, column: str, where: str, integer: bool = False) -> float | int:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise BadInputError(f"{where}: {column} {text!r} is not a number; fix the row or re-measure") from None
    if not math.isfinite(value) or value <= 0:
        raise BadInputError(f"{where}: {column} must be a positive finite number, got {text!r}; fix or drop the row")
    return value


def _header(fields: list[str], where: str) -> list[str]:
    names = [f.strip() for f in fields]
    for name in names:
        if name not in COLUMNS:
            raise BadInputError(f"{where}: unknown column {name!r}; {HEADER_HINT}")
    for name in REQUIRED_COLUMNS:
        if name not in names:
            raise BadInputError(f"{where}: missing column {name!r}; {HEADER_HINT}")
    if len(set(names)) != len(names):
        raise BadInputError(f"{where}: a column appears twice in the header; list each once")
    return names


def measurements_space(path: Path | str, default: Space | str | None = None) -> Space:
    """The space a measurements CSV names in its ``# space=`` line (``default``, else ``darts``, when absent)."""
    meta = read_measurements_meta(path)
    if "space" not in meta and default is not None:
        return _space(default)
    try:
        return get_space(meta.get("space", LEGACY_SPACE))
    except BadInputError as exc:
        raise BadInputError(f"{path}: {exc.message}") from None


def _wide_header(fields: list[str], column: str, where: str) -> tuple[int, int]:
    """(arch column index, latency column index) of a wide CSV (one column per device)."""
    names = [f.strip() for f in fields]
    arch = next((i for i, name in enumerate(names) if name in WIDE_ARCH_COLUMNS), None)
    if arch is None:
        raise BadInputError(f"{where}: no architecture column ({', '.join(WIDE_ARCH_COLUMNS)}) in the header")
    if column not in names:
        devices = [n for i, n in enumerate(names) if i > arch]
        raise BadInputError(f"{where}: no column {column!r}{suggest(column, devices)}; columns: {', '.join(devices)}")
    return arch, names.index(column)


def _space_that_parses(text: str, but: str) -> str | None:
    """The first other registered space whose arch strings include ``text`` (for a clearer refusal)."""
    from ..spaces import SPACES

    for name, other in SPACES.items():
        if name == but:
            continue
        try:
            other.arch_from_string(text)
        except BadInputError:
            continue
        return name
    return None


def read_measurements_csv(path: Path | str, space: Space | str | None = None,
                          column: str | None = None) -> list[dict[str, Any]]:
    """Rows of a measurements CSV: ``arch`` (a validated arch string), ``latency_ms`` and optional columns.

    ``space`` given and different from the one the file names → BadInputError (exit 2); a file that names none is
    read as ``space``. ``column`` reads a wide CSV (an ``arch``/``arch_str``/``blocks`` column and one latency column
    per device, as the public data): ``latency_ms`` is that column.

    Any problem (missing column, unparsable or duplicated arch, non-positive or NaN latency) → one-line
    BadInputError naming the file and line.
    """
    path = require_file(path, "measurements CSV")
    impl = measurements_space(path, space)
    if space is not None and _space(space).name != impl.name:
        raise BadInputError(f"{path}: measurements of space {impl.name!r}, not {_space(space).name!r}; measure "
                            f"the space in use with `sdnas lut measure --space {_space(space).name}`")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not a UTF-8 text file; pass a measurements CSV") from None
    header: list[str] | None = None
    wide: tuple[int, int] | None = None
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            fields = next(csv.reader([line]))
        except csv.Error as exc:
            raise BadInputError(f"{where}: malformed CSV ({exc}); quote the arch string") from None
        if header is None:
            header = [f.strip() for f in fields]
            if column is not None:
                wide = _wide_header(fields, column, where)
            else:
                _header(fields, where)
            continue
        if len(fields) != len(header):
            raise BadInputError(
                f"{where}: {len(fields)} fields but the header has {len(header)}; quote the arch string"
            )
        if wide is not None:
            raw = {"arch": fields[wide[0]].strip(), "latency_ms": fields[wide[1]].strip()}
        else:
            raw = dict(zip(header, (f.strip() for f in fields)))
        try:
            text = impl.arch_to_string(impl.arch_from_string(raw["arch"]))
        except BadInputError as exc:
            other = _space_that_parses(raw["arch"], impl.name)
            if other is not None:
                raise BadInputError(f"{where}: an architecture of space {other!r}, not {impl.name!r}; pass "
                                    f"--space {other} or measurements of {impl.name!r}") from None
            raise BadInputError(f"{where}: {exc.message}") from None
        row: dict[str, Any] = {"arch": raw["arch"]}
        for name in (c for c in COLUMNS[1:] if c in raw):
            row[name] = _number(raw[name], name, where, integer=(name == "count"))
        if text in seen:
            raise BadInputError(f"{where}: architecture already measured on line {seen[text]}; keep one row per "
                                "architecture (average repeated measurements first)")
        seen[text] = number
        rows.append(row)
    if header is None:
        raise BadInputError(f"{path}: no header line; {HEADER_HINT}")
    if not rows:
        raise BadInputError(f"{path}: no measurements after the header; measure with `sdnas lut measure`")
    return rows


def genotypes_of(rows: Sequence[Mapping[str, Any]], space: Space | str = LEGACY_SPACE) -> list[Any]:
    """The architectures of measurement rows (arch strings already validated by the reader)."""
    impl = _space(space)
    return [impl.arch_from_string(row["arch"]) for row in rows]
