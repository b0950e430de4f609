"""The sections of a recipe file, read and checked before any stage parses its own (no stage config imported here).

``sdnas search``/``sdnas train`` read only their section; ``recipes.load_recipe`` reads all of them. Keeping this
below the stage configs lets each of them load its section without importing the others (no import cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import BadInputError
from .io_utils import load_yaml
from .registry import suggest

SECTIONS = ("search", "train", "export", "profile", "check")


def read_sections(path: Path) -> dict[str, dict[str, Any]]:
    """The recipe's top-level mapping, validated: only known sections, each a mapping."""
    data = load_yaml(path, "recipe") or {}
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: a recipe must be a mapping of sections ({', '.join(SECTIONS)})")
    for key, value in data.items():
        if key not in SECTIONS:
            raise BadInputError(f"{path}: unknown recipe section {key!r}{suggest(str(key), SECTIONS)}; known: {', '.join(SECTIONS)}")
        if value is not None and not isinstance(value, dict):
            raise BadInputError(f"{path}: section {key!r} must be a mapping of keys")
    return data
