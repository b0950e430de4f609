"""Layer-wise architectures: one block string per searchable layer, as JSON and as a one-line string.

JSON: ``{"space": "fbnet", "setting": "cifar", "blocks": ["k3_e1", "skip", ...]}`` (``setting`` optional: the
layer count must match the setting the network is built in). The one-line form joins the blocks with ``-``
(HELP's FBNet CSV form). Validation: known blocks of the space, the layer count, and ``skip``/``zero`` only
where the space allows it — each problem one line with a suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ...errors import BadInputError
from ...registry import check_fields, suggest

_FIELDS = ("blocks", "setting")


@dataclass(frozen=True)
class LayerArch:
    """A discrete layer-wise architecture: the block string of each searchable layer."""

    blocks: tuple[str, ...]

    def to_string(self) -> str:
        return "-".join(self.blocks)


def arch_from_body(data: Any, candidates: Sequence[str], source: str) -> tuple[LayerArch, str | None]:
    """``(arch, setting or None)`` from a JSON body (``space`` already removed); unknown blocks → one line."""
    if not isinstance(data, Mapping):
        raise BadInputError(f"{source}: a layer-wise architecture is a JSON object with a 'blocks' list")
    check_fields(data, ("blocks",), _FIELDS, source, "architecture is missing {name!r}; it needs a 'blocks' list",
                 "unknown architecture key {name!r}{hint}; remove it")
    blocks = data["blocks"]
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise BadInputError(f"{source}: 'blocks' must be a non-empty list of block strings such as 'k3_e6'")
    setting = data.get("setting")
    if setting is not None and not isinstance(setting, str):
        raise BadInputError(f"{source}: 'setting' must be a setting name, got {setting!r}")
    for i, block in enumerate(blocks):
        if not isinstance(block, str) or block not in candidates:
            hint = suggest(str(block), list(candidates)) if isinstance(block, str) else ""
            raise BadInputError(f"{source}: layer {i}: unknown block {block!r}{hint}; known: {', '.join(candidates)}")
    return LayerArch(tuple(blocks)), setting


def arch_from_line(text: Any, candidates: Sequence[str]) -> LayerArch:
    """Parse the ``-``-joined one-line form."""
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("arch string is empty; expected blocks joined by '-', e.g. 'k3_e1-skip-k5_e6'")
    arch, _ = arch_from_body({"blocks": [b.strip() for b in text.strip().split("-")]}, candidates, "arch string")
    return arch
