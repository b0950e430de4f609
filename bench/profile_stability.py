"""Is `sdnas profile` stable enough to gate on, on this machine? The same model profiled N times.

Each run opens a fresh ONNX Runtime session (ORT CPU, 1 intra-op thread, batch 1) and goes through
`profile_model` exactly as `sdnas profile` does (warm-up, timed calls for a fixed duration). We report
per run the median, p90, p99 and CoV, and over runs the *spread of the medians*
((max - min) / median of medians, in %), the same spread of p90 and p99, and the mean CoV. A latency gate compares one run's figure
against a threshold, so its tolerance must sit well above the run-to-run spread, or the gate flakes.
Writes bench/results/profile_stability.json.

    .venv/bin/python bench/profile_stability.py [--model export/demo/model.onnx] [--runs 5] [--duration-s 3]
        [--warmup-s 1] [--tolerance-pct 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdnas_deploy.profile.api import profile_model  # noqa: E402
from sdnas_deploy.profile.report import render_table  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "export" / "demo" / "model.onnx")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--duration-s", type=float, default=3.0)
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tolerance-pct", type=float, default=10.0,
                   help="gate tolerance (%% above a baseline median) to judge the spread against")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "profile_stability.json")
    return p.parse_args()


def summarize_runs(runs: list[dict], tolerance_pct: float) -> dict:
    """Spread of the medians and mean CoV over runs, and whether a gate at ``tolerance_pct`` would be safe.

    Safe means the worst run-to-run spread is at most half the tolerance: a gate at +tolerance then
    does not fail a model whose true latency did not change, even for an unlucky run.
    """
    medians = [r["median_ms"] for r in runs]
    mid = statistics.median(medians)
    spread = (max(medians) - min(medians)) / mid * 100.0

    def spread_of(key: str) -> float:
        values = [r[key] for r in runs]
        return (max(values) - min(values)) / statistics.median(values) * 100.0
    return {
        "runs": len(runs),
        "median_of_medians_ms": mid,
        "min_median_ms": min(medians),
        "max_median_ms": max(medians),
        "spread_of_medians_pct": spread,
        "spread_of_p90_pct": spread_of("p90_ms"),
        "spread_of_p99_pct": spread_of("p99_ms"),
        "mean_cov_pct": statistics.fmean(r["cov_pct"] for r in runs),
        "max_cov_pct": max(r["cov_pct"] for r in runs),
        "tolerance_pct": tolerance_pct,
        "stable_enough": spread <= tolerance_pct / 2,
    }


def main() -> None:
    args = parse_args()
    runs = []
    report = None
    for i in range(args.runs):
        report = profile_model(args.model, backend="ort", device="cpu", batch=1, warmup_s=args.warmup_s,
                               duration_s=args.duration_s, threads=args.threads)
        s = report["stats"]
        runs.append({"run": i + 1, "median_ms": s["median"], "p90_ms": s["p90"], "p99_ms": s["p99"],
                     "mean_ms": s["mean"], "cov_pct": s["cov"] * 100.0, "calls": s["n"]})
    summary = summarize_runs(runs, args.tolerance_pct)
    rows = [[str(r["run"]), f"{r['median_ms']:.4f}", f"{r['p90_ms']:.4f}", f"{r['p99_ms']:.4f}",
             f"{r['cov_pct']:.2f} %", str(r["calls"])] for r in runs]
    print(render_table(f"{args.model.name}: {args.runs} runs x {args.duration_s:g} s, ORT CPU, "
                       f"{args.threads} thread, batch 1 (ms)",
                       ["run", "median", "p90", "p99", "cov", "calls"], rows))
    verdict = "below" if summary["stable_enough"] else "NOT below"
    print(f"spread of medians: {summary['spread_of_medians_pct']:.2f} % "
          f"({summary['min_median_ms']:.4f}..{summary['max_median_ms']:.4f} ms), "
          f"mean CoV {summary['mean_cov_pct']:.2f} % (max {summary['max_cov_pct']:.2f} %); "
          f"spread of p90 {summary['spread_of_p90_pct']:.2f} %, of p99 {summary['spread_of_p99_pct']:.2f} %")
    print(f"the spread is {verdict} half of a {args.tolerance_pct:g} % gate tolerance on the median: "
          + ("gates on the median with that tolerance are stable here"
             if summary["stable_enough"] else "use a larger tolerance, a longer duration, or a quieter machine"))
    assert report is not None
    atomic_write_json(args.out, {
        "model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
        "settings": {"backend": "ort", "device": "cpu", "threads": args.threads, "batch": 1,
                     "duration_s": args.duration_s, "warmup_s": args.warmup_s, "runs": args.runs},
        "runs": runs, "summary": summary, "timed": report["timed"], "fingerprint": report["fingerprint"],
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
