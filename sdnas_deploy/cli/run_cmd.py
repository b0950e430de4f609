"""`sdnas run`: search → train → export → profile → check from one recipe, ending with a summary table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .common import cli_errors, print_json, print_table

DEFAULT_RECIPE = "default"


@cli_errors
def run(
    recipe: str = typer.Option(DEFAULT_RECIPE, "--recipe", help="Recipe YAML (path or shipped name); default: the embedded digits demo."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/run-<timestamp>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N for search and training."),
    seed: Optional[int] = typer.Option(None, help="Seed for search and training."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Run the whole pipeline and print one summary table; exit 4 if the recipe's gates fail."""
    from ..config_utils import override
    from ..errors import GateFailedError
    from ..pipeline import run_pipeline
    from ..recipes import load_recipe
    from ..resources import resolve_data_file
    from ..runs import new_run_dir

    loaded = load_recipe(resolve_data_file("search", recipe))
    loaded.search = override(loaded.search, device=device, seed=seed)
    loaded.train = override(loaded.train, device=device, seed=seed)
    run_dir = new_run_dir("run", out)
    start = time.perf_counter()
    try:
        summary = run_pipeline(loaded, run_dir, resume=resume, progress=not json_out)
    except GateFailedError:
        _print_summary(run_dir, json_out, time.perf_counter() - start)
        raise
    _print_summary(run_dir, json_out, time.perf_counter() - start, summary)


def _print_summary(run_dir: Path, json_out: bool, elapsed: float, summary: dict | None = None) -> None:
    from ..io_utils import load_json
    from ..pipeline import summary_rows

    summary = summary or load_json(run_dir / "report.json", "run report")
    if json_out:
        print_json(summary)
        return
    print_table(f"sdnas run: {run_dir} ({elapsed / 60:.1f} min)", summary_rows(summary))
