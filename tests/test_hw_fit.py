"""hw/fit.py: NNLS with ridge, recovering a known additive table, w >= 0, loadable output."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.hw.build import build_fingerprint
from sdnas_deploy.hw.fit import cross_validate, design_matrix, fit_table, nnls_ridge, row_genotypes
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, candidate_keys, random_genotype
from sdnas_deploy.hw.lut import LatencyTable, load_table, predict_latency, save_table
from sdnas_deploy.spaces.darts.genotype import to_arch_string

GEOM = NetworkGeometry.from_setting("cifar", input_size=16, layers=5, channels=8, in_channels=1)


def test_nnls_ridge_recovers_known_nonnegative_solution() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 3, size=(40, 6))
    w_true = np.array([0.5, 0.0, 1.25, 2.0, 0.0, 0.75])
    w = nnls_ridge(X, X @ w_true, l2=0.0)
    assert np.allclose(w, w_true, atol=1e-8)
    # an unconstrained solution with a negative weight is clipped to the constraint, never below 0
    y = X @ np.array([1.0, -2.0, 1.0, 1.0, 1.0, 1.0])
    assert nnls_ridge(X, y, l2=0.0).min() >= 0.0


def test_nnls_ridge_pulls_toward_base() -> None:
    X = np.ones((3, 2))  # two collinear columns: data fix only their sum (= 2)
    w = nnls_ridge(X, np.full(3, 2.0), l2=1e-3, w0=np.array([1.5, 0.5]))
    assert w == pytest.approx([1.5, 0.5], abs=1e-3)
    w_plain = nnls_ridge(X, np.full(3, 2.0), l2=1e-3)
    assert w_plain == pytest.approx([1.0, 1.0], abs=1e-3)  # plain ridge splits evenly
    with pytest.raises(BadInputError):
        nnls_ridge(X, np.ones(3), l2=-1.0)


def _truth() -> LatencyTable:
    rng = random.Random(1)
    entries = {}
    for k in candidate_keys(GEOM):
        v = rng.uniform(0.01, 0.2)
        entries[k] = {"count": 10, "mean": v, "std": 0.0, "p50": v, "p90": v}
    return LatencyTable(target="synthetic", fingerprint=build_fingerprint("ort", 1), geometry=GEOM,
                        overhead_ms=0.3, entries=entries)


def _rows(table: LatencyTable, n: int, seed: int, noise: float) -> list[dict]:
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        g = random_genotype(rng)
        rows.append({"arch": to_arch_string(g),
                     "latency_ms": predict_latency(table, g) * (1 + noise * nrng.standard_normal())})
    return rows


def test_fit_recovers_additive_table(tmp_path: Path) -> None:
    truth = _truth()
    train, test = _rows(truth, 300, 0, 0.005), _rows(truth, 40, 99, 0.0)
    fitted = fit_table(None, GEOM, train, "synthetic", l2=1e-4)
    assert fitted.method == "fitted"
    assert all(e["mean"] >= 0 and e["count"] >= 1 for e in fitted.entries.values())
    assert fitted.overhead_ms >= 0
    genotypes, y = row_genotypes(test)
    err = [abs(predict_latency(fitted, g) - m) / m for g, m in zip(genotypes, y)]
    assert max(err) < 0.02  # held-out architectures predicted within 2 %
    # entry counts = rows containing the key; stats all equal the fitted value
    keys, X, counts = design_matrix(row_genotypes(train)[0], GEOM)
    for j, k in enumerate(keys):
        assert fitted.entries[k]["count"] == int((X[:, j] > 0).sum())
        e = fitted.entries[k]
        assert e["mean"] == e["std"] == e["p50"] == e["p90"]
    path = save_table(tmp_path / "fitted.json", fitted)
    again = load_table(path)
    assert again.method == "fitted" and again.fingerprint["fit"]["rows"] == 300
    assert again.entries == fitted.entries


def test_fit_with_base_keeps_unseen_and_fixes_bias() -> None:
    truth = _truth()
    # the "microbenchmark" table is 30 % too slow everywhere; the fit must correct it from 60 rows
    base = LatencyTable(target="synthetic", fingerprint=truth.fingerprint, geometry=GEOM, overhead_ms=0.3,
                        entries={k: {**e, "mean": e["mean"] * 1.3} for k, e in truth.entries.items()})
    rows = _rows(truth, 60, 3, 0.0)
    fitted = fit_table(base, GEOM, rows[:1], "synthetic", l2=1e-2)
    seen = set(design_matrix(row_genotypes(rows[:1])[0], GEOM)[0])
    unseen = set(base.entries) - seen
    assert unseen and all(fitted.entries[k] == base.entries[k] for k in unseen)
    assert fitted.fingerprint["fit"]["unseen_keys"] == len(unseen)
    report = cross_validate(rows, GEOM, k=3, base=base, l2=1e-2)
    before = cross_validate(rows, GEOM, k=3, base=base, l2=1e6)  # λ huge: stays the biased base
    assert report["mean_abs_pct_error"] < 5.0 < before["mean_abs_pct_error"]


def test_fit_rejects_bad_rows_and_geometry() -> None:
    with pytest.raises(BadInputError, match="no measurement rows"):
        fit_table(None, GEOM, [], "t")
    with pytest.raises(BadInputError, match="latency_ms"):
        fit_table(None, GEOM, [{"arch": "x"}], "t")
    arch = to_arch_string(random_genotype(random.Random(0)))
    with pytest.raises(BadInputError, match="positive"):
        fit_table(None, GEOM, [{"arch": arch, "latency_ms": -1}], "t")
    other = NetworkGeometry.from_setting("cifar", input_size=16, layers=6, channels=8, in_channels=1)
    with pytest.raises(BadInputError, match="another geometry"):
        fit_table(_truth(), other, [{"arch": arch, "latency_ms": 1.0}], "t")
