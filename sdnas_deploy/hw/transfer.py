"""Few-shot latency tables: fit a new device's table from ~10 measured networks, with other devices' tables as a prior.

A per-key table fitted from 10 networks alone is underdetermined (FBNet's CIFAR network has 106 keys), so plain
ridge ranks networks poorly (Spearman ρ ≈ 0.3–0.6 on FBNet). Devices differ, but mostly by how they weigh the same
operators, so a new device's table is sought near the span of known tables. With ``P`` the prior tables (one
column per device: every key's cost and the overhead), ``X`` the key counts of the measured networks and ``y`` their
latencies, three candidate tables are fitted, all non-negative and all in relative error (rows weighted by 1/y,
so a 2 ms and a 40 ms network count alike):

1. ``scaled``: the single prior ``s · P_j`` that fits best (a device like a known one, only faster or slower);
2. ``mixture``: ``P a`` with ``a ≥ 0`` (non-negative least squares, a little ridge on ``a``);
3. ``mixture+correction``: the mixture plus a per-key correction, ``argmin ‖X w − y‖² + λ‖w − P a‖²`` over ``w ≥ 0``
   (``fit.nnls_ridge``), so keys the measurements do constrain may move away from the prior.

The one with the smallest leave-one-out error on the measurements is kept (with n = 10 the choice costs ten fits
each; above 20 rows, 10-fold cross-validation). The result is an ordinary additive table (``method: fitted``): the differentiable search penalty uses it as
any other. ``bench/lut_transfer.py`` measures it leave-one-device-out on the public data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import BadInputError
from ..spaces import Geometry, get_space
from .fit import design_matrix, fit_fingerprint, nnls_ridge
from .lut import LatencyTable
from .rows import row_genotypes

MODELS = ("scaled", "mixture", "mixture+correction")
MIN_ROWS = 3
LOO_MAX_ROWS = 20  # leave-one-out up to this many rows, else FOLDS-fold cross-validation
FOLDS = 10
MIXTURE_L2 = 1e-3  # relative ridge on the mixture weights a
CORRECTION_L2 = 1.0  # relative ridge pulling the per-key correction toward the mixture


@dataclass(frozen=True)
class Prior:
    """A prior table by name (its target) with its cost vector over the keys (and overhead last)."""

    name: str
    vector: np.ndarray


def prior_vectors(priors: Sequence[LatencyTable], keys: Sequence[str], space: str, geometry: Geometry) -> list[Prior]:
    """Each prior table as a vector over ``keys`` + overhead; a table of another space or geometry, or one missing
    a key, is refused in one line."""
    found = []
    for table in priors:
        table.check_space(space, f"prior {table.target!r}")
        table.check_geometry(geometry)
        missing = [k for k in keys if k not in table.entries]
        if missing:
            raise BadInputError(f"prior table {table.target!r} has no entry {missing[0]!r} ({len(missing)} missing); "
                                "use a prior fitted for the whole space, or --prior none")
        found.append(Prior(table.target, np.array([float(table.entries[k]["mean"]) for k in keys]
                                                  + [float(table.overhead_ms)])))
    return found


def _relative(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return X / y[:, None], np.ones_like(y)


def _scale(A: np.ndarray) -> float:
    return float(np.mean(np.sum(A**2, axis=0)))


def fit_scaled(X: np.ndarray, y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The best single prior, scaled (relative least squares, scale ≥ 0)."""
    Z = (X @ P) / y[:, None]
    best, best_err = P[:, 0] * 0.0, np.inf
    for j in range(P.shape[1]):
        z = Z[:, j]
        s = max(float(z.sum() / (z @ z)), 0.0) if z @ z > 0 else 0.0
        err = float(np.mean((s * z - 1.0) ** 2))
        if err < best_err:
            best, best_err = s * P[:, j], err
    return best


def fit_mixture(X: np.ndarray, y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """A non-negative combination of the priors."""
    Z, ones = _relative(X @ P, y)
    a = nnls_ridge(Z, ones, MIXTURE_L2 * _scale(Z))
    return P @ a


def fit_corrected(X: np.ndarray, y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The mixture plus a ridge-regularised, non-negative per-key correction."""
    base = fit_mixture(X, y, P)
    A, ones = _relative(X, y)
    return nnls_ridge(A, ones, CORRECTION_L2 * _scale(A), base)


FITS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "scaled": fit_scaled, "mixture": fit_mixture, "mixture+correction": fit_corrected,
}


def loo_error(fit: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
              P: np.ndarray) -> float:
    """Root mean squared relative error of ``fit`` predicting held-out rows: leave-one-out up to
    :data:`LOO_MAX_ROWS` rows, else :data:`FOLDS`-fold (interleaved folds, deterministic)."""
    n = len(y)
    folds = n if n <= LOO_MAX_ROWS else FOLDS
    errors = []
    for fold in range(folds):
        held = np.arange(fold, n, folds)
        keep = np.ones(n, dtype=bool)
        keep[held] = False
        w = fit(X[keep], y[keep], P)
        errors.extend((((X[held] @ w) - y[held]) / y[held]) ** 2)
    return float(np.sqrt(np.mean(errors)))


def transfer_weights(X: np.ndarray, y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, str, dict[str, float]]:
    """(weights over keys + overhead, the model kept, leave-one-out error of each model)."""
    if len(y) < MIN_ROWS:
        raise BadInputError(f"a few-shot fit needs at least {MIN_ROWS} measured networks, got {len(y)}")
    errors = {name: loo_error(fit, X, y, P) for name, fit in FITS.items()}
    choice = min(MODELS, key=lambda name: errors[name])
    return FITS[choice](X, y, P), choice, errors


def fit_with_prior(
    rows: Sequence[Mapping[str, Any]], geometry: Geometry, space: str, priors: Sequence[LatencyTable],
    target: str, provenance: Mapping[str, Any] | None = None,
) -> LatencyTable:
    """A ``method="fitted"`` table for a new device from a few ``rows`` (``arch``, ``latency_ms``) and ``priors``."""
    if not priors:
        raise BadInputError("no prior table to fit with; pass --prior auto (the shipped tables of this space and "
                            "geometry), a list of targets, or --prior none for a plain fit")
    impl = get_space(space)
    keys = impl.candidate_keys(geometry)
    vectors = prior_vectors(priors, keys, space, geometry)
    archs, y = row_genotypes(rows, space)
    X = design_matrix(archs, geometry, space, keys)[1]
    P = np.stack([p.vector for p in vectors], axis=1)
    w, choice, errors = transfer_weights(X, np.asarray(y, dtype=np.float64), P)
    seen = X[:, :-1] > 0
    entries = {}
    for j, k in enumerate(keys):
        value = float(w[j])
        entries[k] = {"count": max(int(seen[:, j].sum()), 1), "mean": value, "std": value, "p50": value, "p90": value}
    residual = (X @ w - y) / y
    info = {"method": "transfer", "rows": len(rows), "model": choice,
            "loo_rel_rmse": {name: round(err, 6) for name, err in errors.items()},
            "priors": [p.name for p in vectors], "fitted_keys": len(keys),
            "keys_in_rows": int(seen.any(axis=0).sum()), "unseen_keys": int((~seen.any(axis=0)).sum()),
            "train_mean_abs_pct_error": float(np.mean(np.abs(residual)) * 100), "base": None}
    return LatencyTable(target=target, fingerprint=fit_fingerprint(None, provenance, info), geometry=geometry,
                        method="fitted", overhead_ms=float(w[-1]), entries=entries, space=impl.name)
