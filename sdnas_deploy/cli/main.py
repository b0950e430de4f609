"""Entry point of the `sdnas` console script: registers the sub-commands (each in its own module)."""

from __future__ import annotations

import typer

from .. import __version__
from . import check_cmd, export_cmd, inspect_cmd, lut_cmds, profile_cmd, report_cmd, run_cmd, search_cmd, train_cmd

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
app.command("report")(report_cmd.report)
app.add_typer(lut_cmds.lut_app, name="lut", help="Latency lookup tables: list targets; build, measure, fit and validate tables on the device.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sdnas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version.")) -> None:
    """sdnas-deploy command line."""


def _usage_error_types() -> tuple[type[BaseException], type[BaseException]] | None:
    """(UsageError, Abort) of the click that typer runs on: its own copy (typer >= 0.2x) or click itself."""
    try:
        from typer._click.exceptions import UsageError
        from typer.exceptions import Abort
    except ImportError:  # pragma: no cover - older typer on plain click
        try:
            from click.exceptions import Abort, UsageError
        except ImportError:
            return None
    return UsageError, Abort


def main() -> None:
    """Console-script entry point. A usage error (unknown option, ``--epochs abc``, a missing argument) is one
    ``error:`` line and exit 2, like every other bad input — not click's multi-line box."""
    import sys

    types = _usage_error_types()
    if types is None:  # pragma: no cover
        app()
        return
    usage_error, abort = types
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `sdnas` / `sdnas lut`: the help, as before
            exc.show()  # type: ignore[attr-defined]
            sys.exit(getattr(exc, "exit_code", 2))
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "sdnas"
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        typer.echo(f"error: {message} (see `{command} --help`)", err=True)
        sys.exit(2)
    except abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
