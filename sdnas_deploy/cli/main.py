"""Entry point of the `sdnas` console script: registers the sub-commands (each in its own module)."""

from __future__ import annotations

import typer

from .. import __version__
from . import check_cmd, export_cmd, inspect_cmd, lut_cmds, profile_cmd, run_cmd, search_cmd, train_cmd

app = typer.Typer(
    name="sdnas",
    help="SD-DARTS search → retrain → ONNX export → on-device profile → CI gate, in one tool.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("search")(search_cmd.search)
app.command("train")(train_cmd.train)
app.command("inspect")(inspect_cmd.inspect)
app.command("export")(export_cmd.export)
app.command("profile")(profile_cmd.profile)
app.command("check")(check_cmd.check)
app.command("run")(run_cmd.run)
app.add_typer(lut_cmds.lut_app, name="lut", help="Latency lookup tables: list targets; build, measure, fit and validate tables on the device.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sdnas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version.")) -> None:
    """sdnas-deploy command line."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
