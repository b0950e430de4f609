"""`sdnas profile --compare-lut TARGET`: the latency table's prediction next to the measured median.

The search ranks architectures by a latency table's prediction; this closes the loop for one deployed
model: its space, architecture and geometry come from the artifact's sidecar (``model.json`` next to an ``.onnx``,
``model.engine.json`` next to an ``.engine``) or from the weights' own metadata (``.safetensors``), the
table from ``hw.targets.resolve_table`` (or a table file), and the prediction from ``hw.lut.predict_latency``
— the same calls `sdnas search` makes. A table of another space or geometry is refused, naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import BadInputError
from ..runtime.runner import is_engine


def model_description(model_path: Path | str) -> tuple[Any, Any, Any, str]:
    """(space, architecture, geometry, where they were read) for an ``.onnx``, ``.engine`` or ``.safetensors``."""
    path = Path(model_path)
    if path.suffix == ".safetensors":
        from ..training.weights import geometry_of, read_weights, space_and_arch

        _, meta = read_weights(path)
        space, arch = space_and_arch(meta, str(path))
        return space, arch, geometry_of(meta, space), str(path)
    if is_engine(path):
        from ..io_utils import load_json
        from ..runtime.trt_env import engine_sidecar_path

        side = engine_sidecar_path(path)
        if not side.is_file():
            raise BadInputError(f"{path}: no engine sidecar {side.name}; rebuild the engine with `sdnas export --format trt`")
        sidecar = load_json(side, "engine sidecar")
        source = str(side)
    else:
        from ..export.onnx_export import load_sidecar, sidecar_path

        sidecar = load_sidecar(path)
        source = str(sidecar_path(path))
        if sidecar is None:
            raise BadInputError(f"{path}: no sidecar {Path(source).name}, so no genotype to predict from; "
                                "re-export the model with `sdnas export`")
    return _from_sidecar(sidecar, source)


def _from_sidecar(sidecar: Any, source: str) -> tuple[Any, Any, Any, str]:
    from ..spaces import LEGACY_SPACE, SPACE_FIELD, arch_from_json, get_space

    if not isinstance(sidecar, Mapping):
        raise BadInputError(f"{source}: sidecar is not a JSON object; re-export the model")
    raw = sidecar.get("genotype")
    if raw is None:
        raise BadInputError(f"{source}: sidecar records no genotype; --compare-lut needs a model exported by `sdnas export`")
    meta = sidecar.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise BadInputError(f"{source}: sidecar metadata is not an object; re-export the model with `sdnas export`")
    name = meta.get("space", raw.get(SPACE_FIELD, LEGACY_SPACE) if isinstance(raw, Mapping) else LEGACY_SPACE)
    try:
        space = get_space(name)
    except BadInputError as exc:
        raise BadInputError(f"{source}: {exc.message}") from None
    if isinstance(raw, str):
        arch = space.arch_from_string(raw)
    else:
        _, arch = arch_from_json(raw, f"{source}: genotype", space.name)
    shape = (sidecar.get("input") or {}).get("shape") or []
    missing = [k for k in ("setting", "num_classes") if k not in meta]
    well_formed = len(shape) == 4 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    if missing or not well_formed:
        what = (f"metadata lacks {', '.join(missing)}" if missing
                else f"input shape {shape!r:.60} is not four positive integers N x C x H x W")
        raise BadInputError(f"{source}: cannot tell the network geometry ({what}); re-export the model with `sdnas export`")
    if shape[2] != shape[3]:
        raise BadInputError(f"{source}: input {shape[2]}x{shape[3]} is not square; latency tables describe square inputs")
    if not isinstance(meta["setting"], str):
        raise BadInputError(f"{source}: metadata setting {meta['setting']!r} is not a name; re-export the model")
    try:
        geometry = space.geometry(meta["setting"], input_size=int(shape[2]), in_channels=int(shape[1]),
                                  num_classes=meta["num_classes"], layers=meta.get("layers"),
                                  channels=meta.get("channels"))
    except (TypeError, ValueError):
        raise BadInputError(f"{source}: metadata describes no valid geometry; re-export the model") from None
    return space, arch, geometry, source


def _load_table(target: str, setting: str, space: str) -> tuple[Any, str]:
    """A registered target's shipped table for ``space``/``setting``, or a table file when ``target`` is a path."""
    from ..hw.lut import load_table
    from ..hw.targets import resolve_table

    if target.endswith(".json") or "/" in target:
        return load_table(target), target
    path = resolve_table(target, setting, space=space)
    return load_table(path), str(path)


def error_pct(predicted_ms: float, measured_ms: float) -> float:
    """Signed prediction error in % of the measurement (hw.validate's convention: + means over-predicted)."""
    if measured_ms <= 0:
        raise BadInputError(f"measured latency must be > 0 ms to compare, got {measured_ms}")
    return (predicted_ms - measured_ms) / measured_ms * 100.0


def predict_for_model(model_path: Path | str, target: str) -> dict[str, Any]:
    """The table's prediction for one model, before anything is measured (so a bad table fails fast).

    Returns ``{"target", "table", "predicted_ms", "table_fingerprint"}``; a table measured for another
    geometry → BadInputError naming both geometries and the `sdnas lut build` command.
    """
    from ..hw.lut import predict_latency

    space, genotype, geometry, source = model_description(model_path)
    table, table_source = _load_table(target, geometry.setting, space.name)
    try:
        table.check_space(space.name, str(model_path))
        table.check_geometry(geometry)
    except BadInputError as exc:
        raise BadInputError(f"{model_path}: {exc.message}") from None
    return {"target": table.target, "table": table_source, "predicted_ms": float(predict_latency(table, genotype)),
            "table_fingerprint": dict(table.fingerprint)}


def finish_comparison(prediction: Mapping[str, Any], measured_ms: float,
                      profile: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"target", "table", "predicted_ms", "measured_ms", "error_pct", "warnings"}`` from a prediction.

    ``profile`` (the profile report) lets us warn when the table was measured under other conditions
    (backend, batch, threads, provider) than the profile, since then the two figures are not comparable.
    """
    predicted = float(prediction["predicted_ms"])
    return {
        "target": prediction["target"],
        "table": prediction["table"],
        "predicted_ms": predicted,
        "measured_ms": float(measured_ms),
        "error_pct": error_pct(predicted, float(measured_ms)),
        "warnings": condition_warnings(prediction.get("table_fingerprint") or {}, profile or {}),
    }


def compare_lut(model_path: Path | str, target: str, measured_ms: float,
                profile: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:func:`predict_for_model` then :func:`finish_comparison` with ``measured_ms`` (the profile's median)."""
    return finish_comparison(predict_for_model(model_path, target), measured_ms, profile)


def condition_warnings(table_fp: Mapping[str, Any], profile: Mapping[str, Any]) -> list[str]:
    """Differences between how the table and the profile were measured (empty when comparable)."""
    runtime = {"onnxruntime": "ort", "torch-eager": "torch", "torch-cuda-graph": "torch", "tensorrt": "trt"}
    here = {"backend": runtime.get(str(profile.get("backend")), profile.get("backend")),
            "batch": profile.get("batch"), "threads": profile.get("threads")}
    if profile.get("provider") and table_fp.get("backend") == "ort" and here["backend"] == "ort":
        here["provider"] = profile.get("provider")
    out = []
    for name, value in here.items():
        if value is None or name not in table_fp or table_fp[name] == value:
            continue
        out.append(f"the latency table was measured with {name} {table_fp[name]!r}, this profile with {value!r}: "
                   "the prediction and the measurement are not directly comparable")
    return out
