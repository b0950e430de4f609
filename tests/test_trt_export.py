"""trt_export: the TensorRT gate comes first; sidecar helpers; end-to-end builds are marked ``trt`` + ``gpu``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.export import trt_export
from sdnas_deploy.export.onnx_export import onnx_model_proto
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError

NO_TRT = importlib.util.find_spec("tensorrt") is None
DEMO = Path(__file__).resolve().parents[1] / "export" / "demo"


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10)).eval()


@pytest.mark.skipif(not NO_TRT, reason="TensorRT is installed here")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_export_without_tensorrt_is_exit_5_before_any_work(tmp_path, precision: str) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    images = np.zeros((4, 1, 16, 16), np.float32)
    with pytest.raises(UnsupportedEnvironmentError) as err:
        # int8 without calibration images and a bad suffix would be exit 2 later: the TensorRT gate comes first
        trt_export.export_engine(_tiny_net(), out_dir / "model.onnx", (1, 1, 16, 16), images, precision=precision,
                                 timing_cache=out_dir / "t.cache", calib_cache=out_dir / "c.cache")
    assert err.value.exit_code == 5 and "--format onnx" in err.value.message
    assert list(out_dir.iterdir()) == []


def test_check_engine_path() -> None:
    assert trt_export.check_engine_path("a/model.engine") == Path("a/model.engine")
    with pytest.raises(BadInputError, match="must end in .engine"):
        trt_export.check_engine_path("a/model.plan")


def test_graph_output_static_and_dynamic() -> None:
    static = onnx_model_proto(_tiny_net(), (2, 1, 16, 16), opset=17)
    assert trt_export.graph_output(static) == {"name": "logits", "shape": [2, 10]}
    dynamic = onnx_model_proto(_tiny_net(), (2, 1, 16, 16), opset=17, dynamic_batch=True)
    assert trt_export.graph_output(dynamic) == {"name": "logits", "shape": [None, 10]}


def test_engine_summary_is_one_line() -> None:
    sidecar = {"file": "model.engine", "tensorrt": "10.3.0", "precision": "int8", "era": "weak", "build_seconds": 12.34,
               "verified": True, "verification": {"accuracy_drop": 0.0039}, "plan": {"device": "dla:0"}}
    line = trt_export.engine_summary(sidecar)
    assert line == ("model.engine: TensorRT 10.3.0 int8 engine (weak-typed, dla:0) built in 12.3 s, verified, "
                    "accuracy drop 0.0039")
    assert "NOT verified" in trt_export.engine_summary({**sidecar, "verified": False, "verification": None})


def _plan(precision: str, version: str):
    from sdnas_deploy.export.trt_build import TrtBuildOptions, plan_build

    return plan_build(TrtBuildOptions(precision=precision), version, "input", (1, 1, 16, 16))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_prepare_onnx_weak_era_parses_fp32(precision: str) -> None:
    proto = onnx_model_proto(_tiny_net(), (1, 1, 16, 16), opset=17)
    out, calibration = trt_export.prepare_onnx(proto, _plan(precision, "10.3.0"))
    assert out is proto and calibration is None


def _ort_logits(proto, images):
    from sdnas_deploy.export.onnx_precision import cpu_session

    session = cpu_session(proto)
    return np.concatenate([session.run(None, {"input": images[i : i + 1]})[0] for i in range(len(images))])


def test_prepare_onnx_strong_era_bakes_fp16_and_int8(tmp_path) -> None:
    model = _tiny_net()
    images = np.random.default_rng(0).standard_normal((16, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(images)).numpy()
    proto = onnx_model_proto(model, (1, 1, 16, 16), opset=17)
    fp32, none = trt_export.prepare_onnx(proto, _plan("fp32", "10.12.0.36"))
    assert fp32 is proto and none is None

    fp16, calibration = trt_export.prepare_onnx(proto, _plan("fp16", "10.12.0.36"))
    assert calibration is None
    assert {p.key: p.value for p in fp16.metadata_props}["sdnas.precision"] == "fp16"
    np.testing.assert_allclose(_ort_logits(fp16, images), reference, atol=2e-2, rtol=2e-2)

    with pytest.raises(BadInputError, match="--calib-data"):
        trt_export.prepare_onnx(proto, _plan("int8", "10.13.0"))
    cache = tmp_path / "ranges.json"
    int8, calibration = trt_export.prepare_onnx(proto, _plan("int8", "10.13.0"), images, "minmax", cache, "random")
    assert calibration["path"] == "q/dq" and calibration["method"] == "minmax" and calibration["images"] == 16
    assert calibration["loaded_from_cache"] is False and calibration["tensors"] > 0 and cache.is_file()
    assert "QuantizeLinear" in {node.op_type for node in int8.graph.node}
    assert np.mean(_ort_logits(int8, images).argmax(1) == reference.argmax(1)) >= 0.8
    _, again = trt_export.prepare_onnx(proto, _plan("int8", "10.13.0"), images, "minmax", cache, "random")
    assert again["loaded_from_cache"] is True


# ----------------------------------------------------------------------------- real TensorRT (skipped here)


def _demo_model() -> nn.Module:
    """The committed, trained digits demo network (auxiliary head dropped), on the GPU."""
    from sdnas_deploy.io_utils import load_json, load_safetensors
    from sdnas_deploy.spaces.darts.settings import build_network

    meta = load_json(DEMO / "model.json")
    info = meta["metadata"]
    model = build_network(meta["genotype"], info["setting"], info["num_classes"], in_channels=1,
                          layers=info["layers"], channels=info["channels"])
    tensors, _ = load_safetensors(DEMO / "model.safetensors")
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("auxiliary_head.")})
    return model.eval().cuda()


@pytest.fixture(scope="module")
def digits():
    from sdnas_deploy.data import load_arrays

    test_x, test_y = load_arrays("digits", "test", limit=256)
    calib_x, _ = load_arrays("digits", "train", limit=256)
    return test_x, test_y, calib_x


@pytest.mark.trt
@pytest.mark.gpu
def test_export_fp16_engine_end_to_end(tmp_path, digits) -> None:
    from sdnas_deploy.runtime.fingerprint import file_sha256
    from sdnas_deploy.runtime.trt_env import engine_sidecar_path
    from sdnas_deploy.runtime.trt_runtime import evaluate_engine

    images, labels, _ = digits
    out = tmp_path / "model.engine"
    sidecar = trt_export.export_engine(_demo_model(), out, (1, 1, 16, 16), images, labels, precision="fp16",
                                       timing_cache=tmp_path / "t.cache", dynamic_batch=(1, 16, 64))
    assert sidecar["verified"] is True and sidecar["verification"]["passed"] is True
    assert sidecar["schema"] == "sdnas-engine/1" and sidecar["precision"] == "fp16"
    assert sidecar["plan"]["era"] == sidecar["era"] and sidecar["plan"]["profile_shapes"][2][0] == 64
    assert sidecar["sha256"] == file_sha256(out) and not out.read_bytes().startswith(b"{")  # raw plan, no header
    on_disk = json.loads(engine_sidecar_path(out).read_text())
    assert on_disk["verified"] is True and on_disk["fingerprint"]["key"] == sidecar["fingerprint"]["key"]
    assert (tmp_path / "t.cache").stat().st_size > 0
    assert "fp16 engine" in sidecar["summary"] and "\n" not in sidecar["summary"]
    report = evaluate_engine(out, images, labels)
    assert report["top1"] >= 0.97 and report["n"] == 256


@pytest.mark.trt
@pytest.mark.gpu
def test_export_int8_engine_with_calibration(tmp_path, digits) -> None:
    images, labels, calib = digits
    out = tmp_path / "model.engine"
    with pytest.raises(BadInputError, match="--calib-data"):
        trt_export.export_engine(_demo_model(), out, (8, 1, 16, 16), images, labels, precision="int8")
    sidecar = trt_export.export_engine(_demo_model(), out, (8, 1, 16, 16), images, labels, precision="int8",
                                       calib_images=calib, calib_cache=tmp_path / "calib.cache",
                                       timing_cache=tmp_path / "t.cache", calib_source="digits:train")
    assert sidecar["verified"] is True and sidecar["calibration"]["source"] == "digits:train"
    assert sidecar["verification"]["accuracy_drop"] <= sidecar["verification"]["max_accuracy_drop"]
    assert (tmp_path / "calib.cache").is_file()


@pytest.mark.trt
@pytest.mark.gpu
def test_exported_engine_refused_on_fingerprint_mismatch(tmp_path, digits) -> None:
    from sdnas_deploy.runtime.trt_env import engine_sidecar_path
    from sdnas_deploy.runtime.trt_runtime import TrtRunner, evaluate_engine

    images, labels, _ = digits
    out = tmp_path / "model.engine"
    trt_export.export_engine(_demo_model(), out, (1, 1, 16, 16), images[:32], labels[:32], precision="fp32",
                             timing_cache=tmp_path / "t.cache")
    side = engine_sidecar_path(out)
    sidecar = json.loads(side.read_text())
    sidecar["fingerprint"].update(gpu_name="Orin", compute_capability="sm_87", tensorrt="10.3.0")
    side.write_text(json.dumps(sidecar))
    with pytest.raises(UnsupportedEnvironmentError) as err:
        TrtRunner(out)
    assert err.value.exit_code == 5 and "engine was built for Orin (sm_87)" in err.value.message
    report = evaluate_engine(out, images[:32], labels[:32], force=True)
    assert report["warnings"] and "--force" in report["warnings"][0]
