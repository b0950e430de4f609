"""`sdnas profile`: trtexec-like latency of a model on this device (ort, torch or trt backend)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .common import cli_errors, print_json

def default_backend(model: Path) -> str:
    """``trt`` for an ``.engine``/``.plan``, ``torch`` for ``.safetensors``, else ``ort`` (runtime.runner's table)."""
    from ..runtime.runner import backend_for

    return backend_for(model)


def warmup_seconds(warmup_ms: Optional[float], warmup_s: Optional[float]) -> float:
    """The warm-up in seconds from ``--warmup-ms`` (or the older ``--warmup-s``); default 1 s."""
    from ..errors import BadInputError

    if warmup_ms is not None and warmup_s is not None:
        raise BadInputError("pass either --warmup-ms or --warmup-s, not both")
    if warmup_s is not None:
        return float(warmup_s)
    return 1.0 if warmup_ms is None else float(warmup_ms) / 1000.0


@cli_errors
def profile(
    model: Path = typer.Argument(..., help="An .onnx model (ort, torch via its sidecar), .engine (trt) or .safetensors (torch)."),
    backend: Optional[str] = typer.Option(None, help="ort, torch or trt (default: from the file suffix)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N (default: cuda for trt, else cpu)."),
    batch: int = typer.Option(1, help="Batch size (a static-batch model needs its own batch)."),
    warmup_ms: Optional[float] = typer.Option(None, "--warmup-ms", help="Warm-up before timing, in ms (default 1000)."),
    warmup_s: Optional[float] = typer.Option(None, "--warmup-s", hidden=True, help="Warm-up in seconds (older flag)."),
    duration_s: float = typer.Option(3.0, "--duration-s", help="Timed duration in s (ignored with --iterations)."),
    iterations: Optional[int] = typer.Option(None, help="Exact number of timed calls."),
    percentiles: str = typer.Option("50,90,95,99", help="Comma-separated percentiles to report."),
    threads: Optional[int] = typer.Option(None, help="CPU intra-op threads (default: runtime default)."),
    cuda_graph: bool = typer.Option(False, "--cuda-graph/--no-cuda-graph", help="Replay the forward as one CUDA graph (GPU only)."),
    include_data_transfers: bool = typer.Option(False, "--include-data-transfers", help="Time host->device and device->host copies too (GPU)."),
    expect_sha256: Optional[str] = typer.Option(None, "--expect-sha256", metavar="HEX", help="Refuse the artifact "
                                                "(exit 3) unless its SHA-256 is this: the sidecar's own is untrusted."),
    force: bool = typer.Option(False, "--force", help="Run a TensorRT engine built on another device/TensorRT anyway."),
    compare_lut: Optional[str] = typer.Option(None, "--compare-lut", metavar="TARGET", help="Show the latency table's prediction for this target (or table file) next to the measured median."),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for report.json (default: <model dir>/profile)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the JSON report to this file."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Time the model on this device: warm-up, timed calls, percentiles, breakdown, CoV warning, fingerprint."""
    from ..profile.lut_compare import finish_comparison, predict_for_model
    from ..profile.api import profile_model
    from ..profile.timing import parse_percentiles
    from ..io_utils import atomic_write_json, require_file

    from ..runs import new_run_dir

    from ..runtime.fingerprint import require_sha256

    require_file(model, "model")
    require_sha256(model, expect_sha256)
    out_dir = new_run_dir("profile", out) if out is not None else model.parent / "profile"  # checked before timing
    backend = (backend or default_backend(model)).strip().lower()
    device = device or ("cuda" if backend == "trt" else "cpu")
    pcts = parse_percentiles(percentiles)
    prediction = predict_for_model(model, compare_lut) if compare_lut else None  # fail before timing
    result = profile_model(model, backend=backend, device=device, batch=batch,
                           warmup_s=warmup_seconds(warmup_ms, warmup_s), iterations=iterations, duration_s=duration_s,
                           threads=threads, percentiles=pcts, cuda_graph=cuda_graph,
                           include_data_transfers=include_data_transfers, force=force)
    if prediction is not None:
        result["compare_lut"] = finish_comparison(prediction, result["stats"]["median"], result)
        result["warnings"] = list(dict.fromkeys(result["warnings"] + result["compare_lut"]["warnings"]))
    path = atomic_write_json(out_dir / "report.json", result)
    if report:
        atomic_write_json(report, result)
    from ..visual.plots import profile_plot

    histogram = profile_plot(result, out_dir)  # latency histogram with the percentiles marked
    if json_out:
        print_json(result)
        return
    _print_human(result)
    typer.echo(f"report: {path}")
    for _, plot in histogram:
        typer.echo(f"histogram: {plot}")


def _print_human(result: dict[str, Any]) -> None:
    """The tables and lines of format_profile_table; on a TTY through rich, warnings highlighted."""
    from ..profile.timing import format_profile_table

    text = format_profile_table({**result, "compare_lut": _without_warnings(result.get("compare_lut"))})
    if not sys.stdout.isatty():
        typer.echo(text)
        return
    from rich.console import Console
    from rich.text import Text

    console = Console()
    for line in text.splitlines():
        style = "bold yellow" if line.startswith("warning:") else None
        console.print(Text(line, style=style), soft_wrap=True)


def _without_warnings(lut: dict[str, Any] | None) -> dict[str, Any] | None:
    """The comparison without its warnings (they are already merged into the report's warnings)."""
    return None if lut is None else {**lut, "warnings": []}
