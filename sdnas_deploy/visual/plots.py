"""Plots of one run, written as PNG files into its directory (``plots/``).

- search: softmax(α) per edge/layer and candidate over the epochs (one heatmap per α label), supernet vs
  discretized validation accuracy, the dominant Hessian eigenvalue and skip counts when recorded, and the
  expected vs predicted latency (or MMAC) with the budget line when the search had one;
- train: loss and top-1 per epoch;
- profile: the latency histogram of the timed calls with p50/p90/p99 marked.

Every function takes a run's JSON data (``report.json``, ``alpha_history.json``, ``profile.json``, read by
``visual.report``), so old runs can be plotted again (``sdnas report``). Each returns
``[(caption, path), ...]`` of what it wrote; a run that lacks a quantity gets no plot of it rather than an
empty one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..io_utils import atomic_write_bytes

Plot = tuple[str, Path]
DPI = 110


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _series(epochs: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for record in epochs:
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            xs.append(int(record.get("epoch", len(xs) + 1)))
            ys.append(float(value))
    return xs, ys


ChoiceNames = Callable[[str], Sequence[str]]  # α label -> candidate names (Space.choice_names)


def alpha_heatmaps(history: Sequence[dict[str, Any]], out_dir: Path, choices: ChoiceNames | None = None
                   ) -> list[Plot]:
    """One heatmap per α label: rows = (edge or layer, candidate), columns = epochs, colour = softmax(α)."""
    import numpy as np

    plt = _pyplot()
    plots: list[Plot] = []
    labels = [k for k in (history[0] if history else {}) if k != "epoch"]
    for label in labels:
        frames = [np.asarray(h[label], dtype=float) for h in history if label in h]
        if not frames or frames[0].ndim != 2:
            continue
        rows, ops = frames[0].shape
        matrix = np.stack([f.reshape(-1) for f in frames], axis=1)  # [rows*ops, epochs]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(frames) + 3.0), max(3.0, 0.09 * rows * ops + 1.2)))
        image = ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=float(matrix.min()),
                          vmax=max(float(matrix.max()), float(matrix.min()) + 1e-6), interpolation="nearest")
        for r in range(1, rows):
            ax.axhline(r * ops - 0.5, color="white", lw=0.6)
        names = list(choices(label) if choices else []) or [str(k) for k in range(ops)]
        if len(names) == ops and rows * ops <= 160:
            ax.set_yticks(range(rows * ops))
            ax.set_yticklabels([f"{r}:{names[k]}" if k == 0 else names[k] for r in range(rows) for k in range(ops)],
                               fontsize=5)
        else:
            ax.set_yticks([r * ops + ops / 2 - 0.5 for r in range(rows)])
            ax.set_yticklabels([str(r) for r in range(rows)], fontsize=6)
        ax.set_xticks(range(len(frames)))
        ax.set_xticklabels([str(h.get("epoch", i + 1)) for i, h in enumerate(history)], fontsize=6)
        ax.set_xlabel("epoch")
        ax.set_ylabel("edge / layer : candidate")
        ax.set_title(f"softmax(α) — {label}")
        fig.colorbar(image, ax=ax, fraction=0.04)
        plots.append((f"softmax(α) of the {label} choices over the epochs",
                      _save(fig, out_dir / f"alpha_{label}.png")))
    return plots


def search_plots(report: dict[str, Any], history: Sequence[dict[str, Any]], out_dir: Path,
                 choices: ChoiceNames | None = None) -> list[Plot]:
    """Every plot of a search run (module docstring): its report and its α history (may be empty)."""
    epochs = report.get("epochs") or []
    plt = _pyplot()
    plots: list[Plot] = alpha_heatmaps(history, out_dir, choices)
    xs, sup = _series(epochs, "supernet_val_acc")
    _, disc = _series(epochs, "discretized_val_acc")
    if xs:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        ax.plot(xs, sup, "o-", label="supernet")
        if len(disc) == len(xs):
            ax.plot(xs, disc, "s-", label="discretized (derived cell)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation top-1")
        ax.legend()
        ax.grid(alpha=0.3)
        plots.append(("supernet vs discretized validation accuracy", _save(fig, out_dir / "accuracy.png")))
    ex, eig = _series(epochs, "dominant_eigenvalue")
    skips = {k: _series(epochs, k) for k in ("skip_count_normal", "skip_count_reduce", "skip_count")}
    skips = {k: v for k, v in skips.items() if v[0]}
    if ex or skips:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        if ex:
            ax.plot(ex, eig, "o-", color="#d62728", label="dominant eigenvalue")
            ax.set_ylabel("dominant Hessian eigenvalue")
        if skips:
            other = ax.twinx() if ex else ax
            for key, (sx, sy) in skips.items():
                other.step(sx, sy, where="mid", label=key.replace("_", " "))
            other.set_ylabel("skip_connect count")
            other.legend(loc="upper right")
        ax.set_xlabel("epoch")
        if ex:
            ax.legend(loc="upper left")
        plots.append(("sharpness and skip counts", _save(fig, out_dir / "sharpness_skips.png")))
    plots += _cost_plot(report, epochs, out_dir)
    return plots


def _cost_plot(report: dict[str, Any], epochs: Sequence[dict[str, Any]], out_dir: Path) -> list[Plot]:
    config = report.get("config") or {}
    for unit, expected, predicted, budget in (("ms", "expected_latency_ms", "predicted_latency_ms", "latency_budget"),
                                              ("MMAC", "expected_mmac", "predicted_mmac", "flops_budget")):
        xs, exp = _series(epochs, expected)
        px, pred = _series(epochs, predicted)
        if not (xs or px):
            continue
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        if xs:
            ax.plot(xs, exp, "o-", label="expected under softmax(α)")
        if px:
            ax.plot(px, pred, "s-", label="predicted for the derived architecture")
        if isinstance(config.get(budget), (int, float)):
            ax.axhline(float(config[budget]), color="#d62728", ls="--", label=f"budget {config[budget]:g} {unit}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.legend()
        ax.grid(alpha=0.3)
        return [(f"expected vs predicted cost ({unit})", _save(fig, out_dir / "cost.png"))]
    return []


def train_plots(report: dict[str, Any], out_dir: Path) -> list[Plot]:
    """Loss and top-1 curves of a training run (its report)."""
    history = report.get("history") or []
    xs, train_loss = _series(history, "train_loss")
    if not xs:
        return []
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(xs, train_loss, "o-", label="train")
    tx, test_loss = _series(history, "test_loss")
    left.plot(tx, test_loss, "s-", label="test")
    left.set_title("loss")
    for key, label in (("train_top1", "train"), ("test_top1", "test"), ("test_top5", "test top-5")):
        kx, ky = _series(history, key)
        if kx:
            right.plot(kx, ky, "o-", label=label)
    right.set_title("top-1")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return [("training loss and accuracy", _save(fig, out_dir / "training.png"))]


def profile_plot(profile: dict[str, Any], out_dir: Path) -> list[Plot]:
    """The latency histogram of a profile report, with p50/p90/p99 marked (needs its ``samples_ms``)."""
    samples = profile.get("samples_ms") or []
    if not samples:
        return []
    plt = _pyplot()
    stats = profile.get("stats") or {}
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    import numpy as np

    low, high = max(min(samples), 1e-6), max(samples)
    spread = high / low > 10  # a long tail (a busy machine) would squash the body into one linear bin
    bins = np.geomspace(low, high, 60) if spread else 60
    ax.hist(samples, bins=bins, color="#9ecae1", edgecolor="#3182bd")
    if spread:
        ax.set_xscale("log")
    for key, colour in (("p50", "#2ca02c"), ("p90", "#ff7f0e"), ("p99", "#d62728")):
        if isinstance(stats.get(key), (int, float)):
            ax.axvline(stats[key], color=colour, ls="--", label=f"{key} {stats[key]:.3f} ms")
    ax.set_xlabel("latency per call (ms)")
    ax.set_ylabel("calls")
    ax.set_title(f"{profile.get('backend', '')} on {profile.get('device', '')}, batch {profile.get('batch', '')}")
    ax.legend()
    return [("latency histogram", _save(fig, out_dir / "latency_histogram.png"))]


def compare_trajectories(per_method: dict[str, Sequence[dict[str, Any]]], metrics: Sequence[tuple[str, str]],
                         path: Path, title: str = "") -> Path:
    """One panel per metric (key, label): its mean ± std over seeds per epoch, one line per method.

    ``per_method[method]`` is a list of ``{"epoch": n, key: {"mean": m, "std": s, "n": k}}`` (what the
    method-comparison benchmarks summarize); epochs where a metric was not measured are left out.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], metrics):
        for method, rows in per_method.items():
            points = [(r["epoch"], r[key]["mean"], r[key]["std"]) for r in rows
                      if isinstance(r.get(key), dict) and r[key].get("mean") is not None]
            if not points:
                continue
            xs, means, stds = (list(column) for column in zip(*points))
            ax.plot(xs, means, marker="o", markersize=3, label=method)
            ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], alpha=0.15)
        ax.set_xlabel("search epoch")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
