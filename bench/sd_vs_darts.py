"""DARTS vs SD-DARTS (snapshot and cached voting teachers) at equal budget over seeds, with per-epoch trajectories.

For each (method, seed) the search records, per epoch: the dominant Hessian eigenvalue of the val loss w.r.t. α
(every ``sharpness_every`` epochs and at the last), the skip_connect count of the normal cell and the
discretization gap (supernet val acc − discretized-supernet val acc). The genotype derived at each epoch of
``retrain_epochs`` is retrained with the setup's ``train`` settings and its test accuracy recorded; identical
genotypes of one seed are retrained once. Two setups:

- ``digits``: the default recipe's ``search:``/``train:`` sections on the embedded digits (the first table);
- ``fashion``: Fashion-MNIST (DESIGN.md §11; Debian's ``dataset-fashion-mnist``), a fixed 2,560-image subset at
  16x16 (1,280 weight-train / 1,280 arch-val images, 20 full steps per epoch), 8 epochs, 3 methods.

Writes the JSON (and for ``fashion`` a plot of the per-epoch means, beside it). Runs ``--workers`` jobs in parallel (one torch thread each). Finished stages are reused and interrupted ones
resumed, so the script can be stopped and started again; run again, it only rebuilds the table.

    .venv/bin/python bench/sd_vs_darts.py --setup fashion [--seeds 0 1 2] [--workers 2]
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

METHODS = {  # label -> search config overrides
    "darts": {"method": "darts"},
    "sd-darts": {"method": "sd-darts", "teachers_from": "snapshots"},
    "sd-darts-cache": {"method": "sd-darts", "teachers_from": "cache"},
}
_SHARPNESS = {"sharpness": True, "sharpness_iters": 10, "sharpness_batches": 1}
SETUPS = {
    "digits": {
        "methods": ("darts", "sd-darts"),
        "search": {**_SHARPNESS, "sharpness_every": 10_000},
        "train": {},
        "retrain_epochs": (),  # the last epoch only
        "results": "sd_vs_darts.json",
    },
    "fashion": {
        "methods": ("darts", "sd-darts", "sd-darts-cache"),
        "search": {**_SHARPNESS, "sharpness_iters": 6, "sharpness_every": 2,
                   "dataset": "fashion-mnist", "limit": 2560, "image_size": 16, "layers": 5, "channels": 8,
                   "epochs": 8, "steps_per_epoch": None, "batch_size": 64, "teachers": 3, "teacher_interval": 5,
                   "distill_warmup_epochs": 2},
        "train": {"dataset": "fashion-mnist", "limit": 3000, "image_size": 16, "setting": "cifar", "layers": 6,
                  "channels": 16, "epochs": 6, "batch_size": 64, "lr": 0.05, "cutout": 4, "drop_path_prob": 0.1,
                  "auxiliary": False},
        "retrain_epochs": (4,),  # and the last epoch
        "results": "sd_vs_darts_fashion.json",
    },
}
METRICS = ("dominant_eigenvalue", "skip_count_normal", "supernet_val_acc", "discretized_val_acc", "gap",
           "retrained_top1", "supernet_minus_retrained")


def one_run(setup_name: str, method: str, seed: int, out_root: str, retrain_epochs: tuple[int, ...] | None = None) -> dict:
    """Search + retrains of one (method, seed); returns its final figures and per-epoch trajectory."""
    import torch

    torch.set_num_threads(1)
    from sdnas_deploy.config_utils import from_mapping, override
    from sdnas_deploy.nas.config import SearchConfig
    from sdnas_deploy.nas.searcher import run_search
    from sdnas_deploy.recipes import load_recipe
    from sdnas_deploy.resources import resolve_data_file
    from sdnas_deploy.spaces import SPACES
    from sdnas_deploy.training.trainer import run_training

    setup = SETUPS[setup_name]
    recipe = load_recipe(resolve_data_file("search", "default"))
    # merged as a mapping, not by override(): a setup may set a recipe value back to None (steps_per_epoch)
    search_cfg = from_mapping(SearchConfig, {**dataclasses.asdict(recipe.search), "seed": seed, "device": "cpu",
                                             **setup["search"], **METHODS[method]}, "bench setup")
    train_cfg = override(recipe.train, seed=seed, device="cpu", **setup["train"])
    run_dir = Path(out_root) / f"{method}-seed{seed}"
    start = time.perf_counter()
    search = _resumable(run_dir / "search", lambda resume: run_search(search_cfg, run_dir / "search", resume=resume, progress=False))
    epochs = search["epochs"]
    extra = setup["retrain_epochs"] if retrain_epochs is None else retrain_epochs
    wanted = sorted({e for e in extra if e < len(epochs)} | {len(epochs)})  # 1-based epochs
    # an earlier run's retrains of other epochs are reported too (a resumed bench may ask for fewer)
    wanted += [e for e in range(1, len(epochs)) if e not in wanted and (run_dir / f"train-epoch{e}" / "report.json").is_file()]
    retrained: dict[str, float] = {}  # arch string -> test top-1 (one retrain per distinct genotype)
    trajectory = []
    for number, record in enumerate(epochs, start=1):
        arch = record["arch_string"]
        if number in wanted and arch not in retrained:
            stage = run_dir / f"train-epoch{number}"
            genotype = SPACES["darts"].arch_from_dict(record["genotype"])
            train = _resumable(stage, lambda resume: run_training(genotype, train_cfg, stage, resume=resume, progress=False))
            retrained[arch] = train["final"]["best_top1"]
        trajectory.append({
            "epoch": number, "arch": arch, "dominant_eigenvalue": record.get("dominant_eigenvalue"),
            "skip_count_normal": record["skip_count_normal"], "skip_count_reduce": record.get("skip_count_reduce"),
            "supernet_val_acc": record["supernet_val_acc"], "discretized_val_acc": record["discretized_val_acc"],
            "gap": record["gap"], "retrained_top1": retrained.get(arch) if number in wanted else None,
        })
    final = search["final"]
    last = trajectory[-1]
    timing = search["timing"]
    return {
        "method": method, "seed": seed, "arch": final["arch_string"],
        "dominant_eigenvalue": final["dominant_eigenvalue"], "skip_count_normal": final["skip_count_normal"],
        "supernet_val_acc": final["supernet_val_acc"], "discretized_val_acc": final["discretized_val_acc"],
        "gap": final["gap"], "retrained_top1": last["retrained_top1"],
        "supernet_minus_retrained": final["supernet_val_acc"] - last["retrained_top1"],
        "step_ms": timing.get("mean_step_ms_distill") or timing.get("mean_step_ms_plain"),
        "epochs": trajectory, "search_config": dataclasses.asdict(search_cfg),
        "train_config": dataclasses.asdict(train_cfg), "wall_s": time.perf_counter() - start,
    }


def _resumable(stage_dir: Path, run) -> dict:
    """Reuse a complete stage, resume an interrupted one, else start it."""
    report = stage_dir / "report.json"
    if report.is_file() and load_json(report).get("status") == "complete":
        return load_json(report)
    return run((stage_dir / "checkpoint.pt").is_file())


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def summarize(rows: list[dict], methods: tuple[str, ...]) -> dict:
    """Mean and std per method for each final metric, and per epoch for each trajectory metric."""
    out: dict = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        out[method] = {key: _stats([float(r[key]) for r in mine if r.get(key) is not None]) for key in METRICS}
        per_epoch = []
        for number in range(1, max((len(r["epochs"]) for r in mine), default=0) + 1):
            at = [r["epochs"][number - 1] for r in mine if len(r["epochs"]) >= number]
            per_epoch.append({"epoch": number, **{key: _stats([float(e[key]) for e in at if e.get(key) is not None])
                                                  for key in ("dominant_eigenvalue", "skip_count_normal", "gap",
                                                              "supernet_val_acc", "retrained_top1")}})
        out[method]["per_epoch"] = per_epoch
    return out


def _cell(stat: dict, fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(stat['mean'])} ± {fmt.format(stat['std'])}" if stat["mean"] is not None else "–"


def markdown(summary: dict, rows: list[dict], methods: tuple[str, ...]) -> str:
    """README tables: final mean ± std over seeds, the per-epoch trajectory, then per-seed rows."""
    lines = ["| method | dominant eigenvalue | skip_connect (normal) | supernet val acc | discretized val acc | gap | retrained test top-1 |",
             "|---|---|---|---|---|---|---|"]
    for method in methods:
        s = summary[method]
        lines.append(f"| {method} (n={s['gap']['n']}) | {_cell(s['dominant_eigenvalue'])} | {_cell(s['skip_count_normal'], '{:.1f}')} | "
                     f"{_cell(s['supernet_val_acc'])} | {_cell(s['discretized_val_acc'])} | {_cell(s['gap'])} | {_cell(s['retrained_top1'])} |")
    lines += ["", "| epoch | " + " | ".join(f"{m}: eigenvalue / skips / gap / retrained" for m in methods) + " |",
              "|---|" + "---|" * len(methods)]
    depth = max((len(summary[m]["per_epoch"]) for m in methods), default=0)
    for i in range(depth):
        cells = []
        for m in methods:
            e = summary[m]["per_epoch"][i] if i < len(summary[m]["per_epoch"]) else None
            cells.append(" / ".join((_cell(e["dominant_eigenvalue"]), _cell(e["skip_count_normal"], "{:.1f}"),
                                     _cell(e["gap"]), _cell(e["retrained_top1"]))) if e else "")
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    lines += ["", "| method | seed | eigenvalue | skip | supernet val | discretized val | retrained top-1 | step ms |",
              "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["method"], r["seed"])):
        lines.append(f"| {r['method']} | {r['seed']} | {r['dominant_eigenvalue']:.3f} | {r['skip_count_normal']} | "
                     f"{r['supernet_val_acc']:.3f} | {r['discretized_val_acc']:.3f} | {r['retrained_top1']:.3f} | {r['step_ms']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", choices=sorted(SETUPS), default="digits")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), help="default: the setup's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--retrain-epochs", type=int, nargs="*", help="epochs (1-based) whose genotype is retrained "
                        "besides the last; default: the setup's")
    parser.add_argument("--out", help="default: runs/bench-sd-vs-darts[-SETUP]")
    parser.add_argument("--results", type=Path, help="default: bench/results/<the setup's file>")
    args = parser.parse_args()
    setup = SETUPS[args.setup]
    methods = tuple(args.methods or setup["methods"])
    out = args.out or ("runs/bench-sd-vs-darts" + ("" if args.setup == "digits" else f"-{args.setup}"))
    results = args.results or Path(__file__).parent / "results" / setup["results"]

    jobs = [(m, s) for s in args.seeds for m in methods]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        retrain = None if args.retrain_epochs is None else tuple(args.retrain_epochs)
        futures = {pool.submit(one_run, args.setup, m, s, out, retrain): (m, s) for m, s in jobs}
        rows = []
        for future in as_completed(futures):
            method, seed = futures[future]
            try:
                rows.append(future.result())
            except Exception:  # report which run failed, keep the others going (each is resumable)
                print(f"{method} seed {seed} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
                continue
            print(f"done: {method} seed {seed}: retrained top-1 {rows[-1]['retrained_top1']:.3f} "
                  f"({rows[-1]['wall_s']:.0f} s)", flush=True)
    summary = summarize(rows, methods)
    table = markdown(summary, rows, methods)
    print(table)
    atomic_write_json(results, {"benchmark": "sd_vs_darts", "setup": args.setup, "date": time.strftime("%Y-%m-%d"),
                                "seeds": args.seeds, "methods": list(methods), "summary": summary, "rows": rows,
                                "markdown": table})
    print(f"wrote {results}")
    if args.setup != "digits":  # the digits run has one epoch of figures only
        from sdnas_deploy.visual.plots import compare_trajectories

        picture = compare_trajectories(
            {m: summary[m]["per_epoch"] for m in methods},
            [("dominant_eigenvalue", "dominant eigenvalue of the α Hessian"), ("skip_count_normal", "skip_connect (normal cell)"),
             ("gap", "discretization gap (val acc)"), ("supernet_val_acc", "supernet val acc")],
            results.with_suffix(".png"), title=f"{args.setup}: mean ± std over seeds {args.seeds}")
        print(f"wrote {picture}")


if __name__ == "__main__":
    main()
