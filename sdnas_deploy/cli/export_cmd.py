"""`sdnas export`, `sdnas profile`, `sdnas check`: artifacts, on-device latency, CI gates."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import cli_errors, print_json, print_table


@cli_errors
def export(
    run_or_weights: str = typer.Argument(..., help="A .safetensors file from `sdnas train`, or a train/pipeline run directory."),
    format: str = typer.Option("onnx", "--format", "-f", help="onnx, or trt (aliases tensorrt, engine)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: <run>/export or next to the weights)."),
    opset: Optional[int] = typer.Option(None, help="ONNX opset (default 17)."),
    dynamic_batch: Optional[bool] = typer.Option(None, "--dynamic-batch/--static-batch", help="Symbolic batch dimension."),
    verify_images: Optional[int] = typer.Option(None, "--verify-images", help="Real test images for ORT-vs-PyTorch verification."),
    atol: Optional[float] = typer.Option(None, help="Max abs logit difference allowed (fp32 default 1e-4)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Dataset location, for non-embedded datasets."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Export the discrete network (eval mode, no aux head, static shape) and verify it in ONNX Runtime."""
    from ..config_utils import override
    from ..exporting import export_weights
    from ..recipes import ExportConfig
    from ..runs import resolve_weights_path

    weights = resolve_weights_path(run_or_weights)
    config = override(ExportConfig(), format=format, opset=opset, dynamic_batch=dynamic_batch,
                      verify_images=verify_images, atol=atol)
    out_dir = out or _default_export_dir(weights)
    sidecar = export_weights(weights, out_dir, config, data_dir=data_dir)
    if json_out:
        print_json(sidecar)
        return
    ver = sidecar["verification"]
    print_table(
        f"exported {out_dir / sidecar['file']}",
        [("verified", sidecar["verified"]), ("images compared", ver.get("n_images")),
         ("max |ORT - torch|", ver.get("max_abs_diff")), ("top-1 agreement", ver.get("top1_agreement")),
         ("torch accuracy", ver.get("torch_accuracy")), ("ORT accuracy", ver.get("onnx_accuracy")),
         ("opset", sidecar["opset"]), ("input", "x".join(map(str, sidecar["input"]["shape"])))],
    )


def _default_export_dir(weights: Path) -> Path:
    """`<run>/export` for weights inside a train run (or its pipeline parent)."""
    run = weights.parent.parent if weights.parent.name == "train" else weights.parent
    return run / "export"


@cli_errors
def profile(
    model: Path = typer.Argument(..., help="An .onnx model."),
    backend: str = typer.Option("ort", help="ort (ONNX Runtime)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    batch: int = typer.Option(1, help="Batch size (needs a dynamic-batch model for values other than its static batch)."),
    warmup_s: float = typer.Option(1.0, "--warmup-s", help="Warm-up time before timing."),
    duration_s: float = typer.Option(3.0, "--duration-s", help="Timed duration (ignored with --iterations)."),
    iterations: Optional[int] = typer.Option(None, help="Exact number of timed calls."),
    threads: Optional[int] = typer.Option(None, help="ORT intra-op threads (default: runtime default)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the JSON report to this file."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Time the model on this device: warm-up, timed calls, percentiles, CoV warning, fingerprint."""
    from ..deploy.profiler import format_profile_table, profile_onnx
    from ..errors import BadInputError
    from ..io_utils import atomic_write_json

    if backend != "ort":
        raise BadInputError(f"--backend {backend!r}: this version profiles with ort (ONNX Runtime) only")
    result = profile_onnx(model, device=device, batch=batch, warmup_s=warmup_s, iterations=iterations,
                          duration_s=duration_s, threads=threads)
    if report:
        atomic_write_json(report, result)
    if json_out:
        print_json(result)
    else:
        typer.echo(format_profile_table(result))


@cli_errors
def check(
    model: Path = typer.Argument(..., help="The exported .onnx model to gate."),
    gates: Optional[str] = typer.Option(None, "--gates", help="Gate profile YAML (path or shipped name, e.g. default)."),
    dataset: Optional[str] = typer.Option(None, help="Dataset to score accuracy on (default: the model's, from model.json)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir"),
    limit: Optional[int] = typer.Option(None, help="Score on the first N images only."),
    min_accuracy: Optional[float] = typer.Option(None, "--min-accuracy", help="Top-1 fraction the ORT model must reach, e.g. 0.9."),
    max_accuracy_drop: Optional[float] = typer.Option(None, "--max-accuracy-drop", help="Max drop vs the PyTorch accuracy in model.json."),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms"),
    latency_stat: Optional[str] = typer.Option(None, "--latency-stat", help="min, mean, median, p90, p95 or p99 (default p90)."),
    device: Optional[str] = typer.Option(None),
    batch: Optional[int] = typer.Option(None),
    duration_s: Optional[float] = typer.Option(None, "--duration-s"),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the JSON report to this file."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate the exported model in ONNX Runtime, profile it, compare with the gates; exit 0 pass / 4 fail."""
    from ..config_utils import override
    from ..deploy.gates import GateProfile, format_check_table, load_gates
    from ..deploy.onnx_export import load_sidecar
    from ..exporting import check_model
    from ..io_utils import atomic_write_json, require_file

    require_file(model, "ONNX model")
    profile_cfg = load_gates(gates) if gates else GateProfile()
    if dataset is None and not gates:
        sidecar = load_sidecar(model) or {}
        dataset = sidecar.get("metadata", {}).get("dataset")
    profile_cfg = override(profile_cfg, dataset=dataset, data_dir=data_dir, limit=limit, min_accuracy=min_accuracy,
                           max_accuracy_drop=max_accuracy_drop, max_latency_ms=max_latency_ms,
                           latency_stat=latency_stat, device=device, batch=batch, duration_s=duration_s)
    profile_cfg.validate("gates")
    result = check_model(model, profile_cfg)
    if report:
        atomic_write_json(report, result.to_dict())
    if json_out:
        print_json(result.to_dict())
    else:
        typer.echo(format_check_table(result))
    typer.echo(result.final_line, err=json_out)
    raise typer.Exit(result.exit_code)
