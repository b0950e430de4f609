"""Every space end to end on a real dataset: search → retrain → export → ORT latency → top-1, with and without
a latency budget (issue 8 evidence).

For each space (darts, fbnet, proxyless) and its digits recipe (search/default.yaml, search/fbnet-digits.yaml,
search/proxyless-digits.yaml): the fitted `x86-cpu-ort` latency table of the recipe's deployment geometry (the
shipped one for fbnet/proxyless `small`; for darts the recipe's 8-cell × 16-ch digits network, built, measured
and fitted here like bench/budget_sweep.py), then `sdnas run` twice with the same seed — unconstrained, and with
`--latency-budget` at the 35th percentile of random architectures' measured latency (penalty `budget`, weight 2,
warm-up 2 epochs). Reports the searched architecture, predicted and measured (profile median) latency, whether
the budget held, MMAC, and ORT test top-1 of the exported model. Finished runs are reused.

    .venv/bin/python bench/space_pipeline.py [--spaces darts fbnet proxyless] [--train-epochs N] [--out runs/bench-spaces]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.io_utils import atomic_write_json, load_json  # noqa: E402

TARGET = "x86-cpu-ort"
RECIPES = {"darts": "search/default.yaml", "fbnet": "search/fbnet-digits.yaml", "proxyless": "search/proxyless-digits.yaml"}
PERCENTILE = 35


def deployment_geometry(space_name: str, recipe):
    """The geometry the recipe retrains and deploys: digits 16x16x1, 10 classes, the train section's setting."""
    from sdnas_deploy.spaces import get_space

    space = get_space(space_name)
    t = recipe.train
    return space.geometry(t.setting, input_size=16, in_channels=1, num_classes=10, layers=t.layers, channels=t.channels)


def latency_table(space: str, geometry, work: Path) -> tuple[Path, list[float]]:
    """A fitted table for ``geometry`` (shipped, else built + measured + fitted here) and random archs' latencies."""
    from sdnas_deploy.hw.build import build_table
    from sdnas_deploy.hw.fit import fit_table
    from sdnas_deploy.hw.lut import load_table, save_table
    from sdnas_deploy.hw.targets import resolve_table
    from sdnas_deploy.hw.whole import measure_many, read_measurements_csv, sample_architectures, write_measurements_csv

    csv_path = work / f"{space}_measurements.csv"
    if not csv_path.is_file():
        rows = measure_many(sample_architectures(40, 0, space, geometry.setting), geometry, backend="ort", threads=1,
                            repeats=30, progress=False, space=space)
        write_measurements_csv(csv_path, rows, {"target": TARGET, "space": space, "geometry": geometry.to_dict(),
                                                "seed": 0})
    rows = read_measurements_csv(csv_path, space)
    latencies = [float(r["latency_ms"]) for r in rows]
    try:
        shipped = load_table(resolve_table(TARGET, geometry.setting, "fitted", space))
        if shipped.geometry == geometry:
            return resolve_table(TARGET, geometry.setting, "fitted", space), latencies
    except Exception:  # noqa: BLE001  (no shipped table for this geometry: build one below)
        pass
    base_path, fitted_path = work / f"{space}_lut.json", work / f"{space}_lut_fitted.json"
    if not base_path.is_file():
        build_table(TARGET, geometry, backend="ort", repeats=50, warmup=5, threads=1, out_path=base_path,
                    progress=False, space=space)
    if not fitted_path.is_file():
        save_table(fitted_path, fit_table(load_table(base_path), geometry, rows, TARGET, space=space))
    return fitted_path, latencies


def one_run(space: str, recipe_path: str, out: Path, lut: Path, budget: float | None, train_epochs: int | None) -> dict:
    """`sdnas run` of the space's recipe (optionally under a latency budget), reusing finished stages."""
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.pipeline import run_pipeline
    from sdnas_deploy.recipes import load_recipe

    recipe = load_recipe(Path(recipe_path))
    recipe.search = override(recipe.search, lut=str(lut), latency_budget=budget, penalty="budget", penalty_weight=2.0,
                             penalty_warmup_epochs=2, latency_setting=recipe.train.setting)
    if train_epochs is not None:
        recipe.train = override(recipe.train, epochs=train_epochs)
    recipe.check = None
    start = time.perf_counter()
    summary = run_pipeline(recipe, out, resume=True, progress=False)
    search = load_json(out / "search" / "report.json", "search report")["final"]
    return {
        "space": space, "budget_ms": budget, "arch": search.get("arch_string"),
        "predicted_ms": search.get("predicted_latency_ms"), "measured_ms": summary["profile"]["median"],
        "budget_met": None if budget is None else summary["profile"]["median"] <= budget,
        "predicted_mmac": search.get("predicted_mmac"), "top1": summary["export"]["onnx_accuracy"],
        "train_top1": summary["train"]["best_top1"], "params": summary["train"]["params"],
        "supernet_val_acc": search.get("supernet_val_acc"), "wall_s": time.perf_counter() - start,
        "timings_s": summary["timings_s"],
    }


def main() -> None:
    import torch

    from sdnas_deploy.recipes import load_recipe
    from sdnas_deploy.runtime.fingerprint import environment_fingerprint

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=list(RECIPES))
    parser.add_argument("--train-epochs", type=int, default=None, help="override the recipes' train epochs")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-spaces"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "space_pipeline.json")
    args = parser.parse_args()
    torch.set_num_threads(2)  # search/train; the profile stage times ORT with the recipe's 1 thread
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def write() -> Path:  # after every run, so an interrupted bench keeps what it finished
        return atomic_write_json(args.results, {"benchmark": "space_pipeline", "target": TARGET,
                                                "date": time.strftime("%Y-%m-%d"), "percentile": PERCENTILE,
                                                "train_epochs": args.train_epochs,
                                                "fingerprint": environment_fingerprint(1), "rows": rows})
    for space in args.spaces:
        recipe = load_recipe(Path(RECIPES[space]))
        geometry = deployment_geometry(space, recipe)
        lut, latencies = latency_table(space, geometry, args.out)
        budget = float(statistics.quantiles(latencies, n=100)[PERCENTILE - 1])
        for label, value in (("none", None), ("budget", budget)):
            rows.append(one_run(space, RECIPES[space], args.out / f"{space}-{label}", lut, value, args.train_epochs))
            rows[-1]["random_ms"] = [min(latencies), statistics.median(latencies), max(latencies)]
            write()
    print(f"{'space':<10}{'budget':>8}{'pred ms':>9}{'meas ms':>9}{'met':>5}{'MMAC':>7}{'top-1':>7}  architecture")
    for r in rows:
        budget = "-" if r["budget_ms"] is None else f"{r['budget_ms']:.3f}"
        met = "-" if r["budget_met"] is None else ("yes" if r["budget_met"] else "no")
        print(f"{r['space']:<10}{budget:>8}{r['predicted_ms']:>9.3f}{r['measured_ms']:>9.3f}{met:>5}"
              f"{r['predicted_mmac']:>7.2f}{r['top1']:>7.3f}  {r['arch'][:70]}")
    print(f"wrote {write()}")


if __name__ == "__main__":
    main()
