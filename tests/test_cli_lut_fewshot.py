"""The few-shot workflow from the README on public data: a wide CSV of 10 networks → `lut fit --prior auto` for a
device that is not registered → `lut validate --json` with ρ/τ/MAPE/±10% at the top level; and its bad inputs."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sdnas_deploy.cli.lut_cmds import lut_app
from sdnas_deploy.hw.lut import load_table
from sdnas_deploy.resources import data_dir

app = typer.Typer()
app.add_typer(lut_app, name="lut")
runner = CliRunner()
SOURCE = data_dir("latency_tables") / "public" / "help_nb201_latency_ms.csv.gz"


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(10 rows, 300 other rows) of the public NB201 CSV, every device column kept."""
    with gzip.open(SOURCE, "rt", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    folder = tmp_path_factory.mktemp("wide")
    paths = []
    for name, part in (("ten.csv", body[100:1100:100]), ("held.csv", body[2000:2300])):
        with open(folder / name, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *part])
        paths.append(folder / name)
    return paths[0], paths[1]


def test_five_commands_of_the_few_shot_workflow(wide: tuple[Path, Path], tmp_path: Path) -> None:
    ten, held = wide
    out = tmp_path / "my_device.json"
    fit = runner.invoke(app, ["lut", "fit", "--space", "nb201", "--measurements", str(ten), "--column", "pixel2",
                              "--target", "my-phone", "--prior", "auto", "--out", str(out), "--json"])
    assert fit.exit_code == 0, fit.output
    summary = json.loads(fit.stdout)
    assert summary["method"] == "transfer" and summary["rows"] == 10 and summary["setting"] == "cifar"
    assert "pixel2" in summary["priors"]  # a new device may lean on every shipped table
    table = load_table(out)
    assert table.target == "my-phone" and table.space == "nb201" and table.method == "fitted"
    check = runner.invoke(app, ["lut", "validate", "--table", str(out), "--measurements", str(held),
                                "--column", "pixel2", "--max-error", "100", "--json"])
    assert check.exit_code == 0, check.output
    report = json.loads(check.stdout)
    for name in ("spearman", "kendall_tau", "mape", "within_10pct"):
        assert isinstance(report[name], float), name
    assert report["n"] == 300 and report["spearman"] > 0.8 and report["status"] == "PASSED"


@pytest.mark.parametrize("args,needle", [
    (["--column", "pixel3"], "no column 'pixel3'"),
    (["--column", "pixel2", "--prior", "fpga,nope"], "unknown target 'nope'"),
    (["--column", "pixel2", "--prior", "auto", "--num-classes", "10"], "no shipped table"),
    (["--column", "pixel2", "--prior", "auto", "--no-base"], "--prior replaces"),
    (["--column", "pixel2", "--space", "fbnet", "--prior", "auto"], "an architecture of space 'nb201', not 'fbnet'"),
])
def test_bad_fit_inputs_are_one_line(wide: tuple[Path, Path], tmp_path: Path, args: list[str], needle: str) -> None:
    ten, _ = wide
    cmd = ["lut", "fit", "--measurements", str(ten), "--out", str(tmp_path / "t.json")]
    if "--space" not in args:
        cmd += ["--space", "nb201"]
    result = runner.invoke(app, cmd + args)
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "t.json").exists()


def test_duplicated_and_bad_rows_are_refused(wide: tuple[Path, Path], tmp_path: Path) -> None:
    ten, _ = wide
    lines = ten.read_text().splitlines()
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join(lines + [lines[1]]) + "\n")
    result = runner.invoke(app, ["lut", "fit", "--space", "nb201", "--measurements", str(dup), "--column", "fpga",
                                 "--prior", "auto", "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 2 and "already measured on line 2" in result.output
    nan = tmp_path / "nan.csv"
    header = lines[0].split(",")
    row = next(csv.reader([lines[1]]))
    row[header.index("fpga")] = "nan"
    with open(nan, "w", newline="") as handle:
        csv.writer(handle).writerows([header, row])
    result = runner.invoke(app, ["lut", "fit", "--space", "nb201", "--measurements", str(nan), "--column", "fpga",
                                 "--prior", "auto", "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 2 and "positive finite" in result.output


def test_list_shows_where_public_tables_come_from() -> None:
    result = runner.invoke(app, ["lut", "list", "--json"])
    assert result.exit_code == 0
    rows = {r["target"]: r for r in json.loads(result.stdout)}
    info = rows["raspi4"]["tables"]["fbnet/cifar fitted"]
    assert rows["raspi4"]["origin"] == "public" and "HELP" in info["source"]
    assert info["fit_networks"] == 4000 and info["validation"]["n"] == 1000 and "layer" in info["note"]
    assert info["geometry"] == {"setting": "cifar", "input_size": 32, "in_channels": 3, "num_classes": 100}
    text = runner.invoke(app, ["lut", "list"]).stdout
    assert "Spearman" in text and "jetson-orin" in text and "--prior auto" in text
