"""Export format table: names, aliases, typos, options, ONNX export through the table, TensorRT absence."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from sdnas_deploy.export.formats import (
    FORMATS, ExportJob, format_for_path, require_tensorrt, resolve_format, resolve_formats, split_options,
)
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


@pytest.mark.parametrize("name", sorted(FORMATS), ids=lambda n: f"format-{n}")  # bare "trt" id = trt marker
def test_every_format_resolves_to_itself_and_has_a_suffix(name: str) -> None:
    spec = resolve_format(name.upper())
    assert spec is FORMATS[name]
    assert spec.suffix.startswith(".") and spec.description
    assert format_for_path(f"model{spec.suffix}") is spec
    assert set(spec.resolve_options()) == set(spec.options)


@pytest.mark.parametrize("alias", ["tensorrt", "engine", "TensorRT", " trt "])
def test_trt_aliases(alias: str) -> None:
    assert resolve_format(alias).name == "trt"


def test_typo_gets_a_suggestion_and_lists_aliases() -> None:
    with pytest.raises(BadInputError, match=r"did you mean 'onnx'.*aliases: tensorrt, engine") as info:
        resolve_format("onxx")
    assert info.value.exit_code == 2 and "\n" not in info.value.message
    with pytest.raises(BadInputError, match="did you mean 'tensorrt'"):
        resolve_format("tensorrtt")


def test_option_validation() -> None:
    onnx_spec, trt_spec = resolve_format("onnx"), resolve_format("trt")
    onnx_opts = onnx_spec.resolve_options({"dynamic-batch": True})
    assert onnx_opts["dynamic_batch"] is True and onnx_opts["opset"] == 17 and onnx_opts["precision"] == "fp32"
    trt_opts = trt_spec.resolve_options({"precision": "int8", "workspace_gib": 1, "batch_range": [1, 4, 8]})
    assert trt_opts["precision"] == "int8" and trt_opts["workspace_gib"] == 1.0 and trt_opts["batch_range"] == (1, 4, 8)
    assert resolve_format("trt").resolve_options()["precision"] == "fp16"  # an engine defaults to fp16
    with pytest.raises(BadInputError, match="unknown option 'opst'.*did you mean 'opset'"):
        onnx_spec.resolve_options({"opst": 17})
    with pytest.raises(BadInputError, match="expects int"):
        onnx_spec.resolve_options({"opset": "17"})
    with pytest.raises(BadInputError, match="not one of"):
        onnx_spec.resolve_options({"opset": 25})
    with pytest.raises(BadInputError, match="precision='int4' is not one of fp32, fp16, int8"):
        trt_spec.resolve_options({"precision": "int4"})


def test_unknown_suffix() -> None:
    with pytest.raises(BadInputError, match="unknown model file suffix '.pt'"):
        format_for_path("model.pt")


def _job(tmp_path: Path) -> ExportJob:
    model = tiny_cnn()
    images = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1)).numpy()
    with torch.no_grad():
        labels = model.eval()(torch.from_numpy(images)).argmax(1).numpy()
    return ExportJob(model=model, out_dir=tmp_path, input_shape=(1, 1, 8, 8), images=images, labels=labels)


def test_onnx_export_through_the_table(tmp_path: Path) -> None:
    sidecar = resolve_format("onnx").export(_job(tmp_path), opset=17)
    import onnx

    out = tmp_path / "model.onnx"
    proto = onnx.load(str(out))
    assert sidecar["verified"] is True and sidecar["file"] == "model.onnx"
    assert proto.opset_import[0].version == 17 and [i.name for i in proto.graph.input] == ["input"]


def test_several_formats_and_options_split_by_the_table() -> None:
    """Each format gets only the options it takes; an option no chosen format takes is an error naming who takes it."""
    specs = resolve_formats("onnx, TensorRT,onnx")
    assert [s.name for s in specs] == ["onnx", "trt"]
    opts = split_options(specs, {"precision": "int8", "workspace_gib": 4.0, "atol": None, "opset": 18})
    assert opts["onnx"]["precision"] == "int8" and opts["trt"]["precision"] == "int8"
    assert opts["trt"]["workspace_gib"] == 4.0 and "workspace_gib" not in opts["onnx"]
    assert opts["onnx"]["opset"] == opts["trt"]["opset"] == 18
    with pytest.raises(BadInputError, match="--workspace-gib does not apply to --format onnx; it applies to --format trt"):
        split_options(resolve_formats("onnx"), {"workspace_gib": 4.0})
    with pytest.raises(BadInputError, match="no export format"):
        resolve_formats(" , ")


def test_int8_without_calibration_images_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--calib-data"):
        resolve_format("onnx").export(_job(tmp_path), precision="int8")


def test_trt_without_tensorrt_is_exit_5_with_remediation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail like a missing install
    with pytest.raises(UnsupportedEnvironmentError) as info:
        require_tensorrt()
    assert info.value.exit_code == 5
    assert ("nvidia-tensorrt" if Path("/etc/nv_tegra_release").exists() else "pip install tensorrt") in info.value.message
    with pytest.raises(UnsupportedEnvironmentError):
        resolve_format("engine").export(_job(tmp_path), precision="fp16")
    assert not any(tmp_path.iterdir())  # the preflight fails before anything is written
    assert not (tmp_path / "m.engine").exists()


def test_importing_the_deploy_packages_stays_light() -> None:
    import subprocess

    code = "import sys, sdnas_deploy.runtime, sdnas_deploy.export, sdnas_deploy.profile, sdnas_deploy.gate; print(sorted(m for m in ('onnx', 'onnxruntime', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
