"""DNA vs SD-DARTS vs random search on one space, data and budget, over seeds (issue 10).

Space `dna` (`small` setting), the embedded digits, a FLOPs budget (``--budget`` MMAC), seeds 0, 1, 2:
- **DNA**: `search/dna-digits.yaml`'s search section with its teacher (FBNet `small`, k5_e6 everywhere, trained once
  with the recipe's train section; its cost is reported once, beside the per-seed search cost); the student takes
  the teacher's stage widths;
- **SD-DARTS**: the same space and setting (the setting's own widths), `--method sd-darts`, the budget as a hinge
  penalty plus the budgeted derive, the FBNet digits recipe's search hyperparameters;
- **random**: uniformly random architectures of the setting until one is within the budget (rejection sampling).
Each architecture is retrained with the recipe (``RETRAIN_EPOCHS`` epochs, the seed's seed) and its latency
measured here (ONNX Runtime, 1 thread, batch 1). Also: the DNA architectures retrained with the teacher as a
distillation target (`sdnas train --teacher`, w 0.5, T 4).

    .venv/bin/python bench/dna_vs.py [--seeds 0 1 2] [--budget 3.0] [--workers 2] [--out runs/bench-dna-vs]
        [--dataset fashion-mnist --limit 4000 --image-size 16]

Prints a table and writes ``bench/results/dna_vs[_DATASET].json``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dna_common import RETRAIN_EPOCHS, ROOT, add_data_args, cached, data_of, latency_ms, recipe, retrain, train_teacher

from sdnas_deploy.io_utils import atomic_write_json

SD_SEARCH = {"method": "sd-darts", "relax": "gumbel", "epochs": 8, "batch_size": 64, "steps_per_epoch": 5, "lr": 0.1,
             "arch_lr": 3e-3, "teachers": 3, "teacher_interval": 3, "distill_warmup_epochs": 2,
             "penalty": "budget", "penalty_weight": 2.0, "penalty_warmup_epochs": 2}  # search/fbnet-digits.yaml's


def search_one(method: str, seed: int, budget: float, teacher: str, out_root: str, data: dict) -> dict:
    """One search; returns the architecture JSON, its predicted MMAC and the search's wall time."""
    import torch

    torch.set_num_threads(1)
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.hw.flops import predict_flops
    from sdnas_deploy.nas.searcher import run_search
    from sdnas_deploy.spaces import get_space

    space = get_space("dna")
    out = Path(out_root) / f"{method}-seed{seed}"
    started = time.perf_counter()
    if method == "random":
        rng = random.Random(seed)
        geometry = space.geometry("small", input_size=data.get("image_size", 16), in_channels=1, num_classes=10)
        tries = 0
        while True:
            tries += 1
            arch = space.sample(rng, "small")
            if predict_flops(space, arch, geometry) <= budget:
                break
        return {"method": method, "seed": seed, "arch": space.arch_to_dict(arch), "search_s": 0.0, "tries": tries}
    base = recipe().search
    if method == "dna":
        config = override(base, device="cpu", seed=seed, teacher=teacher, flops_budget=budget, **data)
    else:
        config = override(base, device="cpu", seed=seed, teacher=None, teacher_arch=None, flops_budget=budget,
                          **SD_SEARCH, **data)
    report = cached(out, lambda r: run_search(config, out, resume=r, progress=False))
    return {"method": method, "seed": seed, "arch": report["final"]["genotype"],
            "search_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-dna-vs")
    add_data_args(parser)
    args = parser.parse_args()
    data = data_of(args)
    out = Path(args.out) if args.dataset == "digits" else Path(args.out) / args.dataset
    started = time.perf_counter()
    teacher_spec = recipe().search.teacher_arch
    teacher = train_teacher(teacher_spec, out, data, args.teacher_epochs)
    teacher_s = time.perf_counter() - started
    jobs = [(m, s) for m in ("dna", "sd-darts", "random") for s in args.seeds]
    n = len(jobs)
    with ProcessPoolExecutor(max_workers=args.workers) as workers:
        found = list(workers.map(search_one, [m for m, _ in jobs], [s for _, s in jobs], [args.budget] * n,
                                 [str(teacher)] * n, [str(out)] * n, [data] * n))
        trained = list(workers.map(retrain, [f["arch"] for f in found], [f["seed"] for f in found], [str(out)] * n,
                                   [None] * n, [data] * n))
        dna = [f for f in found if f["method"] == "dna"]
        distilled = list(workers.map(retrain, [f["arch"] for f in dna], [f["seed"] for f in dna],
                                     [str(out)] * len(dna), [str(teacher)] * len(dna), [data] * len(dna)))
    from sdnas_deploy.spaces import arch_from_json

    rows = []
    for f, t in [*zip(found, trained), *(({**f, "method": "dna + teacher KD"}, t) for f, t in zip(dna, distilled))]:
        space, arch = arch_from_json(f["arch"])
        rows.append({**f, "arch_string": space.arch_to_string(arch), "top1": t["top1"], "macs_m": t["macs"] / 1e6,
                     "params": t["params"], "latency_ms": latency_ms(f["arch"], data.get("image_size", 16))})
    summary = {}
    for method in ("dna", "dna + teacher KD", "sd-darts", "random"):
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {k: statistics.mean(r[k] for r in mine) for k in ("top1", "macs_m", "latency_ms", "search_s")}
        summary[method]["top1_std"] = statistics.pstdev(r["top1"] for r in mine)
    print(f"{'method':18s} {'seed':>4} {'top-1':>6} {'MMAC':>6} {'ms (here)':>9} {'search s':>8}  architecture")
    for r in rows:
        print(f"{r['method']:18s} {r['seed']:>4} {r['top1']:6.3f} {r['macs_m']:6.2f} {r['latency_ms']:9.3f} "
              f"{r['search_s']:8.0f}  {r['arch_string']}")
    print(f"\nmeans over seeds {args.seeds} (budget {args.budget} MMAC; DNA's teacher trained once in {teacher_s:.0f} s):")
    for method, s in summary.items():
        print(f"{method:18s} top-1 {s['top1']:.3f} ± {s['top1_std']:.3f}  {s['macs_m']:.2f} MMAC  "
              f"{s['latency_ms']:.3f} ms  search {s['search_s']:.0f} s")
    name = "dna_vs.json" if args.dataset == "digits" else f"dna_vs_{args.dataset.replace('-', '_')}.json"
    atomic_write_json(ROOT / "bench" / "results" / name, {
        "data": {"dataset": args.dataset, **data}, "budget_mmac": args.budget, "seeds": args.seeds, "retrain_epochs": RETRAIN_EPOCHS, "teacher": teacher_spec,
        "teacher_train_s": teacher_s, "summary": summary, "rows": rows,
        "latency": "p50 ms, ONNX Runtime CPU, 1 thread, batch 1, median of 5 sessions, on the bench machine"})


if __name__ == "__main__":
    main()
