"""`sdnas lut fit` as a library call: read measurements, settle the geometry, pick the base or prior, fit, save.

Three ways to a fitted table, chosen by ``prior``:

- ``None`` (the default): ridge NNLS toward the target's micro-benchmark table when one is shipped for that
  geometry (``fit.fit_table``), as before;
- ``"none"``: plain ridge NNLS toward 0;
- ``"auto"`` or a list of targets / table files: the few-shot transfer fit of ``transfer.fit_with_prior``.

The target may be any name — a device need not be registered to get a table — and the setting defaults to what
the measurements CSV records, else the space's default setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..spaces import get_space
from .lut import LatencyTable, load_table, save_table

CUSTOM_TARGET = "custom-device"


@dataclass
class FitRequest:
    """What `sdnas lut fit` was asked (flags left unset are None)."""

    space: str
    measurements: Path
    target: str | None = None
    setting: str | None = None
    column: str | None = None
    prior: str | None = None
    base: Path | None = None
    no_base: bool = False
    l2: float = 1.0
    layers: int | None = None
    channels: int | None = None
    input_size: int | None = None
    in_channels: int = 3
    num_classes: int | None = None
    out: Path | None = None


def read_checked(path: Path, space: str, column: str | None = None, target: str | None = None,
                 setting: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    """Rows, provenance and geometry (None if the CSV records none) of a measurements CSV; a ``target`` or
    ``setting`` given that the CSV's provenance contradicts → one-line BadInputError."""
    from .whole import read_measurements_csv, read_measurements_meta

    rows = read_measurements_csv(path, space, column=column)
    meta = read_measurements_meta(path)
    if target is not None and meta.get("target") not in (None, target):
        raise BadInputError(f"{path} was measured for target {meta['target']!r}; pass --target {meta['target']}")
    geometry = get_space(space).geometry_from_dict(meta["geometry"], str(path)) if "geometry" in meta else None
    if setting is not None and geometry is not None and geometry.setting != setting:
        raise BadInputError(f"{path} was measured at setting {geometry.setting!r}; pass --setting {geometry.setting}")
    return rows, meta, geometry


def read_request_rows(req: FitRequest) -> tuple[list[dict[str, Any]], dict[str, Any], Any, str, str]:
    """(rows, provenance, geometry, target name, setting) of a request, checked against its flags."""
    from .targets import TARGET_ALIASES, table_geometry

    named_target = TARGET_ALIASES.get(req.target, req.target) if req.target is not None else None
    rows, meta, geometry = read_checked(req.measurements, req.space, req.column,
                                        named_target if req.column is None else None, req.setting)
    target = named_target or req.column or meta.get("target") or (req.out.stem if req.out else CUSTOM_TARGET)
    target = TARGET_ALIASES.get(target, target)
    setting = req.setting or (geometry.setting if geometry is not None else get_space(req.space).default_setting)
    flags = table_geometry(req.space, setting, req.layers, req.channels, req.input_size, req.in_channels,
                           req.num_classes)
    if geometry is None:
        geometry = flags
    elif any(v is not None for v in (req.layers, req.channels, req.input_size)) and flags != geometry:
        raise BadInputError(f"{req.measurements} was measured at geometry {geometry.to_dict()}; drop the geometry flags")
    return rows, meta, geometry, target, setting


def _default_base(target: str, setting: str, space: str, geometry: Any) -> tuple[LatencyTable | None, str | None]:
    """(the target's shipped micro-benchmark table, its path) when it is of this geometry, else (None, a note or
    None)."""
    from .targets import TARGETS, table_path

    if target not in TARGETS:
        return None, None
    path = table_path(TARGETS[target], setting, space=space)
    if path is None or not path.is_file():
        return None, None
    table = load_table(path)
    if table.space == space and table.geometry == geometry:
        return table, str(path)  # the path of the base table
    return None, f"note: {path.name} is for another geometry; fitting without a base table"


def fitted_out(target: str, space: str, setting: str) -> Path:
    """Where a fitted table goes without --out: next to the target's shipped table if it has one, else here."""
    from .targets import TARGETS, table_path

    if target in TARGETS:
        shipped = table_path(TARGETS[target], setting, space=space)
        if shipped is not None:
            return shipped.with_name(f"{shipped.stem}_fitted.json")
    return Path(f"{target}_{space}_{setting}_fitted.json")


def fit_from_request(req: FitRequest) -> tuple[LatencyTable, Path, dict[str, Any], list[dict[str, Any]]]:
    """Fit and save the table a request asks for; returns (table, path, summary for the CLI, the rows fitted)."""
    from .fit import fit_table
    from .priors import resolve_priors
    from .transfer import fit_with_prior

    if req.base is not None and req.no_base:
        raise BadInputError("--base and --no-base contradict each other; pass one")
    if req.prior is not None and (req.base is not None or req.no_base):
        raise BadInputError("--prior replaces --base/--no-base; pass one of them")
    rows, meta, geometry, target, setting = read_request_rows(req)
    summary: dict[str, Any] = {"target": target, "space": req.space, "setting": setting, "rows": len(rows)}
    if req.prior is not None and req.prior != "none":
        priors = resolve_priors(req.prior, req.space, geometry, exclude=target)
        table = fit_with_prior(rows, geometry, req.space, priors, target, provenance=meta)
        summary.update(method="transfer", priors=[p.target for p in priors],
                       model=table.fingerprint["fit"]["model"], loo_rel_rmse=table.fingerprint["fit"]["loo_rel_rmse"])
    else:
        base_table, base_path, note = None, None, None
        if req.base is not None:
            base_table, base_path = load_table(req.base), str(req.base)
            base_table.check_space(req.space, str(req.base))
            base_table.check_geometry(geometry)
        elif not req.no_base and req.prior is None:
            base_table, found = _default_base(target, setting, req.space, geometry)
            base_path, note = (found, None) if base_table is not None else (None, found)
        table = fit_table(base_table, geometry, rows, target, l2=req.l2, provenance=meta, space=req.space)
        summary.update(method="ridge", base=base_path if base_table is not None else None, l2=req.l2,
                       note=note if base_table is None else None)
    path = save_table(req.out or fitted_out(target, req.space, setting), table)
    summary.update(file=str(path), fitted_keys=table.fingerprint["fit"]["fitted_keys"], overhead_ms=table.overhead_ms)
    return table, path, summary, rows
