"""Latency-budget sweep on the embedded digits: does `--latency-budget` hold when measured? (issue 3 evidence)

Workflow a user would follow for the digits deployment network (the default recipe's `train:` geometry,
8 cells × 16 ch, 16×16×1, 10 classes) on this machine's CPU with ONNX Runtime:
1. `lut build` the per-op table for that geometry; 2. `lut measure` 40 random architectures and `lut fit`
the table to them; 3. pick 3 budgets from the spread of random architectures' measured latency;
4. for each budget and once without one (same seed), search (default recipe + `--lut fitted --latency-budget B --penalty budget`), retrain
the derived cell (recipe `train:`, 20 epochs), and measure the derived network end to end.
Prints a table, writes bench/results/budget_sweep.json and budget_sweep.png. Finished runs are reused.

    .venv/bin/python bench/budget_sweep.py [--workers 2] [--out runs/bench-budget-sweep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.spaces.darts.geometry import NetworkGeometry  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json, load_json  # noqa: E402

TARGET = "x86-cpu-ort"
GEOMETRY = NetworkGeometry("cifar", layers=8, channels=16, input_size=16, in_channels=1, num_classes=10)
PERCENTILES = (10, 35, 70)


def fitted_table(work: Path) -> tuple[Path, list[float]]:
    """Build + measure + fit the digits-geometry table (cached); returns its path and the measured latencies."""
    from sdnas_deploy.hw.build import build_table
    from sdnas_deploy.hw.fit import fit_table
    from sdnas_deploy.hw.lut import load_table, save_table
    from sdnas_deploy.hw.whole import measure_many, read_measurements_csv, sample_architectures, write_measurements_csv

    base_path, csv_path, fitted_path = work / "lut_digits.json", work / "digits_measurements.csv", work / "lut_digits_fitted.json"
    if not base_path.is_file():
        build_table(TARGET, GEOMETRY, backend="ort", repeats=50, warmup=5, threads=1, out_path=base_path,
                    resume=False, progress=False)
    if not csv_path.is_file():
        rows = measure_many(sample_architectures(40, 0), GEOMETRY, backend="ort", threads=1, repeats=30, progress=False)
        write_measurements_csv(csv_path, rows, {"target": TARGET, "geometry": GEOMETRY.to_dict(), "seed": 0})
    rows = read_measurements_csv(csv_path)
    if not fitted_path.is_file():
        save_table(fitted_path, fit_table(load_table(base_path), GEOMETRY, rows, TARGET))
    return fitted_path, [float(r["latency_ms"]) for r in rows]


def one_budget(budget: float | None, lut: str, out_root: str) -> dict:
    """Search with the budget (None: the unconstrained baseline, same seed), retrain, measure; reuse finished stages."""
    import torch

    torch.set_num_threads(1)
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.hw.whole import measure_network
    from sdnas_deploy.nas.searcher import run_search
    from sdnas_deploy.recipes import load_recipe
    from sdnas_deploy.resources import resolve_data_file
    from sdnas_deploy.spaces.darts.genotype import Genotype
    from sdnas_deploy.training.trainer import run_training

    recipe = load_recipe(resolve_data_file("search", "default"))
    search_cfg = override(recipe.search, lut=lut, latency_setting="cifar", latency_budget=budget, penalty="budget",
                          penalty_weight=2.0, penalty_warmup_epochs=2, device="cpu", seed=0)
    name = "no-budget" if budget is None else f"budget-{budget:.4f}"
    train_cfg = override(recipe.train, epochs=20, device="cpu", seed=0)
    run_dir = Path(out_root) / name
    search = _stage(run_dir / "search", lambda r: run_search(search_cfg, run_dir / "search", resume=r, progress=False))
    genotype = Genotype.from_dict(search["final"]["genotype"])
    train = _stage(run_dir / "train", lambda r: run_training(genotype, train_cfg, run_dir / "train", resume=r, progress=False))
    measured = measure_network(genotype, GEOMETRY, backend="ort", threads=1, repeats=50)
    final = search["final"]
    return {"budget_ms": budget, "arch": final["arch_string"], "predicted_ms": final["predicted_latency_ms"],
            "measured_ms": float(measured["p50"]), "measured_p90_ms": float(measured["p90"]),
            "budget_met_predicted": final["latency_budget_met"],
            "budget_met_measured": None if budget is None else float(measured["p50"]) <= budget,
            "predicted_mmac": final["predicted_mmac"], "test_top1": train["final"]["best_top1"]}


def _stage(stage_dir: Path, run) -> dict:
    report = stage_dir / "report.json"
    if report.is_file() and load_json(report).get("status") == "complete":
        return load_json(report)
    return run((stage_dir / "checkpoint.pt").is_file())


def plot(path: Path, rows: list[dict], random_ms: list[float]) -> None:
    """Accuracy vs measured latency of the searched networks, with their budgets and the random spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(rows):
        if r["budget_ms"] is None:
            ax.scatter([r["measured_ms"]], [r["test_top1"]], color="black", marker="x", zorder=3,
                       label=f"no budget: measured {r['measured_ms']:.3f} ms")
            continue
        ax.axvline(r["budget_ms"], linestyle=":", alpha=0.7, color=f"C{i}")
        ax.scatter([r["measured_ms"]], [r["test_top1"]], color=f"C{i}", zorder=3,
                   label=f"budget {r['budget_ms']:.3f} ms: measured {r['measured_ms']:.3f} ms")
    ax.axvspan(min(random_ms), max(random_ms), color="grey", alpha=0.1, label="random architectures (measured range)")
    ax.set_xlabel("measured latency, ms (ORT CPU, batch 1, 1 thread)")
    ax.set_ylabel("test top-1 (digits)")
    ax.set_title("latency-budgeted SD-DARTS search on digits")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-budget-sweep")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    lut, random_ms = fitted_table(work)
    qs = statistics.quantiles(random_ms, n=100)
    budgets = [round(qs[p - 1], 4) for p in PERCENTILES]
    rows = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(one_budget, b, str(lut), args.out): b for b in [*budgets, None]}
        for future in as_completed(futures):
            try:
                rows.append(future.result())
            except Exception:
                print(f"budget {futures[future]} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: (r["budget_ms"] is None, r["budget_ms"] or 0.0))
    print(f"random architectures: {len(random_ms)} measured, {min(random_ms):.3f}..{max(random_ms):.3f} ms; "
          f"budgets at their p{PERCENTILES[0]}/p{PERCENTILES[1]}/p{PERCENTILES[2]}")
    print(f"{'budget ms':>10}{'predicted':>11}{'measured':>10}{'met':>6}{'MMAC':>8}{'top-1':>8}")
    for r in rows:
        met = "-" if r["budget_met_measured"] is None else ("yes" if r["budget_met_measured"] else "NO")
        budget = "none" if r["budget_ms"] is None else f"{r['budget_ms']:.3f}"
        print(f"{budget:>10}{r['predicted_ms']:>11.3f}{r['measured_ms']:>10.3f}{met:>6}{r['predicted_mmac']:>8.2f}"
              f"{r['test_top1']:>8.3f}")
    plot(args.results / "budget_sweep.png", rows, random_ms)
    atomic_write_json(args.results / "budget_sweep.json", {
        "benchmark": "budget_sweep", "date": time.strftime("%Y-%m-%d"), "target": TARGET,
        "geometry": GEOMETRY.to_dict(), "random_latency_ms": random_ms, "budget_percentiles": PERCENTILES,
        "rows": rows})
    print(f"wrote {args.results / 'budget_sweep.json'}")


if __name__ == "__main__":
    main()
