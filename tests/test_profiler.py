"""ORT and PyTorch profiling on a tiny real CNN, the human table, and the environment fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from sdnas_deploy.deploy.fingerprint import environment_fingerprint, file_sha256, fingerprint_key
from sdnas_deploy.deploy.onnx_export import export_onnx
from sdnas_deploy.deploy.profiler import format_profile_table, profile_onnx, profile_torch
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError

SHAPE = (1, 1, 16, 16)


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 8 * 8, 10),
    ).eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("profile")
    return {
        "static": export_onnx(tiny_cnn(), folder / "static.onnx", SHAPE),
        "dynamic": export_onnx(tiny_cnn(), folder / "dynamic.onnx", SHAPE, dynamic_batch=True),
    }


def assert_sane(report: dict) -> None:
    s = report["stats"]
    assert 0 < s["min"] <= s["median"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]
    assert s["min"] <= s["mean"] <= s["max"] and s["std"] >= 0
    assert report["throughput_per_s"] > 0 and report["iterations"] == s["n"]
    assert report["warmup"]["calls"] >= 1


def test_profile_onnx_short_run(models: dict[str, Path]) -> None:
    report = profile_onnx(models["static"], warmup_s=0.05, duration_s=0.3, threads=1)
    assert_sane(report)
    assert report["iterations"] >= 10 and report["input_shape"] == list(SHAPE)
    assert report["provider"] == "CPUExecutionProvider" and report["threads"] == 1
    assert report["model"]["sha256"] == file_sha256(models["static"])
    assert report["timed"].startswith("session.run() wall time per call, batch 1, input already in host memory")
    assert f"{report['iterations']} timed calls" in report["timed"]
    assert report["fingerprint"]["threads"] == 1 and "CPUExecutionProvider" in report["fingerprint"]["ort_providers"]
    assert report["throughput_per_s"] == pytest.approx(1000.0 / report["stats"]["mean"])


def test_fixed_iterations_and_dynamic_batch(models: dict[str, Path]) -> None:
    report = profile_onnx(models["dynamic"], batch=4, warmup_s=0.0, iterations=7, threads=1)
    assert report["stats"]["n"] == 7 and report["input_shape"] == [4, 1, 16, 16]
    assert report["throughput_per_s"] == pytest.approx(4000.0 / report["stats"]["mean"])


def test_static_batch_cannot_be_overridden(models: dict[str, Path]) -> None:
    with pytest.raises(BadInputError, match="static batch of 1"):
        profile_onnx(models["static"], batch=8, iterations=1)


def test_bad_arguments_and_files(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="iterations"):
        profile_onnx(models["static"], iterations=0)
    with pytest.raises(BadInputError, match="expected cpu, cuda"):
        profile_onnx(models["static"], device="tpu", iterations=1)
    with pytest.raises(BadInputError, match="not found"):
        profile_onnx(tmp_path / "nope.onnx", iterations=1)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"garbage bytes")
    with pytest.raises(BadInputError, match="not a loadable ONNX model"):
        profile_onnx(corrupt, iterations=1)


def test_cuda_without_provider_is_exit_5(models: dict[str, Path]) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(UnsupportedEnvironmentError) as info:
        profile_onnx(models["static"], device="cuda", iterations=1)
    assert info.value.exit_code == 5 and "onnxruntime-gpu" in info.value.message


def test_profile_torch_cpu_restores_threads() -> None:
    model = tiny_cnn()
    before = torch.get_num_threads()
    report = profile_torch(model, SHAPE, "cpu", warmup_s=0.02, duration_s=0.2, threads=1)
    assert_sane(report)
    assert torch.get_num_threads() == before and not model.training
    assert report["backend"] == "torch-eager" and report["model"]["class"] == "Sequential"
    assert "eager PyTorch" in report["timed"] and "synchronize" not in report["timed"]


def test_format_profile_table(models: dict[str, Path]) -> None:
    text = format_profile_table(profile_onnx(models["static"], warmup_s=0.0, iterations=12, threads=1))
    for needle in ("median", "p99", "cov", "throughput:", "timed: session.run()", "environment:"):
        assert needle in text
    assert "\x1b[" not in text  # no colour codes in plain output


def test_fingerprint_fields_and_key() -> None:
    fp = environment_fingerprint(threads=2)
    assert isinstance(fp["cpu_model"], str) and fp["cpu_model"]
    assert fp["logical_cores"] >= 1 and fp["python"].count(".") == 2
    assert fp["torch"] == torch.__version__ and fp["onnxruntime"] and fp["os"]
    assert fp["key"] == fingerprint_key(fp) == environment_fingerprint(threads=2)["key"]
    assert fingerprint_key({**fp, "threads": 4}) != fp["key"]
    assert isinstance(fp["warnings"], list)
