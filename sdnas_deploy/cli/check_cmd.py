"""`sdnas check`: gate an exported model in CI — accuracy, accuracy drop, latency, precision.

Exit codes (DESIGN.md §4, see deploy/gates.py): 0 all gates passed; 2 bad usage/input (missing
model, malformed profile, unknown key, no gate set, unknown dataset, unwritable report path);
3 verification failed (sidecar verified=false, sha256 mismatch, precision differs from the
profile's); 4 a gate failed; 5 environment unsupported (TensorRT or CUDA missing).

The last line of output is exactly ``PASSED`` or ``FAILED: <reason>`` for every one of these
codes. On exit 2/3/5 the usual ``error:`` line (common.fail, the same as every command) comes
first on stderr, then the FAILED line; the JSON/JUnit/Markdown reports are written in every case.
With ``--json`` stdout holds only the JSON report and the final line goes to stderr. Only an
internal error (exit 1, a bug) and Typer's own usage errors end with the error text alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .common import cli_errors, fail, print_json


@cli_errors
def check(
    model: Path = typer.Argument(..., help="The model to gate: an .onnx (ort, torch) or an .engine (trt), with its sidecar."),
    gates: Optional[str] = typer.Option(None, "--gates", help="Gate profile YAML (path or shipped name: default, ci-demo)."),
    dataset: Optional[str] = typer.Option(None, help="Dataset to score accuracy on (default: the model's, from its sidecar)."),
    split: Optional[str] = typer.Option(None, help="test (default) or train."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Dataset location, for non-embedded datasets."),
    limit: Optional[int] = typer.Option(None, help="Score on the first N images only."),
    min_accuracy: Optional[float] = typer.Option(None, "--min-accuracy", help="Top-1 fraction the model must reach, e.g. 0.9."),
    max_accuracy_drop: Optional[float] = typer.Option(None, "--max-accuracy-drop", help="Max top-1 drop vs the PyTorch model (fraction)."),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="Max latency (ms) at --latency-stat."),
    latency_stat: Optional[str] = typer.Option(None, "--latency-stat", help="min, mean, median, p90, p95 or p99 (default p90)."),
    backend: Optional[str] = typer.Option(None, help="ort (ONNX Runtime, default), trt (TensorRT engine) or torch (PyTorch weights)."),
    precision: Optional[str] = typer.Option(None, help="Precision the artifact must be: fp32, fp16 or int8 (default: any; exit 3 on a mismatch)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N (default: cpu; cuda:0 for trt)."),
    batch: Optional[int] = typer.Option(None, help="Profiling batch size (default 1)."),
    warmup_s: Optional[float] = typer.Option(None, "--warmup-s", help="Warm-up before timing (default 1 s)."),
    duration_s: Optional[float] = typer.Option(None, "--duration-s", help="Timed duration (default 3 s)."),
    threads: Optional[int] = typer.Option(None, help="Intra-op threads (default: runtime default)."),
    expect_sha256: Optional[str] = typer.Option(None, "--expect-sha256", metavar="HEX", help="Refuse the artifact "
                                                "(exit 3) unless its SHA-256 is this: the sidecar's own is untrusted."),
    force: bool = typer.Option(False, "--force", help="trt: run an engine built for another GPU/TensorRT (warns instead of exit 5)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the JSON report to this file."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write a JUnit XML report (one test case per gate)."),
    summary: Optional[str] = typer.Option(None, "--summary", help='Write a Markdown summary; appends when the file exists (use "$GITHUB_STEP_SUMMARY").'),
    json_out: bool = typer.Option(False, "--json", help="Print the JSON report on stdout."),
) -> None:
    """Gate a model: artifact identity and precision, accuracy, drop vs PyTorch, latency. Exit 0/2/3/4/5."""
    from ..config_utils import override
    from ..gate.gates import CheckReport, GateProfile, load_gates
    from ..gate.reports import format_check_table
    from ..gate.reports import write_reports
    from ..errors import SdnasError
    from ..exporting import check_model
    from ..io_utils import require_file

    began = time.time()
    profile: GateProfile | None = None
    try:
        profile = load_gates(gates) if gates else GateProfile()
        if dataset is None and not gates:
            dataset = _sidecar_dataset(model)
        profile = override(profile, dataset=dataset, split=split, data_dir=data_dir, limit=limit,
                           min_accuracy=min_accuracy, max_accuracy_drop=max_accuracy_drop,
                           max_latency_ms=max_latency_ms, latency_stat=latency_stat, backend=backend,
                           precision=precision, device=device, batch=batch, warmup_s=warmup_s,
                           duration_s=duration_s, threads=threads, force=force or None)
        profile.validate("gates")
        require_file(model, "model")
        from ..runtime.fingerprint import require_sha256

        require_sha256(model, expect_sha256)
        result = check_model(model, profile)
    except SdnasError as exc:
        result = CheckReport.from_error(model, exc, profile, began)
    try:
        write_reports(result, report, junit, summary or None)
    except SdnasError as exc:  # an unwritable report path: exit 2, reported on the terminal only
        result = CheckReport.from_error(model, exc, profile, began)
    if json_out:
        print_json(result.to_dict())
    elif result.error is None:
        typer.echo(format_check_table(result))
    if result.error is not None:
        try:
            fail(result.reason, result.exit_code)  # the one `error:` line and the exit code, as everywhere
        finally:
            typer.echo(result.final_line, err=json_out)
    typer.echo(result.final_line, err=json_out)
    raise typer.Exit(result.exit_code)


def _sidecar_dataset(model: Path) -> Optional[str]:
    """The dataset the model was exported for (its sidecar's metadata), when recorded."""
    from ..export.onnx_export import load_sidecar

    meta = (load_sidecar(model) or {}).get("metadata")
    return meta.get("dataset") if isinstance(meta, dict) else None
