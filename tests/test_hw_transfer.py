"""hw/transfer.py and hw/priors.py: the few-shot fit recovers a device from a handful of networks, chooses its
model by leave-one-out, and refuses priors it cannot use."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.hw.lut import LatencyTable, load_table, predict_latency
from sdnas_deploy.hw.priors import resolve_priors, shipped_tables
from sdnas_deploy.hw.public import public_geometry
from sdnas_deploy.hw.targets import resolve_table
from sdnas_deploy.hw.transfer import MODELS, fit_with_prior, loo_error, fit_scaled
from sdnas_deploy.hw.validate import spearman
from sdnas_deploy.spaces import get_space

SPACE = "nb201"


def _table(name: str) -> LatencyTable:
    return load_table(resolve_table(name, "cifar", space=SPACE))


def _device(weights: dict[str, float], scale_keys: float = 1.0) -> LatencyTable:
    """A synthetic device: a non-negative combination of two shipped tables, one key made slower."""
    a, b = _table("xeon-gold-6240"), _table("rtx2080ti-b1")
    entries = {}
    for i, k in enumerate(sorted(a.entries)):
        value = weights["a"] * a.entries[k]["mean"] + weights["b"] * b.entries[k]["mean"]
        value *= scale_keys if i == 3 else 1.0
        entries[k] = {"count": 1, "mean": value, "std": value, "p50": value, "p90": value}
    return LatencyTable(target="synthetic", fingerprint=dict(a.fingerprint), geometry=a.geometry, method="fitted",
                        overhead_ms=weights["a"] * a.overhead_ms + weights["b"] * b.overhead_ms, entries=entries,
                        space=SPACE)


def _rows(table: LatencyTable, n: int, seed: int) -> tuple[list[dict], list]:
    space = get_space(SPACE)
    rng = random.Random(seed)
    archs = []
    while len(archs) < n:
        arch = space.sample(rng)
        if space.degenerate(arch) is None and arch not in archs:
            archs.append(arch)
    return [{"arch": space.arch_to_string(a), "latency_ms": predict_latency(table, a)} for a in archs], archs


def test_ten_networks_recover_a_device_spanned_by_the_priors() -> None:
    truth = _device({"a": 0.7, "b": 0.4})
    rows, _ = _rows(truth, 10, 0)
    priors = resolve_priors("auto", SPACE, public_geometry(SPACE), exclude="synthetic")
    table = fit_with_prior(rows, truth.geometry, SPACE, priors, "synthetic")
    _, held = _rows(truth, 200, 1)
    predicted = [predict_latency(table, a) for a in held]
    measured = [predict_latency(truth, a) for a in held]
    assert spearman(predicted, measured) > 0.97
    assert np.mean(np.abs(np.array(predicted) - measured) / np.array(measured)) < 0.05
    fit = table.fingerprint["fit"]
    assert fit["method"] == "transfer" and fit["model"] in MODELS and set(fit["loo_rel_rmse"]) == set(MODELS)
    assert fit["rows"] == 10 and len(fit["priors"]) == len(priors)


def test_plain_ridge_from_ten_networks_ranks_worse_than_the_transfer_fit() -> None:
    from sdnas_deploy.hw.fit import fit_table

    truth = _device({"a": 0.2, "b": 1.1}, scale_keys=3.0)
    rows, _ = _rows(truth, 10, 2)
    _, held = _rows(truth, 300, 3)
    measured = [predict_latency(truth, a) for a in held]
    transfer = fit_with_prior(rows, truth.geometry, SPACE, shipped_tables(SPACE, "cifar"), "synthetic")
    ridge = fit_table(None, truth.geometry, rows, "synthetic", space=SPACE)

    def rho(table: LatencyTable) -> float:
        out = []
        for a in held:
            try:
                out.append(predict_latency(table, a))
            except BadInputError:  # a key none of the ten rows had: the plain fit knows nothing about it
                out.append(table.overhead_ms)
        return spearman(out, measured) or 0.0

    assert rho(transfer) > rho(ridge)


def test_scaled_prior_is_exact_for_a_scaled_device_and_loo_sees_it() -> None:
    prior = _table("titanx-b1")
    space = get_space(SPACE)
    keys = space.candidate_keys(prior.geometry)
    P = np.array([[prior.entries[k]["mean"] for k in keys] + [prior.overhead_ms]]).T
    rng = np.random.default_rng(0)
    X = np.hstack([rng.integers(0, 10, size=(8, len(keys))), np.ones((8, 1))])
    y = 1.7 * (X @ P[:, 0])
    assert np.allclose(fit_scaled(X, y, P), 1.7 * P[:, 0])
    assert loo_error(fit_scaled, X, y, P) < 1e-9


def test_errors() -> None:
    geometry = public_geometry(SPACE)
    rows, _ = _rows(_table("pixel2"), 2, 0)
    with pytest.raises(BadInputError, match="at least 3"):
        fit_with_prior(rows, geometry, SPACE, shipped_tables(SPACE, "cifar"), "x")
    with pytest.raises(BadInputError, match="no prior table"):
        fit_with_prior(rows, geometry, SPACE, [], "x")
    fbnet_table = load_table(resolve_table("raspi4", "cifar", space="fbnet"))
    with pytest.raises(BadInputError, match="holds keys of space 'fbnet'"):
        fit_with_prior(_rows(_table("pixel2"), 5, 0)[0], geometry, SPACE, [fbnet_table], "x")
    other = get_space(SPACE).geometry("cifar", input_size=32, in_channels=3, num_classes=10)
    with pytest.raises(BadInputError, match="another geometry"):
        resolve_priors("raspi4,pixel2", SPACE, other)
    with pytest.raises(BadInputError, match="no shipped table"):
        resolve_priors("auto", SPACE, other)
    assert resolve_priors("none", SPACE, geometry) == []
    assert "pixel2" not in [t.target for t in resolve_priors("auto", SPACE, geometry, exclude="pixel2")]
    with pytest.raises(BadInputError, match="empty name"):
        resolve_priors("raspi4,,pixel2", SPACE, geometry)
