"""`sdnas check` end to end through the CLI: exit codes 0/2/3/4/5, the final PASSED/FAILED line, reports."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sdnas_deploy.cli.check_cmd import check

DEMO = Path(__file__).resolve().parent.parent / "export" / "demo"
FAST = ["--duration-s", "0.2", "--warmup-s", "0.02", "--threads", "1"]

app = typer.Typer()


@app.callback()
def _root() -> None:
    """Keeps `check` a named sub-command, as in the real `sdnas` app."""


app.command("check")(check)
runner = CliRunner()


@pytest.fixture()
def demo_copy(tmp_path: Path) -> Path:
    """A private copy of the committed demo artifact, safe to tamper with."""
    for name in ("model.onnx", "model.json", "model.safetensors"):
        (tmp_path / name).write_bytes((DEMO / name).read_bytes())
    return tmp_path / "model.onnx"


def run(tmp_path: Path, *args: str) -> tuple[object, dict, ET.Element, str]:
    """Invoke `check` with every report; return (result, JSON report, JUnit testsuite, Markdown)."""
    out = tmp_path / "out"
    result = runner.invoke(app, ["check", *args, "--report", str(out / "check.json"), "--junit", str(out / "junit.xml"),
                                 "--summary", str(out / "summary.md")])
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    return result, json.loads((out / "check.json").read_text()), suite, (out / "summary.md").read_text()


def last_line(result: object) -> str:
    return result.stdout.strip().splitlines()[-1]  # type: ignore[attr-defined]


def test_exit_0_all_gates_pass(tmp_path: Path) -> None:
    result, report, suite, summary = run(tmp_path, str(DEMO / "model.onnx"), "--gates", "ci-demo", "--limit", "64", *FAST)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert last_line(result) == "PASSED" and not result.stderr  # type: ignore[attr-defined]
    assert report["status"] == "PASSED" and [r["gate"] for r in report["rows"]] == ["accuracy top-1", "accuracy drop", "latency median"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")
    assert summary.startswith("### ✅ sdnas check: PASSED")


def test_exit_4_a_gate_fails(tmp_path: Path) -> None:
    result, report, suite, summary = run(
        tmp_path, str(DEMO / "model.onnx"), "--max-latency-ms", "0.000001", "--latency-stat", "min",
        "--min-accuracy", "0.5", "--limit", "32", *FAST)
    assert result.exit_code == 4  # type: ignore[attr-defined]
    line = last_line(result)
    assert line.startswith("FAILED: latency min ") and line.endswith("> 1e-06 ms") and line == f"FAILED: {report['reason']}"
    assert report["status"] == "FAILED" and report["exit_code"] == 4
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    assert summary.startswith("### ❌ sdnas check: FAILED (a gate failed, exit 4)")


def assert_stopped(result: object, report: dict, suite: ET.Element, summary: str, code: int, needle: str) -> None:
    """Exit ``code``: one `error:` line on stderr, then `FAILED: <reason>` as the last stdout line; reports say so."""
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    errors = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(errors) == 1 and errors[0].startswith("error: ") and needle in errors[0]
    assert last_line(result) == f"FAILED: {errors[0][len('error: '):]}" and "Traceback" not in result.output  # type: ignore[attr-defined]
    assert report["status"] == "ERROR" and report["exit_code"] == code and needle in report["reason"]
    assert (suite.get("errors"), suite.get("failures")) == ("1", "0")
    assert f"exit {code})" in summary.splitlines()[0] and summary.startswith("### ❌")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["missing.onnx", "--max-latency-ms", "5"], "model not found: missing.onnx"),
        (["{demo}", "--dataset", "digits"], "no gate set"),
        (["{demo}", "--gates", "{bad_profile}"], "unknown key 'min_acuracy'"),
        (["{demo}", "--min-accuracy", "0.5", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
        (["{demo}", "--max-latency-ms", "5", "--backend", "tensorrt"], "expected one of ort, trt, torch"),
    ],
)
def test_exit_2_bad_input(tmp_path: Path, demo_copy: Path, args: list[str], needle: str) -> None:
    bad_profile = tmp_path / "bad.yaml"
    bad_profile.write_text("min_acuracy: 0.9\n")
    args = [a.format(demo=demo_copy, bad_profile=bad_profile) for a in args]
    assert_stopped(*run(tmp_path, *args), 2, needle)


@pytest.mark.parametrize(
    ("changes", "flags", "needle"),
    [
        ({"verified": False}, [], "says verified=false"),
        ({"sha256": "f" * 64}, [], "records sha256 ffffffffffff"),
        ({}, ["--precision", "int8"], "requires precision int8"),
    ],
)
def test_exit_3_verification(tmp_path: Path, demo_copy: Path, changes: dict, flags: list[str], needle: str) -> None:
    sidecar = demo_copy.with_suffix(".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), **changes}))
    result, report, suite, summary = run(tmp_path, str(demo_copy), "--max-latency-ms", "5", *flags, *FAST)
    assert_stopped(result, report, suite, summary, 3, needle)
    assert suite.find("testcase[@name='artifact verification']/error") is not None
    assert report["artifact"]["sha256"] == json.loads((DEMO / "model.json").read_text())["sha256"]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="checks the no-TensorRT path")
def test_exit_5_trt_without_tensorrt(tmp_path: Path, demo_copy: Path) -> None:
    engine = demo_copy.with_suffix(".engine")
    engine.write_bytes(b"a TensorRT plan would be here")
    result, report, suite, summary = run(tmp_path, str(engine), "--backend", "trt", "--max-latency-ms", "5", *FAST)
    assert_stopped(result, report, suite, summary, 5, "TensorRT")
    assert [p.get("value") for p in suite.iter("property") if p.get("name") == "device"] == ["cuda:0"]


def test_exit_5_cuda_without_provider(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    result, report, suite, summary = run(tmp_path, str(DEMO / "model.onnx"), "--max-latency-ms", "5", "--device", "cuda")
    assert_stopped(result, report, suite, summary, 5, "CUDAExecutionProvider")


def test_json_output_and_torch_backend(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(DEMO / "model.onnx"), "--backend", "torch", "--min-accuracy", "0.9",
                                 "--limit", "32", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout is only the JSON report; the final line goes to stderr
    assert report["status"] == "PASSED" and report["gates"]["backend"] == "torch" and report["accuracy"]["n"] == 32
    assert result.stderr.strip().splitlines()[-1] == "PASSED"


def test_unwritable_report_path_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(DEMO / "model.onnx"), "--max-latency-ms", "1000", "--junit", str(tmp_path),
                                 *FAST])
    assert result.exit_code == 2 and "cannot write report" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("FAILED: cannot write report")


def test_empty_summary_path_is_ignored(tmp_path: Path) -> None:
    """`--summary "$GITHUB_STEP_SUMMARY"` outside GitHub Actions expands to an empty string: no summary, no error."""
    result = runner.invoke(app, ["check", str(DEMO / "model.onnx"), "--max-latency-ms", "1000", "--summary", "", *FAST])
    assert result.exit_code == 0 and result.stdout.strip().splitlines()[-1] == "PASSED"
