"""Supernet search speed per space: plain DARTS vs SD-DARTS (voting teachers) on the current device.

Runs the real search loop (`sdnas_deploy.nas.searcher.run_search`) for a fixed config and reads the
per-step timings it records. ``--space`` picks the space (darts: ``--layers``/``--channels`` cells; fbnet and
proxyless: their ``small`` layout, as the digits recipes search). On CUDA it also compares AMP/channels_last
variants. Prints a table and writes JSON under bench/results/ (``search_speed_<device>.json`` for darts,
``search_speed_<device>_<space>.json`` otherwise).

    .venv/bin/python bench/search_speed.py [--space darts|fbnet|proxyless] [--device cpu|cuda] [--steps 20] [--batch 64]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.config_utils import to_dict  # noqa: E402
from sdnas_deploy.runtime.fingerprint import environment_fingerprint  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.nas.config import SearchConfig  # noqa: E402
from sdnas_deploy.nas.searcher import run_search  # noqa: E402


def variants(device: str) -> list[tuple[str, dict]]:
    """(label, config overrides) to time; AMP/channels_last only where CUDA is present."""
    base = [("darts", {"method": "darts"}), ("sd-darts", {"method": "sd-darts"})]
    if not device.startswith("cuda"):
        return [(name, {**o, "amp": "off"}) for name, o in base]
    out = []
    for name, o in base:
        out.append((f"{name} fp32", {**o, "amp": "off", "channels_last": False}))
        out.append((f"{name} amp", {**o, "amp": "auto", "channels_last": False}))
        out.append((f"{name} amp+cl", {**o, "amp": "auto", "channels_last": True}))
    return out


def measure(label: str, overrides: dict, args: argparse.Namespace) -> dict:
    """One short search run; returns its timing block plus images/s."""
    sizes = {"layers": args.layers, "channels": args.channels} if args.space == "darts" else {}
    config = SearchConfig(
        space=args.space, dataset="digits", epochs=1, batch_size=args.batch, steps_per_epoch=args.steps,
        device=args.device, seed=0, distill_warmup_epochs=0, teacher_interval=1, **sizes, **overrides,
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = run_search(config, Path(tmp), progress=False)
        wall = time.perf_counter() - start
    timing = report["timing"]
    step_ms = timing["mean_step_ms_distill"] if overrides["method"] == "sd-darts" else timing["mean_step_ms_plain"]
    return {
        "variant": label,
        "config": to_dict(config),
        "mean_step_ms": step_ms,
        "teacher_ms": timing.get("teacher_ms"),
        "steps_per_s": 1000.0 / step_ms if step_ms else None,
        "images_per_s": args.batch * 1000.0 / step_ms if step_ms else None,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="darts", help="darts, fbnet or proxyless")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed search steps per variant")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    rows = [measure(label, o, args) for label, o in variants(args.device)]
    plain = next(r for r in rows if r["variant"].startswith("darts"))
    shape = f"{args.layers} cells, C={args.channels}" if args.space == "darts" else "the small layout"
    print(f"search speed on {args.device} ({platform.node()}): {args.space} space, digits 16x16, {shape}, batch {args.batch}")
    print(f"{'variant':<22}{'step ms':>10}{'teacher ms':>12}{'steps/s':>10}{'img/s':>10}{'vs darts':>10}")
    for r in rows:
        teacher = f"{r['teacher_ms']:.1f}" if r["teacher_ms"] is not None and "sd" in r["variant"] else "-"
        print(f"{r['variant']:<22}{r['mean_step_ms']:>10.1f}{teacher:>12}{r['steps_per_s']:>10.2f}"
              f"{r['images_per_s']:>10.1f}{r['mean_step_ms'] / plain['mean_step_ms']:>9.2f}x")
    tag = "cuda" if args.device.startswith("cuda") else "cpu"
    name = f"search_speed_{tag}.json" if args.space == "darts" else f"search_speed_{tag}_{args.space}.json"
    path = atomic_write_json(args.out / name, {
        "benchmark": "search_speed", "space": args.space, "date": time.strftime("%Y-%m-%d"), "device": args.device,
        "fingerprint": environment_fingerprint(torch.get_num_threads()), "torch": torch.__version__,
        "rows": rows,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
