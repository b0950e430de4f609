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
from .recipe_sections import SECTIONS, read_sections  # noqa: F401  (read_sections re-exported)



@dataclass
class ExportConfig:
    """How `sdnas export` / the pipeline export the trained network.

    Fields left None take the format table's default (deploy/formats.py: opset 17, static batch, fp32 for
    onnx and fp16 for trt, ...); a per-format option set for a format that does not take it is an error.
    """

    format: str = "onnx"  # one or more of onnx, trt (aliases tensorrt, engine), comma-separated
    precision: Optional[str] = None  # fp32 | fp16 | int8 (baked into the ONNX, or the TensorRT engine's)
    opset: Optional[int] = None  # ours: 17 is read by every current ONNX Runtime and by TensorRT 8.6+ (JetPack 5/6)
    dynamic_batch: Optional[bool] = None  # onnx: symbolic batch dim; static shapes by default (DESIGN.md §3)
    batch_range: Optional[list[int]] = None  # trt: dynamic batch optimization profile [min, opt, max]
    verify_images: int = 256  # real held-out test images the artifact is verified on
    atol: Optional[float] = None  # onnx fp32: max |ORT - PyTorch| logit difference (default 1e-4, DESIGN.md §3)
    max_accuracy_drop: Optional[float] = None  # top-1 drop vs PyTorch allowed (default by precision)
    calib_data: Optional[str] = None  # int8: dataset name, image folder or .npy (default: the model's dataset, train split)
    calib_count: int = 512  # int8: calibration images
    calib_method: Optional[str] = None  # int8: entropy | minmax | percentile
    calib_cache: Optional[str] = None  # int8: calibration cache file, reused when it matches
    workspace_gib: Optional[float] = None  # trt: builder workspace (default 2 GiB)
    timing_cache: Optional[str] = None  # trt: timing cache file (default keyed by the device fingerprint)
    device: Optional[str] = None  # trt: gpu or dla:N


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


def load_recipe(path: Path) -> Recipe:
    """Parse every section of a recipe into its typed config."""
    from .gate.gates import GateProfile
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
