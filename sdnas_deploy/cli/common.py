"""Shared CLI plumbing: error → exit-code mapping, JSON/table output, status lines."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import typer

from ..errors import SdnasError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> None:
    """Print one ``error:`` line on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def cli_errors(func: F) -> F:
    """Turn library errors into one stderr line + the documented exit code (DESIGN.md §4).

    SdnasError → its exit code; KeyboardInterrupt → 130; anything else → exit 1 with one line
    (set SDNAS_DEBUG=1 for the traceback).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except SdnasError as exc:
            _discard_run_dirs()
            fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted; completed epochs are checkpointed — rerun with --resume to continue", 130)
        except Exception as exc:  # internal error: one line, traceback on request
            if os.environ.get("SDNAS_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (set SDNAS_DEBUG=1 for a traceback)", 1)

    return wrapper  # type: ignore[return-value]


def _discard_run_dirs() -> None:
    """A refused command leaves no empty run directory behind (``runs.new_run_dir`` made it)."""
    from ..runs import discard_empty_run_dirs

    discard_empty_run_dirs()


def print_json(obj: Any) -> None:
    """Machine output on stdout."""
    from ..io_utils import dumps_json

    sys.stdout.write(dumps_json(obj) + "\n")


def print_table(title: str, rows: list[tuple[str, Any]]) -> None:
    """A two-column key/value table: rich on a TTY, aligned plain text otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        table.add_column("item")
        table.add_column("value", justify="right")
        for key, value in rows:
            table.add_row(key, _fmt(value))
        Console().print(table)
        return
    width = max((len(k) for k, _ in rows), default=0)
    typer.echo(title)
    for key, value in rows:
        typer.echo(f"  {key.ljust(width)}  {_fmt(value)}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def base_config(cls: type, loader: Callable[[Path], Any], recipe: str | None, resume: bool, run_dir: Path) -> Any:
    """The config flags are applied on: the recipe's section, else the resumed run's config, else defaults."""
    from ..resources import resolve_data_file

    if recipe:
        return loader(resolve_data_file("search", recipe))
    if resume and (run_dir / "config.json").is_file():
        return resumed_config(cls, run_dir)
    return cls()  # nothing to resume yet (stopped before its first epoch): the run starts fresh, with a note


def resumed_config(cls: type, run_dir: Path) -> Any:
    """The config a run was started with (its ``config.json``), so ``--resume`` needs no flags repeated."""
    from ..config_utils import from_mapping
    from ..errors import BadInputError
    from ..io_utils import load_json

    path = run_dir / "config.json"
    if not path.is_file():
        raise BadInputError(f"{run_dir}: nothing to resume (no config.json); start a new run without --resume")
    return from_mapping(cls, load_json(path, "run config"), str(path))


NprocOpt = typer.Option(None, "--nproc", metavar="N", help="Run N processes with torchrun (PyTorch DDP: one per GPU, "
                        "or gloo on CPU); --batch-size is per process.")


def relaunch_with_torchrun(nproc: int | None) -> None:
    """``--nproc N``: replace this process by ``torchrun --standalone --nproc_per_node N -m sdnas_deploy ...``.

    The same command line without ``--nproc`` is what every rank runs. Nothing happens for None or 1, or when
    this process already is a torchrun rank.
    """
    if nproc is None or "LOCAL_RANK" in os.environ:
        return
    if nproc < 1:
        fail(f"--nproc {nproc} is invalid; use a positive number of processes", 2)
    if nproc == 1:
        return
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "sdnas_deploy", *args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
