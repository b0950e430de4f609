"""Locate the project's data folders (recipes, gate profiles, latency tables).

In a source checkout / editable install they are the top-level ``search/``, ``export/`` and
``latency_tables/`` folders; a built wheel ships them as ``sdnas_deploy/_data/<kind>`` (see the
``force-include`` table in pyproject.toml). Callers never hard-code either location.
"""

from __future__ import annotations

from pathlib import Path

from .errors import BadInputError

_PACKAGE_DIR = Path(__file__).resolve().parent
DATA_KINDS = {"search": "search recipe", "export": "gate profile", "latency_tables": "latency table"}


def data_dir(kind: str) -> Path:
    """Folder holding the shipped files of ``kind`` (one of DATA_KINDS)."""
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown data kind {kind!r}")
    installed = _PACKAGE_DIR / "_data" / kind
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / kind


def resolve_data_file(kind: str, name_or_path: str, suffixes: tuple[str, ...] = (".yaml", ".yml")) -> Path:
    """Resolve a user argument that is either a path or the bare name of a shipped file.

    ``search/demo.yaml``, ``demo.yaml`` and ``demo`` all find the shipped recipe ``demo``.
    """
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        raise BadInputError(f"{DATA_KINDS[kind]} {name_or_path} is a directory; pass a {DATA_KINDS[kind]} file")
    folder = data_dir(kind)
    # Only a bare name or `<kind>/<name>` means a shipped file: a mistyped path of the user's own
    # file must not silently fall back to a shipped one of the same name.
    if str(candidate.parent) in (".", kind):
        stem = candidate.name
        for name in [stem] + [stem + s for s in suffixes]:
            path = folder / name
            if path.is_file():
                return path
    shipped = sorted(p.stem for p in folder.glob("*") if p.suffix in suffixes) if folder.is_dir() else []
    raise BadInputError(
        f"{DATA_KINDS[kind]} not found: {name_or_path}; pass a file path or one of: {', '.join(shipped) or '(none shipped)'}"
    )
