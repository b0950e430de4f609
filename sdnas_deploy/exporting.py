"""Glue between trained weights, datasets and the deploy package.

`sdnas export`, `sdnas check` and `sdnas run` call these so the loading logic is written once:
weights → network (eval, no aux head) → ONNX export verified on real test images; an ONNX model
+ gate profile → the images it is scored on → :func:`deploy.gates.run_check`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import BadInputError
from .recipes import ExportConfig


def export_weights(weights: Path, out_dir: Path, config: ExportConfig | None = None, data_dir: str | None = None) -> dict[str, Any]:
    """Export a `sdnas train` weights file to ``out_dir/model<suffix>``; return the verified sidecar."""
    from .data import load_arrays
    from .deploy.formats import resolve_format
    from .deploy.onnx_export import export_and_verify
    from .training.weights import load_network

    config = config or ExportConfig()
    fmt = resolve_format(config.format)
    fmt.resolve_options({"opset": config.opset, "dynamic_batch": config.dynamic_batch} if fmt.name == "onnx" else None)
    model, meta = load_network(weights, auxiliary=False)
    model.eval()
    if fmt.name != "onnx":
        # Non-ONNX formats (TensorRT) raise exit 5 with the remediation where their runtime is missing.
        fmt.export(model, Path(out_dir) / f"model{fmt.suffix}", meta.input_shape)
    if config.verify_images < 1:
        raise BadInputError(f"verify_images={config.verify_images}: export verification needs at least 1 real image")
    images, labels = load_arrays(meta.dataset, "test", data_dir=data_dir, limit=config.verify_images,
                                 image_size=meta.image_size if _resizable(meta.dataset) else None)
    out_path = Path(out_dir) / "model.onnx"
    return export_and_verify(
        model, out_path, meta.input_shape, images, labels, opset=config.opset, dynamic_batch=config.dynamic_batch,
        atol=config.atol, genotype=meta.genotype, mean=meta.mean, std=meta.std,
        metadata={"weights": str(weights), "dataset": meta.dataset, "setting": meta.setting,
                  "num_classes": meta.num_classes, "layers": meta.layers, "channels": meta.channels,
                  "trained_epochs": meta.epoch, "test_top1_torch": meta.test_top1},
    )


def _resizable(dataset: str) -> bool:
    from .data import DATASETS

    return bool(DATASETS[dataset].resizable) if dataset in DATASETS else False


def check_model(onnx_path: Path, gates: Any) -> Any:
    """Load the images the gate profile names (when an accuracy gate is set) and run the check."""
    from .data import load_arrays
    from .deploy.gates import run_check

    images = labels = None
    if gates.needs_data:
        images, labels = load_arrays(gates.dataset, gates.split, data_dir=gates.data_dir, limit=gates.limit)
    return run_check(onnx_path, gates, images, labels)
