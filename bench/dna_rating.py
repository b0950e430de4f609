"""Does DNA's blockwise rating rank architectures correctly? Kendall τ against retrained accuracy (issue 10).

1. A teacher: the `dna` space's largest `small` network (k7_e6_se everywhere), trained on digits with the
   `search/dna-digits.yaml` train section. Its stages are the student setting's, so every student architecture is
   also an architecture of the one-shot supernet below.
2. DNA: the recipe's search section with that teacher, every path of every block rated exhaustively.
3. One-shot baseline: a DARTS-style supernet of the same space and setting (`--method darts`, softmax mixture,
   same data), trained for ``--oneshot-epochs``; an architecture's rating is the supernet's val accuracy with its
   one-hot weights after BatchNorm re-estimation (the usual one-shot proxy).
4. ``--archs`` architectures spread over the DNA rating range (ranks evenly spaced among 5,000 random ones) are
   retrained with the recipe (``RETRAIN_EPOCHS`` epochs, seed 0); τ(−DNA score, retrained top-1) and
   τ(one-shot accuracy, retrained top-1).

    .venv/bin/python bench/dna_rating.py [--archs 12] [--workers 2] [--out runs/bench-dna-rating]
        [--dataset fashion-mnist --limit 4000 --image-size 16]

Prints a table and writes ``bench/results/dna_rating[_DATASET].json``. On digits every architecture retrains to
0.98-0.997 test top-1, inside one run's noise, so the ranking is only testable on a harder dataset.
"""

from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dna_common import (DNA_TEACHER, RETRAIN_EPOCHS, ROOT, add_data_args, cached, data_of, kendall_tau, recipe,
                        retrain, train_teacher)

from sdnas_deploy.io_utils import atomic_write_json, load_json


def dna_scores(teacher: Path, out: Path, data: dict) -> tuple[dict, float]:
    """The DNA search (exhaustive rating) and its wall time."""
    import torch

    torch.set_num_threads(2)
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.nas.searcher import run_search

    config = override(recipe().search, device="cpu", teacher=str(teacher), flops_budget=None, rate_max=1296,
                      top_k=1, **data)
    started = time.perf_counter()
    cached(out, lambda r: run_search(config, out, resume=r, progress=False))
    return load_json(out / "ratings.json"), time.perf_counter() - started


def oneshot_supernet(out: Path, epochs: int, data: dict):
    """A DARTS-style supernet of the dna/small space, trained (or restored) in ``out``."""
    import torch

    torch.set_num_threads(2)
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.nas.searcher import SearchRun

    r = recipe().search
    config = override(r, device="cpu", method="darts", teacher=None, flops_budget=None, epochs=epochs,
                      steps_per_epoch=None, lr=0.1, arch_lr=3e-3, seed=0, **data)
    run = SearchRun(config, out, show_progress=False)
    if (out / "report.json").is_file() and load_json(out / "report.json").get("status") == "complete":
        run.restore()
    else:
        out.mkdir(parents=True, exist_ok=True)
        run.run()
    return run


def arch_score(arch_blocks: list[str], ratings: dict, candidates: tuple[str, ...]) -> float:
    """Σ over blocks of the rated score of the architecture's path through that block."""
    total = 0.0
    for block in ratings["blocks"]:
        path = [candidates.index(arch_blocks[layer]) for layer in block["layers"]]
        match = next(r for r in block["ratings"] if r["path"] == path)
        total += match["score"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--oneshot-epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-dna-rating")
    add_data_args(parser)
    args = parser.parse_args()
    data = data_of(args)
    out = Path(args.out) / args.dataset
    from sdnas_deploy.spaces import get_space

    space = get_space("dna")
    started = time.perf_counter()
    teacher = train_teacher(DNA_TEACHER, out, data, args.teacher_epochs)
    ratings, dna_s = dna_scores(teacher, out / "dna", data)
    rng = random.Random(0)
    pool = {space.sample(rng, "small") for _ in range(args.pool)}
    scored = sorted((arch_score(list(a.blocks), ratings, space.candidates), a.blocks) for a in pool)
    picks = [scored[round(i * (len(scored) - 1) / (args.archs - 1))] for i in range(args.archs)]
    oneshot_started = time.perf_counter()
    run = oneshot_supernet(out / "oneshot", args.oneshot_epochs, data)
    oneshot_s = time.perf_counter() - oneshot_started
    rows = []
    for score, blocks in picks:
        arch = space.arch_from_dict({"space": "dna", "blocks": list(blocks)})
        masks = space.discretize(arch, run.model)
        rows.append({"arch": space.arch_to_string(arch), "arch_json": space.arch_to_dict(arch), "dna_score": score,
                     "oneshot_val_acc": run.accuracy(run.data.val_half, masks)})
    with ProcessPoolExecutor(max_workers=args.workers) as workers:
        n = len(rows)
        results = list(workers.map(retrain, [r["arch_json"] for r in rows], [0] * n, [str(out)] * n, [None] * n,
                                   [data] * n))
    for row, result in zip(rows, results):
        row["retrained_top1"] = result["top1"]
        row["macs"] = result["macs"]
    acc = [r["retrained_top1"] for r in rows]
    summary = {
        "tau_dna": kendall_tau([-r["dna_score"] for r in rows], acc),
        "tau_oneshot": kendall_tau([r["oneshot_val_acc"] for r in rows], acc),
        "archs": len(rows), "dna_search_s": dna_s, "oneshot_search_s": oneshot_s,
        "oneshot_epochs": args.oneshot_epochs, "retrain_epochs": RETRAIN_EPOCHS,
        "teacher": DNA_TEACHER, "data": {"dataset": args.dataset, **data}, "total_s": time.perf_counter() - started,
    }
    print(f"{'DNA score':>9} {'one-shot acc':>12} {'retrained':>9} {'MMAC':>6}  architecture (dna/small)")
    for r in rows:
        print(f"{r['dna_score']:9.4f} {r['oneshot_val_acc']:12.3f} {r['retrained_top1']:9.3f} "
              f"{r['macs'] / 1e6:6.2f}  {r['arch']}")
    print(f"Kendall τ vs retrained top-1: DNA rating {summary['tau_dna']:.3f}, one-shot supernet "
          f"{summary['tau_oneshot']:.3f} ({len(rows)} architectures)")
    name = "dna_rating.json" if args.dataset == "digits" else f"dna_rating_{args.dataset.replace('-', '_')}.json"
    atomic_write_json(ROOT / "bench" / "results" / name, {"summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
