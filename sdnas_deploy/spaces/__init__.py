"""Search spaces as plugins: the ``SPACES`` registry every command consults, and the architecture codec.

A space is one folder (``darts/``, ``mbconv/``, ``nb201/``) with a :class:`~.base.Space` subclass registered here.
Architecture JSON always names its space (``{"space": "fbnet", ...}``); a DARTS ``genotype.json`` written
before the field existed still loads as ``darts``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..io_utils import load_json
from ..registry import lookup, register_into
from .base import SPACE_FIELD, Geometry, Setting, Space, Supernet

SPACES: dict[str, Space] = {}
LEGACY_SPACE = "darts"  # architecture JSON without a "space" field predates it: DARTS genotypes


def register_space(space: Space) -> Space:
    """Add ``space`` to :data:`SPACES` under its name (a duplicate name is a programming error)."""
    return register_into(SPACES, space.name)(space)


def get_space(name: str) -> Space:
    """The registered space ``name`` (BadInputError with a suggestion if unknown)."""
    if not isinstance(name, str):
        raise BadInputError(f"space must be a name, got {name!r}; known: {', '.join(sorted(SPACES))}")
    return lookup(SPACES, name, "search space")


def space_of(data: Any, source: str = "architecture") -> Space:
    """The space an architecture JSON object names (``darts`` when it names none)."""
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: an architecture must be a JSON object naming its space, e.g. "
                            f'{{"space": "fbnet", ...}}')
    name = data.get(SPACE_FIELD, LEGACY_SPACE)
    try:
        return get_space(name)
    except BadInputError as exc:
        raise BadInputError(f"{source}: {exc.message}") from None


def arch_from_json(data: Any, source: str = "architecture", space: str | None = None) -> tuple[Space, Any]:
    """``(space, arch)`` of a JSON object; ``space`` given → an architecture of another space is refused."""
    found = space_of(data, source)
    if space is not None and found.name != space:
        raise BadInputError(f"{source}: architecture of space {found.name!r}, but space {space!r} is in use; "
                            f"pass an architecture of {space!r}")
    return found, found.arch_from_dict(data, source)


def as_arch(arch: Any, space: Space | str | None = None, source: str = "architecture") -> tuple[Space, Any]:
    """``(space, arch)`` from a JSON dict, or an architecture object of ``space`` (a DARTS Genotype needs none)."""
    named = get_space(space) if isinstance(space, str) else space
    if isinstance(arch, dict):
        return arch_from_json(arch, source, None if named is None else named.name)
    if named is None:
        from .darts.genotype import Genotype

        if not isinstance(arch, Genotype):
            raise BadInputError(f"{source}: {type(arch).__name__} needs its space; pass the architecture JSON")
        named = get_space(LEGACY_SPACE)
    return named, arch


def load_arch(path: Path | str, space: str | None = None) -> tuple[Space, Any]:
    """Read and validate an architecture JSON file."""
    return arch_from_json(load_json(path, "architecture file"), str(path), space)


def reference_archs() -> dict[str, tuple[Space, Any]]:
    """Every published architecture of every space, by name."""
    found: dict[str, tuple[Space, Any]] = {}
    for space in SPACES.values():
        for name, arch in space.references().items():
            found[name] = (space, arch)
    return found


def parse_arch(spec: str, space: str | None = None) -> tuple[Space, Any]:
    """An architecture from a JSON file path, a reference name (``darts_v2``, ``fbnet_b``), or an arch string
    (``SPACE:STRING``, or a space's plain string when ``space`` is given; a bare DARTS string still works)."""
    refs = reference_archs()
    if spec in refs:
        found = refs[spec]
        if space is not None and found[0].name != space:
            raise BadInputError(f"{spec!r} is an architecture of space {found[0].name!r}, not {space!r}")
        return found
    head, sep, tail = spec.partition(":")
    if sep and head in SPACES and (space is None or head == space):
        return SPACES[head], SPACES[head].arch_from_string(tail)
    if Path(spec).suffix == ".json" or Path(spec).exists():
        return load_arch(spec, space)
    chosen = get_space(space or LEGACY_SPACE)
    return chosen, chosen.arch_from_string(spec)


def _register_builtin() -> None:
    from .darts.space import DartsSpace

    register_space(DartsSpace())
    from .mbconv.spaces import MBCONV_SPACES

    for space in MBCONV_SPACES:
        register_space(space)
    from .nb201.space import Nb201Space

    register_space(Nb201Space())


_register_builtin()

__all__ = [
    "SPACES", "SPACE_FIELD", "Geometry", "Setting", "Space", "Supernet", "arch_from_json", "as_arch",
    "get_space",
    "load_arch", "parse_arch", "reference_archs", "register_space", "space_of",
]
