"""``report.html``: one self-contained page per run — summary, architecture diagram, plots, environment.

Works on a pipeline run (``sdnas run``: ``search/``, ``train/``, ``profile.json``, ...), a search run or a
training run. Images are embedded (``data:`` URIs: the SVG diagram, PNG plots), there is no script, no
stylesheet or font from the network, so the file can be mailed or archived as it is. The summary table
cells carry ``data-key`` attributes naming the ``report.json`` field they show (tests compare them).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..io_utils import atomic_write_text, load_json
from .plots import ChoiceNames, Plot, profile_plot, search_plots, train_plots

STAGE_DIRS = ("teacher", "search", "train")


def _load_run(run_dir: Path) -> tuple[str, dict[str, Any]]:
    """(kind, report.json) of a run directory: ``pipeline``, ``search`` or ``train``; anything else is one line."""
    if not run_dir.is_dir():
        raise BadInputError(f"{run_dir}: not a directory; pass a run directory (sdnas run/search/train --out)")
    path = run_dir / "report.json"
    if not path.is_file():
        raise BadInputError(f"{run_dir}: not a run (no report.json); pass a directory that sdnas run, search or "
                            "train wrote")
    report = load_json(path, "run report")
    if not isinstance(report, dict):
        raise BadInputError(f"{path}: not a run report (expected a JSON object); pass a run directory")
    if report.get("kind") in ("search", "train"):
        return str(report["kind"]), report
    if "recipe" in report and "timings_s" in report:
        return "pipeline", report
    raise BadInputError(f"{path}: not a report of sdnas run, search or train; pass such a run directory")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _summary_rows(report: dict[str, Any], kind: str) -> list[tuple[str, Any, str]]:
    """(label, value, data-key) of the summary table; data-key is ``file:dotted.path`` of the value's source."""
    rows: list[tuple[str, Any, str]] = []

    def add(label: str, data: Any, path: str, source: str) -> None:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, (dict, list)):
            rows.append((label, value, f"{source}:{path}"))

    if kind == "pipeline":
        for label, path in (("search: discretized val top-1", "search.discretized_val_acc"),
                            ("search: architecture", "search.arch_string"),
                            ("train: best test top-1", "train.best_top1"), ("train: parameters", "train.params"),
                            ("train: multiply-adds", "train.macs"), ("export: verified", "export.verified"),
                            ("export: top-1 agreement", "export.top1_agreement"),
                            ("profile: p50 ms", "profile.median"), ("profile: p99 ms", "profile.p99"),
                            ("check: passed", "check.passed")):
            add(label, report, path, "report.json")
    elif kind == "search":
        for label, path in (("method", "method"), ("space", "space"), ("epochs", "epochs_done"),
                            ("supernet val top-1", "final.supernet_val_acc"),
                            ("discretized val top-1", "final.discretized_val_acc"), ("gap", "final.gap"),
                            ("architecture", "final.arch_string"), ("dominant eigenvalue", "final.dominant_eigenvalue"),
                            ("predicted latency ms", "final.predicted_latency_ms"),
                            ("predicted MMAC", "final.predicted_mmac")):
            add(label, report, path, "report.json")
    else:
        for label, path in (("space", "space"), ("epochs", "epochs_done"), ("best test top-1", "final.best_top1"),
                            ("last test top-1", "final.last_top1"), ("parameters", "final.params"),
                            ("multiply-adds", "final.macs"), ("train time s", "final.train_time_s")):
            add(label, report, path, "report.json")
    return rows


def _embed(path: Path) -> str:
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _diagram(arch_file: Path, out: Path) -> Path | None:
    """The architecture diagram of ``arch_file`` (genotype.json) as SVG, or None when it cannot be drawn."""
    from ..spaces import load_arch

    if not arch_file.is_file():
        return None
    space, arch = load_arch(arch_file)
    try:
        space.draw(arch, out)
    except BadInputError:
        return None
    return out


def _choice_names(report: dict[str, Any]) -> ChoiceNames | None:
    """The candidate names of the search's space (None when the report names no known space)."""
    from ..spaces import SPACES, get_space

    name = report.get("space")
    return get_space(name).choice_names if name in SPACES else None


def stage_plots(stage_dir: Path, target: Path) -> list[Plot]:
    """The plots of one search or training run directory, written into ``target`` (created when there are some)."""
    try:
        kind, report = _load_run(stage_dir)
    except BadInputError:  # a stage that did not run (or is not a search/train run): nothing to plot
        return []
    if kind not in ("search", "train"):
        return []
    target.mkdir(parents=True, exist_ok=True)
    if kind == "search":
        history_path = stage_dir / "alpha_history.json"
        history = load_json(history_path, "α history") if history_path.is_file() else []
        made = search_plots(report, history, target, _choice_names(report))
    else:
        made = train_plots(report, target)
    if not any(target.iterdir()):
        target.rmdir()
    return made


def make_plots(run_dir: Path, kind: str | None = None) -> list[Plot]:
    """Write every plot of the run (and of its stages) under ``run_dir/plots``; return (caption, path).
    ``kind`` when the caller has already read the run (:func:`write_report`)."""
    kind = kind or _load_run(run_dir)[0]
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    plots: list[Plot] = []
    if kind == "pipeline":
        for name in STAGE_DIRS:
            made = stage_plots(run_dir / name, out / name)
            plots += [(f"{name}: {caption}", path) for caption, path in made]
    else:
        plots += stage_plots(run_dir, out)
    out.mkdir(exist_ok=True)  # the diagram and the histogram go here too
    profile = run_dir / "profile.json"
    if profile.is_file():
        plots += profile_plot(load_json(profile, "profile report"), out)
    return plots


def write_report(run_dir: Path | str) -> Path:
    """Write ``run_dir/report.html`` (module docstring) and the plots it shows; return its path."""
    run_dir = Path(run_dir)
    kind, report = _load_run(run_dir)
    plots = make_plots(run_dir, kind)
    rows = _summary_rows(report, kind)
    arch_file = next((p for p in (run_dir / "genotype.json", run_dir / "search" / "genotype.json",
                                  run_dir / "train" / "genotype.json") if p.is_file()), None)
    diagram = _diagram(arch_file, run_dir / "plots" / "architecture.svg") if arch_file else None
    profile = load_json(run_dir / "profile.json", "profile report") if (run_dir / "profile.json").is_file() else {}
    environment = profile.get("fingerprint") or {"device": report.get("device")}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>sdnas report: {html.escape(run_dir.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}figure{margin:1.5em 0}"
        "img{max-width:100%;border:1px solid #eee}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>",
        "</head><body>",
        f"<h1>{html.escape(kind)} run {html.escape(run_dir.name)}</h1>",
        f"<p>generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} from "
        f"<code>{html.escape(str(run_dir))}</code></p>",
        "<h2>Summary</h2><table id='summary'>",
        *(f"<tr><th>{html.escape(label)}</th><td data-key='{html.escape(key)}'>{_fmt(value)}</td></tr>"
          for label, value, key in rows),
        "</table>",
    ]
    if diagram is not None:
        parts += ["<h2>Architecture</h2>", f"<figure><img alt='architecture diagram' src='{_embed(diagram)}'>"
                  f"<figcaption>{html.escape(str(arch_file.relative_to(run_dir)))}</figcaption></figure>"]
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [f"<figure><img alt='{html.escape(caption)}' src='{_embed(path)}'>"
                  f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, path in plots]
    if profile.get("timed"):
        parts += ["<h2>What was timed</h2>", f"<p id='timed'>{html.escape(str(profile['timed']))}</p>"]
    parts += ["<h2>Environment</h2>", f"<pre id='environment'>{html.escape(json.dumps(environment, indent=2))}</pre>",
              "</body></html>"]
    path = run_dir / "report.html"
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
