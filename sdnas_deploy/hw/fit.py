"""Fit an additive per-key latency table from whole-network measurements (`sdnas lut fit`, DESIGN.md §2).

Runtimes fuse ops (conv+BN+ReLU, adds into convs), so per-op microbenchmarks can add up badly. Here a
network's latency is modelled as ``overhead + Σ count(key) · w[key]`` with the counts from the
space's ``network_keys``; the weights come from non-negative, ridge-regularised least squares,

    minimise ‖X w − y‖² + λ ‖w − w_base‖²  subject to  w ≥ 0,

solved exactly as an NNLS problem on the stacked system ``[X; √λ I] w ≈ [y; √λ w_base]``. The user's
``l2`` is relative: λ = l2 · mean_j Σ_i X_ij², so one value means the same pull for 20 or 200 rows. ``w_base`` is
the microbenchmark table when one is given (so keys the rows barely constrain stay near what was
measured), else 0 (plain ridge). The constant column becomes ``overhead_ms``: session overhead, adds,
concats and whatever fusion saves or costs per network land there.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import BadInputError
from ..spaces import LEGACY_SPACE, Geometry, Space, get_space
from .lut import LatencyTable
from .rows import row_genotypes  # noqa: F401  (re-exported)

DEFAULT_L2 = 1.0  # relative λ (see fit_table); ~best held-out error on CPU measurements of tiny nets
OVERHEAD = "overhead_ms"


def nnls_ridge(
    X: np.ndarray, y: np.ndarray, l2: float = DEFAULT_L2, w0: np.ndarray | None = None
) -> np.ndarray:
    """``argmin ‖Xw − y‖² + l2·‖w − w0‖²`` over ``w ≥ 0`` (scipy NNLS on the stacked system)."""
    from scipy.optimize import nnls

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"nnls_ridge: X {X.shape} and y {y.shape} do not match")
    if l2 < 0:
        raise BadInputError(f"--l2 must be >= 0, got {l2}")
    n_features = X.shape[1]
    w0 = np.zeros(n_features) if w0 is None else np.asarray(w0, dtype=np.float64)
    if l2 > 0:
        A = np.vstack([X, np.sqrt(l2) * np.eye(n_features)])
        b = np.concatenate([y, np.sqrt(l2) * w0])
    else:
        A, b = X, y
    w, _ = nnls(A, b, maxiter=50 * max(n_features, 1))
    return w


def design_matrix(
    genotypes: Sequence[Any], geometry: Geometry, space: Space | str = LEGACY_SPACE, keys: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, list[Counter[str]]]:
    """The keys (``keys`` as given, else the sorted keys seen in any row), the count matrix ``X`` (rows × keys, plus
    a final column of ones) and each row's key counts."""
    impl = get_space(space) if isinstance(space, str) else space
    counts = [impl.network_keys(g, geometry) for g in genotypes]
    keys = sorted(set().union(*counts)) if keys is None else list(keys)
    index = {k: j for j, k in enumerate(keys)}
    X = np.zeros((len(counts), len(keys) + 1))
    for i, c in enumerate(counts):
        for k, n in c.items():
            X[i, index[k]] = n
    X[:, -1] = 1.0
    return keys, X, counts


def fit_fingerprint(
    base: LatencyTable | None, provenance: Mapping[str, Any] | None, info: dict[str, Any]
) -> dict[str, Any]:
    """The base table's fingerprint, else this machine's overlaid with the CSV's provenance; plus ``fit``."""
    prov = dict(provenance or {})
    if base is not None:
        fp = dict(base.fingerprint)
    else:
        from .build import build_fingerprint

        backend = str(prov.get("backend", "ort"))
        threads = int(prov.get("threads", 1)) if str(prov.get("threads", "1")).isdigit() else 1
        fp = build_fingerprint(backend if backend in ("ort", "torch", "trt") else "ort", threads)
        fp.update({k: v for k, v in prov.items() if isinstance(v, (str, int, float, bool)) or v is None})
        fp["key"] = prov.get("fingerprint_key", fp.get("key"))  # where the networks were measured
    fp["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    fp["fit"] = dict(info, measurements=prov)
    return fp


def fit_table(
    base: LatencyTable | None,
    geometry: Geometry,
    rows: Sequence[Mapping[str, Any]],
    target: str,
    l2: float = DEFAULT_L2,
    provenance: Mapping[str, Any] | None = None,
    space: str = LEGACY_SPACE,
) -> LatencyTable:
    """A ``method="fitted"`` table from whole-network ``rows`` (dicts with ``arch``, ``latency_ms``).

    Entries of keys seen in the rows hold the fitted weight as ``mean`` and also as ``std``, ``p50``
    and ``p90`` (a fit gives one number per key, not a distribution); ``count`` is how many rows
    contain the key. Keys never seen keep the base table's entry (without a base they are absent,
    and ``fingerprint["fit"]["unseen_keys"]`` says how many base keys were kept unfitted).
    """
    if base is not None:
        base.check_space(space)
        base.check_geometry(geometry)
    genotypes, y = row_genotypes(rows, space)
    keys, X, counts = design_matrix(genotypes, geometry, space)
    w0 = None
    if base is not None:
        w0 = np.array([float(base.entries[k]["mean"]) if k in base.entries else 0.0 for k in keys]
                      + [float(base.overhead_ms)])
    if l2 < 0:
        raise BadInputError(f"--l2 must be >= 0, got {l2}")
    lam = l2 * float(np.mean(np.sum(X**2, axis=0)))
    w = nnls_ridge(X, y, lam, w0)
    rows_with = {k: sum(1 for c in counts if k in c) for k in keys}
    entries: dict[str, dict[str, Any]] = dict(base.entries) if base is not None else {}
    for j, k in enumerate(keys):
        value = float(w[j])
        entries[k] = {"count": rows_with[k], "mean": value, "std": value, "p50": value, "p90": value}
    unseen = sorted(set(base.entries) - set(keys)) if base is not None else []
    residual = X @ w - y
    info = {
        "rows": len(rows), "l2": l2, "lambda": lam, "fitted_keys": len(keys), "unseen_keys": len(unseen),
        "base": None if base is None else {"method": base.method, "date": base.fingerprint.get("date")},
        "train_mean_abs_pct_error": float(np.mean(np.abs(residual) / y) * 100),
    }
    return LatencyTable(
        target=target, fingerprint=fit_fingerprint(base, provenance, info), geometry=geometry, method="fitted",
        overhead_ms=float(w[-1]), entries=entries, space=space,
    )


def cross_validate(
    rows: Sequence[Mapping[str, Any]],
    geometry: Geometry,
    k: int = 5,
    base: LatencyTable | None = None,
    l2: float = DEFAULT_L2,
    seed: int = 0,
    space: str = LEGACY_SPACE,
) -> dict[str, Any]:
    """k-fold held-out accuracy of :func:`fit_table` (metrics of :func:`validate.compare` over all folds)."""
    from .lut import predict_latency
    from .validate import compare

    if k < 2 or k > len(rows):
        raise BadInputError(f"cross-validation needs 2 <= k <= rows ({len(rows)}), got k={k}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    predicted, measured = [], []
    for fold in range(k):
        held = set(order[fold::k])
        train = [rows[i] for i in order if i not in held]
        table = fit_table(base, geometry, train, "cv", l2=l2, space=space)
        for i in sorted(held):
            genotypes, y = row_genotypes([rows[i]], space)
            try:
                predicted.append(predict_latency(table, genotypes[0]))
            except BadInputError:  # a key only the held-out row has and no base to fall back on
                continue
            measured.append(float(y[0]))
    return compare(predicted, measured)
