"""DARTS vs SD-DARTS on the embedded digits at equal budget (same epochs and steps), over 3 seeds.

For each (method, seed): search with the default recipe's `search:` section (distill none vs sd), measure
the dominant Hessian eigenvalue of the val loss w.r.t. α at the last epoch, the skip_connect count of the
normal cell and the discretization gap (supernet val acc − discretized-supernet val acc), then retrain the
derived genotype with the recipe's `train:` section and record its test accuracy. Runs two searches in
parallel (one torch thread each). Finished runs are reused, so the script is resumable.

    .venv/bin/python bench/sd_vs_darts.py [--seeds 0 1 2] [--workers 2] [--out runs/bench-sd-vs-darts]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.io_utils import atomic_write_json, load_json  # noqa: E402

METHODS = ("darts", "sd-darts")
METRICS = ("dominant_eigenvalue", "skip_count_normal", "supernet_val_acc", "discretized_val_acc", "gap",
           "retrained_top1", "supernet_minus_retrained")


def one_run(method: str, seed: int, out_root: str) -> dict:
    """Search + retrain one (method, seed); returns the figures of the README table."""
    import torch

    torch.set_num_threads(1)
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.recipes import load_recipe
    from sdnas_deploy.resources import resolve_data_file
    from sdnas_deploy.nas.searcher import run_search
    from sdnas_deploy.spaces.darts.genotype import Genotype
    from sdnas_deploy.training.trainer import run_training

    recipe = load_recipe(resolve_data_file("search", "default"))
    search_cfg = override(recipe.search, seed=seed, method=method,
                          sharpness=True, sharpness_every=10_000, sharpness_iters=10, sharpness_batches=1,
                          device="cpu")
    train_cfg = override(recipe.train, seed=seed, device="cpu")
    run_dir = Path(out_root) / f"{method}-seed{seed}"
    start = time.perf_counter()
    search = _resumable(run_dir / "search", lambda resume: run_search(search_cfg, run_dir / "search", resume=resume, progress=False))
    genotype = Genotype.from_dict(search["final"]["genotype"])
    train = _resumable(run_dir / "train", lambda resume: run_training(genotype, train_cfg, run_dir / "train", resume=resume, progress=False))
    final = search["final"]
    retrained = train["final"]["best_top1"]
    return {
        "method": method, "seed": seed, "arch": final["arch_string"],
        "dominant_eigenvalue": final["dominant_eigenvalue"], "skip_count_normal": final["skip_count_normal"],
        "supernet_val_acc": final["supernet_val_acc"], "discretized_val_acc": final["discretized_val_acc"],
        "gap": final["gap"], "retrained_top1": retrained,
        "supernet_minus_retrained": final["supernet_val_acc"] - retrained,
        "step_ms": search["timing"].get("mean_step_ms_distill" if method == "sd-darts" else "mean_step_ms_plain"),
        "search_config": dataclasses.asdict(search_cfg), "wall_s": time.perf_counter() - start,
    }


def _resumable(stage_dir: Path, run) -> dict:
    """Reuse a complete stage, resume an interrupted one, else start it."""
    report = stage_dir / "report.json"
    if report.is_file() and load_json(report).get("status") == "complete":
        return load_json(report)
    return run((stage_dir / "checkpoint.pt").is_file())


def summarize(rows: list[dict]) -> dict:
    """Mean and std per method for each metric."""
    out: dict = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        out[method] = {}
        for key in METRICS:
            values = [float(r[key]) for r in mine if r.get(key) is not None]
            out[method][key] = {"mean": statistics.fmean(values) if values else None,
                                "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}
    return out


def markdown(summary: dict, rows: list[dict]) -> str:
    """README table: mean ± std over seeds, then per-seed rows."""
    head = "| method | dominant eigenvalue | skip_connect (normal) | supernet val acc | discretized val acc | gap | retrained test top-1 |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for method in METHODS:
        s = summary[method]
        cell = lambda k, f="{:.3f}": f"{f.format(s[k]['mean'])} ± {f.format(s[k]['std'])}" if s[k]["mean"] is not None else "n/a"  # noqa: E731
        lines.append(f"| {method} (n={s['gap']['n']}) | {cell('dominant_eigenvalue')} | {cell('skip_count_normal', '{:.1f}')} | "
                     f"{cell('supernet_val_acc')} | {cell('discretized_val_acc')} | {cell('gap')} | {cell('retrained_top1')} |")
    lines += ["", "| method | seed | eigenvalue | skip | supernet val | discretized val | retrained top-1 | step ms |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["method"], r["seed"])):
        lines.append(f"| {r['method']} | {r['seed']} | {r['dominant_eigenvalue']:.3f} | {r['skip_count_normal']} | "
                     f"{r['supernet_val_acc']:.3f} | {r['discretized_val_acc']:.3f} | {r['retrained_top1']:.3f} | {r['step_ms']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-sd-vs-darts")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "sd_vs_darts.json")
    args = parser.parse_args()

    jobs = [(m, s) for s in args.seeds for m in METHODS]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(one_run, m, s, args.out): (m, s) for m, s in jobs}
        rows = []
        for future in as_completed(futures):
            method, seed = futures[future]
            try:
                rows.append(future.result())
            except Exception:  # report which run failed, keep the others going (each is resumable)
                print(f"{method} seed {seed} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
                continue
            print(f"done: {method} seed {seed}: retrained top-1 {rows[-1]['retrained_top1']:.3f}", flush=True)
    summary = summarize(rows)
    table = markdown(summary, rows)
    print(table)
    atomic_write_json(args.results, {"benchmark": "sd_vs_darts", "date": time.strftime("%Y-%m-%d"),
                                     "seeds": args.seeds, "summary": summary, "rows": rows, "markdown": table})
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
