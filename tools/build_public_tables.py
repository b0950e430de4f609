"""Fit and validate the shipped per-op tables of the public devices (latency_tables/public/*.json).

    .venv/bin/python tools/build_public_tables.py

Prints one row per device and space (fit/validation networks, held-out Spearman ρ, MAPE, ±10%) and writes
``bench/results/public_tables.json``. Deterministic (seeded split): rerunning rewrites the same tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdnas_deploy.hw.public_tables import build_public_tables  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402


def main() -> None:
    rows = build_public_tables(ROOT / "latency_tables")
    print(f"{'space':6s} {'device':18s} {'fit':>6s} {'held':>6s} {'rho':>6s} {'tau':>6s} {'MAPE%':>7s} {'±10%':>6s}")
    for r in rows:
        print(f"{r['space']:6s} {r['device']:18s} {r['fit_networks']:6d} {r['n']:6d} {r['spearman']:6.3f} "
              f"{r['kendall_tau']:6.3f} {r['mean_abs_pct_error']:7.2f} {100 * r['within_10pct']:5.1f}%")
    atomic_write_json(ROOT / "bench" / "results" / "public_tables.json", {"tables": rows})


if __name__ == "__main__":
    main()
