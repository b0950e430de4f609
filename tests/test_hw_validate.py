"""hw/validate.py: metrics on hand-made numbers, table validation, the PNG and the status line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.hw.build import build_fingerprint
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, candidate_keys, random_genotype
from sdnas_deploy.hw.lut import LatencyTable, predict_latency
from sdnas_deploy.hw.validate import compare, scatter_png, status_line, validate_table
from sdnas_deploy.spaces.darts.genotype import to_arch_string


def test_compare_hand_made() -> None:
    measured = [1.0, 2.0, 4.0, 5.0]
    predicted = [1.1, 1.8, 4.0, 6.0]  # errors +10 %, -10 %, 0 %, +20 %; ranks identical
    r = compare(predicted, measured)
    assert r["n"] == 4
    assert r["mean_abs_pct_error"] == pytest.approx(10.0)
    assert r["median_abs_pct_error"] == pytest.approx(10.0)
    assert r["max_abs_pct_error"] == pytest.approx(20.0)
    assert r["within_10pct"] == pytest.approx(0.75)
    assert r["kendall_tau"] == pytest.approx(1.0)
    # one swapped pair out of 6: τ = (5 - 1) / 6
    assert compare([1, 2, 4, 3], [1, 2, 3, 4])["kendall_tau"] == pytest.approx(4 / 6)
    assert compare([3, 2, 1], [1, 2, 3])["kendall_tau"] == pytest.approx(-1.0)
    assert compare([1.0], [1.0])["kendall_tau"] is None
    with pytest.raises(BadInputError):
        compare([1.0], [1.0, 2.0])
    with pytest.raises(BadInputError):
        compare([1.0], [0.0])


def test_status_line() -> None:
    assert status_line({"mean_abs_pct_error": 9.99}, 10) == "PASSED"
    assert status_line({"mean_abs_pct_error": 12.34}, 10) == "FAILED: mean abs error 12.3% > 10%"


def test_validate_table_against_itself() -> None:
    geom = NetworkGeometry.from_setting("cifar", input_size=16, layers=5, channels=8, in_channels=1)
    entries = {k: {"count": 1, "mean": 0.05, "std": 0.0, "p50": 0.05, "p90": 0.05} for k in candidate_keys(geom)}
    table = LatencyTable("t", build_fingerprint("ort", 1), geom, overhead_ms=0.2, entries=entries)
    rng = random.Random(0)
    genotypes = [random_genotype(rng) for _ in range(5)]
    rows = [{"arch": to_arch_string(g), "latency_ms": predict_latency(table, g) * 1.05} for g in genotypes]
    report = validate_table(table, rows)
    assert report["n"] == 5 and report["mean_abs_pct_error"] == pytest.approx(100 * (1 - 1 / 1.05))
    assert report["within_10pct"] == 1.0 and len(report["rows"]) == 5
    assert report["rows"][0]["measured_ms"] == pytest.approx(rows[0]["latency_ms"])


def test_scatter_png(tmp_path: Path) -> None:
    path = scatter_png(tmp_path / "sub" / "s.png", [1.0, 2.1, 2.9], [1.0, 2.0, 3.0], "test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
