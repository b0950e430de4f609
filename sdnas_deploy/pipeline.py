"""`sdnas run`: the whole pipeline — search → train → export → profile → check — in one run directory.

Each stage writes into its own sub-folder and is resumable (``resume=True`` continues the stage's
checkpoint; a finished stage is not redone). The summary (``report.json``) holds one row per stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .errors import GateFailedError
from .io_utils import atomic_write_json, load_json
from .progress import log
from .recipes import Recipe


def _stage_done(report_path: Path, epochs: int) -> bool:
    """True when a stage's report says all its epochs ran (so --resume skips it)."""
    if not report_path.is_file():
        return False
    report = load_json(report_path, "stage report")
    return len(report.get("epochs", [])) >= epochs and "final" in report


def run_pipeline(recipe: Recipe, out_dir: Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run every stage of ``recipe`` into ``out_dir``; return the summary (also written to report.json).

    Raises GateFailedError (exit 4) at the end when the check stage fails, after writing the summary.
    """
    from .deploy.profiler import profile_onnx
    from .exporting import check_model, export_weights
    from .nas.searcher import run_search
    from .spaces import load_arch
    from .training.trainer import run_training

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "recipe.json", recipe.to_dict())
    timings: dict[str, float] = {}

    def stage(name: str) -> float:
        log(f"== {name} ==")
        return time.perf_counter()

    t0 = stage("search")
    search_dir = out_dir / "search"
    search_resume = resume and (search_dir / "checkpoint.pt").is_file()
    search_report = run_search(recipe.search, search_dir, resume=search_resume, progress=progress)
    timings["search_s"] = time.perf_counter() - t0

    t0 = stage("train")
    space, genotype = load_arch(search_dir / "genotype.json", recipe.search.space)
    train_dir = out_dir / "train"
    train_resume = resume and (train_dir / "checkpoint.pt").is_file()
    train_report = run_training(genotype, recipe.train, train_dir, resume=train_resume, progress=progress,
                                space=space)
    timings["train_s"] = time.perf_counter() - t0

    t0 = stage("export")
    sidecar = export_weights(train_dir / "best.safetensors", out_dir / "export", recipe.export,
                             data_dir=recipe.train.data_dir)
    onnx_path = out_dir / "export" / sidecar["file"]
    timings["export_s"] = time.perf_counter() - t0

    t0 = stage("profile")
    prof = recipe.profile
    profile = profile_onnx(onnx_path, device=prof.device, batch=prof.batch, warmup_s=prof.warmup_s,
                           iterations=prof.iterations, duration_s=prof.duration_s, threads=prof.threads)
    atomic_write_json(out_dir / "profile.json", profile)
    timings["profile_s"] = time.perf_counter() - t0

    check = None
    if recipe.check is not None:
        t0 = stage("check")
        check = check_model(onnx_path, recipe.check)
        atomic_write_json(out_dir / "check.json", check.to_dict())
        timings["check_s"] = time.perf_counter() - t0

    summary = build_summary(recipe, out_dir, search_report, train_report, sidecar, profile, check, timings)
    atomic_write_json(out_dir / "report.json", summary)
    if check is not None and not check.passed:
        raise GateFailedError(f"pipeline finished but the gates failed: {check.reason}; see {out_dir / 'check.json'}")
    return summary


def build_summary(recipe: Recipe, out_dir: Path, search: dict, train: dict, sidecar: dict, profile: dict,
                  check: Any, timings: dict[str, float]) -> dict[str, Any]:
    """One dict with the figures a person wants after a run (see README, "report.json")."""
    sfinal, tfinal = search.get("final", {}), train.get("final", {})
    verification = sidecar.get("verification", {})
    stats = profile.get("stats", {})
    return {
        "run_dir": str(out_dir),
        "recipe": recipe.source,
        "search": {
            "space": search.get("space"),
            "genotype": sfinal.get("genotype"),
            "supernet_val_acc": sfinal.get("supernet_val_acc"),
            "discretized_val_acc": sfinal.get("discretized_val_acc"),
            "skip_count_normal": sfinal.get("skip_count_normal"),
            "identity_layers": sfinal.get("identity_layers"),
            "arch_string": sfinal.get("arch_string"),
            "dominant_eigenvalue": sfinal.get("dominant_eigenvalue"),
        },
        "train": {k: tfinal.get(k) for k in ("best_top1", "best_top5", "last_top1", "last_top5", "params", "macs")},
        "export": {
            "onnx": str(out_dir / "export" / sidecar.get("file", "model.onnx")),
            "verified": sidecar.get("verified"),
            "max_abs_diff": verification.get("max_abs_diff"),
            "top1_agreement": verification.get("top1_agreement"),
            "onnx_accuracy": verification.get("onnx_accuracy"),
        },
        "profile": {k: stats.get(k) for k in ("min", "median", "mean", "p90", "p99", "std", "cov")}
        | {"throughput": profile.get("throughput_per_s"), "timed": profile.get("timed")},
        "check": None if check is None else {"passed": check.passed, "final_line": check.final_line,
                                              "rows": check.to_dict().get("rows")},
        "timings_s": timings,
    }


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """Rows of the table `sdnas run` prints at the end."""
    s, t, e, p = summary["search"], summary["train"], summary["export"], summary["profile"]
    rows = [
        ("search: supernet val acc", s.get("supernet_val_acc")),
        ("search: discretized val acc", s.get("discretized_val_acc")),
        ("search: space", s.get("space")),
        ("search: architecture", s.get("arch_string")),
        *((("search: skip_connect (normal)", s["skip_count_normal"]),) if s.get("skip_count_normal") is not None else ()),
        *((("search: identity layers", s["identity_layers"]),) if s.get("identity_layers") is not None else ()),
        ("train: best test top-1", t.get("best_top1")),
        ("train: parameters", t.get("params")),
        ("train: multiply-adds", t.get("macs")),
        ("export: verified in ORT", e.get("verified")),
        ("export: max |ORT - torch|", e.get("max_abs_diff")),
        ("export: ORT test accuracy", e.get("onnx_accuracy")),
        ("profile: median ms", p.get("median")),
        ("profile: p90 ms", p.get("p90")),
        ("profile: throughput img/s", p.get("throughput")),
    ]
    if summary.get("check"):
        rows.append(("check", summary["check"]["final_line"]))
    rows += [(f"time: {k}", round(v, 1)) for k, v in summary["timings_s"].items()]
    return rows
