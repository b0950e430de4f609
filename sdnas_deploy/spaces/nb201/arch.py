"""The NB201 architecture: one op per edge of the 4-node cell, in the benchmark's string form.

Edges in NB201 order: node 1 ← 0; node 2 ← 0, 1; node 3 ← 0, 1, 2. The string is
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
(``op~input`` per edge, nodes joined by ``+``); JSON: ``{"space": "nb201", "edges": [six op names]}``.
Every architecture of the 5^6 = 15,625 is valid (NB201 keeps ``none``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ...errors import BadInputError
from ...registry import suggest
from .ops import OPS, PARAMETER_FREE

NODES = 4
EDGES: tuple[tuple[int, int], ...] = tuple((node, src) for node in range(1, NODES) for src in range(node))
STRING_HINT = "expected the NB201 form |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


@dataclass(frozen=True)
class CellArch:
    """Six op names, one per edge in :data:`EDGES` order."""

    edges: tuple[str, ...]

    def to_string(self) -> str:
        nodes = []
        for node in range(1, NODES):
            parts = [f"{self.edges[i]}~{src}" for i, (n, src) in enumerate(EDGES) if n == node]
            nodes.append("|" + "|".join(parts) + "|")
        return "+".join(nodes)

    def counts(self) -> dict[str, int]:
        return {op: self.edges.count(op) for op in OPS}


def check_ops(ops: Any, source: str) -> tuple[str, ...]:
    """Six known op names, else a one-line BadInputError with a suggestion."""
    if not isinstance(ops, (list, tuple)) or len(ops) != len(EDGES):
        raise BadInputError(f"{source}: an NB201 cell has {len(EDGES)} edges; give a list of {len(EDGES)} op names "
                            f"({', '.join(OPS)})")
    for i, op in enumerate(ops):
        if not isinstance(op, str) or op not in OPS:
            raise BadInputError(f"{source}: edge {i}: unknown op {op!r}{suggest(str(op), list(OPS))}; "
                                f"NB201 ops: {', '.join(OPS)}")
    return tuple(ops)


def arch_from_body(data: Any, source: str) -> CellArch:
    """``{"edges": [...]}`` (or ``{"arch": "|...|"}``) → CellArch."""
    if not isinstance(data, Mapping):
        raise BadInputError(f"{source}: an nb201 architecture is an object with 'edges' (six op names)")
    unknown = sorted(set(data) - {"edges", "arch"})
    if unknown:
        raise BadInputError(f"{source}: unknown key {unknown[0]!r}; an nb201 architecture has 'edges' (or 'arch')")
    if "edges" in data:
        arch = CellArch(check_ops(data["edges"], source))
        if "arch" in data and data["arch"] != arch.to_string():
            raise BadInputError(f"{source}: 'arch' {data['arch']!r} disagrees with 'edges' ({arch.to_string()}); "
                                "keep one of them")
        return arch
    if "arch" in data and isinstance(data["arch"], str):
        return arch_from_line(data["arch"], source)
    raise BadInputError(f"{source}: an nb201 architecture needs 'edges' (six op names) or 'arch' ({STRING_HINT})")


def arch_from_line(text: Any, source: str = "arch string") -> CellArch:
    """Parse the NB201 string form, checking every node's inputs and order."""
    if not isinstance(text, str) or not text.strip():
        raise BadInputError(f"{source}: empty NB201 arch string; {STRING_HINT}")
    nodes = text.strip().split("+")
    if len(nodes) != NODES - 1:
        raise BadInputError(f"{source}: {len(nodes)} nodes in {text!r}; {STRING_HINT}")
    ops: list[str] = []
    for node, part in enumerate(nodes, 1):
        if not (part.startswith("|") and part.endswith("|")):
            raise BadInputError(f"{source}: node {node} {part!r} is not '|op~i|...|'; {STRING_HINT}")
        entries = [e for e in part[1:-1].split("|")]
        if len(entries) != node:
            raise BadInputError(f"{source}: node {node} has {len(entries)} inputs, NB201 node {node} has {node}; "
                                f"{STRING_HINT}")
        for src, entry in enumerate(entries):
            op, sep, index = entry.partition("~")
            if not sep or index != str(src):
                raise BadInputError(f"{source}: node {node} entry {entry!r} must read 'op~{src}'; {STRING_HINT}")
            ops.append(op)
    return CellArch(check_ops(ops, source))


def summary(arch: CellArch) -> dict[str, Any]:
    """Op counts, and the parameter-free edges DARTS is known to collapse to (skip, pool, none)."""
    counts = arch.counts()
    return {"skip_count": counts["skip_connect"], "pool_count": counts["avg_pool_3x3"], "none_count": counts["none"],
            "parameter_free": sum(counts[op] for op in PARAMETER_FREE)}


def connected(arch: CellArch) -> bool:
    """Whether node 3 depends on the cell input through edges that are not ``none``."""
    reach = {0}
    for node in range(1, NODES):
        if any(src in reach and arch.edges[i] != "none" for i, (n, src) in enumerate(EDGES) if n == node):
            reach.add(node)
    return NODES - 1 in reach
