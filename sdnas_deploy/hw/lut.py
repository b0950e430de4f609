"""Latency lookup tables: the ``sdnas-lut/1`` JSON format, strict loading, lookup and prediction.

A table is per-operator latency (ms) measured on one target for one deployment geometry, with the
environment fingerprint that produced it (DESIGN.md §2: tables without provenance are the common
complaint), for one search space (``space``; a table written before the field existed is ``darts``).
Loading is strict: the first problem is reported in one line naming the fix. A network's predicted
latency is ``overhead_ms`` (one session call) plus ``Σ count · mean`` over its keys, which the space names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import BadInputError
from ..io_utils import atomic_write_json, load_json
from ..registry import check_fields
from ..spaces import LEGACY_SPACE, Geometry, Space, get_space
from ..spaces.keys import parse_key

LUT_SCHEMA = "sdnas-lut/1"
METHODS = ("microbenchmark", "fitted")
REQUIRED_FINGERPRINT = ("backend", "provider", "precision", "batch", "threads", "date", "sdnas_version")
ENTRY_STATS = ("mean", "std", "p50", "p90")
_TOP_KEYS = ("schema", "target", "metric", "fingerprint", "geometry", "method", "overhead_ms", "entries")
_OPTIONAL_KEYS = ("space",)


@dataclass
class LatencyTable:
    """One ``sdnas-lut/1`` table; ``entries`` maps key → ``{count, mean, std, p50, p90}`` (ms)."""

    target: str
    fingerprint: dict[str, Any]
    geometry: Geometry
    method: str = "microbenchmark"
    overhead_ms: float = 0.0
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric: str = "latency_ms"
    schema: str = LUT_SCHEMA
    space: str = LEGACY_SPACE

    def __post_init__(self) -> None:
        if isinstance(self.geometry, Mapping):
            self.geometry = self.space_impl.geometry_from_dict(self.geometry, f"latency table {self.target!r}")

    @property
    def space_impl(self) -> Space:
        """The registered space whose keys this table holds."""
        return get_space(self.space)

    def _build_hint(self) -> str:
        backend = self.fingerprint.get("backend", "BACKEND")
        return (f"sdnas lut build --target {self.target} --space {self.space} --setting {self.geometry.setting} "
                f"--backend {backend}")

    def lookup(self, key: str) -> float:
        """Mean latency (ms) of ``key``; a missing key → BadInputError naming it and the build command."""
        entry = self.entries.get(key)
        if entry is None:
            raise BadInputError(
                f"latency table for {self.target!r} has no entry {key!r}; measure it with `{self._build_hint()}` "
                f"(add --resume to extend an existing table)"
            )
        return float(entry["mean"])

    def check_space(self, space: str, where: str = "") -> None:
        """Raise BadInputError if the table holds another space's keys."""
        if space != self.space:
            raise BadInputError(
                f"{where or 'latency table'}: table for {self.target!r} holds keys of space {self.space!r}, not "
                f"{space!r}; build one with `sdnas lut build --target {self.target} --space {space}`")

    def check_geometry(self, geometry: Geometry) -> None:
        """Raise BadInputError if the table was measured for another network geometry."""
        if geometry == self.geometry:
            return
        if type(geometry) is not type(self.geometry):
            raise BadInputError(f"latency table for {self.target!r} (space {self.space!r}) does not describe a "
                                f"{type(geometry).__name__}; use a table of the network's own space")
        mine, theirs = self.geometry.to_dict(), geometry.to_dict()
        diffs = ", ".join(f"{k} {mine[k]!r} (table) vs {theirs[k]!r}" for k in mine if mine[k] != theirs[k])
        raise BadInputError(
            f"latency table for {self.target!r} was measured for another geometry ({diffs}); build one for this "
            f"geometry with `{self._build_hint()}` and --layers/--channels/--input-size, or match the table"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written by :func:`save_table`."""
        return {
            "schema": self.schema, "target": self.target, "space": self.space, "metric": self.metric,
            "fingerprint": self.fingerprint,
            "geometry": self.geometry.to_dict(), "method": self.method, "overhead_ms": self.overhead_ms,
            "entries": {k: dict(v) for k, v in sorted(self.entries.items())},
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "latency table") -> "LatencyTable":
        """Validate the JSON form strictly; the first problem → one-line BadInputError."""
        if not isinstance(data, Mapping):
            raise BadInputError(f"{source}: a latency table must be a JSON object with schema {LUT_SCHEMA!r}")
        if data.get("schema") != LUT_SCHEMA:
            raise BadInputError(
                f"{source}: schema is {data.get('schema')!r}, expected {LUT_SCHEMA!r}; "
                f"rebuild it with `sdnas lut build`"
            )
        check_fields(data, _TOP_KEYS, _TOP_KEYS + _OPTIONAL_KEYS, source,
                     "missing field {name!r}; rebuild the table with `sdnas lut build`",
                     "unknown field {name!r}{hint}; remove it")
        for name in ("target", "metric"):
            if not isinstance(data[name], str) or not data[name]:
                raise BadInputError(f"{source}: {name} must be a non-empty string, got {data[name]!r}")
        if data["method"] not in METHODS:
            raise BadInputError(f"{source}: method {data['method']!r} is not one of {', '.join(METHODS)}")
        _check_fingerprint(data["fingerprint"], source)
        space_name = data.get("space", LEGACY_SPACE)
        try:
            space = get_space(space_name)
        except BadInputError as exc:
            raise BadInputError(f"{source}: {exc.message}") from None
        geometry = space.geometry_from_dict(data["geometry"], source)
        overhead = _non_negative(data["overhead_ms"], f"{source}: overhead_ms")
        entries = data["entries"]
        if not isinstance(entries, Mapping):
            raise BadInputError(f"{source}: entries must be an object mapping keys to statistics")
        for k, entry in entries.items():
            check_entry(k, entry, source, space)
        return cls(target=data["target"], fingerprint=dict(data["fingerprint"]), geometry=geometry,
                   method=data["method"], overhead_ms=overhead, entries={k: dict(v) for k, v in entries.items()},
                   metric=data["metric"], schema=data["schema"], space=space.name)


def _non_negative(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadInputError(f"{where} must be a finite non-negative number, got {value!r}; re-measure the table")
    return float(value)


def _check_fingerprint(fp: Any, source: str) -> None:
    if not isinstance(fp, Mapping):
        raise BadInputError(f"{source}: fingerprint must be an object; rebuild the table with `sdnas lut build`")
    for name in REQUIRED_FINGERPRINT:
        if name not in fp:
            raise BadInputError(
                f"{source}: fingerprint lacks {name!r} (needs {', '.join(REQUIRED_FINGERPRINT)}); "
                f"rebuild the table with `sdnas lut build`"
            )


def check_entry(k: Any, entry: Any, source: str = "latency table", space: Space | None = None) -> None:
    """Validate one entry: a key of ``space`` (default darts), integer count ≥ 1, finite non-negative stats."""
    parse_key(k, (space or get_space(LEGACY_SPACE)).key_ops)
    where = f"{source}: entry {k!r}"
    if not isinstance(entry, Mapping):
        raise BadInputError(f"{where} must be an object with count, {', '.join(ENTRY_STATS)}")
    count = entry.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise BadInputError(f"{where}: count must be an integer >= 1, got {count!r}; re-measure it")
    for stat in ENTRY_STATS:
        if stat not in entry:
            raise BadInputError(f"{where} lacks {stat!r}; re-measure it")
        _non_negative(entry[stat], f"{where}: {stat}")


def load_table(path: Path | str) -> LatencyTable:
    """Read and strictly validate a latency table file."""
    return LatencyTable.from_dict(load_json(path, "latency table"), source=str(path))


def save_table(path: Path | str, table: LatencyTable) -> Path:
    """Write ``table`` atomically (temp file + rename), entries sorted by key."""
    return atomic_write_json(Path(path), table.to_dict())


def error_estimate(table: LatencyTable) -> float | None:
    """The table's own estimate of its relative error (a fraction), from its provenance: the held-out median abs
    error of a public table, else the leave-one-out relative RMSE of a few-shot fit; None when it records neither."""
    validation = table.fingerprint.get("validation") or {}
    if isinstance(validation.get("median_abs_pct_error"), (int, float)):
        return float(validation["median_abs_pct_error"]) / 100.0
    fit = table.fingerprint.get("fit") or {}
    loo, model = fit.get("loo_rel_rmse"), fit.get("model")
    if isinstance(loo, dict) and isinstance(loo.get(model), (int, float)):
        return float(loo[model])
    return None


def predict_latency(table: LatencyTable, arch: Any) -> float:
    """Predicted network latency (ms): ``overhead_ms`` + Σ count · mean over the architecture's keys."""
    keys = table.space_impl.network_keys(arch, table.geometry)
    return table.overhead_ms + sum(count * table.lookup(k) for k, count in sorted(keys.items()))
