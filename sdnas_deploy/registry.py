"""Plain-dict registries filled by decorators (spaces, ops, datasets, export formats, ...).

Tests parametrize over the dicts directly. Lookups of an unknown name raise a one-line
BadInputError that lists the known names and suggests the closest one.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from .errors import BadInputError

T = TypeVar("T")


def register_into(table: dict[str, T], name: str) -> Callable[[T], T]:
    """Decorator: ``@register_into(OPS, "sep_conv_3x3")`` stores the object under ``name``."""

    def deco(obj: T) -> T:
        if name in table:
            raise ValueError(f"duplicate registration: {name}")
        table[name] = obj
        return obj

    return deco


def suggest(name: str, choices: list[str] | Mapping[str, object]) -> str:
    """A ' (did you mean X?)' hint for a mistyped name, or '' (a name that is not even a string gets none)."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name[:200], [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_fields(
    names: Iterable[Any], required: Sequence[str], allowed: Sequence[str], where: str, missing: str, unknown: str
) -> None:
    """Schema check of a JSON object's keys: every ``required`` present, nothing outside ``allowed``.

    ``missing``/``unknown`` are message templates formatted with ``name`` (and ``hint``, a "did you mean"
    suggestion); the first problem raises a one-line BadInputError prefixed with ``where`` (kept out of the
    template, so a path with braces is never formatted).
    """
    present = list(names)
    for name in required:
        if name not in present:
            raise BadInputError(f"{where}: " + missing.format(name=name))
    for name in present:
        if name not in allowed:
            raise BadInputError(f"{where}: " + unknown.format(name=name, hint=suggest(str(name), allowed)))


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``table[name]`` or raise BadInputError naming the known choices."""
    if name in table:
        return table[name]
    known = ", ".join(sorted(table))
    raise BadInputError(f"unknown {kind} {name!r}{suggest(name, table)}; known: {known}")
