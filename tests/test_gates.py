"""Gate profiles (schema, shipped default) and checks on real measured accuracy and latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.deploy.gates import GateProfile, format_check_table, load_gates, run_check
from sdnas_deploy.deploy.onnx_export import export_and_verify, export_onnx
from sdnas_deploy.errors import BadInputError

SHAPE = (1, 1, 16, 16)
FAST = {"duration_s": 0.2, "warmup_s": 0.02, "threads": 1}


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(24, 10),
    ).eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """An exported, verified model and labels equal to its own predictions (ORT accuracy 100%)."""
    model = tiny_cnn()
    images = np.random.default_rng(0).standard_normal((20, *SHAPE[1:])).astype(np.float32)
    with torch.no_grad():
        labels = model(torch.from_numpy(images)).argmax(1).numpy()
    out = tmp_path_factory.mktemp("gates") / "model.onnx"
    export_and_verify(model, out, SHAPE, images, labels)
    return out, images, labels


def test_shipped_default_profile() -> None:
    gates = load_gates("default")
    assert (gates.dataset, gates.split, gates.min_accuracy, gates.max_latency_ms) == ("digits", "test", 0.80, 20.0)
    assert (gates.latency_stat, gates.backend, gates.device, gates.batch) == ("p90", "ort", "cpu", 1)
    assert gates.max_accuracy_drop is None and gates.needs_data
    assert load_gates("default.yaml") == gates


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_latency: 5\n", r"unknown key 'max_latency'.*did you mean 'max_latency_ms'"),
        ("dataset: digits\n", "no gate set"),
        ("", "no gate set"),
        ("min_accuracy: 80\n", r"fraction in \[0, 1\]"),
        ("max_latency_ms: -1\n", "must be > 0"),
        ("max_latency_ms: 5\nlatency_stat: p42\n", "expected one of min, mean"),
        ("max_latency_ms: 5\nbackend: tensorrt\n", "expected one of ort"),
        ("max_latency_ms: 5\nbatch: 0\n", "batch=0 must be >= 1"),
        ("max_latency_ms: [5\n", "malformed gate profile"),
        ("- 1\n- 2\n", "must be a YAML mapping"),
    ],
)
def test_bad_profiles(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message) as info:
        load_gates(write(tmp_path, text))
    assert info.value.exit_code == 2 and "\n" not in info.value.message


def test_unknown_profile_name() -> None:
    with pytest.raises(BadInputError, match="gate profile not found: nosuch.*default"):
        load_gates("nosuch")


def test_gates_pass_on_measured_figures(setup: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, images, labels = setup
    gates = GateProfile(min_accuracy=0.9, max_accuracy_drop=0.01, max_latency_ms=10000.0, **FAST)
    report = run_check(out, gates, images, labels)
    assert report.passed and report.exit_code == 0 and report.final_line == "PASSED"
    assert [r.gate for r in report.rows] == ["accuracy top-1", "accuracy drop", "latency p90"]
    assert report.accuracy["top1"] == 1.0 and report.rows[1].measured == pytest.approx(0.0)
    assert report.rows[2].measured == report.profile["stats"]["p90"] > 0
    text = format_check_table(report)
    assert "latency p90" in text and "PASSED" not in text  # the caller prints report.final_line after it
    assert report.to_dict()["status"] == "PASSED"


def test_latency_gate_fails(setup: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, _, _ = setup
    report = run_check(out, GateProfile(max_latency_ms=1e-6, latency_stat="min", **FAST))
    assert not report.passed and report.exit_code == 4 and report.accuracy is None
    assert report.final_line.startswith("FAILED: latency min ") and "> 1e-06 ms" in report.final_line
    assert "FAIL" in format_check_table(report) and report.reason in report.final_line


def test_accuracy_gate_fails_on_wrong_labels(setup: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, images, labels = setup
    report = run_check(out, GateProfile(min_accuracy=0.5, limit=10), images, (labels + 1) % 10)
    assert report.exit_code == 4 and report.accuracy["top1"] == 0.0 and report.accuracy["n"] == 10
    assert report.profile is None and report.final_line == "FAILED: accuracy top-1 0.0000 < 0.5000"


def test_accuracy_drop_needs_a_sidecar(tmp_path: Path, setup: tuple[Path, np.ndarray, np.ndarray]) -> None:
    _, images, labels = setup
    bare = export_onnx(tiny_cnn(), tmp_path / "bare.onnx", SHAPE)
    with pytest.raises(BadInputError, match="needs the PyTorch accuracy in bare.json"):
        run_check(bare, GateProfile(max_accuracy_drop=0.01), images, labels)


def test_run_check_input_errors(tmp_path: Path, setup: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, _, _ = setup
    with pytest.raises(BadInputError, match="need images and labels"):
        run_check(out, GateProfile(min_accuracy=0.5))
    with pytest.raises(BadInputError, match="no gate set"):
        run_check(out, GateProfile())
    with pytest.raises(BadInputError, match="not found"):
        run_check(tmp_path / "missing.onnx", GateProfile(max_latency_ms=5.0))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00\x01 not onnx")
    with pytest.raises(BadInputError, match="not a loadable ONNX model"):
        run_check(corrupt, GateProfile(max_latency_ms=5.0, **FAST))


def test_accuracy_drop_warns_when_image_sets_differ(setup: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, images, labels = setup
    report = run_check(out, GateProfile(max_accuracy_drop=0.05, limit=10), images, labels)
    assert report.passed and report.rows[0].measured == pytest.approx(0.0)
    assert any("20 export images with ONNX on 10 images" in w for w in report.warnings)
    assert "warning: accuracy drop compares" in format_check_table(report)
