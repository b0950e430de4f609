"""`sdnas profile` through Typer: report.json always written, JSON/human output, flags, exit codes."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sdnas_deploy.cli.profile_cmd import default_backend, profile, warmup_seconds
from sdnas_deploy.errors import BadInputError

DEMO = Path(__file__).resolve().parent.parent / "export" / "demo"
FAST = ["--warmup-ms", "0", "--iterations", "12", "--threads", "1"]


def make_app() -> typer.Typer:
    app = typer.Typer()
    app.command("profile")(profile)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `profile` a sub-command, as in the real CLI
        """Nothing."""

    return app


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(make_app(), ["profile", *args])
    return result.exit_code, result.output


@pytest.fixture()
def demo_copy(tmp_path: Path) -> Path:
    """The demo model and sidecar in a temporary folder (the default output folder goes next to it)."""
    for name in ("model.onnx", "model.json"):
        shutil.copy(DEMO / name, tmp_path / name)
    return tmp_path / "model.onnx"


def test_human_output_and_default_report_dir(demo_copy: Path) -> None:
    code, out = invoke(str(demo_copy), *FAST, "--percentiles", "50,90,99")
    assert code == 0, out
    for needle in ("onnxruntime (CPUExecutionProvider) latency in ms", "median", "p90", "p99", "cov",
                   "throughput:", "timed: session.run() wall time per call", "environment:"):
        assert needle in out
    report_path = demo_copy.parent / "profile" / "report.json"
    assert f"report: {report_path}" in out
    report = json.loads(report_path.read_text())
    assert report["iterations"] == 12 and "p95" not in report["stats"] and report["jetson"] is None
    assert not list(report_path.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_json_out_and_extra_report_copy(demo_copy: Path, tmp_path: Path) -> None:
    extra = tmp_path / "copies" / "profile.json"
    out_dir = tmp_path / "elsewhere"
    code, out = invoke(str(demo_copy), *FAST, "--json", "--out", str(out_dir), "--report", str(extra),
                       "--include-data-transfers")
    assert code == 0, out
    printed = json.loads(out)
    assert printed == json.loads((out_dir / "report.json").read_text()) == json.loads(extra.read_text())
    assert printed["options"]["include_data_transfers"] is True
    assert "--include-data-transfers changes nothing here" in printed["timed"]


def test_compare_lut_with_a_table_file(demo_copy: Path, tmp_path: Path) -> None:
    from sdnas_deploy.profile.lut_compare import model_description
    from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, network_keys
    from sdnas_deploy.hw.lut import LatencyTable, save_table

    _, genotype, geometry, _ = model_description(demo_copy)
    assert isinstance(geometry, NetworkGeometry)
    entries = {k: {"count": 3, "mean": 0.002, "std": 0.0, "p50": 0.002, "p90": 0.002}
               for k in network_keys(genotype, geometry)}
    fp = {"backend": "ort", "provider": "CPUExecutionProvider", "precision": "fp32", "batch": 1, "threads": 1,
          "date": "2026-11-30", "sdnas_version": "0.1.0"}
    table = save_table(tmp_path / "t.json", LatencyTable("mine", fp, geometry, overhead_ms=0.01, entries=entries))
    code, out = invoke(str(demo_copy), *FAST, "--compare-lut", str(table))
    assert code == 0, out
    assert "latency table mine: predicted" in out and "measured median" in out and "error" in out
    lut = json.loads((demo_copy.parent / "profile" / "report.json").read_text())["compare_lut"]
    expected = 0.01 + 0.002 * sum(network_keys(genotype, geometry).values())
    assert lut["predicted_ms"] == pytest.approx(expected)
    assert lut["error_pct"] == pytest.approx((expected - lut["measured_ms"]) / lut["measured_ms"] * 100)


def test_compare_lut_geometry_mismatch_fails_before_timing(demo_copy: Path) -> None:
    code, out = invoke(str(demo_copy), *FAST, "--compare-lut", "x86-cpu-ort")
    assert code == 2 and "layers 20 (table) vs 8" in out and "sdnas lut build" in out
    assert not (demo_copy.parent / "profile").exists()


@pytest.mark.parametrize("args,message", [
    (["--percentiles", "50,abc"], "'abc' is not a number"),
    (["--cuda-graph"], "--cuda-graph needs a CUDA device"),
    (["--backend", "onnx"], "unknown profile backend"),
    (["--warmup-ms", "5", "--warmup-s", "1"], "either --warmup-ms or --warmup-s"),
    (["--iterations", "0"], "iterations must be in 1.."),
])
def test_bad_flags_exit_2(demo_copy: Path, args: list[str], message: str) -> None:
    code, out = invoke(str(demo_copy), "--iterations", "1", *args)
    assert code == 2 and message in out, out


def test_missing_model_exit_2(tmp_path: Path) -> None:
    code, out = invoke(str(tmp_path / "nope.onnx"))
    assert code == 2 and "not found" in out


def test_engine_without_tensorrt_exit_5(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    code, out = invoke(str(engine))  # backend trt and device cuda inferred from the suffix
    assert code == 5 and "TensorRT" in out


def test_torch_backend_from_weights(tmp_path: Path) -> None:
    code, out = invoke(str(DEMO / "model.safetensors"), "--warmup-ms", "0", "--iterations", "3", "--json",
                       "--out", str(tmp_path))
    assert code == 0, out
    report = json.loads(out)
    assert report["backend"] == "torch-eager" and report["options"]["backend"] == "torch"


def test_helpers() -> None:
    assert [default_backend(Path(p)) for p in ("a.engine", "a.plan", "a.safetensors", "a.onnx")] == [
        "trt", "trt", "torch", "ort"]
    assert warmup_seconds(None, None) == 1.0 and warmup_seconds(250, None) == 0.25 and warmup_seconds(None, 2) == 2
    with pytest.raises(BadInputError):
        warmup_seconds(1, 1)
