"""ONNX export, ORT-vs-PyTorch verification, the sidecar, ORT accuracy, and bad files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.runtime.evaluate import evaluate_onnx
from sdnas_deploy.runtime.fingerprint import file_sha256
from sdnas_deploy.export.onnx_export import (
    export_and_verify,
    export_onnx,
    load_sidecar,
    sidecar_path,
    verify_onnx,
)
from sdnas_deploy.errors import BadInputError, VerificationError

SHAPE = (1, 1, 16, 16)


def tiny_cnn(seed: int, num_classes: int = 10) -> nn.Module:
    """A small real CNN: conv/BN/ReLU/pool twice, then a linear classifier."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, num_classes),
    )
    with torch.no_grad():  # non-trivial BN statistics so eval mode differs from train mode
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def images_and_labels(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *SHAPE[1:])).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, nn.Module]:
    model = tiny_cnn(0)
    images, labels = images_and_labels()
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    sidecar = export_and_verify(
        model, out, SHAPE, images, labels, genotype={"normal": []}, metadata={"run": "test"},
        mean=(0.5,), std=(0.25,),
    )
    return out, sidecar, model


def test_export_is_one_checked_file_with_named_io(exported: tuple[Path, dict, nn.Module]) -> None:
    import onnx

    out, _, _ = exported
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["logits"]
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == list(SHAPE)
    assert {p.key: p.value for p in proto.metadata_props}["run"] == "test"
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.json", "model.onnx"]  # no .onnx.data, no temp


def test_sidecar_fields_and_figures(exported: tuple[Path, dict, nn.Module]) -> None:
    out, sidecar, _ = exported
    assert load_sidecar(out) == sidecar and sidecar_path(out).name == "model.json"
    assert sidecar["verified"] is True and sidecar["sha256"] == file_sha256(out)
    assert sidecar["input"] == {"name": "input", "shape": list(SHAPE), "dynamic_batch": False, "dtype": "float32",
                                "layout": "NCHW"}
    assert sidecar["normalization"] == {"mean": [0.5], "std": [0.25]} and sidecar["opset"] == 20
    assert sidecar["genotype"] == {"normal": []} and sidecar["metadata"] == {"run": "test"}
    assert set(sidecar["versions"]) >= {"torch", "onnx", "onnxruntime", "sdnas_deploy"}
    v = sidecar["verification"]
    assert v["max_abs_diff"] < 1e-4 and v["top1_agreement"] == 1.0 and v["n_images"] == 24
    assert v["torch_accuracy"] == v["onnx_accuracy"] and 0.0 <= v["torch_accuracy"] <= 1.0


def test_evaluate_matches_torch_accuracy(exported: tuple[Path, dict, nn.Module]) -> None:
    out, sidecar, model = exported
    images, labels = images_and_labels()
    with torch.no_grad():
        torch_pred = model(torch.from_numpy(images)).argmax(1).numpy()
    result = evaluate_onnx(out, images, labels, batch=5)
    assert result["top1"] == pytest.approx(float(np.mean(torch_pred == labels)))
    assert result["top1"] == sidecar["verification"]["torch_accuracy"]
    assert result["top1"] <= result["top5"] <= 1.0 and result["n"] == 24 and result["num_classes"] == 10
    assert sum(result["prediction_counts"]) == 24
    # labels equal to the model's own predictions give exactly 100%
    assert evaluate_onnx(out, images, torch_pred)["top1"] == 1.0


def test_evaluate_rejects_wrong_shapes(exported: tuple[Path, dict, nn.Module]) -> None:
    out, _, _ = exported
    rgb = np.zeros((4, 3, 16, 16), np.float32)
    with pytest.raises(BadInputError, match=r"\(4, 3, 16, 16\).*1x1x16x16"):
        evaluate_onnx(out, rgb, np.zeros(4, np.int64))
    with pytest.raises(BadInputError, match="labels for 4 images"):
        evaluate_onnx(out, np.zeros((4, 1, 16, 16), np.float32), np.zeros(3, np.int64))
    with pytest.raises(BadInputError, match="10 classes"):
        evaluate_onnx(out, np.zeros((2, 1, 16, 16), np.float32), np.array([0, 12]))


def test_dynamic_batch_export(tmp_path: Path) -> None:
    model = tiny_cnn(1)
    images, labels = images_and_labels(10, seed=3)
    out = tmp_path / "dyn.onnx"
    export_onnx(model, out, SHAPE, opset=17, dynamic_batch=True)
    result = verify_onnx(out, model, images, labels, batch=4)
    assert result.passed and result.max_abs_diff < 1e-4 and result.n_images == 10


def test_verify_against_other_weights_fails(exported: tuple[Path, dict, nn.Module]) -> None:
    out, _, _ = exported
    images, _ = images_and_labels()
    result = verify_onnx(out, tiny_cnn(seed=123), images)
    assert not result.passed and result.max_abs_diff > 1e-4


class FrozenStateNet(nn.Module):
    """Its output depends on Python state that tracing freezes: a real way exports go wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.body = tiny_cnn(2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.body(x) + float(self.calls)


def test_export_and_verify_raises_and_marks_sidecar(tmp_path: Path) -> None:
    images, labels = images_and_labels(8)
    out = tmp_path / "bad.onnx"
    with pytest.raises(VerificationError) as info:
        export_and_verify(FrozenStateNet(), out, SHAPE, images, labels)
    assert info.value.exit_code == 3 and "verified=false" in info.value.message and "\n" not in info.value.message
    sidecar = load_sidecar(out)
    assert out.is_file() and sidecar is not None and sidecar["verified"] is False
    assert sidecar["verification"]["max_abs_diff"] > 1e-4


def test_bad_export_arguments(tmp_path: Path) -> None:
    model = tiny_cnn(0)
    with pytest.raises(BadInputError, match="must end in .onnx"):
        export_onnx(model, tmp_path / "model.bin", SHAPE)
    with pytest.raises(BadInputError, match="opset 9"):
        export_onnx(model, tmp_path / "m.onnx", SHAPE, opset=9)
    with pytest.raises(BadInputError, match="input shape"):
        export_onnx(model, tmp_path / "m.onnx", (1, 0, 16, 16))


class AuxNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = tiny_cnn(0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.body(x)
        return logits, logits * 2


def test_two_outputs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="auxiliary=False"):
        export_onnx(AuxNet(), tmp_path / "aux.onnx", SHAPE)
    assert not (tmp_path / "aux.onnx").exists()


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    images, labels = images_and_labels(4)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 this is not a protobuf model")
    for fn in (lambda p: verify_onnx(p, tiny_cnn(0), images), lambda p: evaluate_onnx(p, images, labels)):
        with pytest.raises(BadInputError) as info:
            fn(corrupt)
        assert "not a loadable ONNX model" in info.value.message and "\n" not in info.value.message
        with pytest.raises(BadInputError, match="not found"):
            fn(tmp_path / "missing.onnx")
    sidecar_path(corrupt).write_text("{not json")
    with pytest.raises(BadInputError, match="malformed model sidecar"):
        load_sidecar(corrupt)
    assert load_sidecar(tmp_path / "missing.onnx") is None


def test_darts_network_exports_and_verifies(tmp_path: Path) -> None:
    if importlib.util.find_spec("sdnas_deploy.spaces.darts.settings") is None:
        pytest.skip("sdnas_deploy.spaces.darts.settings not available")
    from sdnas_deploy.spaces.darts.settings import build_network
    from sdnas_deploy.spaces.darts.genotype import REFERENCE_GENOTYPES

    if "darts_v2" not in REFERENCE_GENOTYPES:
        pytest.skip("darts_v2 reference genotype not available")
    torch.manual_seed(0)
    genotype = REFERENCE_GENOTYPES["darts_v2"]
    model = build_network(genotype, "cifar", num_classes=10, in_channels=1, layers=3, channels=8).eval()
    images, labels = images_and_labels(8, seed=5)
    sidecar = export_and_verify(model, tmp_path / "darts.onnx", SHAPE, images, labels, genotype=genotype)
    assert sidecar["verified"] and sidecar["verification"]["max_abs_diff"] < 1e-4
    assert isinstance(sidecar["genotype"], dict) and "normal" in sidecar["genotype"]
