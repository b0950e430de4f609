"""`sdnas lut list/build`: provenance listing, a tiny build, JSON output, one-line errors with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from sdnas_deploy.cli.lut_cmds import lut_app
from sdnas_deploy.hw.lut import load_table
from sdnas_deploy.hw.targets import TARGETS
from cli_checks import one_error_line

app = typer.Typer()
app.add_typer(lut_app, name="lut")
runner = CliRunner()

TINY = ["--setting", "cifar", "--layers", "3", "--channels", "4", "--input-size", "8", "--in-channels", "1",
        "--num-classes", "3", "--repeats", "2", "--warmup", "0"]



def test_list_human_and_json() -> None:
    human = runner.invoke(app, ["lut", "list"])
    assert human.exit_code == 0, human.output
    for name in TARGETS:
        assert name in human.stdout
    result = runner.invoke(app, ["lut", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["target"] for row in rows} == set(TARGETS)
    cpu = next(row for row in rows if row["target"] == "x86-cpu-ort")
    slots = {"darts/cifar", "darts/mobile", "fbnet/small", "proxyless/small"}
    assert set(cpu["tables"]) == slots | {f"{slot} fitted" for slot in slots}
    assert cpu["tables"]["darts/cifar fitted"]["method"] == "fitted"
    for info in cpu["tables"].values():
        assert info["file"].endswith(".json")
        if info["exists"] and "error" not in info:
            assert info["entries"] > 0 and info["date"] and info["cpu"] and info["runtime"].startswith("ort")


def test_build_tiny_table_json(tmp_path: Path) -> None:
    out = tmp_path / "tiny.json"
    result = runner.invoke(app, ["lut", "build", "--target", "x86-cpu-ort", "--backend", "ort", *TINY,
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    table = load_table(out)
    assert summary["entries"] == len(table.entries) > 0 and summary["file"] == str(out)
    assert table.geometry.to_dict() == summary["geometry"] and table.geometry.channels == 4
    again = runner.invoke(app, ["lut", "build", "--target", "x86-cpu-ort", "--backend", "ort", *TINY,
                                "--out", str(out), "--resume"])
    assert again.exit_code == 0 and "wrote" in again.stdout
    assert "0 measured" in again.stderr


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    line = one_error_line(runner.invoke(app, ["lut", "build", "--target", "x86-cpu-orr", "--backend", "ort",
                                               *TINY, "--out", str(out)]), 2)
    assert "x86-cpu-orr" in line and "x86-cpu-ort" in line
    one_error_line(runner.invoke(app, ["lut", "build", "--target", "x86-cpu-ort", "--backend", "tflite", *TINY,
                                        "--out", str(out)]), 2)
    one_error_line(runner.invoke(app, ["lut", "build", "--target", "x86-cpu-ort", "--backend", "ort",
                                        "--setting", "imagenet", "--out", str(out)]), 2)
    # the shipped table of a target must be measured with the target's own backend
    line = one_error_line(runner.invoke(app, ["lut", "build", "--target", "x86-cpu-ort", "--backend", "torch",
                                               *TINY]), 2)
    assert "--out" in line
    one_error_line(runner.invoke(app, ["lut", "build", "--target", "jetson-orin", "--backend", "trt", *TINY,
                                        "--out", str(out)]), 5)
    assert not out.exists()


def test_mobile_geometry_defaults_to_imagenet_classes() -> None:
    """`--setting mobile` without --num-classes describes the ImageNet mobile network (1000 classes)."""
    from sdnas_deploy.hw.targets import table_geometry

    assert table_geometry("darts", "mobile").num_classes == 1000
    assert table_geometry("darts", "cifar").num_classes == 10
    assert table_geometry("darts", "mobile", num_classes=100).num_classes == 100
    assert table_geometry("fbnet", "imagenet").num_classes == 1000 and table_geometry("fbnet", "small").input_size == 16


def test_build_for_a_cuda_provider_target_exits_5() -> None:
    one_error_line(runner.invoke(app, ["lut", "build", "--target", "x86-cuda-ort", "--backend", "ort", *TINY]), 5)
