"""Hardware awareness (docs/HARDWARE.md): latency tables of any space, targets, measuring, fitting, validating.

Only light modules are imported here; ``measure``/``build`` load heavy dependencies themselves. The keys a
network uses and the operators they name come from its space (``spaces.Space``), never from here.
"""

from __future__ import annotations

from .lut import LUT_SCHEMA, LatencyTable, check_entry, load_table, predict_latency, save_table
from .targets import TARGETS, Target, build_command, get_target, resolve_table, table_path

__all__ = [
    "LUT_SCHEMA", "LatencyTable", "check_entry", "load_table", "predict_latency", "save_table", "TARGETS", "Target",
    "build_command", "get_target", "resolve_table", "table_path",
]
