"""The CLI with several spaces: bad architectures, tables and recipes of the wrong space are one line, exit 2,
and nothing is written; `sdnas inspect` works for every space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdnas_deploy.cli.main import app
from sdnas_deploy.hw.targets import resolve_table

from cli_checks import one_error_line

runner = CliRunner()


@pytest.mark.parametrize(("arch", "message"), [
    ({"space": "fbnet", "setting": "small", "blocks": ["k3_e1"] * 5}, "12 searchable layers"),
    ({"space": "proxyless", "setting": "small", "blocks": ["zero"] * 9}, "not allowed there"),
    ({"space": "fbnet", "blocks": ["k3_e9"] * 22}, "unknown block"),
    ({"space": "fbnt", "blocks": ["k3_e1"] * 22}, "did you mean 'fbnet'"),
])
def test_train_refuses_a_bad_architecture_before_writing(tmp_path: Path, arch: dict, message: str) -> None:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    out = tmp_path / "run"
    line = one_error_line(runner.invoke(app, ["train", str(path), "--setting", "small", "--out", str(out),
                                              "--epochs", "1"]), 2)
    assert message in line
    assert not (out / "checkpoint.pt").exists() and not (out / "best.safetensors").exists()


def test_train_setting_of_another_space_is_refused(tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["train", "fbnet_b", "--setting", "mobile", "--out", str(tmp_path / "r")]), 2)
    assert "space 'fbnet' has no setting 'mobile'" in line


def test_search_refuses_unknown_space_method_and_a_table_of_another_space(tmp_path: Path) -> None:
    assert "did you mean 'proxyless'" in one_error_line(
        runner.invoke(app, ["search", "--space", "proxyles", "--out", str(tmp_path / "a")]), 2)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("search:\n  method: enas\n")
    assert "unknown search method 'enas'" in one_error_line(
        runner.invoke(app, ["search", "--recipe", str(recipe), "--out", str(tmp_path / "b")]), 2)
    darts_table = str(resolve_table("x86-cpu-ort", "cifar", space="darts"))
    line = one_error_line(runner.invoke(app, ["search", "--space", "fbnet", "--lut", darts_table, "--latency-budget", "1",
                                              "--epochs", "1", "--out", str(tmp_path / "c")]), 2)
    assert "space 'darts', not 'fbnet'" in line
    assert not (tmp_path / "c" / "checkpoint.pt").exists()
    assert "--layers/--channels apply to the darts space" in one_error_line(
        runner.invoke(app, ["search", "--space", "fbnet", "--layers", "5", "--out", str(tmp_path / "d")]), 2)


@pytest.mark.parametrize(("arch", "setting", "space"), [("darts_v2", "cifar", "darts"), ("fbnet_c", "imagenet", "fbnet")])
def test_inspect_every_space(arch: str, setting: str, space: str) -> None:
    result = runner.invoke(app, ["inspect", arch, "--setting", setting, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["space"] == space and info["macs_m"] > 0 and info["setting"] == setting


def test_lut_measure_and_fit_for_an_mbconv_space(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    result = runner.invoke(app, ["lut", "measure", "--target", "x86-cpu-ort", "--space", "proxyless", "--setting", "small",
                                 "--in-channels", "1", "--n", "4", "--repeats", "3", "--warmup", "1", "--out", str(csv),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert "# space=proxyless" in csv.read_text()
    fitted = tmp_path / "fitted.json"
    fit = runner.invoke(app, ["lut", "fit", "--target", "x86-cpu-ort", "--space", "proxyless", "--setting", "small",
                              "--in-channels", "1", "--measurements", str(csv), "--out", str(fitted), "--json"])
    assert fit.exit_code == 0, fit.output
    assert json.loads(fitted.read_text())["space"] == "proxyless"
    wrong = runner.invoke(app, ["lut", "fit", "--target", "x86-cpu-ort", "--space", "fbnet", "--setting", "small",
                                "--measurements", str(csv), "--out", str(tmp_path / "x.json")])
    assert "measurements of space 'proxyless', not 'fbnet'" in one_error_line(wrong, 2)
    assert not (tmp_path / "x.json").exists()
