"""`sdnas lut measure/fit/validate` end to end on a tiny geometry with a few measured networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sdnas_deploy.cli.lut_cmds import lut_app
from sdnas_deploy.hw.build import build_fingerprint
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, candidate_keys
from sdnas_deploy.hw.lut import LatencyTable, load_table, save_table
from sdnas_deploy.hw.whole import read_measurements_csv, read_measurements_meta

app = typer.Typer()
app.add_typer(lut_app, name="lut")
runner = CliRunner()

TARGET = ["--target", "x86-cpu-ort", "--setting", "cifar"]
TINY = ["--layers", "5", "--channels", "8", "--input-size", "16", "--in-channels", "1"]
GEOM = NetworkGeometry.from_setting("cifar", input_size=16, layers=5, channels=8, in_channels=1)


@pytest.fixture(scope="module")
def csvs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Training (seed 0, 6 networks) and held-out (seed 1, 4 networks) CSVs measured here, repeats 3."""
    folder = tmp_path_factory.mktemp("meas")
    paths = []
    for seed, n in ((0, 6), (1, 4)):
        out = folder / f"seed{seed}.csv"
        result = runner.invoke(app, ["lut", "measure", *TARGET, *TINY, "--n", str(n), "--seed", str(seed),
                                     "--repeats", "3", "--warmup", "1", "--out", str(out), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rows"] == n
        paths.append(out)
    return paths[0], paths[1]


def _flat_base(tmp_path: Path) -> Path:
    """A microbenchmark-style table for the tiny geometry: every key 0.01 ms, overhead 0.05 ms."""
    entries = {k: {"count": 3, "mean": 0.01, "std": 0.0, "p50": 0.01, "p90": 0.01} for k in candidate_keys(GEOM)}
    table = LatencyTable("x86-cpu-ort", build_fingerprint("ort", 1), GEOM, overhead_ms=0.05, entries=entries)
    return save_table(tmp_path / "base.json", table)


def test_measure_writes_provenance(csvs: tuple[Path, Path]) -> None:
    rows = read_measurements_csv(csvs[0])
    meta = read_measurements_meta(csvs[0])
    assert len(rows) == 6 and all(r["latency_ms"] > 0 for r in rows)
    assert meta["target"] == "x86-cpu-ort" and meta["backend"] == "ort" and meta["repeats"] == 3
    assert NetworkGeometry.from_dict(meta["geometry"]) == GEOM


def test_fit_then_validate(csvs: tuple[Path, Path], tmp_path: Path) -> None:
    train, held = csvs
    base = _flat_base(tmp_path)
    fitted = tmp_path / "fitted.json"
    result = runner.invoke(app, ["lut", "fit", *TARGET, "--measurements", str(train), "--base", str(base),
                                 "--out", str(fitted)])
    assert result.exit_code == 0, result.output
    assert "fit error on the training rows" in result.stdout and "wrote" in result.stdout
    table = load_table(fitted)
    assert table.method == "fitted" and table.geometry == GEOM
    assert set(table.entries) == set(candidate_keys(GEOM))  # unseen keys kept from the base
    assert all(e["mean"] >= 0 for e in table.entries.values())

    plot, report = tmp_path / "scatter.png", tmp_path / "report.json"
    ok = runner.invoke(app, ["lut", "validate", *TARGET, "--table", str(fitted), "--measurements", str(held),
                             "--max-error", "100000", "--plot", str(plot), "--report", str(report)])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip().splitlines()[-1] == "PASSED"
    assert plot.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(report.read_text())
    assert data["n"] == 4 and data["status"] == "PASSED" and len(data["rows"]) == 4
    assert 0 < data["mean_abs_pct_error"] and -1 <= data["kendall_tau"] <= 1

    bad = runner.invoke(app, ["lut", "validate", *TARGET, "--table", str(fitted), "--measurements", str(held),
                              "--max-error", "0", "--json"])
    assert bad.exit_code == 4, bad.output
    assert json.loads(bad.stdout)["status"].startswith("FAILED: mean abs error")


def test_fit_without_base_json(csvs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "nobase.json"
    result = runner.invoke(app, ["lut", "fit", *TARGET, "--measurements", str(csvs[0]), "--no-base", "--l2", "1e-4", "--cv", "3",
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 6 and summary["base"] is None and summary["fitted_keys"] == len(load_table(out).entries)
    assert summary["train_error"]["mean_abs_pct_error"] < 5.0  # few rows, many keys: the fit interpolates
    assert 0 < summary["cv_error"]["n"] <= 6  # held-out rows whose keys the other folds saw


def test_bad_input_exits_2(csvs: tuple[Path, Path], tmp_path: Path) -> None:
    base = _flat_base(tmp_path)
    both = runner.invoke(app, ["lut", "validate", *TARGET, "--table", str(base), "--measurements", str(csvs[1]),
                               "--n", "3"])
    assert both.exit_code == 2 and "pass one of them" in both.stderr
    wrong = runner.invoke(app, ["lut", "fit", "--target", "jetson-orin", "--setting", "cifar",
                                "--measurements", str(csvs[0]), "--no-base", "--out", str(tmp_path / "x.json")])
    assert wrong.exit_code == 2 and "--target x86-cpu-ort" in wrong.stderr
    flags = runner.invoke(app, ["lut", "fit", *TARGET, "--measurements", str(csvs[0]), "--layers", "8",
                                "--no-base", "--out", str(tmp_path / "y.json")])
    assert flags.exit_code == 2 and "drop the geometry flags" in flags.stderr
    missing = runner.invoke(app, ["lut", "fit", *TARGET, "--measurements", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
