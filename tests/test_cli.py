"""The CLI's contract for bad input: one `error:` line on stderr, documented exit codes, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sdnas_deploy.cli.main import app
from sdnas_deploy.spaces.darts.genotype import REFERENCE_GENOTYPES
from cli_checks import one_error_line

runner = CliRunner()



def test_help_and_version() -> None:
    assert runner.invoke(app, ["--help"]).exit_code == 0
    for command in ("search", "train", "inspect", "export", "profile", "check", "run"):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("sdnas ")


def test_unknown_recipe_key_is_rejected(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("search:\n  epochz: 3\n")
    line = one_error_line(runner.invoke(app, ["search", "--recipe", str(recipe), "--out", str(tmp_path / "o")]), 2)
    assert "epochz" in line and "epochs" in line
    assert not (tmp_path / "o" / "report.json").exists()


def test_unknown_recipe_section_is_rejected(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("serch:\n  epochs: 3\n")
    line = one_error_line(runner.invoke(app, ["run", "--recipe", str(recipe), "--out", str(tmp_path / "o")]), 2)
    assert "serch" in line and "search" in line


def test_missing_recipe_names_the_shipped_ones(tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["run", "--recipe", "nope", "--out", str(tmp_path)]), 2)
    assert "default" in line


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda g: g["normal"].__setitem__(0, ["sep_conv_4x4", 0]), "sep_conv_4x4"),
        (lambda g: g["normal"].__setitem__(0, ["sep_conv_3x3", 7]), "7"),
        (lambda g: g.pop("reduce"), "reduce"),
    ],
)
def test_malformed_genotype_is_rejected(tmp_path: Path, mutate, needle: str) -> None:
    data = REFERENCE_GENOTYPES["darts_v2"].to_dict()
    mutate(data)
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    line = one_error_line(runner.invoke(app, ["inspect", str(path)]), 2)
    assert needle in line


def test_genotype_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "genotype.json"
    path.write_text("{not json")
    one_error_line(runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "o")]), 2)


def test_corrupt_weights_and_models(tmp_path: Path) -> None:
    weights = tmp_path / "best.safetensors"
    weights.write_bytes(b"\x00garbage")
    one_error_line(runner.invoke(app, ["export", str(weights), "--out", str(tmp_path / "e")]), 2)
    assert not (tmp_path / "e" / "model.onnx").exists()
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not an onnx model")
    one_error_line(runner.invoke(app, ["profile", str(onnx)]), 2)
    one_error_line(runner.invoke(app, ["check", str(onnx), "--max-latency-ms", "5"]), 2)
    one_error_line(runner.invoke(app, ["profile", str(tmp_path / "missing.onnx")]), 2)


def test_corrupt_checkpoint_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"layers": 3, "channels": 4, "limit": 64, "epochs": 1, "device": "cpu"}))
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    line = one_error_line(runner.invoke(app, ["search", "--out", str(run), "--resume"]), 2)
    assert "checkpoint" in line


def test_check_needs_a_gate(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    line = one_error_line(runner.invoke(app, ["check", str(onnx), "--dataset", "digits"]), 2)
    assert "gate" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_on_a_machine_without_gpu_exits_5(tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["search", "--device", "cuda", "--out", str(tmp_path)]), 5)
    assert "CUDA" in line


def test_inspect_reference_genotype_mobile_counts_and_budget_warning() -> None:
    result = runner.invoke(app, ["inspect", "darts_v2", "--setting", "mobile", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert 4.5e6 < info["params"] < 4.9e6 and info["macs"] < 600e6 and not info["warnings"]
    big = runner.invoke(app, ["inspect", "darts_v2", "--setting", "mobile", "--channels", "64"])
    assert big.exit_code == 0 and "600" in big.stderr


def test_unknown_dataset_suggests_the_closest(tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["search", "--dataset", "digit", "--out", str(tmp_path), "--epochs", "1"]), 2)
    assert "digits" in line
