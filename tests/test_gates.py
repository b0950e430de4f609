"""Gate profiles (schema, shipped default) and checks on real measured accuracy and latency."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.gate.gates import (
    CheckReport, GateProfile, check_model_kind, gate_names, inspect_artifact, load_gates, run_check,
    weights_path,
)
from sdnas_deploy.export.onnx_export import export_and_verify, export_onnx
from sdnas_deploy.gate.reports import format_check_table
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError, VerificationError

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
        ("max_latency_ms: -1\n", "must be a finite number > 0"),
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
    with pytest.raises(BadInputError, match="needs the PyTorch weights or the PyTorch accuracy in its sidecar"):
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
    assert any("20 export images with the model on 10 images" in w for w in report.warnings)
    assert "warning: accuracy drop compares" in format_check_table(report)


# --- backends, precision and artifact identity (exit 3), environment (exit 5) ---------------------------------

DEMO = Path(__file__).resolve().parent.parent / "export" / "demo"


@pytest.fixture()
def demo_copy(tmp_path: Path) -> Path:
    """A private copy of the committed demo artifact (model.onnx + model.json + weights), safe to tamper with."""
    for name in ("model.onnx", "model.json", "model.safetensors"):
        (tmp_path / name).write_bytes((DEMO / name).read_bytes())
    return tmp_path / "model.onnx"


def edit_sidecar(model: Path, **changes: object) -> None:
    path = model.with_suffix(".json")
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_new_profile_keys_and_their_checks(tmp_path: Path) -> None:
    gates = load_gates(write(tmp_path, "max_latency_ms: 5\nbackend: trt\nprecision: int8\nforce: true\n"))
    assert (gates.backend, gates.precision, gates.force, gates.effective_device) == ("trt", "int8", True, "cuda:0")
    assert GateProfile(max_latency_ms=5.0).effective_device == "cpu" and GateProfile().precision is None
    assert GateProfile(max_latency_ms=5.0, device="cuda:1").effective_device == "cuda:1"
    assert gate_names({"min_accuracy": 0.5, "max_latency_ms": 3, "latency_stat": "p99"}) == ["accuracy top-1", "latency p99"]
    for text, message in [
        ("max_latency_ms: 5\nbackend: trt\ndevice: cpu\n", "backend trt runs on a GPU"),
        ("max_latency_ms: 5\nbackend: torch\nprecision: fp16\n", "backend torch runs the fp32"),
        ("max_latency_ms: 5\nprecision: bf16\n", "expected one of fp32, fp16, int8"),
        ("max_latency_ms: 5\ndevice: gpu0\n", "expected cpu, cuda or cuda:N"),
    ]:
        with pytest.raises(BadInputError, match=message):
            load_gates(write(tmp_path, text))


def test_file_kind_must_fit_the_backend(demo_copy: Path) -> None:
    check_model_kind(demo_copy, "ort")
    check_model_kind(demo_copy, "torch")
    with pytest.raises(BadInputError, match=r"backend trt cannot run a \.onnx file.*sdnas export --format trt"):
        run_check(demo_copy, GateProfile(max_latency_ms=5.0, backend="trt"))
    with pytest.raises(BadInputError, match="backend ort cannot run a .engine file; use backend trt"):
        check_model_kind(demo_copy.with_suffix(".engine"), "ort")


@pytest.mark.parametrize(
    ("changes", "precision", "message"),
    [
        ({"sha256": "0" * 64}, "fp32", r"do not belong together \(the sidecar records sha256 000000000000…, the file has 69da36790194"),
        ({"verified": False}, "fp32", "says verified=false"),
        ({"precision": "int8"}, "fp32", "the artifact is int8 .model.json. but the gate profile requires precision fp32"),
        ({}, "fp16", "the artifact is fp32 .model.json. but the gate profile requires precision fp16"),
    ],
)
def test_artifact_identity_failures_are_exit_3(demo_copy: Path, changes: dict, precision: str, message: str) -> None:
    edit_sidecar(demo_copy, **changes)
    with pytest.raises(VerificationError, match=message) as info:
        run_check(demo_copy, GateProfile(max_latency_ms=5.0, precision=precision, **FAST))  # type: ignore[arg-type]
    assert info.value.exit_code == 3 and "\n" not in info.value.message


def test_artifact_info_and_missing_sidecar(demo_copy: Path, tmp_path: Path) -> None:
    edit_sidecar(demo_copy, precision="fp16")
    warnings: list[str] = []
    info, sidecar = inspect_artifact(demo_copy, GateProfile(max_latency_ms=5.0, precision="fp16"), warnings)
    assert info["precision"] == "fp16" and info["verified"] is True and info["sha256"].startswith("69da3679")
    assert sidecar["format"] == "onnx" and not warnings
    info, _ = inspect_artifact(demo_copy, GateProfile(max_latency_ms=5.0), warnings)  # no precision required
    assert info["precision"] == "fp16" and not warnings
    demo_copy.with_suffix(".json").unlink()
    info, sidecar = inspect_artifact(demo_copy, GateProfile(max_latency_ms=5.0), warnings)
    assert sidecar == {} and info["precision"] == "fp32" and info["sidecar"] is None
    assert "no sidecar model.json" in warnings[0]
    with pytest.raises(VerificationError, match="no sidecar"):  # absent sidecar = fp32, not the int8 asked for
        inspect_artifact(demo_copy, GateProfile(max_latency_ms=5.0, precision="int8"), [])


def test_weights_are_found_by_recorded_path_or_next_to_the_model(demo_copy: Path, tmp_path: Path) -> None:
    sidecar = {"metadata": {"weights": str(tmp_path / "elsewhere" / "model.safetensors")}}
    assert weights_path(demo_copy, sidecar) == demo_copy.parent / "model.safetensors"  # moved with the model
    outside = {"metadata": {"weights": str(DEMO / "model.safetensors")}}
    assert weights_path(demo_copy, outside) == demo_copy.parent / "model.safetensors"  # never the outside file
    assert weights_path(demo_copy, {}) is None
    (demo_copy.parent / "model.safetensors").unlink()
    with pytest.raises(BadInputError, match="outside the model's folder"):  # a crafted sidecar points elsewhere
        weights_path(demo_copy, outside)
    shutil.copy(DEMO / "model.safetensors", demo_copy.parent / "w.safetensors")
    with pytest.raises(VerificationError, match="differ from those exported"):
        weights_path(demo_copy, {"metadata": {"weights": "w.safetensors", "weights_sha256": "0" * 64}})
    from sdnas_deploy.runtime.fingerprint import file_sha256

    sha = file_sha256(demo_copy.parent / "w.safetensors")
    assert weights_path(demo_copy, {"metadata": {"weights": "w.safetensors", "weights_sha256": sha}}) == \
        demo_copy.parent / "w.safetensors"
    assert weights_path(demo_copy.with_suffix(".safetensors"), {}) == demo_copy.with_suffix(".safetensors")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sdnas_deploy.data import load_arrays

    return load_arrays("digits", "test", limit=128)


def test_torch_backend_and_live_reference_on_the_demo_model(digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    model = DEMO / "model.onnx"
    ort_report = run_check(model, GateProfile(min_accuracy=0.9, max_accuracy_drop=0.01), images, labels)
    torch_report = run_check(model, GateProfile(min_accuracy=0.9, backend="torch"), images, labels)
    assert ort_report.passed and torch_report.passed and ort_report.accuracy["n"] == 128
    # the PyTorch network and its ONNX export agree on these images, so the measured drop is exactly 0
    assert torch_report.accuracy["top1"] == ort_report.accuracy["top1"] == ort_report.accuracy["torch_reference"]
    assert ort_report.rows[1].measured == 0.0 and "on the same 128 images" in ort_report.accuracy["torch_reference_source"]
    assert ort_report.artifact["precision"] == "fp32" and ort_report.timings_s["accuracy"] > 0
    assert direct_torch_top1(images, labels) == torch_report.accuracy["top1"]


def direct_torch_top1(images: np.ndarray, labels: np.ndarray) -> float:
    from sdnas_deploy.training.weights import load_network

    net, _ = load_network(DEMO / "model.safetensors")
    with torch.no_grad():
        return float((net(torch.from_numpy(images)).argmax(1).numpy() == labels).mean())


def test_torch_backend_latency_on_the_weights() -> None:
    report = run_check(DEMO / "model.onnx", GateProfile(max_latency_ms=10000.0, backend="torch", **FAST))
    assert report.passed and report.profile["stats"]["p90"] > 0 and report.rows[0].stage == "latency"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="checks the no-TensorRT path")
def test_trt_backend_without_tensorrt_is_exit_5(demo_copy: Path) -> None:
    engine = demo_copy.with_suffix(".engine")
    engine.write_bytes(b"a TensorRT plan would be here")
    with pytest.raises(UnsupportedEnvironmentError, match="TensorRT") as info:
        run_check(engine, GateProfile(max_latency_ms=5.0, backend="trt", **FAST))
    assert info.value.exit_code == 5


def test_cuda_device_without_provider_is_exit_5(setup: tuple[Path, np.ndarray, np.ndarray]) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(UnsupportedEnvironmentError, match="CUDAExecutionProvider"):
        run_check(setup[0], GateProfile(max_latency_ms=5.0, device="cuda", **FAST))


def test_error_report() -> None:
    exc = VerificationError("model.onnx: says verified=false; re-export")
    report = CheckReport.from_error(DEMO / "model.onnx", exc, GateProfile(min_accuracy=0.9, max_latency_ms=2.0))
    assert (report.status, report.exit_code, report.passed) == ("ERROR", 3, False)
    assert report.final_line == "FAILED: model.onnx: says verified=false; re-export"
    assert report.artifact["sha256"].startswith("69da3679") and report.to_dict()["error"]["type"] == "VerificationError"
    assert gate_names(report.gates) == ["accuracy top-1", "latency p90"]
    missing = CheckReport.from_error("nowhere.onnx", BadInputError("model not found"))
    assert missing.exit_code == 2 and missing.gates == {} and "sha256" not in missing.artifact
