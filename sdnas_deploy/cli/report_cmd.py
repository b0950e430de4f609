"""`sdnas report`: plots and one self-contained report.html for a run directory (old runs included)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import cli_errors


@cli_errors
def report(
    run_dir: Path = typer.Argument(..., help="A directory that sdnas run, search or train wrote."),
    open_page: bool = typer.Option(False, "--open", help="Open report.html in the default browser."),
) -> None:
    """Write plots (RUN/plots/) and RUN/report.html: summary, architecture diagram, plots, environment."""
    from ..visual.report import write_report

    path = write_report(run_dir)
    typer.echo(f"report: {path}")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
