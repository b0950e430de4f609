"""`sdnas run`: the whole pipeline — search → train → export → profile → check — in one run directory.

A DNA recipe without a teacher first trains ``search.teacher_arch`` with the recipe's ``train:`` section (stage
``teacher``, folder ``teacher/``) and searches with it.

Each stage writes into its own sub-folder. ``stages.json`` records, per finished stage, the stage's config and
the fingerprint (sha256) of what it produced; with ``resume=True`` a stage is skipped when its record matches
the recipe and its outputs are still there and unchanged — otherwise it runs (continuing from its own
checkpoint where it has one), and every later stage runs again. The profile stage goes through the same
``profile.api.profile_model`` as `sdnas profile`. The summary (``report.json``) holds one row per stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from .config_utils import override, to_dict
from .errors import GateFailedError
from .io_utils import atomic_write_json, load_json
from .progress import log
from .recipes import Recipe

STAGES_FILE = "stages.json"


class _Stages:
    """The ``stages.json`` record: which stages finished, with which config and outputs."""

    def __init__(self, out_dir: Path, resume: bool) -> None:
        self.path = out_dir / STAGES_FILE
        self.done: dict[str, Any] = {}
        if resume and self.path.is_file():
            data = load_json(self.path, "pipeline stage record")
            self.done = data if isinstance(data, dict) else {}
        self.rerun_from: str | None = None  # once a stage runs, every later one runs too

    @staticmethod
    def _digest(paths: list[Path]) -> list[str] | None:
        from .runtime.fingerprint import file_sha256

        return [file_sha256(p) for p in paths] if all(p.is_file() for p in paths) else None

    def finished(self, name: str, config: Any, outputs: list[Path]) -> bool:
        """True when ``name`` may be skipped: recorded with this config, outputs present and unchanged."""
        record = self.done.get(name)
        if self.rerun_from is not None or not isinstance(record, dict):
            return False
        return record.get("config") == _plain(config) and record.get("outputs") == self._digest(outputs)

    def record(self, name: str, config: Any, outputs: list[Path], ran: bool) -> None:
        if ran and self.rerun_from is None:
            self.rerun_from = name
        self.done[name] = {"config": _plain(config), "outputs": self._digest(outputs)}
        atomic_write_json(self.path, self.done)


def _plain(config: Any) -> Any:
    """A JSON-comparable form of a stage config (dataclass, dict or None)."""
    import json

    value = to_dict(config) if hasattr(config, "__dataclass_fields__") else config
    return json.loads(json.dumps(value, default=str))


def run_pipeline(recipe: Recipe, out_dir: Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run every stage of ``recipe`` into ``out_dir``; return the summary (also written to report.json).

    Raises GateFailedError (exit 4) at the end when the check stage fails, after writing the summary.
    """
    from .exporting import check_model, export_weights
    from .nas.searcher import run_search
    from .profile.api import profile_model
    from .spaces import load_arch
    from .training.trainer import run_training
    from .visual.report import stage_plots, write_report

    out_dir = Path(out_dir)
    validate_recipe(recipe)  # every section, before anything is written or trained
    teacher = teacher_job(recipe)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "recipe.json", recipe.to_dict())
    stages = _Stages(out_dir, resume)
    timings: dict[str, float] = {}
    search_dir, train_dir, export_dir = out_dir / "search", out_dir / "train", out_dir / "export"

    def stage(name: str, config: Any, outputs: list[Path], work: Callable[[], Any], reuse: Callable[[], Any]) -> Any:
        if resume and stages.finished(name, config, outputs):
            log(f"== {name} == finished earlier (stages.json): skipped")
            timings[f"{name}_s"] = 0.0
            return reuse()
        log(f"== {name} ==")
        start = time.perf_counter()
        result = work()
        timings[f"{name}_s"] = time.perf_counter() - start
        stages.record(name, config, outputs, ran=True)
        if (out_dir / name / "report.json").is_file():  # a search or training stage: its plots, right away
            stage_plots(out_dir / name, out_dir / "plots" / name)
        return result

    search_config = recipe.search
    if teacher is not None:  # DNA without a teacher: train the recipe's teacher_arch first, with its train section
        teacher_dir = out_dir / "teacher"
        teacher_space, teacher_arch, teacher_config = teacher
        stage("teacher", teacher_config, [teacher_dir / "best.safetensors", teacher_dir / "report.json"],
              lambda: run_training(teacher_arch, teacher_config, teacher_dir, progress=progress, space=teacher_space,
                                   resume=resume and (teacher_dir / "checkpoint.pt").is_file()),
              lambda: load_json(teacher_dir / "report.json", "teacher report"))
        search_config = override(recipe.search, teacher=str(teacher_dir / "best.safetensors"))
    search_report = stage(
        "search", search_config, [search_dir / "genotype.json", search_dir / "report.json"],
        lambda: run_search(search_config, search_dir, resume=resume and (search_dir / "checkpoint.pt").is_file(),
                           progress=progress),
        lambda: load_json(search_dir / "report.json", "search report"))
    space, genotype = load_arch(search_dir / "genotype.json", recipe.search.space)
    train_report = stage(
        "train", recipe.train, [train_dir / "best.safetensors", train_dir / "report.json"],
        lambda: run_training(genotype, recipe.train, train_dir, resume=resume and (train_dir / "checkpoint.pt").is_file(),
                             progress=progress, space=space),
        lambda: load_json(train_dir / "report.json", "train report"))
    sidecar = stage(
        "export", recipe.export, [export_dir / "model.onnx", export_dir / "model.json"],
        lambda: export_weights(train_dir / "best.safetensors", export_dir, recipe.export, data_dir=recipe.train.data_dir),
        lambda: load_json(export_dir / "model.json", "export sidecar"))
    onnx_path = export_dir / sidecar["file"]
    prof = recipe.profile

    def run_profile() -> dict[str, Any]:
        report = profile_model(onnx_path, backend=prof.backend, device=prof.device, batch=prof.batch,
                               warmup_s=prof.warmup_s, iterations=prof.iterations, duration_s=prof.duration_s,
                               threads=prof.threads)
        atomic_write_json(out_dir / "profile.json", report)
        return report

    profile = stage("profile", prof, [out_dir / "profile.json"], run_profile,
                    lambda: load_json(out_dir / "profile.json", "profile report"))
    check = None
    if recipe.check is not None:
        def run_check() -> Any:
            result = check_model(onnx_path, recipe.check)
            atomic_write_json(out_dir / "check.json", result.to_dict())
            return result

        check = stage("check", recipe.check, [out_dir / "check.json"], run_check,
                      lambda: _StoredCheck(load_json(out_dir / "check.json", "check report")))

    summary = build_summary(recipe, out_dir, search_report, train_report, sidecar, profile, check, timings)
    summary["report_html"] = str(out_dir / "report.html")
    atomic_write_json(out_dir / "report.json", summary)
    write_report(out_dir)  # plots of every stage + one self-contained page, from the report just written
    if progress:
        log(f"report: {summary['report_html']}")
    if check is not None and not check.passed:
        raise GateFailedError(f"pipeline finished but the gates failed: {check.reason}; see {out_dir / 'check.json'}")
    return summary


def validate_recipe(recipe: Recipe) -> None:
    """What each stage would refuse, found before the first stage runs: the train section in the search space's
    setting, the export formats and options (and their preflight), the profile device and timing."""
    from .errors import BadInputError
    from .exporting import check_export_config
    from .runtime.loop import check_timing_args
    from .training.config import resolve

    resolve(recipe.train, recipe.search.space)
    check_export_config(recipe.export)
    prof = recipe.profile
    device = prof.device.strip().lower()
    if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise BadInputError(f"{recipe.source} [profile]: device={prof.device!r}; expected cpu, cuda or cuda:N")
    if prof.threads is not None and prof.threads < 1:
        raise BadInputError(f"{recipe.source} [profile]: threads={prof.threads} must be >= 1")
    try:
        check_timing_args(prof.batch, prof.warmup_s, prof.iterations, prof.duration_s)
    except BadInputError as exc:
        raise BadInputError(f"{recipe.source} [profile]: {exc.message}") from None


def teacher_job(recipe: Recipe) -> tuple[Any, Any, Any] | None:
    """``(space, architecture, train config)`` of the teacher `sdnas run` trains for a DNA search without one;
    None when none is needed. Checked before any stage runs: a DNA recipe needs ``teacher`` or ``teacher_arch``."""
    from .errors import BadInputError
    from .spaces import parse_arch

    c = recipe.search
    if c.method != "dna" or c.teacher is not None:
        return None
    if c.teacher_arch is None:
        raise BadInputError(f"{recipe.source}: a dna search needs search.teacher (a trained network) or "
                            "search.teacher_arch (an architecture `sdnas run` trains first with the train section)")
    space, arch = parse_arch(c.teacher_arch)
    config = override(recipe.train, setting=space.setting_for(arch))
    return space, arch, config


class _StoredCheck:
    """A finished check read back from ``check.json`` (what the summary needs of a CheckReport)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.passed = bool(data.get("passed"))
        self.reason = data.get("reason")
        self.final_line = "PASSED" if self.passed else f"FAILED: {self.reason}"  # as CheckReport.final_line

    def to_dict(self) -> dict[str, Any]:
        return self.data


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
            "summary": sfinal.get("summary") or {},
            "arch_string": sfinal.get("arch_string"),
            "dominant_eigenvalue": sfinal.get("dominant_eigenvalue"),
            "method": search.get("method"),
            "dna_score": sfinal.get("score"),  # DNA: summed block score of the selected architecture
            "predicted_mmac": sfinal.get("predicted_mmac"),
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
    search_rows = [
        ("search: method", s.get("method")),
        ("search: supernet val acc", s.get("supernet_val_acc")),
        ("search: discretized val acc", s.get("discretized_val_acc")),
        ("search: DNA score", s.get("dna_score")),
        ("search: predicted MMAC", s.get("predicted_mmac")),
    ]
    rows = [
        *((name, value) for name, value in search_rows if value is not None),  # each method reports its own
        ("search: space", s.get("space")),
        ("search: architecture", s.get("arch_string")),
        *((f"search: {k.replace('_', ' ')}", v) for k, v in (s.get("summary") or {}).items() if isinstance(v, (int, float))),
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
    if summary.get("report_html"):
        rows.append(("report", summary["report_html"]))
    return rows
