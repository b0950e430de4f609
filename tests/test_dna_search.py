"""The DNA search end to end on tiny data: files, budgets, exact resume, errors before anything is written,
the architecture it writes trains and exports, and `sdnas run` trains its teacher first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdnas_deploy.cli.main import app
from sdnas_deploy.errors import BadInputError
from sdnas_deploy.nas.config import SearchConfig
from sdnas_deploy.nas.searcher import run_search
from sdnas_deploy.spaces import load_arch, parse_arch
from sdnas_deploy.training.config import TrainConfig
from sdnas_deploy.training.trainer import run_training

from cli_checks import one_error_line

runner = CliRunner()
TEACHER = "fbnet:" + "-".join(["k5_e6"] * 12)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    space, arch = parse_arch(TEACHER)
    run_training(arch, TrainConfig(dataset="digits", setting="small", epochs=1, limit=96, batch_size=16,
                                   device="cpu", seed=0), out, progress=False, space=space)
    return out / "best.safetensors"


def _config(teacher_path: Path | None, **kw) -> SearchConfig:
    base = dict(space="dna", method="dna", teacher=None if teacher_path is None else str(teacher_path), limit=96, epochs=2, batch_size=16, steps_per_epoch=2,
                rate_max=8, rate_batches=1, calib_batches=1, top_k=3, device="cpu", seed=0)
    return SearchConfig(**{**base, **kw})


def test_dna_search_writes_ratings_top_k_and_an_architecture_within_budget(teacher: Path, tmp_path: Path) -> None:
    report = run_search(_config(teacher, flops_budget=4.0), tmp_path, progress=False)
    assert report["status"] == "complete" and report["method"] == "dna" and report["space"] == "dna"
    final = report["final"]
    assert final["flops_budget_met"] is True and final["predicted_mmac"] <= 4.0
    assert len(final["top_k"]) == 3 and [e["score"] for e in final["top_k"]] == sorted(e["score"] for e in final["top_k"])
    assert len(report["epochs"]) == 2 and len(report["epochs"][0]["block_loss"]) == 6
    space, arch = load_arch(tmp_path / "genotype.json", "dna")
    assert space.arch_to_dict(arch) == final["genotype"]
    assert arch.stages is not None and arch.stages[-1].last_width == 176  # the teacher's last stage width
    ratings = json.loads((tmp_path / "ratings.json").read_text())["blocks"]
    assert len(ratings) == 6 and all(r["rated"] == len(r["ratings"]) for r in ratings)
    assert ratings[0]["exhaustive"] and not ratings[1]["exhaustive"]  # 6 paths vs 36 > rate_max
    assert all({"score", "mse", "mmac", "params_m"} <= set(r["ratings"][0]) for r in ratings)
    # the selected architecture's cost is the sum of its layers' costs: the network built from it agrees
    from sdnas_deploy.hw.flops import predict_flops

    geometry = space.geometry("small", input_size=16, in_channels=1, num_classes=10)
    assert predict_flops(space, arch, geometry) == pytest.approx(final["predicted_mmac"], rel=1e-6)
    assert space.traced_keys(arch, geometry) == space.network_keys(arch, geometry)


def test_dna_resume_is_exact(teacher: Path, tmp_path: Path) -> None:
    whole = run_search(_config(teacher), tmp_path / "whole", progress=False)
    run_search(_config(teacher, epochs=1), tmp_path / "split", progress=False)
    resumed = run_search(_config(teacher), tmp_path / "split", resume=True, progress=False)
    assert resumed["epochs"] == whole["epochs"][:0] + resumed["epochs"]  # two epochs recorded
    assert [e["block_loss"] for e in resumed["epochs"]] == [e["block_loss"] for e in whole["epochs"]]
    assert resumed["final"]["top_k"] == whole["final"]["top_k"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"flops_budget": 0.5}, "cheapest one costs"),
    ({"params_budget": 1e-3}, "cheapest one costs"),
    ({"flops_budget": 4.0, "params_budget": 1.0}, "under one budget"),
    ({"stages": [0, 1, 2]}, "pass --stages with 6 point indices"),
    ({"teacher": None}, "needs a teacher"),
    ({"dataset": "fashion-mnist", "image_size": 20}, "takes 16px inputs"),
])
def test_dna_refuses_bad_input_before_writing(teacher: Path, tmp_path: Path, changes: dict, message: str) -> None:
    if changes.get("dataset") == "fashion-mnist" and not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    config = _config(None if "teacher" in changes else teacher, **{k: v for k, v in changes.items() if k != "teacher"})
    with pytest.raises(BadInputError, match=message):
        run_search(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "config.json").exists() and not (tmp_path / "run" / "checkpoint.pt").exists()


def test_dna_refuses_layer_less_spaces() -> None:
    with pytest.raises(BadInputError, match="DNA searches layer-wise"):
        SearchConfig(space="nb201", method="dna")


def test_cli_dna_search_and_the_found_architecture_trains_and_exports(teacher: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    result = runner.invoke(app, ["search", "--method", "dna", "--space", "dna", "--teacher", str(teacher),
                                 "--limit", "96", "--epochs", "1", "--batch-size", "16", "--steps-per-epoch", "2",
                                 "--rate-max", "6", "--params-budget", "0.5", "--top-k", "2", "--device", "cpu",
                                 "--seed", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "top 2:" in result.stdout and "DNA search finished" in result.stdout
    train = tmp_path / "train"
    result = runner.invoke(app, ["train", str(out), "--setting", "small", "--epochs", "1", "--limit", "64",
                                 "--batch-size", "16", "--device", "cpu", "--out", str(train)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(train), "--out", str(tmp_path / "export"), "--verify-images", "32"])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "export" / "model.json").read_text())
    assert sidecar["verified"] is True and sidecar["genotype"]["stages"][-1]["out_width"] == 176


def test_cli_dna_errors_are_one_line(teacher: Path, tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["search", "--method", "dna", "--space", "dna", "--teacher",
                                              str(teacher), "--stages", "1,x", "--out", str(tmp_path / "a")]), 2)
    assert "--stages" in line
    line = one_error_line(runner.invoke(app, ["search", "--method", "dna", "--space", "darts", "--teacher",
                                              str(teacher), "--out", str(tmp_path / "b")]), 2)
    assert "layer-wise" in line
    line = one_error_line(runner.invoke(app, ["search", "--method", "dna", "--space", "dna", "--teacher",
                                              "torchvision:resnet18", "--out", str(tmp_path / "c")]), 2)
    assert "--teacher-weights" in line


def test_sdnas_run_trains_the_teacher_first(tmp_path: Path) -> None:
    recipe = tmp_path / "dna.yaml"
    recipe.write_text(f"""
search: {{space: dna, setting: small, method: dna, dataset: digits, limit: 96, epochs: 1, batch_size: 16,
          steps_per_epoch: 2, rate_max: 6, rate_batches: 1, calib_batches: 1, seed: 0, device: cpu,
          teacher_arch: "{TEACHER}"}}
train: {{dataset: digits, setting: small, epochs: 1, limit: 96, batch_size: 16, device: cpu, seed: 0}}
export: {{format: onnx, verify_images: 32}}
profile: {{backend: ort, device: cpu, batch: 1, warmup_s: 0.1, duration_s: 0.2, threads: 1}}
""")
    result = runner.invoke(app, ["run", "--recipe", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    stages = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert list(stages)[:2] == ["teacher", "search"] and (tmp_path / "run" / "teacher" / "best.safetensors").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace(f'teacher_arch: "{TEACHER}"', "top_k: 2"))
    line = one_error_line(runner.invoke(app, ["run", "--recipe", str(bad), "--out", str(tmp_path / "bad")]), 2)
    assert "teacher_arch" in line and not (tmp_path / "bad" / "recipe.json").exists()


def test_train_distills_from_a_teacher_and_refuses_a_mismatched_one(teacher: Path, tmp_path: Path) -> None:
    space, arch = parse_arch("dna:" + "-".join(["k3_e3_se"] * 10))
    base = dict(dataset="digits", setting="small", epochs=1, limit=48, batch_size=16, device="cpu", seed=0)
    plain = run_training(arch, TrainConfig(**base), tmp_path / "plain", progress=False, space=space)
    kd = run_training(arch, TrainConfig(**base, teacher=str(teacher), kd_weight=0.7), tmp_path / "kd", progress=False,
                      space=space)
    assert kd["config"]["teacher"] == str(teacher)
    assert kd["history"][0]["train_loss"] != pytest.approx(plain["history"][0]["train_loss"])
    with pytest.raises(BadInputError, match="use a teacher trained on this dataset at this size"):
        run_training(arch, TrainConfig(**{**base, "image_size": 20, "dataset": "fashion-mnist"}, teacher=str(teacher)),
                     tmp_path / "bad", progress=False, space=space)
    from sdnas_deploy.training.config import validate

    with pytest.raises(BadInputError, match="kd_weight"):
        validate(TrainConfig(kd_weight=1.5))


def test_latency_budget_through_the_targets_table(tmp_path: Path) -> None:
    """A teacher whose stages are the setting's (a dna/small network) → the student's keys are the setting's, so a
    table of dna/small measured here prices every path; a teacher that changes widths needs keys it lacks."""
    from sdnas_deploy.hw.build import build_table

    space, arch = parse_arch("dna:" + "-".join(["k5_e3_se"] * 10))
    run_training(arch, TrainConfig(dataset="digits", setting="small", epochs=1, limit=48, batch_size=16, device="cpu",
                                   seed=0), tmp_path / "teacher", progress=False, space=space)
    geometry = space.geometry("small", input_size=16, in_channels=1, num_classes=10)
    table = tmp_path / "dna_small.json"
    build_table("my-cpu", geometry, repeats=2, warmup=0, out_path=table, progress=False, space="dna")
    from sdnas_deploy.hw.lut import load_table, predict_latency

    loaded = load_table(table)
    cheapest = min(predict_latency(loaded, space.arch_from_string("-".join([b] * 10))) for b in space.candidates)
    budget = cheapest * 1.5
    report = run_search(_config(tmp_path / "teacher", lut=str(table), latency_budget=budget), tmp_path / "run",
                        progress=False)
    final = report["final"]
    assert report["budget"]["metric"] == "latency_ms" and final["latency_budget_met"] is True
    _, found = load_arch(tmp_path / "run" / "genotype.json", "dna")
    assert found.stages is None and predict_latency(loaded, found) == pytest.approx(final["predicted_latency_ms"])
    with pytest.raises(BadInputError, match="cheapest one costs"):
        run_search(_config(tmp_path / "teacher", lut=str(table), latency_budget=cheapest / 10), tmp_path / "low",
                   progress=False)


def test_latency_budget_with_a_table_lacking_the_students_keys(teacher: Path, tmp_path: Path) -> None:
    from sdnas_deploy.hw.build import build_table

    space = parse_arch("dna:" + "-".join(["k5_e3_se"] * 10))[0]
    table = tmp_path / "dna_small.json"
    build_table("my-cpu", space.geometry("small", input_size=16, in_channels=1, num_classes=10), repeats=1, warmup=0,
                out_path=table, progress=False, space="dna")
    with pytest.raises(BadInputError, match="sdnas lut build"):
        run_search(_config(teacher, lut=str(table), latency_budget=5.0), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


def test_torchvision_teacher_with_stages_chosen_by_hand(tmp_path: Path) -> None:
    """A torchvision MobileNetV2 (RGB, ImageNet-style strides) teaching the grey 16 px digits student: its automatic
    cut asks block 1 to downsample by 4 (one line naming --stages); the points chosen by hand work."""
    import torch
    import torchvision

    weights = tmp_path / "mnv2.pth"
    torch.save(torchvision.models.get_model("mobilenet_v2", weights=None, num_classes=10).state_dict(), weights)
    spec = dict(teacher="torchvision:mobilenet_v2", teacher_weights=str(weights))
    with pytest.raises(BadInputError, match="changes resolution by 1 or 2 at most; pass --stages"):
        run_search(_config(None, **spec), tmp_path / "auto", progress=False)
    report = run_search(_config(None, **spec, stages=[1, 3, 6, 10, 13, 17], epochs=1), tmp_path / "hand",
                        progress=False)
    assert [b["end"] for b in report["teacher"]["blocks"]] == [1, 3, 6, 10, 13, 17]
    assert report["student_stages"][-1]["out_width"] == 320 and report["status"] == "complete"
