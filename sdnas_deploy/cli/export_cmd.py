"""`sdnas export`: one verified artifact per requested format (ONNX, TensorRT engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import cli_errors, print_json, print_table


def parse_int_list(text: Optional[str], flag: str, length: int) -> Optional[list[int]]:
    """``"1,8,32"`` -> [1, 8, 32] (exactly ``length`` positive ints), else BadInputError naming ``flag``."""
    from ..errors import BadInputError

    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != length or any(v < 1 for v in values):
        raise BadInputError(f"{flag} {text!r}: expected {length} positive integers separated by commas, e.g. 1,8,32")
    return values


@cli_errors
def export(
    run_or_weights: str = typer.Argument(..., help="A .safetensors file from `sdnas train`, or a train/pipeline run directory."),
    format: str = typer.Option("onnx", "--format", "-f", help="onnx, trt (aliases tensorrt, engine), or several: onnx,trt."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32, fp16 or int8 (default: onnx fp32, trt fp16)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: <run>/export or next to the weights)."),
    opset: Optional[int] = typer.Option(None, help="ONNX opset (default 17)."),
    dynamic_batch: Optional[bool] = typer.Option(None, "--dynamic-batch/--static-batch", help="ONNX: symbolic batch dimension."),
    batch_range: Optional[str] = typer.Option(None, "--batch-range", metavar="MIN,OPT,MAX", help="TensorRT: dynamic batch profile."),
    verify_images: Optional[int] = typer.Option(None, "--verify-images", help="Real held-out test images to verify on."),
    atol: Optional[float] = typer.Option(None, help="ONNX fp32: max abs logit difference vs PyTorch (default 1e-4)."),
    max_accuracy_drop: Optional[float] = typer.Option(None, "--max-accuracy-drop", help="Top-1 drop vs PyTorch allowed (default by precision)."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data", help="INT8: dataset name, image folder or .npy (default: the model's dataset, train split)."),
    calib_count: Optional[int] = typer.Option(None, "--calib-count", help="INT8: calibration images (default 512)."),
    calib_method: Optional[str] = typer.Option(None, "--calib-method", help="INT8: entropy, minmax or percentile."),
    calib_cache: Optional[str] = typer.Option(None, "--calib-cache", help="INT8: calibration cache file (reused when it matches)."),
    workspace_gib: Optional[float] = typer.Option(None, "--workspace-gib", help="TensorRT: builder workspace (default 2)."),
    timing_cache: Optional[str] = typer.Option(None, "--timing-cache", help="TensorRT: timing cache file (default keyed by device)."),
    device: Optional[str] = typer.Option(None, "--device", help="TensorRT: gpu or dla:N (Jetson DLA, GPU fallback)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Dataset location, for non-embedded datasets."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Export the discrete network (eval mode, no aux head) per format, verify each artifact, one line each."""
    from ..config_utils import override
    from ..exporting import export_all
    from ..recipes import ExportConfig
    from ..runs import resolve_weights_path

    weights = resolve_weights_path(run_or_weights)
    config = override(
        ExportConfig(), format=format, precision=precision, opset=opset, dynamic_batch=dynamic_batch,
        batch_range=parse_int_list(batch_range, "--batch-range", 3), verify_images=verify_images, atol=atol,
        max_accuracy_drop=max_accuracy_drop, calib_data=calib_data, calib_count=calib_count,
        calib_method=calib_method, calib_cache=calib_cache, workspace_gib=workspace_gib, timing_cache=timing_cache,
        device=device,
    )
    from ..runs import new_run_dir

    out_dir = new_run_dir("export", out) if out is not None else _default_export_dir(weights)
    results = export_all(weights, out_dir, config, data_dir=data_dir, log_lines=not json_out)
    if json_out:
        print_json(results[0].sidecar if len(results) == 1 else
                   {"exports": [{"format": r.format, "path": str(r.path), "seconds": r.seconds, "sidecar": r.sidecar}
                                for r in results]})
        return
    for result in results:
        ver = result.sidecar.get("verification", {})
        rows = [("verified", result.sidecar["verified"]), ("precision", result.sidecar.get("precision", "fp32")),
                ("images compared", ver.get("n_images")), ("top-1 agreement", ver.get("top1_agreement"))]
        if "max_abs_diff" in ver:
            rows.append(("max |artifact - torch|", ver.get("max_abs_diff")))
        rows += [("torch accuracy", ver.get("reference_accuracy", ver.get("torch_accuracy"))),
                 (f"{result.format} accuracy", ver.get("candidate_accuracy", ver.get("onnx_accuracy"))),
                 ("seconds", result.seconds)]
        print_table(f"exported {result.path}", rows)


def _default_export_dir(weights: Path) -> Path:
    """`<run>/export` for weights inside a train run (or its pipeline parent)."""
    run = weights.parent.parent if weights.parent.name == "train" else weights.parent
    return run / "export"
