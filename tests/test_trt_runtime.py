"""trt_runtime: dtype mapping and chunk planning (pure); the runner itself is marked ``trt`` + ``gpu``."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.runtime import trt_runtime
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError


@pytest.mark.parametrize(
    ("dtype", "np_dtype", "torch_dtype"),
    [("FLOAT", np.float32, torch.float32), ("DataType.HALF", np.float16, torch.float16), ("half", np.float16, torch.float16)],
)
def test_io_dtypes(dtype: str, np_dtype, torch_dtype) -> None:
    got_np, got_torch = trt_runtime.io_dtypes(dtype)
    assert got_np == np.dtype(np_dtype) and got_torch is torch_dtype


@pytest.mark.parametrize("dtype", ["INT8", "DataType.INT32", "BF16", "BOOL"])
def test_io_dtypes_rejects_non_float_io(dtype: str) -> None:
    with pytest.raises(BadInputError, match="float32 or float16"):
        trt_runtime.io_dtypes(dtype)


def test_trt_dtype_name_uses_enum_name() -> None:
    class FakeEnumMember:  # what pybind enums expose: a ``name`` attribute
        name = "HALF"

    assert trt_runtime.trt_dtype_name(FakeEnumMember()) == "HALF"
    assert trt_runtime.trt_dtype_name("DataType.FLOAT") == "FLOAT"


def test_chunk_plan_static_batch_pads_the_last_chunk() -> None:
    assert trt_runtime.chunk_plan(10, 64, static_batch=4) == [(0, 4, 4), (4, 4, 4), (8, 2, 4)]
    assert trt_runtime.chunk_plan(1, 64, static_batch=1) == [(0, 1, 1)]


def test_chunk_plan_dynamic_clamps_to_profile() -> None:
    # batch 64 clamps to max 8; the last 2 images run as a batch of 2 (>= min 1)
    assert trt_runtime.chunk_plan(18, 64, None, (1, 4, 8)) == [(0, 8, 8), (8, 8, 8), (16, 2, 2)]
    # batch below min is raised to min; a short last chunk is padded up to min
    assert trt_runtime.chunk_plan(10, 1, None, (4, 4, 8)) == [(0, 4, 4), (4, 4, 4), (8, 2, 4)]
    assert trt_runtime.chunk_plan(5, 3, None, (1, 2, 8)) == [(0, 3, 3), (3, 2, 2)]
    assert trt_runtime.chunk_plan(0, 3, None, (1, 2, 8)) == []
    with pytest.raises(BadInputError):
        trt_runtime.chunk_plan(5, 0, None, (1, 2, 8))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_runner_without_tensorrt_is_exit_5(tmp_path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(UnsupportedEnvironmentError) as err:
        trt_runtime.TrtRunner(engine)
    assert err.value.exit_code == 5 and "--format onnx" in err.value.message
    with pytest.raises(UnsupportedEnvironmentError):
        trt_runtime.evaluate_engine(engine, np.zeros((1, 1, 16, 16), np.float32), np.zeros(1, np.int64))


# ----------------------------------------------------------------------------- real TensorRT (skipped here)


def _build(tmp_path, shape, dynamic=None, precision="fp32"):
    """Build a tiny engine + sidecar the way trt_export does (without its verification step)."""
    from sdnas_deploy.runtime.fingerprint import file_sha256
    from sdnas_deploy.export.onnx_export import onnx_model_proto
    from sdnas_deploy.export.trt_build import TrtBuildOptions, build_engine, plan_build
    from sdnas_deploy.runtime.trt_env import engine_fingerprint, engine_sidecar_path, require_tensorrt, tensorrt_version

    trt = require_tensorrt()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 10)).eval()
    plan = plan_build(TrtBuildOptions(precision=precision, dynamic_batch=dynamic, workspace_gib=0.5),
                      tensorrt_version() or trt.__version__, "input", shape)
    proto = onnx_model_proto(model, shape, opset=17, dynamic_batch=dynamic is not None)
    engine = tmp_path / "model.engine"
    engine.write_bytes(build_engine(trt, proto.SerializeToString(), plan))
    sidecar = {"schema": "sdnas-engine/1", "file": engine.name, "sha256": file_sha256(engine), "precision": precision,
               "plan": plan.to_dict(), "fingerprint": engine_fingerprint(precision, "gpu")}
    engine_sidecar_path(engine).write_text(json.dumps(sidecar))
    return model, engine


def _torch(model, images):
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


@pytest.mark.trt
@pytest.mark.gpu
def test_static_engine_infer_pads_and_matches_torch(tmp_path) -> None:
    model, engine = _build(tmp_path, (4, 1, 16, 16))
    runner = trt_runtime.TrtRunner(engine)
    assert runner.static_batch == 4 and runner.input_shape == (4, 1, 16, 16) and runner.warnings == []
    assert runner.output_shape == (4, 10)
    images = np.random.default_rng(0).standard_normal((10, 1, 16, 16)).astype(np.float32)
    logits = runner.infer(images)
    assert logits.shape == (10, 10) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, _torch(model, images), atol=1e-3, rtol=1e-3)
    with pytest.raises(BadInputError, match="static batch of 4"):
        runner.set_input(images[:3])


@pytest.mark.trt
@pytest.mark.gpu
def test_dynamic_engine_steps_and_evaluate(tmp_path) -> None:
    model, engine = _build(tmp_path, (1, 1, 16, 16), dynamic=(1, 4, 8))
    runner = trt_runtime.TrtRunner(engine, batch=2)
    assert runner.profile == (1, 4, 8) and runner.input_shape == (2, 1, 16, 16)
    images = np.random.default_rng(1).standard_normal((13, 1, 16, 16)).astype(np.float32)
    runner.set_input(images[:2])
    runner.copy_in()
    runner.enqueue()
    runner.copy_out()
    runner.synchronize()
    np.testing.assert_allclose(runner.h_out[:2].numpy(), _torch(model, images[:2]), atol=1e-3, rtol=1e-3)
    np.testing.assert_allclose(runner.infer(images, batch=5), _torch(model, images), atol=1e-3, rtol=1e-3)
    labels = _torch(model, images).argmax(1).astype(np.int64)
    report = trt_runtime.evaluate_engine(engine, images, labels)
    assert report["top1"] == 1.0 and report["n"] == 13 and report["num_classes"] == 10
    assert sum(report["prediction_counts"]) == 13 and report["warnings"] == []
    with pytest.raises(BadInputError, match="outside the engine's dynamic range"):
        trt_runtime.TrtRunner(engine, batch=9)


@pytest.mark.trt
@pytest.mark.gpu
def test_runner_refuses_engine_from_another_device(tmp_path) -> None:
    from sdnas_deploy.runtime.trt_env import engine_sidecar_path
    from sdnas_deploy.errors import VerificationError

    _, engine = _build(tmp_path, (1, 1, 16, 16))
    side = engine_sidecar_path(engine)
    sidecar = json.loads(side.read_text())
    sidecar["fingerprint"] = {**sidecar["fingerprint"], "gpu_name": "Orin", "compute_capability": "sm_87"}
    side.write_text(json.dumps(sidecar))
    with pytest.raises(UnsupportedEnvironmentError, match="engine was built for Orin"):
        trt_runtime.TrtRunner(engine)
    assert "running anyway" in trt_runtime.TrtRunner(engine, force=True).warnings[0]
    engine.write_bytes(engine.read_bytes() + b"\x00")
    with pytest.raises(VerificationError, match="sha256 differs"):
        trt_runtime.TrtRunner(engine, force=True)
    side.unlink()
    with pytest.raises(UnsupportedEnvironmentError, match="is missing"):
        trt_runtime.TrtRunner(engine)
