"""export_precision_onnx on the committed demo network: fp16 and INT8 files verified by accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from sdnas_deploy.data import load_arrays
from sdnas_deploy.export.calibration import load_calibration_images
from sdnas_deploy.runtime.evaluate import evaluate_onnx
from sdnas_deploy.runtime.fingerprint import file_sha256
from sdnas_deploy.export.onnx_precision import PRECISION_KEY
from sdnas_deploy.export.precision_export import export_precision_onnx
from sdnas_deploy.errors import BadInputError, VerificationError
from sdnas_deploy.training.weights import load_network

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (1, 1, 16, 16)


@pytest.fixture(scope="module")
def network():
    model, _ = load_network(ROOT / "export" / "demo" / "model.safetensors", auxiliary=False)
    return model


@pytest.fixture(scope="module")
def held_out() -> tuple[np.ndarray, np.ndarray]:
    return load_arrays("digits", "test", limit=200)


def test_fp16_export_is_verified(network, held_out, tmp_path: Path) -> None:
    images, labels = held_out
    out = tmp_path / "model.onnx"
    sidecar = export_precision_onnx(network, out, SHAPE, images, labels, precision="fp16", mean=(0.3,), std=(0.3,),
                                    genotype={"normal": []}, metadata={"run": "t"})
    on_disk = json.loads((tmp_path / "model.json").read_text())
    assert on_disk == json.loads(json.dumps(sidecar))
    assert sidecar["verified"] and sidecar["precision"] == "fp16" and sidecar["calibration"] is None
    assert sidecar["sha256"] == file_sha256(out)
    check = sidecar["verification"]
    assert check["backend"] == "onnxruntime-cpu" and check["n_images"] == 200 and check["passed"]
    assert check["accuracy_drop"] <= 0.01 and check["top1_agreement"] >= 0.98
    assert check["shipped_file_top1_agreement"] >= 0.98
    assert sidecar["input"]["dtype"] == "float32" and sidecar["normalization"]["mean"] == [0.3]
    model = onnx.load(str(out))
    assert {p.key: p.value for p in model.metadata_props}[PRECISION_KEY] == "fp16"
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    assert evaluate_onnx(out, images, labels)["top1"] == pytest.approx(check["reference_accuracy"], abs=0.01)


def test_int8_export_is_calibrated_and_verified(network, held_out, tmp_path: Path) -> None:
    images, labels = held_out
    calib = load_calibration_images("digits", 32, SHAPE)
    out, cache = tmp_path / "int8.onnx", tmp_path / "calib.json"
    sidecar = export_precision_onnx(network, out, SHAPE, images, labels, precision="int8", calib_images=calib,
                                    calib_method="percentile", calib_cache=cache, calib_source="digits")
    assert sidecar["verified"] and sidecar["precision"] == "int8"
    assert sidecar["calibration"] == {"method": "percentile", "count": 32, "source": "digits", "cache": str(cache),
                                      "from_cache": False, "tensors": sidecar["calibration"]["tensors"]}
    assert json.loads(cache.read_text())["key"]["method"] == "percentile"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert sidecar["verification"]["accuracy_drop"] <= 0.02
    with pytest.raises(BadInputError, match="--calib-data"):
        export_precision_onnx(network, out, SHAPE, images, labels, precision="int8")


def test_unrepresentative_calibration_fails_with_exit_3(network, held_out, tmp_path: Path) -> None:
    """Calibrating on blank images (all at the dataset mean) gives ranges that saturate real digits."""
    images, labels = held_out
    blank = np.zeros((8, *SHAPE[1:]), np.float32)
    out = tmp_path / "bad.onnx"
    with pytest.raises(VerificationError) as info:
        export_precision_onnx(network, out, SHAPE, images, labels, precision="int8", calib_images=blank,
                              calib_method="minmax")
    assert info.value.exit_code == 3 and "--calib-data" in info.value.message and "\n" not in info.value.message
    sidecar = json.loads((tmp_path / "bad.json").read_text())
    assert out.is_file() and sidecar["verified"] is False and sidecar["verification"]["passed"] is False
    assert sidecar["verification"]["accuracy_drop"] > 0.02


def test_fp32_delegates_and_records_precision(network, held_out, tmp_path: Path) -> None:
    images, labels = held_out
    sidecar = export_precision_onnx(network, tmp_path / "m.onnx", SHAPE, images[:32], labels[:32], precision="fp32")
    assert sidecar["verified"] and sidecar["precision"] == "fp32" and sidecar["verification"]["atol"] == 1e-4
    assert json.loads((tmp_path / "m.json").read_text())["precision"] == "fp32"
    with pytest.raises(BadInputError, match="unknown precision"):
        export_precision_onnx(network, tmp_path / "m.onnx", SHAPE, images, labels, precision="bf16")
