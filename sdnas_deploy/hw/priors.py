"""Which tables a few-shot fit may lean on (`sdnas lut fit --prior auto|none|T1,T2,...`).

``auto``: every registered target's shipped table (fitted preferred) of the space and geometry being fitted,
except the target itself; ``none``: no prior (a plain ridge fit); a comma-separated list: those targets' tables or
table files, each refused in one line if it is of another space or geometry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BadInputError
from .lut import LatencyTable, load_table


def shipped_tables(space: str, setting: str) -> list[LatencyTable]:
    """Each target's shipped table for ``space``/``setting`` (fitted where it ships one), in name order."""
    from .targets import TARGETS, table_path

    found = []
    for name in sorted(TARGETS):
        for kind in ("fitted", "microbenchmark"):
            path = table_path(TARGETS[name], setting, kind, space)
            if path is not None and path.is_file():
                found.append(load_table(path))
                break
    return found


def resolve_priors(spec: str, space: str, geometry: Any, exclude: str | None = None) -> list[LatencyTable]:
    """The prior tables ``spec`` names for a fit of ``space`` at ``geometry`` (module docstring)."""
    from .targets import get_target, resolve_table

    text = (spec or "").strip()
    if text == "none":
        return []
    if text == "auto":
        tables = [t for t in shipped_tables(space, geometry.setting)
                  if t.geometry == geometry and t.target != exclude]
        if not tables:
            raise BadInputError(f"--prior auto: no shipped table of space {space!r} at geometry {geometry.to_dict()}; "
                                "name prior tables, or fit with --prior none")
        return tables
    tables = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise BadInputError(f"--prior {spec!r}: empty name in the list; pass auto, none or T1,T2,...")
        path = Path(item)
        table = load_table(path) if path.suffix == ".json" else load_table(resolve_table(get_target(item).name,
                                                                                            geometry.setting, space=space))
        table.check_space(space, f"--prior {item}")
        table.check_geometry(geometry)
        tables.append(table)
    return tables
