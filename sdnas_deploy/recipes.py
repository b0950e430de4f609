"""Pipeline recipes: one YAML with a section per stage (search, train, export, profile, check).

``sdnas run`` reads all sections; ``sdnas search``/``sdnas train`` read only their own. Unknown top-level
sections or keys are rejected with a one-line error (config_utils.from_mapping).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from .config_utils import from_mapping, to_dict
from .errors import BadInputError
from .io_utils import load_yaml
from .registry import suggest

SECTIONS = ("search", "train", "export", "profile", "check")


@dataclass
class ExportConfig:
    """How `sdnas export` / the pipeline export the trained network (project defaults)."""

    format: str = "onnx"
    opset: int = 17  # ours: opset 17 is read by every current ONNX Runtime and by TensorRT 8.6+ (JetPack 5/6)
    dynamic_batch: bool = False  # static shapes by default (DESIGN.md §3)
    verify_images: int = 256  # real test images used to compare ONNX Runtime with PyTorch
    atol: float = 1e-4  # fp32 tolerance of DESIGN.md §3


@dataclass
class ProfileConfig:
    """How the pipeline profiles the exported model (project defaults)."""

    backend: Literal["ort"] = "ort"
    device: str = "cpu"
    batch: int = 1
    warmup_s: float = 1.0
    duration_s: float = 3.0
    iterations: Optional[int] = None
    threads: Optional[int] = None


@dataclass
class Recipe:
    """All stage configs of one pipeline run, plus where they came from."""

    source: str
    search: Any
    train: Any
    export: ExportConfig = field(default_factory=ExportConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    check: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        for name in SECTIONS:
            value = getattr(self, name)
            out[name] = to_dict(value) if value is not None else None
        return out


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


def load_recipe(path: Path) -> Recipe:
    """Parse every section of a recipe into its typed config."""
    from .deploy.gates import GateProfile
    from .nas.config import search_config_from_mapping
    from .training.config import train_config_from_mapping

    sections = read_sections(path)
    src = str(path)
    check = sections.get("check")
    return Recipe(
        source=src,
        search=search_config_from_mapping(sections.get("search"), f"{src} [search]"),
        train=train_config_from_mapping(sections.get("train"), f"{src} [train]"),
        export=from_mapping(ExportConfig, sections.get("export"), f"{src} [export]"),
        profile=from_mapping(ProfileConfig, sections.get("profile"), f"{src} [profile]"),
        check=from_mapping(GateProfile, check, f"{src} [check]").validate(f"{src} [check]") if check else None,
    )
