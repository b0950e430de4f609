"""Layer-wise architectures: one block string per searchable layer, as JSON and as a one-line string.

JSON: ``{"space": "fbnet", "setting": "cifar", "blocks": ["k3_e1", "skip", ...]}`` (``setting`` optional: the
layer count must match the setting the network is built in). The one-line form joins the blocks with ``-``
(HELP's FBNet CSV form). A DNA student, whose stages take its teacher's widths and strides, also carries
``"stages": [{"width": 24, "layers": 2, "stride": 2, "out_width": 48}, ...]`` (one-line form:
``blocks@width:layers:stride[:out_width],...``); the stem and head still come from the setting. Validation: known blocks of the space, the layer count, and ``skip``/``zero`` only
where the space allows it — each problem one line with a suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ...errors import BadInputError
from ...registry import check_fields, suggest

from .layout import Stage

_FIELDS = ("blocks", "setting", "stages")
_STAGE_FIELDS = ("width", "layers", "stride", "out_width")
MAX_WIDTH = 4096  # widths beyond this are a typo, not a network (validated before anything is built)


@dataclass(frozen=True)
class LayerArch:
    """A discrete layer-wise architecture: the block string of each searchable layer, and its own stages when
    they are not the setting's (a DNA student's teacher-matched widths and strides)."""

    blocks: tuple[str, ...]
    stages: tuple[Stage, ...] | None = None

    def to_string(self) -> str:
        text = "-".join(self.blocks)
        if self.stages is None:
            return text
        return text + "@" + ",".join(":".join(str(v) for v in (s.width, s.layers, s.stride)) + (
            f":{s.out_width}" if s.out_width not in (None, s.width) else "") for s in self.stages)


def _int_field(value: Any, name: str, source: str, allowed: tuple[int, ...] | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > MAX_WIDTH:
        raise BadInputError(f"{source}: stage {name} must be an integer in 1..{MAX_WIDTH}, got {value!r}")
    if allowed is not None and value not in allowed:
        raise BadInputError(f"{source}: stage {name} must be one of {allowed}, got {value}")
    return value


def stages_from_json(data: Any, source: str) -> tuple[Stage, ...]:
    """Validated stages of an architecture JSON (each a mapping with width, layers, stride[, out_width])."""
    if not isinstance(data, (list, tuple)) or not data:
        raise BadInputError(f"{source}: 'stages' must be a non-empty list of {{width, layers, stride[, out_width]}}")
    stages = []
    for i, item in enumerate(data):
        where = f"{source}: stage {i}"
        check_fields(item if isinstance(item, Mapping) else {}, _STAGE_FIELDS[:3], _STAGE_FIELDS, where,
                     "stage is missing {name!r}; each stage needs width, layers and stride",
                     "unknown stage key {name!r}{hint}; remove it")
        out = item.get("out_width")
        stages.append(Stage(_int_field(item["width"], "width", where), _int_field(item["layers"], "layers", where),
                            _int_field(item["stride"], "stride", where, (1, 2)),
                            None if out is None else _int_field(out, "out_width", where)))
    return tuple(stages)


def stages_to_json(stages: tuple[Stage, ...]) -> list[dict[str, int]]:
    return [s.to_dict() for s in stages]


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
    stages = None if data.get("stages") is None else stages_from_json(data["stages"], source)
    if stages is not None and sum(s.layers for s in stages) != len(blocks):
        raise BadInputError(f"{source}: {len(blocks)} blocks but the stages have {sum(s.layers for s in stages)} "
                            "layers; give one block per layer")
    return LayerArch(tuple(blocks), stages), setting


def arch_from_line(text: Any, candidates: Sequence[str]) -> LayerArch:
    """Parse the ``-``-joined one-line form."""
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("arch string is empty; expected blocks joined by '-', e.g. 'k3_e1-skip-k5_e6'")
    blocks, _, stage_text = text.strip().partition("@")
    body: dict[str, Any] = {"blocks": [b.strip() for b in blocks.split("-")]}
    if stage_text:
        body["stages"] = [_stage_from_text(part) for part in stage_text.split(",")]
    arch, _ = arch_from_body(body, candidates, "arch string")
    return arch


def _stage_from_text(text: str) -> dict[str, int]:
    parts = text.strip().split(":")
    if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts):
        raise BadInputError(f"arch string: stage {text!r} is malformed; write width:layers:stride[:out_width]")
    return dict(zip(_STAGE_FIELDS, (int(p) for p in parts)))
