"""`sdnas export` through the format table: precisions, several formats, per-format options, one line each."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdnas_deploy.cli.export_cmd import parse_int_list
from sdnas_deploy.cli.main import app
from sdnas_deploy.errors import BadInputError

from cli_checks import one_error_line

runner = CliRunner()
WEIGHTS = str(Path(__file__).resolve().parent.parent / "export" / "demo" / "model.safetensors")


def test_int8_onnx_export_is_calibrated_cached_and_verified(tmp_path: Path) -> None:
    """INT8 Q/DQ from 32 training images, verified on 64 test images; a second export reuses the cache."""
    args = ["export", WEIGHTS, "--out", str(tmp_path), "--precision", "int8", "--calib-count", "32",
            "--calib-cache", str(tmp_path / "calib.json"), "--verify-images", "64"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "onnx int8" in result.output and ": verified in" in result.output  # the one result line
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["precision"] == "int8" and sidecar["verified"] is True
    assert sidecar["calibration"]["from_cache"] is False and sidecar["calibration"]["source"] == "digits"
    assert sidecar["verification"]["accuracy_drop"] <= 0.02
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["calibration"]["from_cache"] is True


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_onnx_and_trt_without_tensorrt_exits_5_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "e"
    one_error_line(runner.invoke(app, ["export", WEIGHTS, "--out", str(out), "--format", "onnx,engine",
                                       "--precision", "fp16"]), 5)
    assert not out.exists()


def test_options_of_another_format_and_bad_values_are_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", WEIGHTS, "--out", str(tmp_path), "--timing-cache", "t.cache"])
    assert "--timing-cache does not apply to --format onnx; it applies to --format trt" in one_error_line(result, 2)
    one_error_line(runner.invoke(app, ["export", WEIGHTS, "--out", str(tmp_path), "--precision", "int4"]), 2)
    one_error_line(runner.invoke(app, ["export", WEIGHTS, "--out", str(tmp_path), "--format", "onxx"]), 2)
    one_error_line(runner.invoke(app, ["export", WEIGHTS, "--out", str(tmp_path), "--calib-method", "kl"]), 2)
    assert not any(tmp_path.iterdir())


def test_batch_range_parsing() -> None:
    assert parse_int_list("1,8,32", "--batch-range", 3) == [1, 8, 32] and parse_int_list(None, "x", 3) is None
    for bad in ("1,8", "1,x,3", "0,1,2"):
        with pytest.raises(BadInputError, match="--batch-range"):
            parse_int_list(bad, "--batch-range", 3)
