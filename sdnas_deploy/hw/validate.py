"""Predicted vs measured network latency: error metrics, a scatter plot and a PASSED/FAILED line.

`sdnas lut validate` answers "how well does this table hold on this device?" (DESIGN.md §2: tables
that were never checked end to end are the common complaint). Errors are relative to the measurement:
``|predicted − measured| / measured``. Kendall τ-b says whether the table at least ranks
architectures right, which is what the search needs most.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import BadInputError
from .lut import LatencyTable, predict_latency

WITHIN = 10.0  # the ±% band reported as "within"


def compare(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, Any]:
    """Mean/median/max abs % error (``mape`` = the mean), share within ±10 %, Kendall τ-b and Spearman ρ (None
    below 2 points or if constant), n."""
    if len(predicted) != len(measured):
        raise BadInputError(f"{len(predicted)} predictions but {len(measured)} measurements; they must pair up")
    if not measured:
        raise BadInputError("nothing to compare: no measurements")
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    if not (np.all(np.isfinite(m)) and np.all(m > 0) and np.all(np.isfinite(p))):
        raise BadInputError("measured latencies must be positive and finite, predictions finite")
    err = np.abs(p - m) / m * 100.0
    tau = rho = None
    if len(m) >= 2:
        from scipy.stats import kendalltau

        value = kendalltau(p, m, variant="b").statistic
        tau = None if value is None or not math.isfinite(value) else float(value)
        rho = spearman(p, m)
    return {
        "n": int(len(m)),
        "mean_abs_pct_error": float(err.mean()),
        "median_abs_pct_error": float(np.median(err)),
        "max_abs_pct_error": float(err.max()),
        "within_10pct": float(np.mean(err <= WITHIN + 1e-9)),  # 1e-9: 1.1 vs 1.0 is 10.000000000000009 %
        "kendall_tau": tau,
        "spearman": rho,
        "mape": float(err.mean()),  # the same figure as mean_abs_pct_error, under the name papers use
        "mean_signed_pct_error": float(((p - m) / m * 100.0).mean()),
    }


def spearman(predicted: Sequence[float], measured: Sequence[float]) -> float | None:
    """Spearman's rank correlation ρ (None below 2 points or when either side is constant)."""
    if len(predicted) < 2:
        return None
    from scipy.stats import spearmanr

    with np.errstate(invalid="ignore", divide="ignore"):
        value = spearmanr(predicted, measured).statistic
    return None if value is None or not math.isfinite(value) else float(value)


def validate_table(table: LatencyTable, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Predict every row's ``arch`` with ``table`` and compare with its ``latency_ms``; per-row detail kept."""
    from .rows import row_genotypes

    genotypes, measured = row_genotypes(rows, table.space)
    predicted = [predict_latency(table, g) for g in genotypes]
    report = compare(predicted, list(measured))
    report.update({
        "target": table.target, "space": table.space, "method": table.method, "geometry": table.geometry.to_dict(),
        "rows": [
            {"arch": str(row["arch"]), "predicted_ms": pred, "measured_ms": float(meas),
             "error_pct": (pred - float(meas)) / float(meas) * 100.0}
            for row, pred, meas in zip(rows, predicted, measured)
        ],
    })
    return report


def status_line(report: Mapping[str, Any], max_error: float) -> str:
    """``PASSED`` when the mean abs % error is at most ``max_error``, else ``FAILED: ...`` saying by how much."""
    mean = float(report["mean_abs_pct_error"])
    if mean <= max_error:
        return "PASSED"
    return f"FAILED: mean abs error {mean:.1f}% > {max_error:g}%"


def scatter_png(path: Path | str, predicted: Sequence[float], measured: Sequence[float], title: str) -> Path:
    """Predicted vs measured scatter with the y = x line and a ±10 % band, written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io_utils import atomic_write_bytes

    if len(predicted) != len(measured) or not measured:
        raise BadInputError("scatter plot needs as many predictions as measurements, at least one")
    hi = max(max(predicted), max(measured)) * 1.1
    line = np.linspace(0.0, hi, 50)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    try:
        ax.fill_between(line, line * (1 - WITHIN / 100), line * (1 + WITHIN / 100), color="tab:green", alpha=0.15,
                        label=f"±{WITHIN:g}%")
        ax.plot(line, line, color="tab:green", linewidth=1, label="y = x")
        ax.scatter(measured, predicted, s=14, color="tab:blue", label="architecture")
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel("predicted latency (ms)")
        ax.set_title(title)
        ax.legend(loc="upper left")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())
