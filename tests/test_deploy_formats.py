"""Export format table: names, aliases, typos, options, ONNX export through the table, TensorRT absence."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from sdnas_deploy.deploy.formats import FORMATS, format_for_path, require_tensorrt, resolve_format
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
    assert onnx_spec.resolve_options({"dynamic-batch": True}) == {"opset": 20, "dynamic_batch": True}
    assert trt_spec.resolve_options({"precision": "fp16"}) == {"precision": "fp16"}
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


def test_onnx_export_through_the_table(tmp_path: Path) -> None:
    out = resolve_format("onnx").export(tiny_cnn(), tmp_path / "m.onnx", (1, 1, 8, 8), opset=17)
    import onnx

    proto = onnx.load(str(out))
    assert out.is_file() and proto.opset_import[0].version == 17
    assert [i.name for i in proto.graph.input] == ["input"]


def test_trt_without_tensorrt_is_exit_5_with_remediation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail like a missing install
    with pytest.raises(UnsupportedEnvironmentError) as info:
        require_tensorrt()
    assert info.value.exit_code == 5
    assert "nvidia-tensorrt" in info.value.message and "pip install tensorrt" in info.value.message
    with pytest.raises(UnsupportedEnvironmentError):
        resolve_format("engine").export(tiny_cnn(), tmp_path / "m.engine", (1, 1, 8, 8), precision="fp16")
    assert not (tmp_path / "m.engine").exists()


def test_importing_deploy_stays_light() -> None:
    import subprocess

    code = "import sys, sdnas_deploy.deploy; print(sorted(m for m in ('onnx', 'onnxruntime', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
