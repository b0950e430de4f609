"""Per-op tables of the public devices, fitted from their measured networks and validated on networks held out.

For each device setting of :mod:`.public` and each space it was measured on, the usable networks are shuffled
(seed 0), :data:`FIT_FRACTION` of them fit an additive table (``fit.fit_table``, ridge NNLS, no base table) and the
rest validate it (Spearman ρ, Kendall τ, MAPE, ±10%). The table's fingerprint says where the numbers come from and
no more (batch from the column suffix; precision, runtime and threads "not stated"), plus the fit and validation
figures that `sdnas lut list` shows. ``tools/build_public_tables.py`` writes them to ``latency_tables/public/``.
"""

from __future__ import annotations

import datetime as _dt
import random
from pathlib import Path
from typing import Any

from .. import __version__
from .fit import fit_table
from .lut import LatencyTable, save_table
from .public import NOT_STATED, PublicDevice, device_rows, devices_of, public_geometry, table_filename
from .validate import validate_table

FIT_FRACTION = 0.8
PUBLIC_L2 = 1e-4  # relative ridge; thousands of rows constrain every key, so the fit is close to plain NNLS
SPLIT_SEED = 0


def split_rows(rows: list[dict[str, Any]], seed: int = SPLIT_SEED) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(fit rows, validation rows): a seeded shuffle, :data:`FIT_FRACTION` first."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = int(round(FIT_FRACTION * len(rows)))
    return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]


def public_fingerprint(device: PublicDevice, space: str, fit: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """What is known about the measurements, and nothing this machine would add."""
    return {
        **device.describe(space), "backend": NOT_STATED, "provider": NOT_STATED, "threads": NOT_STATED,
        "origin": "public", "key": None, "sdnas_version": __version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "fit": fit, "validation": validation,
    }


def fit_public_table(device: PublicDevice, space: str) -> tuple[LatencyTable, dict[str, Any]]:
    """The fitted table of ``device`` on ``space`` and its validation on the held-out networks."""
    rows = device_rows(space, device)
    fit_rows, held = split_rows(rows)
    geometry = public_geometry(space)
    table = fit_table(None, geometry, fit_rows, device.name, l2=PUBLIC_L2, space=space)
    report = validate_table(table, held)
    validation = {k: report[k] for k in ("n", "mean_abs_pct_error", "median_abs_pct_error", "within_10pct",
                                         "kendall_tau", "spearman")}
    fit_info = dict(table.fingerprint["fit"])
    fit_info.pop("measurements", None)
    fit_info.update(method="ridge NNLS on public measurements", split_seed=SPLIT_SEED, networks=len(rows))
    table.fingerprint = public_fingerprint(device, space, fit_info, validation)
    return table, validation


def build_public_tables(folder: Path) -> list[dict[str, Any]]:
    """Fit, validate and write every public device's table for every space; one summary row per table."""
    summary = []
    for space in ("nb201", "fbnet"):
        for device in devices_of(space):
            table, validation = fit_public_table(device, space)
            path = save_table(folder / table_filename(device.name, space), table)
            summary.append({"device": device.name, "space": space, "file": str(path),
                            "fit_networks": table.fingerprint["fit"]["rows"], **validation})
    return summary
