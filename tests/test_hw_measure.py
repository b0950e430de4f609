"""hw/measure.py: every candidate key builds the op alone with the key's output shape; timing is sane."""

from __future__ import annotations

import pytest
import torch

from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, candidate_keys, parse_key
from sdnas_deploy.hw.measure import drop_outliers, session_overhead_ms, time_module
from sdnas_deploy.spaces.darts.build_op import build_op
from sdnas_deploy.spaces.darts.ops import OPS

SMALL_CIFAR = NetworkGeometry.from_setting("cifar", input_size=16, layers=5, channels=8, in_channels=1, num_classes=10)
SMALL_MOBILE = NetworkGeometry.from_setting("mobile", input_size=32, layers=4, channels=8, in_channels=3, num_classes=7)


@pytest.mark.parametrize("geometry", [SMALL_CIFAR, SMALL_MOBILE], ids=["cifar", "mobile"])
def test_build_op_output_matches_key_for_every_candidate(geometry: NetworkGeometry) -> None:
    keys = candidate_keys(geometry)
    assert keys
    for key in keys:
        parts = parse_key(key)
        module, shape = build_op(key, geometry)
        assert not module.training, key
        h, w, c = tuple(parts.input)
        assert shape == (1, c, h, w), key
        with torch.no_grad():
            out = module(torch.randn(shape))
        oh, ow, oc = tuple(parts.output)
        expected = (1, oc) if parts.op == "global_pool_classifier" else (1, oc, oh, ow)
        assert tuple(out.shape) == expected, key
        bns = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert all(bn.affine for bn in bns), key


def test_build_op_rejects_a_stem_of_another_geometry() -> None:
    stem = next(k for k in candidate_keys(SMALL_CIFAR) if k.startswith("stem_cifar"))
    other = NetworkGeometry.from_setting("cifar", input_size=16, layers=5, channels=8, in_channels=3, num_classes=10)
    with pytest.raises(BadInputError):
        build_op(stem, other)


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_time_module_returns_sane_stats(backend: str) -> None:
    module = OPS["sep_conv_3x3"](8, 1, True).eval()
    stats = time_module(module, (1, 8, 8, 8), backend, warmup=2, repeats=12)
    assert stats["count"] + stats["dropped"] == 12 and stats["count"] >= 1
    assert 0 < stats["p50"] <= stats["p90"] and stats["mean"] > 0 and stats["std"] >= 0
    assert stats["backend"] == backend and "MAD" in stats["outlier_rule"]
    assert session_overhead_ms(backend, repeats=20) > 0


def test_outliers_above_median_plus_5_mad_are_dropped() -> None:
    kept, dropped = drop_outliers([1.0, 1.1, 0.9, 1.0, 1.05, 50.0])
    assert dropped == 1 and max(kept) < 2
    kept, dropped = drop_outliers([2.0] * 10)  # MAD 0: nothing dropped
    assert dropped == 0 and len(kept) == 10


def test_trt_backend_exits_5_and_unknown_backend_exits_2() -> None:
    module = OPS["max_pool_3x3"](4, 1, True)
    with pytest.raises(UnsupportedEnvironmentError) as err:
        time_module(module, (1, 4, 4, 4), "trt", warmup=0, repeats=1)
    assert err.value.exit_code == 5
    with pytest.raises(BadInputError):
        time_module(module, (1, 4, 4, 4), "tflite", warmup=0, repeats=1)


def test_devices_are_checked_never_silently_replaced_by_the_cpu() -> None:
    """cpu passes; CUDA without onnxruntime-gpu / a GPU is exit 5, a bad spec exit 2; providers are named by device."""
    import onnxruntime as ort

    from sdnas_deploy.hw.build import provider_name
    from sdnas_deploy.hw.measure import check_device

    assert check_device("ort", "CPU") == "cpu" and check_device("torch", "cpu") == "cpu"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(UnsupportedEnvironmentError, match="onnxruntime-gpu"):
            check_device("ort", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedEnvironmentError):
            check_device("torch", "cuda:0")
    with pytest.raises(BadInputError):
        check_device("ort", "gpu0")
    assert provider_name("ort", "cuda:1") == "CUDAExecutionProvider"
    assert provider_name("torch", "cpu") == "torch-eager-cpu" and provider_name("trt", "cuda:0") == "tensorrt"
    with pytest.raises(BadInputError, match="TensorRT needs --device cuda"):
        provider_name("trt", "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_time_module_on_cuda(backend: str) -> None:
    """On a GPU machine: ORT (CUDA provider, IO binding) and torch eager time a conv on the GPU."""
    import onnxruntime as ort

    if backend == "ort" and "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without CUDAExecutionProvider")
    module = torch.nn.Conv2d(8, 8, 3, padding=1)
    stats = time_module(module, (1, 8, 32, 32), backend, warmup=3, repeats=20, device="cuda")
    assert stats["device"] == "cuda:0" and 0 < stats["p50"] < 50
    assert next(module.parameters()).device.type == "cpu"  # moved back


def test_trt_timing_needs_tensorrt_and_a_gpu_and_fp32_fp16() -> None:
    """Without TensorRT: exit 5 with the remediation; TensorRT never runs on the CPU; INT8 tables are refused."""
    import importlib.util

    from sdnas_deploy.hw.measure import check_backend, check_device

    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(UnsupportedEnvironmentError, match="or use --format onnx"):
            check_backend("trt")
    with pytest.raises(BadInputError, match="TensorRT runs on a GPU"):
        check_device("trt", "cpu")
    with pytest.raises(BadInputError, match="fp32 only"):
        time_module(torch.nn.ReLU(), (1, 1, 2, 2), "ort", 0, 1, precision="fp16")


@pytest.mark.trt
@pytest.mark.gpu
def test_trt_time_module_builds_the_op_through_the_export_path() -> None:
    """With TensorRT and a GPU: a conv's fp16 engine is built like `sdnas export --format trt` and timed."""
    stats = time_module(torch.nn.Conv2d(8, 8, 3, padding=1), (1, 8, 32, 32), "trt", warmup=3, repeats=20,
                        device="cuda", precision="fp16")
    assert stats["precision"] == "fp16" and stats["device"] == "cuda:0" and 0 < stats["p50"] < 50
