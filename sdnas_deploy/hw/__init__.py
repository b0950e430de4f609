"""Hardware awareness (docs/HARDWARE.md): network geometry and keys, latency tables, targets.

Only light modules are imported here; ``measure``/``build`` load heavy dependencies themselves.
"""

from __future__ import annotations

from .geometry import (
    EDGE_PRIMITIVES,
    FIXED_PARTS,
    CellShape,
    KeyParts,
    NetworkGeometry,
    candidate_keys,
    cell_plan,
    edge_keys,
    key,
    network_keys,
    parse_key,
    random_genotype,
)
from .lut import LUT_SCHEMA, LatencyTable, check_entry, load_table, predict_latency, save_table
from .targets import TARGETS, Target, build_command, get_target, resolve_table, table_path

__all__ = [
    "EDGE_PRIMITIVES", "FIXED_PARTS", "CellShape", "KeyParts", "NetworkGeometry", "candidate_keys", "cell_plan",
    "edge_keys", "key", "network_keys", "parse_key", "random_genotype", "LUT_SCHEMA", "LatencyTable",
    "check_entry", "load_table", "predict_latency", "save_table", "TARGETS", "Target", "build_command",
    "get_target", "resolve_table", "table_path",
]
