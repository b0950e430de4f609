"""trt_build / trt_calibrator: option validation, the build plan for both eras, timing-cache paths,
parser errors, log capture and calibration batching; real builds are marked ``trt`` + ``gpu``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.export import trt_build, trt_calibrator
from sdnas_deploy.export.trt_build import BuildPlan, TrtBuildOptions, plan_build
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError, VerificationError

SHAPE = (1, 1, 16, 16)


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"precision": "bf16"}, "--precision 'bf16'"),
        ({"workspace_gib": 0}, "--workspace-gib"),
        ({"workspace_gib": -1.5}, "--workspace-gib"),
        ({"workspace_gib": float("nan")}, "--workspace-gib"),
        ({"workspace_gib": True}, "--workspace-gib"),
        ({"device": "dla"}, "expected gpu or dla:N"),
        ({"device": "cuda:0"}, "expected gpu or dla:N"),
        ({"device": "dla:x"}, "expected gpu or dla:N"),
        ({"device": "dla:0", "precision": "fp32"}, "DLA runs only fp16 or int8"),
        ({"dynamic_batch": (0, 1, 4)}, "1 <= min <= opt <= max"),
        ({"dynamic_batch": (4, 2, 8)}, "1 <= min <= opt <= max"),
        ({"dynamic_batch": (1, 8, 4)}, "1 <= min <= opt <= max"),
        ({"dynamic_batch": (1, 8)}, "1 <= min <= opt <= max"),
        ({"dynamic_batch": (1.0, 2, 4)}, "1 <= min <= opt <= max"),
        ({"device": "dla:0", "dynamic_batch": (1, 4, 8)}, "DLA has no dynamic shapes"),
        ({"calib_method": "kl"}, "--calib-method 'kl'"),
        ({"calib_batch": 0}, "calibration batch"),
    ],
)
def test_options_validation_errors(kwargs: dict, needle: str) -> None:
    with pytest.raises(BadInputError) as err:
        TrtBuildOptions(**kwargs).validate()
    assert needle in err.value.message and "\n" not in err.value.message


def test_options_valid_and_device_parsing() -> None:
    opts = TrtBuildOptions(precision="int8", device="DLA:1", dynamic_batch=[2, 2, 2]).validate()
    assert opts.dynamic_batch == (2, 2, 2)
    assert trt_build.parse_device("gpu") is None
    assert trt_build.parse_device(" dla:1 ") == 1
    assert trt_build.parse_device("dla:12") == 12


# ----------------------------------------------------------------------------- plan table

VERSIONS = {"8.6.1": ("weak", ("EXPLICIT_BATCH",)), "10.3.0": ("weak", ()), "10.13.3.9": ("strong", ("STRONGLY_TYPED",))}
WEAK_FLAGS = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}
CASES = [
    (version, precision, device, dynamic)
    for version in VERSIONS
    for precision in ("fp32", "fp16", "int8")
    for device in ("gpu", "dla:0")
    for dynamic in (None, (1, 8, 32), (4, 4, 4))
    if not (device == "dla:0" and precision == "fp32")  # rejected by validate()
    and not (device == "dla:0" and dynamic == (1, 8, 32))  # rejected by validate()
    and not (device == "dla:0" and precision == "int8" and VERSIONS[version][0] == "strong")  # exit 5 below
]


@pytest.mark.parametrize(("version", "precision", "device", "dynamic"), CASES)
def test_plan_build_table(version: str, precision: str, device: str, dynamic, tmp_path) -> None:
    cache = tmp_path / "t.timing-cache"
    opts = TrtBuildOptions(precision=precision, device=device, dynamic_batch=dynamic, workspace_gib=1.5,
                           timing_cache=cache, calib_batch=16)
    plan = plan_build(opts, version, "input", SHAPE)
    era, network_flags = VERSIONS[version]
    assert plan.era == era and plan.network_flags == network_flags and plan.precision == precision
    if era == "weak":
        assert plan.builder_flags == WEAK_FLAGS[precision]
        assert plan.onnx_precision == "fp32"
        assert plan.needs_calibrator == (precision == "int8")
    else:
        assert plan.builder_flags == ()
        assert plan.onnx_precision == precision
        assert plan.needs_calibrator is False
    assert plan.cleared_flags == (("TF32",) if precision == "fp32" else ())
    assert plan.workspace_bytes == int(1.5 * (1 << 30))
    assert plan.timing_cache == str(cache)
    assert plan.input_name == "input" and plan.input_shape == SHAPE
    if device == "gpu":
        assert plan.dla_core is None and plan.gpu_fallback is False
    else:
        assert plan.dla_core == 0 and plan.gpu_fallback is True
    if dynamic is None:
        assert plan.profile_shapes is None and not plan.dynamic and plan.calib_batch == SHAPE[0]
    else:
        lo, opt, hi = dynamic
        assert plan.profile_shapes == ((lo, 1, 16, 16), (opt, 1, 16, 16), (hi, 1, 16, 16))
        assert plan.calib_batch == min(max(16, lo), hi)
    as_dict = plan.to_dict()
    assert as_dict["era"] == era and BuildPlan(**as_dict) == plan


def test_plan_rejects_strong_era_int8_on_dla_and_old_tensorrt() -> None:
    with pytest.raises(UnsupportedEnvironmentError) as err:
        plan_build(TrtBuildOptions(precision="int8", device="dla:0"), "10.12.0.36", "input", SHAPE)
    assert "Q/DQ" in err.value.message and "--precision fp16" in err.value.message
    with pytest.raises(UnsupportedEnvironmentError, match="older than 8.6"):
        plan_build(TrtBuildOptions(), "8.5.3", "input", SHAPE)


def test_plan_percentile_only_in_strong_era() -> None:
    with pytest.raises(BadInputError, match="entropy or minmax"):
        plan_build(TrtBuildOptions(precision="int8", calib_method="percentile"), "10.3.0", "input", SHAPE)
    plan = plan_build(TrtBuildOptions(precision="int8", calib_method="percentile"), "10.12.0", "input", SHAPE)
    assert plan.calib_method == "percentile" and plan.onnx_precision == "int8"
    # fp16 never calibrates, so the method does not matter there
    assert plan_build(TrtBuildOptions(precision="fp16", calib_method="percentile"), "10.3.0", "input", SHAPE).era == "weak"


def test_default_timing_cache_path(monkeypatch, tmp_path) -> None:
    fp = {"key": "0123456789abcdef"}
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert trt_build.default_timing_cache_path(fp) == tmp_path / "xdg" / "sdnas" / "trt" / "0123456789abcdef.timing-cache"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert trt_build.default_timing_cache_path(fp) == Path(tmp_path / "home" / ".cache/sdnas/trt/0123456789abcdef.timing-cache")
    with pytest.raises(BadInputError):
        trt_build.default_timing_cache_path({})


# ----------------------------------------------------------------------------- parser errors, logs


def test_parser_failure_classification() -> None:
    bad = trt_build.parser_failure([("MODEL_DESERIALIZE_FAILED", -1, "Failed to parse ONNX model")], "10.3.0")
    assert isinstance(bad, BadInputError) and "re-export" in bad.message and "node" not in bad.message
    errors = [("UNSUPPORTED_NODE", 7, "No importer registered for op: Foo"), ("INVALID_NODE", 9, "bad attr"),
              ("UNSUPPORTED_NODE", 10, "x"), ("UNSUPPORTED_NODE", 11, "y")]
    unsupported = trt_build.parser_failure(errors, "10.3.0")
    assert isinstance(unsupported, VerificationError)
    msg = unsupported.message
    assert "UNSUPPORTED_NODE node 7: No importer registered for op: Foo" in msg and "(+1 more)" in msg
    assert "--format onnx" in msg and "\n" not in msg
    assert isinstance(trt_build.parser_failure([], "10.3.0"), VerificationError)


def test_log_buffer_last_error_since_mark() -> None:
    buf = trt_build.LogBuffer(limit=3)
    buf.add("ERROR", "old failure")
    mark = buf.mark()
    assert buf.last_error(mark) is None and buf.last_error() == "old failure"
    buf.add("WARNING", "just a warning")
    buf.add("ERROR", "  out of\n memory ")
    buf.add("WARNING", "later warning")
    assert buf.last_error(mark) == "out of memory"
    assert len(buf.lines) == 3  # the limit drops the oldest line, marks stay valid
    buf.add("INTERNAL_ERROR", "assertion")
    assert buf.last_error(mark) == "assertion"


# ----------------------------------------------------------------------------- calibration batching


def test_calibration_batches_drop_the_remainder() -> None:
    assert trt_calibrator.calibration_batches(10, 4) == [(0, 4), (4, 8)]
    assert trt_calibrator.calibration_batches(8, 4) == [(0, 4), (4, 8)]
    assert trt_calibrator.calibration_batches(3, 1) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(BadInputError, match="--calib-count to at least 32"):
        trt_calibrator.calibration_batches(10, 32)
    with pytest.raises(BadInputError):
        trt_calibrator.calibration_batches(10, 0)


def test_calibrator_base_names() -> None:
    assert trt_calibrator.calibrator_base_name("entropy") == "IInt8EntropyCalibrator2"
    assert trt_calibrator.calibrator_base_name("minmax") == "IInt8MinMaxCalibrator"
    with pytest.raises(BadInputError, match="percentile needs TensorRT >= 10.12"):
        trt_calibrator.calibrator_base_name("percentile")


def test_check_calibration_images() -> None:
    ok = trt_calibrator.check_calibration_images(np.zeros((4, 1, 16, 16), dtype=np.float64), SHAPE)
    assert ok.dtype == np.float32 and ok.flags.c_contiguous
    with pytest.raises(BadInputError, match="per image"):
        trt_calibrator.check_calibration_images(np.zeros((4, 3, 16, 16), dtype=np.float32), SHAPE)
    with pytest.raises(BadInputError, match="--calib-data"):
        trt_calibrator.check_calibration_images(np.zeros((4, 1, 16, 16), dtype=np.uint8), SHAPE)
    bad = np.zeros((2, 1, 16, 16), dtype=np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        trt_calibrator.check_calibration_images(bad, SHAPE)


# ----------------------------------------------------------------------------- real TensorRT (skipped here)


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10)).eval()


def _onnx_bytes(dynamic: bool = False) -> bytes:
    from sdnas_deploy.export.onnx_export import onnx_model_proto

    return onnx_model_proto(_tiny_net(), SHAPE, opset=17, dynamic_batch=dynamic).SerializeToString()


@pytest.mark.trt
@pytest.mark.gpu
def test_build_fp16_engine_writes_timing_cache(tmp_path) -> None:
    from sdnas_deploy.runtime.trt_env import require_tensorrt, tensorrt_version

    trt = require_tensorrt()
    version = tensorrt_version() or trt.__version__
    cache = tmp_path / "cache" / "x.timing-cache"
    plan = plan_build(TrtBuildOptions(precision="fp16", timing_cache=cache, workspace_gib=0.5,
                                      dynamic_batch=(1, 4, 8)), version, "input", SHAPE)
    onnx_bytes = _onnx_bytes(dynamic=True)
    if plan.era == "strong":  # fp16 must be baked into the graph on the strongly typed path
        import onnx

        from sdnas_deploy.export.onnx_precision import bake_precision

        onnx_bytes = bake_precision(onnx.load_from_string(onnx_bytes), "fp16").SerializeToString()
    engine_bytes = trt_build.build_engine(trt, onnx_bytes, plan)
    assert len(engine_bytes) > 1000 and cache.is_file() and cache.stat().st_size > 0
    engine = trt.Runtime(trt_build.get_logger(trt)).deserialize_cuda_engine(engine_bytes)
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert names == ["input", "logits"]
    assert [int(d[0]) for d in engine.get_tensor_profile_shape("input", 0)] == [1, 4, 8]
    # a second build reuses the cache and yields a loadable engine again
    assert len(trt_build.build_engine(trt, onnx_bytes, plan)) > 1000


@pytest.mark.trt
@pytest.mark.gpu
def test_build_rejects_garbage_onnx() -> None:
    from sdnas_deploy.runtime.trt_env import require_tensorrt, tensorrt_version

    trt = require_tensorrt()
    plan = plan_build(TrtBuildOptions(precision="fp32"), tensorrt_version() or trt.__version__, "input", SHAPE)
    with pytest.raises((BadInputError, VerificationError)) as err:
        trt_build.build_engine(trt, b"definitely not an onnx model", plan)
    assert "TensorRT" in err.value.message and "\n" not in err.value.message


@pytest.mark.trt
@pytest.mark.gpu
def test_int8_build_with_calibrator_writes_calibration_cache(tmp_path) -> None:
    from sdnas_deploy.runtime.trt_env import require_tensorrt, tensorrt_version

    trt = require_tensorrt()
    version = tensorrt_version() or trt.__version__
    plan = plan_build(TrtBuildOptions(precision="int8", calib_batch=8, dynamic_batch=(1, 8, 16),
                                      timing_cache=tmp_path / "t.cache"), version, "input", SHAPE)
    if not plan.needs_calibrator:
        pytest.skip(f"TensorRT {version} builds INT8 from Q/DQ (strong era); covered by test_trt_export")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((40, 1, 16, 16)).astype(np.float32)
    calib_cache = tmp_path / "calib.cache"
    calibrator = trt_calibrator.make_calibrator(trt, images, "entropy", plan.calib_batch, calib_cache)
    engine_bytes = trt_build.build_engine(trt, _onnx_bytes(dynamic=True), plan, calibrator)
    assert len(engine_bytes) > 1000
    info = calibrator.info()
    assert info["batches_served"] == 5 and info["images_used"] == 40 and not info["loaded_from_cache"]
    assert calib_cache.is_file() and calib_cache.stat().st_size > 0
    again = trt_calibrator.make_calibrator(trt, images, "entropy", plan.calib_batch, calib_cache)
    trt_build.build_engine(trt, _onnx_bytes(dynamic=True), plan, again)
    assert again.info()["loaded_from_cache"] is True and again.info()["batches_served"] == 0
