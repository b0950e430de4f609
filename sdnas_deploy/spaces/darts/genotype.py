"""Genotypes: the discrete architecture a DARTS search produces, its JSON/one-line forms and validation.

A genotype lists, per cell type, two ``(op, input_index)`` entries for each of the 4 intermediate
nodes (node ``i`` may read the two cell inputs 0 and 1 or any earlier node ``2..i+1``), plus the
nodes whose outputs are concatenated into the cell output. The JSON form is::

    {"normal": [["sep_conv_3x3", 0], ...8 entries], "normal_concat": [2, 3, 4, 5],
     "reduce": [["max_pool_3x3", 0], ...], "reduce_concat": [2, 3, 4, 5]}

and the one-line arch string is ``normal=sep_conv_3x3:0,...|reduce=max_pool_3x3:0,...`` (a
``|normal_concat=...`` / ``|reduce_concat=...`` part appears only when a concat is not all nodes).
Every malformed input is rejected with a one-line BadInputError naming the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ...errors import BadInputError
from ...io_utils import atomic_write_json, load_json
from ...registry import check_fields, suggest
from .ops import PRIMITIVES

DARTS_STEPS = 4
CELL_TYPES = ("normal", "reduce")
_KEYS = ("normal", "normal_concat", "reduce", "reduce_concat")

Edge = tuple[str, int]


def num_edges(steps: int = DARTS_STEPS) -> int:
    """Edges of a cell with ``steps`` intermediate nodes (14 for DARTS)."""
    return sum(2 + i for i in range(steps))


def edge_index(node: int, input_index: int) -> int:
    """Row of the α matrix for the edge ``input_index -> node`` (node counted from 0)."""
    return num_edges(node) + input_index


def _check_cell(entries: Sequence[Any], concat: Sequence[Any], cell: str, source: str, steps: int) -> None:
    """Validate one cell's entries and concat; raise BadInputError on the first problem."""
    where = f"{source}: {cell}"
    if not isinstance(entries, (list, tuple)):
        raise BadInputError(f"{where} must be a list of [op, input_index] pairs, got {type(entries).__name__}")
    if len(entries) != 2 * steps:
        raise BadInputError(f"{where} has {len(entries)} entries; a DARTS cell needs exactly {2 * steps} (2 per node)")
    for k, entry in enumerate(entries):
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise BadInputError(f"{where} entry {k} is {entry!r}; write it as [op_name, input_index]")
        op, index = entry
        if not isinstance(op, str):
            raise BadInputError(f"{where} entry {k}: op name must be a string, got {op!r}")
        if op == "none":
            raise BadInputError(f"{where} entry {k}: op 'none' cannot be a derived edge; pick a real op or input")
        if op not in PRIMITIVES:
            raise BadInputError(
                f"{where} entry {k}: unknown op {op!r}{suggest(op, PRIMITIVES)}; known: {', '.join(PRIMITIVES[1:])}"
            )
        if isinstance(index, bool) or not isinstance(index, int):
            raise BadInputError(f"{where} entry {k}: input index must be an integer, got {index!r}")
        node = k // 2
        if not 0 <= index < 2 + node:
            raise BadInputError(
                f"{where} entry {k}: input {index} out of range for node {node + 2}; use 0..{node + 1}"
            )
    for node in range(steps):
        a, b = entries[2 * node][1], entries[2 * node + 1][1]
        if a == b:
            raise BadInputError(f"{where}: node {node + 2} reads input {a} twice; its two edges need distinct inputs")
    if not isinstance(concat, (list, tuple)) or not concat:
        raise BadInputError(f"{where}_concat must be a non-empty list of node ids, e.g. [2, 3, 4, 5]")
    if any(isinstance(c, bool) or not isinstance(c, int) for c in concat):
        raise BadInputError(f"{where}_concat must hold integers, got {list(concat)!r}")
    if list(concat) != sorted(set(concat)) or not all(2 <= c < 2 + steps for c in concat):
        raise BadInputError(
            f"{where}_concat {list(concat)!r} is invalid; use increasing node ids from 2..{steps + 1}, e.g. "
            f"{list(range(2, 2 + steps))}"
        )


@dataclass(frozen=True)
class Genotype:
    """A discrete DARTS architecture: ``(op, input_index)`` pairs per node and the concatenated nodes."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        steps = len(self.normal) // 2 or DARTS_STEPS  # both cell types must have the normal cell's node count
        for cell in CELL_TYPES:
            entries = tuple(tuple(e) if isinstance(e, (list, tuple)) else e for e in getattr(self, cell))
            concat = tuple(getattr(self, f"{cell}_concat"))
            _check_cell(entries, concat, cell, "genotype", steps)
            object.__setattr__(self, cell, entries)
            object.__setattr__(self, f"{cell}_concat", concat)

    @property
    def steps(self) -> int:
        """Number of intermediate nodes per cell."""
        return len(self.normal) // 2

    def cell(self, cell: str) -> tuple[tuple[Edge, ...], tuple[int, ...]]:
        """``(entries, concat)`` of the ``normal`` or ``reduce`` cell."""
        if cell not in CELL_TYPES:
            raise BadInputError(f"unknown cell type {cell!r}; use 'normal' or 'reduce'")
        return getattr(self, cell), getattr(self, f"{cell}_concat")

    def to_dict(self) -> dict[str, list]:
        """JSON-ready form: ops as ``[name, input_index]`` lists."""
        return {
            "normal": [[op, idx] for op, idx in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, idx] for op, idx in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "genotype", steps: int = DARTS_STEPS) -> "Genotype":
        """Validate a JSON-form mapping and build the Genotype (BadInputError on any problem)."""
        if not isinstance(d, Mapping):
            raise BadInputError(f"{source}: a genotype must be a JSON object with keys {', '.join(_KEYS)}")
        check_fields(d, _KEYS, _KEYS, source, f"genotype is missing key {{name!r}}; it needs {', '.join(_KEYS)}",
                     "unknown genotype key {name!r}{hint}; remove it")
        for cell in CELL_TYPES:
            _check_cell(d[cell], d[f"{cell}_concat"], cell, source, steps)
        return cls(
            normal=tuple((op, idx) for op, idx in d["normal"]),
            normal_concat=tuple(d["normal_concat"]),
            reduce=tuple((op, idx) for op, idx in d["reduce"]),
            reduce_concat=tuple(d["reduce_concat"]),
        )


def load_genotype(path: Path | str) -> Genotype:
    """Read and validate a genotype JSON file (``"space": "darts"`` or no space field)."""
    from ..base import body_without_space

    return Genotype.from_dict(body_without_space(load_json(path, "genotype file"), "darts", str(path)), source=str(path))


def save_genotype(path: Path | str, genotype: Genotype) -> Path:
    """Write ``genotype`` as JSON naming its space, atomically."""
    return atomic_write_json(Path(path), {"space": "darts", **genotype.to_dict()})


def skip_count(genotype: Genotype, cell: str = "normal") -> int:
    """How many ``skip_connect`` edges the cell has (DARTS collapse indicator)."""
    entries, _ = genotype.cell(cell)
    return sum(1 for op, _ in entries if op == "skip_connect")


def _as_matrix(weights: Any, name: str, steps: int) -> np.ndarray:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu().numpy()
    matrix = np.asarray(weights, dtype=np.float64)
    expected = (num_edges(steps), len(PRIMITIVES))
    if matrix.shape != expected:
        raise BadInputError(f"{name}: shape {tuple(matrix.shape)} but the DARTS space needs {expected}")
    if not np.isfinite(matrix).all():
        raise BadInputError(f"{name} contains NaN/inf; the search diverged — lower the arch learning rate and rerun")
    return matrix


def _derive_cell(weights: np.ndarray, steps: int) -> tuple[Edge, ...]:
    """DARTS rule: per node keep the 2 inputs with the largest non-``none`` weight, each with its best op."""
    none = PRIMITIVES.index("none")
    masked = weights.copy()
    masked[:, none] = -math.inf
    entries: list[Edge] = []
    for node in range(steps):
        rows = masked[edge_index(node, 0) : edge_index(node, 0) + 2 + node]
        # stable sort on the negated score: ties go to the lower input index, as in DARTS' sorted()
        order = sorted(range(2 + node), key=lambda j: -rows[j].max())[:2]
        entries.extend((PRIMITIVES[int(rows[j].argmax())], j) for j in order)
    return tuple(entries)


def derive_genotype(
    alphas_normal: Any, alphas_reduce: Any, steps: int = DARTS_STEPS, multiplier: int = 4
) -> Genotype:
    """Discretize architecture weights (softmax(α) rows per edge, shape [14, 8]) into a Genotype."""
    if not 1 <= multiplier <= steps:
        raise BadInputError(f"multiplier {multiplier} must be between 1 and steps={steps}")
    normal = _derive_cell(_as_matrix(alphas_normal, "alphas_normal", steps), steps)
    reduce = _derive_cell(_as_matrix(alphas_reduce, "alphas_reduce", steps), steps)
    concat = tuple(range(2 + steps - multiplier, 2 + steps))
    return Genotype(normal=normal, normal_concat=concat, reduce=reduce, reduce_concat=concat)


def to_arch_string(genotype: Genotype) -> str:
    """Compact one-line form, e.g. ``normal=sep_conv_3x3:0,...|reduce=max_pool_3x3:0,...``."""
    parts = []
    for cell in CELL_TYPES:
        entries, _ = genotype.cell(cell)
        parts.append(f"{cell}=" + ",".join(f"{op}:{idx}" for op, idx in entries))
    for cell in CELL_TYPES:
        _, concat = genotype.cell(cell)
        if concat != tuple(range(2, 2 + genotype.steps)):
            parts.append(f"{cell}_concat=" + ",".join(str(c) for c in concat))
    return "|".join(parts)


_ARCH_HINT = "expected 'normal=op:idx,...(8)|reduce=op:idx,...(8)'"


def _parse_int(text: str, what: str) -> int:
    if not text.strip().lstrip("-").isdigit():
        raise BadInputError(f"arch string: {what} {text!r} is not an integer; {_ARCH_HINT}")
    return int(text)


def from_arch_string(text: str, steps: int = DARTS_STEPS) -> Genotype:
    """Parse :func:`to_arch_string` output (concat defaults to all nodes) and validate it."""
    if not isinstance(text, str) or not text.strip():
        raise BadInputError(f"arch string is empty; {_ARCH_HINT}")
    fields: dict[str, str] = {}
    for part in text.strip().split("|"):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise BadInputError(f"arch string: bad part {part!r}{suggest(key, _KEYS)}; {_ARCH_HINT}")
        if key in fields:
            raise BadInputError(f"arch string: {key!r} given twice; {_ARCH_HINT}")
        fields[key] = value.strip()
    data: dict[str, Any] = {}
    for cell in CELL_TYPES:
        if cell not in fields:
            raise BadInputError(f"arch string: missing '{cell}=' part; {_ARCH_HINT}")
        entries = []
        for item in fields[cell].split(","):
            op, sep, idx = item.strip().partition(":")
            if not sep:
                raise BadInputError(f"arch string: {cell} entry {item!r} is not op:input; {_ARCH_HINT}")
            entries.append([op.strip(), _parse_int(idx, f"{cell} input index")])
        data[cell] = entries
        concat = fields.get(f"{cell}_concat")
        data[f"{cell}_concat"] = (
            [_parse_int(c, f"{cell}_concat node") for c in concat.split(",")] if concat else list(range(2, 2 + steps))
        )
    return Genotype.from_dict(data, source="arch string", steps=steps)


def parse_genotype(spec: str) -> Genotype:
    """A genotype from a JSON file path, a reference name (``darts_v2``) or an arch string."""
    if spec in REFERENCE_GENOTYPES:
        return REFERENCE_GENOTYPES[spec]
    if "=" in spec and "|" in spec:
        return from_arch_string(spec)
    return load_genotype(spec)


# The published DARTS (second order) cell, from the DARTS paper's code (genotypes.py, DARTS_V2).
DARTS_V2 = Genotype(
    normal=(
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2),
    ),
    normal_concat=(2, 3, 4, 5),
    reduce=(
        ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
        ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1),
    ),
    reduce_concat=(2, 3, 4, 5),
)

# The published DARTS first-order cell (same source, DARTS_V1).
DARTS_V1 = Genotype(
    normal=(
        ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2),
    ),
    normal_concat=(2, 3, 4, 5),
    reduce=(
        ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
        ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0),
    ),
    reduce_concat=(2, 3, 4, 5),
)

REFERENCE_GENOTYPES: dict[str, Genotype] = {"darts_v2": DARTS_V2, "darts_v1": DARTS_V1}
