"""`sdnas run` end to end on a tiny recipe, then the deploy commands on its artifacts (CLI level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sdnas_deploy.cli.main import app
from sdnas_deploy.recipes import load_recipe
from sdnas_deploy.resources import resolve_data_file

TINY_RECIPE = {
    "search": {"dataset": "digits", "limit": 128, "layers": 3, "channels": 4, "epochs": 2, "batch_size": 32,
               "steps_per_epoch": 2, "teachers": 2, "teacher_interval": 1, "distill_warmup_epochs": 0, "device": "cpu"},
    "train": {"dataset": "digits", "limit": 256, "layers": 3, "channels": 8, "epochs": 2, "batch_size": 32,
              "steps_per_epoch": 4, "cutout": 4, "device": "cpu"},
    "export": {"verify_images": 64},
    "profile": {"warmup_s": 0.1, "duration_s": 0.3},
    "check": {"dataset": "digits", "limit": 64, "min_accuracy": 0.0, "max_latency_ms": 10000,
              "duration_s": 0.3, "warmup_s": 0.1},
}

runner = CliRunner()


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny `sdnas run`; the tests below read what it wrote."""
    root = tmp_path_factory.mktemp("pipeline")
    recipe = root / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY_RECIPE))
    result = runner.invoke(app, ["run", "--recipe", str(recipe), "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    assert "check" in result.stdout and "PASSED" in result.stdout
    return root / "run"


def test_run_writes_every_stage(pipeline_run: Path) -> None:
    for rel in ("recipe.json", "search/genotype.json", "search/report.json", "train/best.safetensors",
                "train/report.json", "export/model.onnx", "export/model.json", "profile.json", "check.json", "report.json"):
        assert (pipeline_run / rel).is_file(), rel
    assert not list(pipeline_run.rglob("*.onnx.data"))  # one self-contained ONNX file
    summary = json.loads((pipeline_run / "report.json").read_text())
    assert summary["export"]["verified"] is True and summary["export"]["max_abs_diff"] < 1e-4
    assert summary["check"]["passed"] is True
    assert 0.0 <= summary["train"]["best_top1"] <= 1.0
    assert summary["profile"]["median"] > 0 and summary["profile"]["throughput"] > 0


def test_run_resume_skips_finished_stages(pipeline_run: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY_RECIPE))
    before = (pipeline_run / "train" / "best.safetensors").read_bytes()
    stamps = {rel: (pipeline_run / rel).stat().st_mtime_ns for rel in ("export/model.onnx", "profile.json", "check.json")}
    result = runner.invoke(app, ["run", "--recipe", str(recipe), "--out", str(pipeline_run), "--resume", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["check"]["passed"] is True
    for stage in ("search", "train", "export", "profile", "check"):
        assert f"== {stage} == finished earlier" in result.stderr, stage
    assert {rel: (pipeline_run / rel).stat().st_mtime_ns for rel in stamps} == stamps, "nothing was redone"
    stages = json.loads((pipeline_run / "stages.json").read_text())
    assert set(stages) == {"search", "train", "export", "profile", "check"}
    # a changed profile section re-runs profile and every stage after it, nothing before it
    changed = {**TINY_RECIPE, "profile": {"warmup_s": 0.1, "duration_s": 0.2}}
    recipe.write_text(yaml.safe_dump(changed))
    again = runner.invoke(app, ["run", "--recipe", str(recipe), "--out", str(pipeline_run), "--resume", "--json"])
    assert again.exit_code == 0, again.output
    assert "== export == finished earlier" in again.stderr and "== profile == finished earlier" not in again.stderr
    assert "== check == finished earlier" not in again.stderr
    assert (pipeline_run / "export/model.onnx").stat().st_mtime_ns == stamps["export/model.onnx"]
    assert (pipeline_run / "train" / "best.safetensors").read_bytes() == before


def test_export_command_from_run_dir(pipeline_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(pipeline_run), "--out", str(tmp_path), "--verify-images", "32", "--json"])
    assert result.exit_code == 0, result.output
    sidecar = json.loads(result.stdout)
    assert sidecar["verified"] and sidecar["input"]["shape"] == [1, 1, 16, 16]
    assert sidecar["verification"]["n_images"] == 32 and (tmp_path / "model.onnx").is_file()


def test_export_trt_without_tensorrt_exits_5(pipeline_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(pipeline_run), "--format", "tensorrt", "--out", str(tmp_path)])
    assert result.exit_code == 5
    assert "TensorRT" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_profile_command_json_and_report(pipeline_run: Path, tmp_path: Path) -> None:
    onnx = pipeline_run / "export" / "model.onnx"
    report = tmp_path / "p.json"
    result = runner.invoke(app, ["profile", str(onnx), "--iterations", "20", "--warmup-s", "0.05", "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["iterations"] == 20 and data["stats"]["min"] <= data["stats"]["median"] <= data["stats"]["p99"]
    assert json.loads(report.read_text())["stats"] == data["stats"]
    human = runner.invoke(app, ["profile", str(onnx), "--iterations", "10", "--warmup-s", "0.05"])
    assert human.exit_code == 0 and "timed:" in human.stdout and "p90" in human.stdout


def test_check_passes_and_fails_with_exit_codes(pipeline_run: Path) -> None:
    onnx = str(pipeline_run / "export" / "model.onnx")
    ok = runner.invoke(app, ["check", onnx, "--min-accuracy", "0.0", "--max-latency-ms", "10000", "--duration-s", "0.2", "--limit", "32"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip().splitlines()[-1] == "PASSED"
    bad = runner.invoke(app, ["check", onnx, "--max-latency-ms", "0.000001", "--duration-s", "0.2"])
    assert bad.exit_code == 4
    assert bad.stdout.strip().splitlines()[-1].startswith("FAILED")


def test_check_with_shipped_gate_profile_uses_its_dataset(pipeline_run: Path) -> None:
    onnx = str(pipeline_run / "export" / "model.onnx")
    result = runner.invoke(app, ["check", onnx, "--gates", "default", "--min-accuracy", "0.0", "--duration-s", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["gates"]["dataset"] == "digits" and report["accuracy"]["n"] == 360
    assert result.stderr.strip().splitlines()[-1] == "PASSED"  # status line stays off stdout with --json


def test_train_and_inspect_commands_on_the_searched_genotype(pipeline_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(pipeline_run), "--out", str(tmp_path / "t"), "--layers", "3", "--channels", "4",
                                 "--epochs", "1", "--limit", "64", "--steps-per-epoch", "1", "--batch-size", "32", "--cutout", "0",
                                 "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t" / "best.safetensors").is_file()
    info = runner.invoke(app, ["inspect", str(pipeline_run), "--setting", "cifar", "--layers", "8", "--channels", "16", "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["params"] > 0


def test_shipped_default_recipe_parses_every_section() -> None:
    recipe = load_recipe(resolve_data_file("search", "default"))
    assert recipe.search.method == "sd-darts" and recipe.train.setting == "cifar"
    assert recipe.export.format == "onnx" and recipe.check is not None and recipe.check.min_accuracy > 0.5
