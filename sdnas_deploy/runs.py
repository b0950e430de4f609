"""Run directories and resolution of the CLI's GENOTYPE_OR_RUN / RUN_OR_WEIGHTS arguments.

Layout written by the commands (documented in the README):

- search run: ``config.json``, ``genotype.json``, ``alpha_history.json``, ``report.json``, ``checkpoint.pt``
- train run: ``config.json``, ``genotype.json``, ``best.safetensors``, ``last.safetensors``, ``report.json``, ``checkpoint.pt``
- pipeline run (``sdnas run``): ``recipe.json``, ``search/``, ``train/``, ``export/model.onnx`` + ``model.json``,
  ``profile.json``, ``check.json``, ``report.json``
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .errors import BadInputError
from .training.weights import WEIGHT_FILES, resolve_weights_path  # noqa: F401  (the CLI's RUN_OR_WEIGHTS)

GENOTYPE_FILE = "genotype.json"


_CREATED: list[Path] = []  # run directories this process created, so a command that fails can take them back


def new_run_dir(kind: str, out: str | Path | None) -> Path:
    """``out`` if given, else ``runs/<kind>-<timestamp>``; created if missing (and removed again by
    :func:`discard_empty_run_dirs` when the command fails before writing into it)."""
    if out:
        path = Path(out)
    elif int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:  # the ranks would each pick their own timestamp
        raise BadInputError(f"a {kind} under torchrun needs --out DIR (every process must use the same directory)")
    else:  # never share a default directory with another run started in the same second
        base = Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    if path.exists() and not path.is_dir():
        raise BadInputError(f"--out {path}: exists and is not a directory; choose another path")
    missing = [p for p in [path, *path.parents] if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"--out {path}: cannot create the directory ({exc.strerror or type(exc).__name__}); "
                            "choose a writable path") from None
    _CREATED.extend(reversed(missing))  # deepest last
    return path


def discard_empty_run_dirs() -> None:
    """Remove the run directories this process created that are still empty (a command refused its input)."""
    while _CREATED:
        path = _CREATED.pop()
        try:
            path.rmdir()  # only ever removes an empty directory
        except OSError:
            pass


def _candidates(run: Path, name: str) -> list[Path]:
    """Places a file may sit in a search, train or pipeline run directory."""
    from .training.weights import run_candidates

    return run_candidates(run, name)


def resolve_genotype_path(arg: str) -> Path | str:
    """An architecture JSON path, a run directory holding one, a reference name of any space or a one-line arch
    string ``SPACE:STRING`` (the last two returned as str)."""
    from .spaces import SPACES, reference_archs

    references = reference_archs()
    if arg in references:
        return arg
    head, sep, _ = arg.partition(":")
    path = Path(arg)
    if sep and head in SPACES and not path.exists():
        return arg
    if path.is_dir():
        for cand in _candidates(path, GENOTYPE_FILE):
            if cand.is_file():
                return cand
        raise BadInputError(f"{path}: no {GENOTYPE_FILE} in this run directory; run `sdnas search` first or pass a genotype file")
    if not path.exists():
        known = ", ".join(sorted(references))
        raise BadInputError(f"architecture not found: {arg}; pass a genotype.json, a run directory, an arch string "
                            f"SPACE:STRING (e.g. nb201:|nor_conv_3x3~0|+...), or one of: {known}")
    return path


def load_arch_arg(arg: str) -> tuple[Any, Any]:
    """``(space, architecture)`` named by a CLI argument (see :func:`resolve_genotype_path`)."""
    from .spaces import load_arch, parse_arch

    where = resolve_genotype_path(arg)
    if isinstance(where, str):
        return parse_arch(where)
    return load_arch(where)


def load_genotype_arg(arg: str) -> Any:
    """The architecture object named by a CLI argument (its space: :func:`load_arch_arg`)."""
    return load_arch_arg(arg)[1]


