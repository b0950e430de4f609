"""Supernet search speed: DARTS vs SD-DARTS (snapshot / cached teachers) vs PC-DARTS, memory, and 2-process DDP.

Every variant runs the real search loop (``nas.searcher.run_search``) in its own process (so its peak memory
is its own) and reads the per-step times the loop records: the mean of the distilling steps for SD-DARTS
(cached teachers distil from the second epoch, so that variant runs one extra epoch first), of the plain
steps otherwise. ``darts (stock CPU ops)`` runs with SDNAS_STOCK_CPU_OPS=1: the step without
``spaces.cpu_layout``, the baseline the speed targets are measured against. Two sizes of the DARTS space:

- ``demo``: 5 cells x 8 channels, batch 64, the embedded digits (16x16x1), as ``sdnas run`` searches;
- ``reference``: 8 cells x 16 channels, batch 64, 32x32x3 images (the DARTS CIFAR search shape; random RGB
  images written once as an image folder, since CIFAR-10 is not on this machine).

``--ddp`` also times the demo config in 2 processes (torchrun, gloo) against 1 and reports images/s. ``--space
fbnet|proxyless`` configs time the layer-wise spaces' ``small`` layout (no PC-DARTS rows there). Prints a table and writes
bench/results/search_speed_<device>_<configs>.json; ratios are within one run (this VM is noisy).

    .venv/bin/python bench/search_speed.py [--configs demo,reference,fbnet,proxyless] [--steps 8] [--ddp]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.runtime.fingerprint import environment_fingerprint  # noqa: E402

CONFIGS = {
    "demo": {"layers": 5, "channels": 8, "batch_size": 64, "dataset": "digits"},
    "reference": {"layers": 8, "channels": 16, "batch_size": 64, "dataset": "imagefolder", "image_size": 32},
    "fbnet": {"space": "fbnet", "batch_size": 64, "dataset": "digits"},  # the small layout (layer-wise space)
    "proxyless": {"space": "proxyless", "batch_size": 64, "dataset": "digits"},
}
CELL_ONLY = ("partial_channels", "edge_norm")  # PC-DARTS options exist for the cell spaces only
VARIANTS = {  # label -> SearchConfig overrides
    "darts (stock CPU ops)": {"method": "darts"},  # the step before spaces.cpu_layout (run with STOCK_ENV)
    "darts": {"method": "darts"},
    "sd-darts (snapshots)": {"method": "sd-darts", "teachers_from": "snapshots"},
    "sd-darts (cache)": {"method": "sd-darts", "teachers_from": "cache"},
    "pc-darts K=4": {"method": "darts", "partial_channels": 4, "edge_norm": True},
    "darts channels_last": {"method": "darts", "channels_last": True},
    "pc-darts K=4 channels_last": {"method": "darts", "partial_channels": 4, "edge_norm": True, "channels_last": True},
}
STOCK_ENV = {"darts (stock CPU ops)": {"SDNAS_STOCK_CPU_OPS": "1"}}  # label -> extra environment
MB = 1024.0  # ru_maxrss is in KiB on Linux


def random_image_folder(root: Path, per_class: int = 64, classes: int = 10, size: int = 32) -> Path:
    """``root/train`` and ``root/val`` of random RGB PNGs (written once): the reference shape without CIFAR."""
    import numpy as np
    from PIL import Image

    if (root / "val").is_dir():
        return root
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 8)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def child(spec: dict) -> None:
    """Run one variant in this process and print its timing and memory as one JSON line."""
    from sdnas_deploy.nas.config import SearchConfig
    from sdnas_deploy.nas.searcher import run_search

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = SearchConfig(**spec["config"])
    with tempfile.TemporaryDirectory() as tmp:
        report = run_search(config, Path(tmp), progress=False)
    timing = report["timing"]
    distilled = spec["config"].get("method") == "sd-darts"
    step = timing["mean_step_ms_distill"] if distilled else timing["mean_step_ms_plain"]
    print(json.dumps({"step_ms": step, "teacher_ms": timing.get("teacher_ms") if distilled else None,
                      "rss_start_mb": rss_start / MB,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB}))


def run_variant(config: dict, env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps({"config": config})], capture_output=True,
                          text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"error: variant failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ddp_rows(args: argparse.Namespace, data_dir: Path | None) -> list[dict]:
    """The demo config (plain DARTS) with 1 process (2 threads) and 2 processes (1 thread each, gloo)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        common = ["search", "--method", "darts", "--layers", "5", "--channels", "8", "--batch-size", "64",
                  "--epochs", "1", "--steps-per-epoch", str(args.steps), "--device", "cpu", "--json"]
        for nproc in (1, 2):
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // nproc))}
            prefix = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
                      if nproc > 1 else [sys.executable])
            done = subprocess.run([*prefix, "-m", "sdnas_deploy", *common, "--out", f"{tmp}/p{nproc}"],
                                  capture_output=True, text=True, env=env, timeout=3600)
            if done.returncode != 0:
                raise SystemExit(f"error: ddp run failed: {done.stderr.strip()[-400:]}")
            report = json.loads(done.stdout[done.stdout.index("{"):])
            step = report["timing"]["mean_step_ms_plain"]
            batch = report["parallel"]["global_batch"]
            rows.append({"processes": nproc, "threads_each": int(env["OMP_NUM_THREADS"]), "global_batch": batch,
                         "step_ms": step, "images_per_s": batch * 1000.0 / step})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--configs", default="demo,reference")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=8, help="timed search steps per variant")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="off", help="off, or auto/bf16/fp16 on CUDA")
    parser.add_argument("--ddp", action="store_true", help="also time 2 processes (torchrun, gloo) against 1")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--suffix", default="", help="appended to the results file name (keeps earlier runs)")
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    cache = Path(tempfile.gettempdir()) / "sdnas-bench-rgb32"
    results: dict = {"benchmark": "search_speed", "date": time.strftime("%Y-%m-%d"), "device": args.device,
                     "fingerprint": environment_fingerprint(torch.get_num_threads()), "steps": args.steps, "configs": {}}
    for name in args.configs.split(","):
        base = dict(CONFIGS[name])
        if base["dataset"] == "imagefolder":
            base["data_dir"] = str(random_image_folder(cache))
        rows = []
        for label in args.variants.split(","):
            overrides = VARIANTS[label]
            if "space" in base and any(k in overrides for k in CELL_ONLY):
                continue
            epochs = 2 if overrides.get("teachers_from") == "cache" else 1
            config = {**base, **overrides, "epochs": epochs, "steps_per_epoch": args.steps, "device": args.device,
                      "amp": args.amp, "seed": 0, "distill_warmup_epochs": 0, "teacher_interval": 1, "limit": 1280}
            config.setdefault("channels_last", False)
            env = {**os.environ, **STOCK_ENV[label]} if label in STOCK_ENV else None
            row = {"variant": label, **run_variant(config, env)}
            rows.append(row)
            print(f"{name:10} {label:28} step {row['step_ms']:8.1f} ms  peak RSS {row['peak_rss_mb']:7.0f} MB", flush=True)
        darts = next(r for r in rows if r["variant"] == "darts")["step_ms"]
        stock = next((r["step_ms"] for r in rows if r["variant"] in STOCK_ENV), None)
        for r in rows:
            r["vs_darts"] = r["step_ms"] / darts
            r["speedup_vs_darts"] = darts / r["step_ms"]
            r["speedup_vs_stock_darts"] = stock / r["step_ms"] if stock else None
        results["configs"][name] = {"config": base, "rows": rows}
    if args.ddp:
        results["ddp"] = ddp_rows(args, None)
    print()
    for name, block in results["configs"].items():
        print(f"{name}: {block['config']}")
        print(f"  {'variant':28}{'step ms':>10}{'vs darts':>10}{'faster than stock darts':>25}{'peak RSS MB':>13}")
        for r in block["rows"]:
            faster = f"{r['speedup_vs_stock_darts']:.2f}x" if r["speedup_vs_stock_darts"] else "-"
            print(f"  {r['variant']:28}{r['step_ms']:>10.1f}{r['vs_darts']:>9.2f}x{faster:>25}{r['peak_rss_mb']:>13.0f}")
    for r in results.get("ddp", []):
        print(f"ddp: {r['processes']} process(es) x {r['threads_each']} thread(s): global batch {r['global_batch']}, "
              f"step {r['step_ms']:.0f} ms, {r['images_per_s']:.1f} images/s")
    tag = "cuda" if args.device.startswith("cuda") else "cpu"
    name = "_".join(args.configs.split(","))
    path = atomic_write_json(args.out / f"search_speed_{tag}_{name}{args.suffix}.json", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
