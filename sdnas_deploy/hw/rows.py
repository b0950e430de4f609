"""Whole-network measurement rows (``arch``, ``latency_ms``) turned into architectures and latencies.

Shared by fitting (``fit.py``) and validating (``validate.py``) so neither imports the other.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import BadInputError
from ..spaces import LEGACY_SPACE, Space, get_space


def row_genotypes(rows: Sequence[Mapping[str, Any]], space: Space | str = LEGACY_SPACE) -> tuple[list[Any], np.ndarray]:
    """Architectures (from each row's ``arch``) and measured latencies (``latency_ms``); bad rows → BadInputError."""
    impl = get_space(space) if isinstance(space, str) else space
    if not rows:
        raise BadInputError("no measurement rows; measure some with `sdnas lut measure`")
    genotypes, latencies = [], []
    for i, row in enumerate(rows, 1):
        if "arch" not in row or "latency_ms" not in row:
            raise BadInputError(f"measurement row {i} lacks 'arch' or 'latency_ms'; re-create it with `sdnas lut measure`")
        arch = row["arch"]
        genotypes.append(impl.arch_from_string(arch) if isinstance(arch, str) else arch)
        try:
            value = float(row["latency_ms"])
        except (TypeError, ValueError):
            raise BadInputError(f"measurement row {i}: latency_ms {row['latency_ms']!r} is not a number") from None
        if not np.isfinite(value) or value <= 0:
            raise BadInputError(f"measurement row {i}: latency_ms must be a positive number, got {value!r}")
        latencies.append(value)
    return genotypes, np.asarray(latencies)
