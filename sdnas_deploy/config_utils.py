"""Build typed config dataclasses from recipe mappings, rejecting unknown keys.

Every config section (search, train, export, profile, check) is a frozen-free dataclass whose
field defaults are the project's documented defaults. Recipes (YAML) and CLI flags override them;
a key that does not exist is a one-line BadInputError naming the closest valid key.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping, TypeVar

from .errors import BadInputError
from .registry import suggest

C = TypeVar("C")


MAX_QUOTED = 80  # characters of a bad value an error message quotes (a huge value must not become a huge message)


def _short(value: Any) -> str:
    """``repr(value)`` cut to :data:`MAX_QUOTED` characters (containers are summarized, never expanded)."""
    if isinstance(value, (dict, list, tuple, set)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "…"


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Light type check/coercion for YAML scalars (int->float, list->tuple)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if annotation is not bool and isinstance(value, bool) or not isinstance(value, annotation):
            raise BadInputError(f"{where}: expected {annotation.__name__}, got {_short(value)}")
        if annotation is float and not math.isfinite(value):
            raise BadInputError(f"{where}: {value} is not a finite number; pass a finite value")
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        if float in args and isinstance(value, float) and not math.isfinite(value):
            raise BadInputError(f"{where}: {value} is not a finite number; pass a finite value")
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except BadInputError:
                continue
        raise BadInputError(f"{where}: value {_short(value)} has the wrong type")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise BadInputError(f"{where}: expected a list, got {_short(value)}")
        if origin is tuple and args and Ellipsis not in args:
            if len(args) != len(value):
                raise BadInputError(f"{where}: expected {len(args)} values, got {len(value)}")
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        return origin(_coerce(v, t, where) for v, t in zip(value, item_types))
    if origin is typing.Literal:
        if value not in args:
            raise BadInputError(f"{where}: expected one of {', '.join(map(str, args))}, got {_short(value)}")
        return value
    return value


def from_mapping(cls: type[C], data: Mapping[str, Any] | None, source: str) -> C:
    """Instantiate dataclass ``cls`` from ``data``; unknown keys or wrong types raise BadInputError."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        norm = str(key).replace("-", "_")
        if norm not in fields:
            raise BadInputError(f"{source}: unknown key {_short(key)}{suggest(norm, sorted(fields))}; remove or rename it")
        kwargs[norm] = _coerce(value, hints[norm], f"{source}: key {key!r}")
    return cls(**kwargs)  # type: ignore[call-arg]


def override(config: C, source: str = "command line", **changes: Any) -> C:
    """Return a copy of ``config`` with non-None ``changes`` applied (CLI flags over recipe values)."""
    clean = {k: v for k, v in changes.items() if v is not None}
    if not clean:
        return config
    merged = {**dataclasses.asdict(config), **clean}  # type: ignore[arg-type]
    return from_mapping(type(config), merged, source)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (for resolved-config files and reports)."""
    return dataclasses.asdict(config)
