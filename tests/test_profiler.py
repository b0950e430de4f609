"""Profiling: ORT/PyTorch on a tiny real CNN and the demo model, profile_model backends, the human table,
the environment fingerprint, and --compare-lut against latency tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from sdnas_deploy.runtime.fingerprint import environment_fingerprint, file_sha256, fingerprint_key
from sdnas_deploy.export.onnx_export import export_onnx
from sdnas_deploy.runtime.gpu_timing import summarize_breakdown
from sdnas_deploy.profile.lut_compare import (
    compare_lut, condition_warnings, error_pct, model_description, predict_for_model,
)
from sdnas_deploy.profile.api import profile_model
from sdnas_deploy.profile.timing import (
    PROFILE_BACKENDS, collect_warnings, format_profile_table, parse_percentiles, profile_onnx, profile_torch,
)
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


# --- profile_model and its backends ---------------------------------------------------------------

DEMO = Path(__file__).resolve().parent.parent / "export" / "demo"


def test_backends_registered_and_unknown_backend() -> None:
    assert set(PROFILE_BACKENDS) == {"ort", "torch", "trt"}
    with pytest.raises(BadInputError, match="unknown profile backend 'onnx'"):
        profile_model(DEMO / "model.onnx", backend="onnx", iterations=1)


def test_parse_percentiles() -> None:
    assert parse_percentiles("99, 50,90,95,90") == (50.0, 90.0, 95.0, 99.0)
    assert parse_percentiles("99.9") == (99.9,)
    for bad, match in (("", "empty"), ("50,x", "not a number"), ("101", "outside 0..100"), ("-1", "outside")):
        with pytest.raises(BadInputError, match=match):
            parse_percentiles(bad)


def test_profile_model_ort_cpu(models: dict[str, Path]) -> None:
    report = profile_model(models["static"], warmup_s=0.0, iterations=15, threads=1, percentiles=(50, 99.9),
                           include_data_transfers=True)
    assert_sane_basic(report, 15)
    assert "p99.9" in report["stats"] and "p90" not in report["stats"]
    assert report["breakdown"] is None and report["jetson"] is None  # not a Jetson, no stream of ours
    assert "--include-data-transfers changes nothing here" in report["timed"]
    assert report["options"] == {"backend": "ort", "cuda_graph": False, "include_data_transfers": True,
                                 "percentiles": [50.0, 99.9], "force": False}
    assert isinstance(report["warnings"], list)


def assert_sane_basic(report: dict, n: int) -> None:
    s = report["stats"]
    assert s["n"] == n == report["iterations"] and 0 < s["min"] <= s["median"] <= s["max"]


def test_profile_model_refuses_cuda_graph_on_cpu_and_wrong_files(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--cuda-graph needs a CUDA device"):
        profile_model(models["static"], cuda_graph=True, iterations=1)
    with pytest.raises(BadInputError, match="--backend trt profiles a TensorRT .engine"):
        profile_model(models["static"], backend="trt", iterations=1)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(BadInputError, match="profiles an .onnx model; use --backend trt"):
        profile_model(engine, backend="ort", iterations=1)
    with pytest.raises(BadInputError, match="sidecar names no weights"):
        profile_model(models["static"], backend="torch", iterations=1)
    with pytest.raises(BadInputError, match="percentile"):
        profile_model(models["static"], percentiles=(50, 120), iterations=1)


def test_trt_backend_without_tensorrt_is_exit_5(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan bytes")
    with pytest.raises(UnsupportedEnvironmentError) as info:
        profile_model(engine, backend="trt", device="cuda", iterations=1)
    assert info.value.exit_code == 5 and "TensorRT" in info.value.message


def test_torch_backend_from_onnx_sidecar_and_weights() -> None:
    via_onnx = profile_model(DEMO / "model.onnx", backend="torch", warmup_s=0.0, iterations=3, threads=1)
    assert via_onnx["backend"] == "torch-eager" and via_onnx["input_shape"] == [1, 1, 16, 16]
    assert via_onnx["model"]["path"].endswith("model.safetensors") and len(via_onnx["model"]["sha256"]) == 64
    assert via_onnx["model"]["class"] == "NetworkCIFAR" and via_onnx["iterations"] == 3
    assert "eager PyTorch" in via_onnx["timed"] and "no CUDA graph" in via_onnx["timed"]
    direct = profile_model(DEMO / "model.safetensors", backend="torch", batch=2, warmup_s=0.0, iterations=2)
    assert direct["input_shape"] == [2, 1, 16, 16] and direct["model"]["sha256"] == via_onnx["model"]["sha256"]


def test_breakdown_and_warnings_in_the_table(models: dict[str, Path]) -> None:
    report = profile_onnx(models["static"], warmup_s=0.0, iterations=12, threads=1)
    report["breakdown"] = summarize_breakdown({"h2d": [0.01, 0.02], "compute": [0.1, 0.2], "d2h": [0.01, 0.01],
                                               "enqueue": [0.02, 0.03], "latency": [0.2, 0.3]})
    report["cov_warning"] = "coefficient of variation 9.0% exceeds 2.5%"
    report["backend_warnings"] = ["engine built elsewhere", "engine built elsewhere"]
    report["jetson"] = None
    report["warnings"] = collect_warnings(report)
    assert report["warnings"][:2] == ["coefficient of variation 9.0% exceeds 2.5%", "engine built elsewhere"]
    text = format_profile_table(report)
    for needle in ("breakdown per iteration (ms)", "H2D copy (GPU, events)", "GPU compute (events)",
                   "end-to-end (host clock)", "warning: engine built elsewhere"):
        assert needle in text
    assert text.count("warning: engine built elsewhere") == 1


# --- --compare-lut -----------------------------------------------------------------------------------


def _sidecar_like_demo(folder: Path, **metadata: object) -> Path:
    """Copy the demo sidecar next to a placeholder .onnx, with metadata/input overridden."""
    side = json.loads((DEMO / "model.json").read_text())
    side["metadata"].update({k: v for k, v in metadata.items() if k != "input_shape"})
    if "input_shape" in metadata:
        side["input"]["shape"] = metadata["input_shape"]
    (folder / "model.json").write_text(json.dumps(side))
    return folder / "model.onnx"


def test_compare_with_the_shipped_table(tmp_path: Path) -> None:
    """A model of the shipped x86-cpu-ort table's geometry gets the prediction `sdnas search` would make."""
    from sdnas_deploy.hw.lut import load_table, predict_latency
    from sdnas_deploy.hw.targets import resolve_table

    model = _sidecar_like_demo(tmp_path, layers=20, channels=36, input_shape=[1, 3, 32, 32])
    space, genotype, geometry, _ = model_description(model)
    assert space.name == "darts" and geometry.to_dict() == {"setting": "cifar", "layers": 20, "channels": 36,
                                                            "input_size": 32, "in_channels": 3, "num_classes": 10}
    expected = predict_latency(load_table(resolve_table("x86-cpu-ort", "cifar")), genotype)
    prediction = predict_for_model(model, "x86-cpu-ort")
    assert prediction["predicted_ms"] == pytest.approx(expected) and expected > 0
    result = compare_lut(model, "x86-cpu-ort", measured_ms=expected * 2, profile={"backend": "onnxruntime",
                                                                                  "batch": 1, "threads": 1})
    assert result["error_pct"] == pytest.approx(-50.0) and result["warnings"] == []
    assert result["target"] == "x86-cpu-ort" and result["table"] == str(resolve_table("x86-cpu-ort", "cifar"))


def test_compare_with_a_small_table_checks_the_arithmetic(tmp_path: Path) -> None:
    from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, network_keys
    from sdnas_deploy.hw.lut import LatencyTable, save_table

    _, genotype, geometry, _ = model_description(DEMO / "model.onnx")
    assert isinstance(geometry, NetworkGeometry)
    keys = network_keys(genotype, geometry)
    entries = {k: {"count": 5, "mean": 0.01 * (i + 1), "std": 0.0, "p50": 0.01 * (i + 1), "p90": 0.01 * (i + 1)}
               for i, k in enumerate(sorted(keys))}
    fp = {"backend": "ort", "provider": "CPUExecutionProvider", "precision": "fp32", "batch": 1, "threads": 1,
          "date": "2026-11-30", "sdnas_version": "0.1.0"}
    path = save_table(tmp_path / "small.json", LatencyTable("small", fp, geometry, overhead_ms=0.5, entries=entries))
    by_hand = 0.5 + sum(keys[k] * 0.01 * (i + 1) for i, k in enumerate(sorted(keys)))
    result = compare_lut(DEMO / "model.onnx", str(path), measured_ms=4.0, profile={"backend": "onnxruntime",
                                                                                   "batch": 1, "threads": 2})
    assert result["predicted_ms"] == pytest.approx(by_hand)
    assert result["error_pct"] == pytest.approx((by_hand - 4.0) / 4.0 * 100)
    assert len(result["warnings"]) == 1 and "threads 1" in result["warnings"][0]


def test_compare_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as info:
        predict_for_model(DEMO / "model.onnx", "x86-cpu-ort")
    msg = info.value.message
    assert "layers 20 (table) vs 8" in msg and "channels 36 (table) vs 16" in msg and "sdnas lut build" in msg
    with pytest.raises(BadInputError, match="ships no latency table.*sdnas lut build --target jetson-orin"):
        predict_for_model(DEMO / "model.onnx", "jetson-orin")
    with pytest.raises(BadInputError, match="unknown target"):
        predict_for_model(DEMO / "model.onnx", "x86-cpu")
    bare = tmp_path / "bare.onnx"
    with pytest.raises(BadInputError, match="no sidecar"):
        predict_for_model(bare, "x86-cpu-ort")
    side = json.loads((DEMO / "model.json").read_text())
    side["genotype"] = None
    (tmp_path / "bare.json").write_text(json.dumps(side))
    with pytest.raises(BadInputError, match="records no genotype"):
        predict_for_model(bare, "x86-cpu-ort")
    with pytest.raises(BadInputError, match="no engine sidecar"):
        predict_for_model(tmp_path / "m.engine", "x86-cpu-ort")
    with pytest.raises(BadInputError, match="must be > 0 ms"):
        error_pct(1.0, 0.0)


def test_description_from_weights_matches_sidecar() -> None:
    s_onnx, g_onnx, f_onnx, _ = model_description(DEMO / "model.onnx")
    s_w, g_w, f_w, _ = model_description(DEMO / "model.safetensors")
    assert s_onnx is s_w and g_onnx == g_w and f_onnx == f_w


def test_condition_warnings() -> None:
    fp = {"backend": "ort", "provider": "CPUExecutionProvider", "batch": 1, "threads": 1}
    assert condition_warnings(fp, {"backend": "onnxruntime", "provider": "CPUExecutionProvider", "batch": 1,
                                   "threads": 1}) == []
    found = condition_warnings(fp, {"backend": "tensorrt", "batch": 8, "threads": None})
    assert len(found) == 2 and "backend 'ort'" in found[0] and "batch 1" in found[1]


def test_demo_copy_keeps_working(tmp_path: Path) -> None:
    """The CLI's default output folder is next to the model: a copied model profiles from its own folder."""
    shutil.copy(DEMO / "model.onnx", tmp_path / "model.onnx")
    report = profile_model(tmp_path / "model.onnx", warmup_s=0.0, iterations=10, threads=1)
    assert report["model"]["path"] == str(tmp_path / "model.onnx")


def test_cuda_requests_without_cuda_are_exit_5() -> None:
    import onnxruntime as ort

    if torch.cuda.is_available() or "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    for backend in ("ort", "torch"):
        with pytest.raises(UnsupportedEnvironmentError) as info:
            profile_model(DEMO / "model.onnx", backend=backend, device="cuda", iterations=1)
        assert info.value.exit_code == 5


# --- on a GPU ----------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("graph,copies", [(False, False), (True, False), (False, True), (True, True)])
def test_torch_cuda_breakdown(graph: bool, copies: bool) -> None:
    report = profile_model(DEMO / "model.safetensors", backend="torch", device="cuda", warmup_s=0.1,
                           iterations=30, cuda_graph=graph, include_data_transfers=copies)
    assert report["backend"] == ("torch-cuda-graph" if graph else "torch-eager")
    stages = set(report["breakdown"])
    assert stages == ({"h2d", "compute", "d2h", "enqueue", "latency"} if copies else {"compute", "enqueue", "latency"})
    assert report["stats"] == report["breakdown"]["latency"] and report["iterations"] == 30
    assert report["breakdown"]["compute"]["median"] <= report["breakdown"]["latency"]["median"]
    assert ("CUDA graph replay" in report["timed"]) is graph
    assert ("copy included" in report["timed"]) is copies


@pytest.mark.gpu
@pytest.mark.parametrize("graph,copies", [(False, False), (True, False), (False, True), (True, True)])
def test_ort_cuda_io_binding(graph: bool, copies: bool) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider")
    report = profile_model(DEMO / "model.onnx", device="cuda", warmup_s=0.1, iterations=20, cuda_graph=graph,
                           include_data_transfers=copies)
    assert report["provider"] == "CUDAExecutionProvider" and report["iterations"] == 20
    assert ("run_with_iobinding" in report["timed"]) is (graph or not copies)
    assert ("CUDA graph replay" in report["timed"]) is graph


@pytest.mark.gpu
@pytest.mark.trt
@pytest.mark.parametrize("graph", [False, True])
def test_trt_engine_profile(tmp_path: Path, graph: bool) -> None:
    from sdnas_deploy.data import load_arrays
    from sdnas_deploy.export.trt_export import export_engine
    from sdnas_deploy.training.weights import load_network

    model, meta = load_network(DEMO / "model.safetensors")
    images, labels = load_arrays("digits", "test", limit=64)
    engine = tmp_path / "model.engine"
    export_engine(model, engine, meta.input_shape, images, labels, precision="fp16", calib_images=images)
    report = profile_model(engine, backend="trt", device="cuda", warmup_s=0.1, iterations=30, cuda_graph=graph,
                           include_data_transfers=True)
    assert report["backend"] == "tensorrt" and set(report["breakdown"]) == {"h2d", "compute", "d2h", "enqueue",
                                                                             "latency"}
