"""JUnit XML and Markdown summaries of gate checks: passed, failed gate and stopped-by-error reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.gate.gates import CheckReport, GateProfile, run_check
from sdnas_deploy.export.onnx_export import export_and_verify
from sdnas_deploy.gate.reports import (
    CLASSNAME, SUITE_NAME, check_table, junit_xml, summary_markdown, write_junit, write_reports, write_summary,
)
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError

SHAPE = (1, 1, 16, 16)
FAST = {"duration_s": 0.2, "warmup_s": 0.02, "threads": 1}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A tiny verified export and labels equal to its predictions (top-1 exactly 1.0)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 10)).eval()
    images = np.random.default_rng(0).standard_normal((16, *SHAPE[1:])).astype(np.float32)
    with torch.no_grad():
        labels = model(torch.from_numpy(images)).argmax(1).numpy()
    out = tmp_path_factory.mktemp("reports") / "model.onnx"
    export_and_verify(model, out, SHAPE, images, labels)
    return out, images, labels


@pytest.fixture(scope="module")
def passed(setup: tuple[Path, np.ndarray, np.ndarray]) -> CheckReport:
    out, images, labels = setup
    return run_check(out, GateProfile(min_accuracy=0.9, max_accuracy_drop=0.01, max_latency_ms=1e4, **FAST),
                     images, labels)


@pytest.fixture(scope="module")
def failed(setup: tuple[Path, np.ndarray, np.ndarray]) -> CheckReport:
    out, images, labels = setup
    return run_check(out, GateProfile(min_accuracy=0.9, max_latency_ms=1e-6, latency_stat="min", **FAST),
                     images, labels)


def parse(report: CheckReport) -> ET.Element:
    root = ET.fromstring(junit_xml(report))
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1 and suites[0].get("name") == SUITE_NAME
    return suites[0]


def props(suite: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in suite.iter("property")}  # type: ignore[misc]


def test_junit_of_a_passing_check(passed: CheckReport) -> None:
    suite = parse(passed)
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["accuracy top-1", "accuracy drop", "latency p90"]
    assert {c.get("classname") for c in cases} == {CLASSNAME}
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("3", "0", "0", "0")
    assert not suite.findall(".//failure") and not suite.findall(".//error")
    info = props(suite)
    assert info["model"] == passed.onnx_path and info["sha256"] == passed.artifact["sha256"] and len(info["sha256"]) == 64
    assert (info["backend"], info["device"], info["precision"], info["status"]) == ("ort", "cpu", "fp32", "PASSED")
    assert suite.get("timestamp", "").startswith(passed.started_utc[:19]) and float(suite.get("time", "0")) > 0
    assert float(cases[2].get("time", "0")) == pytest.approx(passed.timings_s["latency"], abs=1e-3)
    assert "timed: session.run()" in (suite.findtext("system-out") or "")


def test_junit_of_a_failed_gate(failed: CheckReport) -> None:
    suite = parse(failed)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failures = suite.findall(".//failure")
    assert len(failures) == 1 and failures[0].get("message") == failed.reason
    assert failures[0].get("message", "").startswith("latency min ") and "ms > 1e-06 ms" in failures[0].get("message", "")
    assert suite.find("testcase[@name='latency min']/failure") is not None
    assert suite.find("testcase[@name='accuracy top-1']/failure") is None


def test_junit_of_a_stopped_check() -> None:
    exc = UnsupportedEnvironmentError("TensorRT is not importable here; pip install tensorrt")
    report = CheckReport.from_error("m.engine", exc, GateProfile(min_accuracy=0.9, max_latency_ms=3.0, backend="trt"))
    suite = parse(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("3", "0", "1", "2")
    error = suite.find("testcase[@name='environment']/error")
    assert error is not None and error.get("type") == "UnsupportedEnvironmentError"
    assert error.get("message") == exc.message and "exit 5 (environment unsupported)" in (error.text or "")
    skipped = [c.get("name") for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert skipped == ["accuracy top-1", "latency p90"]
    assert (props(suite)["device"], props(suite)["exit_code"], props(suite)["status"]) == ("cuda:0", "5", "ERROR")


def test_markdown_summaries(passed: CheckReport, failed: CheckReport) -> None:
    good = summary_markdown(passed)
    assert good.startswith("### ✅ sdnas check: PASSED\n")
    assert "| gate | threshold | measured | result |" in good and "| accuracy top-1 | >= 0.9000 | 1.0000 | ✅ pass |" in good
    assert "**Timed:** session.run()" in good and good.rstrip().endswith("`PASSED`")
    bad = summary_markdown(failed)
    assert bad.startswith("### ❌ sdnas check: FAILED (a gate failed, exit 4)")
    assert "| latency min | <= 1e-06 ms |" in bad and "❌ fail |" in bad and failed.final_line in bad
    error = summary_markdown(CheckReport.from_error("x.onnx", BadInputError("a|b broken; fix it"),
                                                    GateProfile(max_latency_ms=1.0)))
    assert error.startswith("### ❌ sdnas check: FAILED (bad usage or input, exit 2)")
    assert "**Error:** a\\|b broken; fix it" in error and "Not measured: latency p90." in error
    assert "| gate |" not in error


def test_terminal_table(passed: CheckReport) -> None:
    text = check_table(passed)
    assert "accuracy drop" in text and "model: " in text and "(sha256 " in text and "on ort cpu" in text
    assert "PASSED" not in text  # the caller prints the final line after the table


def test_summary_appends_to_an_existing_file(tmp_path: Path, passed: CheckReport, failed: CheckReport) -> None:
    path = tmp_path / "step_summary.md"
    path.write_text("## Build\nall good")  # what an earlier command of the step wrote (no trailing newline)
    write_summary(path, passed)
    write_summary(path, failed)
    text = path.read_text()
    assert text.startswith("## Build\nall good\n\n### ✅ sdnas check: PASSED")
    assert text.count("### ") == 2 and "\n\n### ❌ sdnas check: FAILED" in text
    fresh = tmp_path / "new" / "summary.md"
    write_summary(fresh, passed)
    assert fresh.read_text() == summary_markdown(passed)


def test_write_reports(tmp_path: Path, failed: CheckReport) -> None:
    out = write_reports(failed, tmp_path / "r" / "check.json", tmp_path / "r" / "junit.xml", None)
    assert [p.name for p in out] == ["check.json", "junit.xml"]
    assert ET.parse(out[1]).getroot().find("testsuite").get("failures") == "1"  # type: ignore[union-attr]
    write_junit(out[1], failed)  # rewriting is atomic and leaves no temp files
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["check.json", "junit.xml"]
    with pytest.raises(BadInputError, match="cannot write report .*pass a writable file path"):
        write_reports(failed, junit_path=tmp_path)  # a directory
