"""Deployment network geometry and latency-table keys (docs/HARDWARE.md "Geometry and keys").

A latency table describes the discrete network ``nets.builder.build_network`` builds for one setting
and size, so the shapes every operator sees follow from a :class:`NetworkGeometry`. :func:`cell_plan`
mirrors the cell stacking of ``nets/darts_net.py`` exactly (channel doubling at 1/3 and 2/3 depth,
FactorizedReduce after a reduction, ``ceil(H/2)`` for every stride-2 op), and keys are
ProxylessNAS-style strings ``"{op}-input:{H}x{W}x{C}-output:{H}x{W}x{C}-stride:{s}"``.

Fixed parts use their own op names: ``stem_cifar`` (stride 1), ``stem0_mobile`` (two stride-2 convs,
stride 4), ``stem1_mobile`` (stride 2), ``preprocess_relu_conv_bn`` (1x1, stride 1),
``factorized_reduce`` (stride 2) and ``global_pool_classifier`` (pool + linear, output ``1x1x{classes}``,
stride 1 by convention).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from ...errors import BadInputError
from ...registry import check_fields, suggest
from ..base import check_geometry_sizes
from ..keys import HWC, KeyParts
from ..keys import key as key
from ..keys import parse_key as _parse_key
from ..keys import square as _square
from .genotype import DARTS_STEPS, Genotype, edge_index, num_edges
from .ops import PRIMITIVES
from .settings import get_setting

EDGE_PRIMITIVES: tuple[str, ...] = tuple(p for p in PRIMITIVES if p != "none")
FIXED_PARTS: tuple[str, ...] = (
    "stem_cifar", "stem0_mobile", "stem1_mobile", "preprocess_relu_conv_bn", "factorized_reduce",
    "global_pool_classifier",
)
KEY_OPS: tuple[str, ...] = EDGE_PRIMITIVES + FIXED_PARTS
_DEFAULT_INPUT = {"cifar": 32}  # cifar takes the dataset's size; a table needs a number (CIFAR's 32)
_GEOMETRY_FIELDS = ("setting", "layers", "channels", "input_size", "in_channels", "num_classes")


def _half(size: int) -> int:
    """Spatial size after any stride-2 op of the network (conv/pool pad rules and FactorizedReduce: ceil)."""
    return math.ceil(size / 2)


@dataclass(frozen=True)
class NetworkGeometry:
    """The deployment network a table describes: setting, cells, base channels, input side, classes."""

    setting: str
    layers: int
    channels: int
    input_size: int
    in_channels: int
    num_classes: int

    def __post_init__(self) -> None:
        spec = get_setting(self.setting)
        check_geometry_sizes(self, _GEOMETRY_FIELDS[1:])
        if self.channels < spec.min_channels:
            raise BadInputError(
                f"setting {self.setting!r} needs channels >= {spec.min_channels}, got {self.channels}; raise it"
            )

    @classmethod
    def from_setting(
        cls, setting: str, input_size: int | None = None, layers: int | None = None, channels: int | None = None,
        in_channels: int = 3, num_classes: int = 10,
    ) -> "NetworkGeometry":
        """Fill unset sizes with the setting's defaults (cifar 20/36/32, mobile 14/48/224)."""
        spec = get_setting(setting)
        if input_size is None:
            input_size = spec.input_size or _DEFAULT_INPUT.get(setting)
        if input_size is None:
            raise BadInputError(f"setting {setting!r} has no default input size; pass --input-size")
        return cls(setting, spec.layers if layers is None else layers, spec.channels if channels is None else channels,
                   input_size, in_channels, num_classes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``geometry`` object of a latency table)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "geometry") -> "NetworkGeometry":
        """Validate a JSON ``geometry`` object (all six fields, nothing else) → BadInputError on problems."""
        if not isinstance(data, Mapping):
            raise BadInputError(f"{source}: geometry must be an object with keys {', '.join(_GEOMETRY_FIELDS)}")
        check_fields(data, _GEOMETRY_FIELDS, _GEOMETRY_FIELDS, source,
                     f"geometry is missing {{name!r}}; it needs {', '.join(_GEOMETRY_FIELDS)}",
                     "unknown geometry key {name!r}{hint}")
        try:
            return cls(**{name: data[name] for name in _GEOMETRY_FIELDS})
        except BadInputError as exc:
            raise BadInputError(f"{source}: {exc.message}") from None


@dataclass(frozen=True)
class CellShape:
    """Shapes of one cell: ``hw_prev_prev``/``hw_prev`` are the raw inputs, ``hw_in`` after preprocessing."""

    index: int
    reduction: bool
    reduction_prev: bool
    C_prev_prev: int
    C_prev: int
    C: int
    C_out: int
    hw_prev_prev: int
    hw_prev: int
    hw_in: int
    hw_out: int


def parse_key(text: Any) -> KeyParts:
    """A DARTS table key parsed (spaces.keys grammar, DARTS op names); malformed → one-line BadInputError."""
    return _parse_key(text, KEY_OPS)


def _multipliers(genotype: Genotype | None) -> tuple[int, int]:
    """Concatenated nodes of (normal, reduce) cells: a cell's output has ``multiplier * C`` channels."""
    if genotype is None:
        return DARTS_STEPS, DARTS_STEPS
    return len(genotype.normal_concat), len(genotype.reduce_concat)


def _stem_shapes(geometry: NetworkGeometry) -> tuple[int, int, int, int, bool]:
    """``(C_prev_prev, C_prev, hw_prev_prev, hw_prev, reduction_prev)`` of the first cell."""
    C, size = geometry.channels, geometry.input_size
    if geometry.setting == "mobile":
        hw0 = _half(_half(size))
        return C, C, hw0, _half(hw0), True
    return 3 * C, 3 * C, size, size, False


def cell_plan(geometry: NetworkGeometry, genotype: Genotype | None = None) -> list[CellShape]:
    """Per cell the shapes ``nets/darts_net.py`` builds. Channel counts after a cell depend on how many
    nodes it concatenates: ``genotype`` None means all 4 (what ``derive_genotype`` gives by default)."""
    mult_normal, mult_reduce = _multipliers(genotype)
    C_pp, C_p, hw_pp, hw_p, reduction_prev = _stem_shapes(geometry)
    C_curr = geometry.channels
    plan: list[CellShape] = []
    for i in range(geometry.layers):
        reduction = i in (geometry.layers // 3, 2 * geometry.layers // 3)
        if reduction:
            C_curr *= 2
        hw_in = hw_p  # preprocess1 keeps s1's size; preprocess0 halves s0 to it after a reduction
        hw_out = _half(hw_in) if reduction else hw_in
        C_out = (mult_reduce if reduction else mult_normal) * C_curr
        plan.append(CellShape(i, reduction, reduction_prev, C_pp, C_p, C_curr, C_out, hw_pp, hw_p, hw_in, hw_out))
        C_pp, C_p, hw_pp, hw_p, reduction_prev = C_p, C_out, hw_p, hw_out, reduction
    return plan


def edge_key(cell: CellShape, op: str, input_index: int) -> str:
    """Key of ``op`` on an edge reading state ``input_index`` of ``cell`` (cell inputs stride 2 in reductions)."""
    from_input = input_index < 2
    stride = 2 if cell.reduction and from_input else 1
    hw = cell.hw_in if from_input else cell.hw_out
    return key(op, _square(hw, cell.C), _square(cell.hw_out, cell.C), stride)


def preprocess_keys(cell: CellShape) -> list[str]:
    """The two input adapters of ``cell`` (FactorizedReduce after a reduction, else a 1x1 ReLU-conv-BN)."""
    if cell.reduction_prev:
        pre0 = key("factorized_reduce", _square(cell.hw_prev_prev, cell.C_prev_prev), _square(cell.hw_in, cell.C), 2)
    else:
        pre0 = key("preprocess_relu_conv_bn", _square(cell.hw_prev_prev, cell.C_prev_prev),
                   _square(cell.hw_prev_prev, cell.C), 1)
    pre1 = key("preprocess_relu_conv_bn", _square(cell.hw_prev, cell.C_prev), _square(cell.hw_prev, cell.C), 1)
    return [pre0, pre1]


def fixed_keys(geometry: NetworkGeometry, plan: list[CellShape]) -> list[str]:
    """Stem(s) and the pool + classifier: the parts every genotype shares (preprocess keys are per cell)."""
    size, C = geometry.input_size, geometry.channels
    image = _square(size, geometry.in_channels)
    if geometry.setting == "mobile":
        hw0 = _half(_half(size))
        stems = [key("stem0_mobile", image, _square(hw0, C), 4),
                 key("stem1_mobile", _square(hw0, C), _square(_half(hw0), C), 2)]
    else:
        stems = [key("stem_cifar", image, _square(size, 3 * C), 1)]
    last = plan[-1]
    head = key("global_pool_classifier", _square(last.hw_out, last.C_out), (1, 1, geometry.num_classes), 1)
    return stems + [head]


def network_keys(genotype: Genotype, geometry: NetworkGeometry) -> Counter[str]:
    """Multiset of keys of the network ``genotype`` builds at ``geometry`` (8 edges per cell + fixed parts)."""
    plan = cell_plan(geometry, genotype)
    keys: Counter[str] = Counter(fixed_keys(geometry, plan))
    for cell in plan:
        keys.update(preprocess_keys(cell))
        entries, _ = genotype.cell("reduce" if cell.reduction else "normal")
        keys.update(edge_key(cell, op, index) for op, index in entries)
    return keys


def candidate_keys(geometry: NetworkGeometry, primitives: Sequence[str] = EDGE_PRIMITIVES) -> list[str]:
    """Every key a genotype of the space (cells concatenating all 4 nodes) can produce, sorted."""
    unknown = [p for p in primitives if p not in EDGE_PRIMITIVES]
    if unknown:
        raise BadInputError(f"unknown edge op {unknown[0]!r}{suggest(unknown[0], EDGE_PRIMITIVES)}; "
                            f"known: {', '.join(EDGE_PRIMITIVES)}")
    plan = cell_plan(geometry)
    keys = set(fixed_keys(geometry, plan))
    for cell in plan:
        keys.update(preprocess_keys(cell))
        for op in primitives:
            keys.add(edge_key(cell, op, 0))  # from a cell input (stride 2 in reductions)
            keys.add(edge_key(cell, op, 2))  # from an intermediate node (stride 1)
    return sorted(keys)


def edge_keys(geometry: NetworkGeometry, primitives: Sequence[str] = EDGE_PRIMITIVES) -> list[list[dict[str, str]]]:
    """Per cell, per supernet edge (14, α-row order), op → key. ``none`` has no key (zero latency)."""
    steps = DARTS_STEPS
    result: list[list[dict[str, str]]] = []
    for cell in cell_plan(geometry):
        rows: list[dict[str, str]] = [{} for _ in range(num_edges(steps))]
        for node in range(steps):
            for j in range(2 + node):
                rows[edge_index(node, j)] = {op: edge_key(cell, op, j) for op in primitives if op != "none"}
        result.append(rows)
    return result


def random_genotype(rng: random.Random, steps: int = DARTS_STEPS) -> Genotype:
    """A uniformly sampled valid genotype: per node two distinct earlier states, each with a non-``none`` op."""
    cells: dict[str, tuple[tuple[str, int], ...]] = {}
    for cell in ("normal", "reduce"):
        entries: list[tuple[str, int]] = []
        for node in range(steps):
            for index in rng.sample(range(2 + node), 2):
                entries.append((rng.choice(EDGE_PRIMITIVES), index))
        cells[cell] = tuple(entries)
    concat = tuple(range(2, 2 + steps))
    return Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)
