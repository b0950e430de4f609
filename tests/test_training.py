"""Retraining: reference recipes, schedules, an end-to-end tiny run, exact resume, NaN handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sdnas_deploy.checkpoint import load_checkpoint
from sdnas_deploy.config_utils import from_mapping
from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.settings import SETTINGS, build_network
from sdnas_deploy.spaces.darts.genotype import REFERENCE_GENOTYPES, load_genotype
from sdnas_deploy.training import TrainConfig, load_network, load_train_config, resolve, run_training
from sdnas_deploy.training.schedule import drop_path_at, make_scheduler
from sdnas_deploy.training.trainer import _correct_topk

GENOTYPE = REFERENCE_GENOTYPES["darts_v2"]
FILES = ("best.safetensors", "last.safetensors", "checkpoint.pt", "config.json", "genotype.json", "report.json")


def tiny(**changes: object) -> TrainConfig:
    """A run that takes a second or two on one CPU core."""
    base = dict(dataset="digits", limit=128, layers=3, channels=4, epochs=2, batch_size=32, steps_per_epoch=2,
                eval_batch_size=64, device="cpu", lr=0.05, seed=1)
    base.update(changes)
    return TrainConfig(**base)  # type: ignore[arg-type]


# --- config ----------------------------------------------------------------------------------------


def test_resolve_cifar_reference() -> None:
    c = resolve(TrainConfig(setting="cifar"))
    assert (c.epochs, c.batch_size, c.lr, c.lr_schedule, c.weight_decay) == (600, 96, 0.025, "cosine", 3e-4)
    assert (c.cutout, c.label_smoothing, c.lr_decay) == (16, 0.0, None)
    assert (c.layers, c.channels) == (SETTINGS["cifar"].layers, SETTINGS["cifar"].channels) == (20, 36)
    assert (c.auxiliary, c.auxiliary_weight, c.drop_path_prob, c.grad_clip, c.momentum) == (True, 0.4, 0.2, 5.0, 0.9)


def test_resolve_mobile_reference() -> None:
    c = resolve(TrainConfig(setting="mobile"))
    assert (c.epochs, c.batch_size, c.lr, c.lr_schedule, c.lr_decay) == (250, 128, 0.1, "exp", 0.97)
    assert (c.weight_decay, c.label_smoothing, c.cutout) == (3e-5, 0.1, 0)
    assert (c.layers, c.channels) == (14, 48)


def test_resolve_keeps_explicit_values_and_is_idempotent() -> None:
    c = resolve(TrainConfig(setting="cifar", epochs=3, lr_schedule="exp", cutout=0, channels=8))
    assert (c.epochs, c.lr_schedule, c.lr_decay, c.cutout, c.channels, c.layers) == (3, "exp", 0.97, 0, 8, 20)
    assert resolve(c) == c


@pytest.mark.parametrize("field, value", [("lr", -0.1), ("epochs", 0), ("drop_path_prob", 1.0), ("lr_decay", 1.5),
                                          ("label_smoothing", 1.0), ("grad_clip", -1.0)])
def test_resolve_rejects_impossible_values(field: str, value: object) -> None:
    with pytest.raises(BadInputError, match=field):
        resolve(TrainConfig(**{field: value}))  # type: ignore[arg-type]


def test_load_train_config_reads_train_section(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("search:\n  epochs: 7\n  whatever: 1\ntrain:\n  setting: mobile\n  epochs: 3\n  lr: 1\n  batch-size: 8\n")
    c = load_train_config(recipe)
    assert (c.setting, c.epochs, c.lr, c.batch_size) == ("mobile", 3, 1.0, 8)
    assert c.weight_decay is None  # left for resolve()
    recipe.write_text("train:\n  epochz: 3\n")
    with pytest.raises(BadInputError, match="epochz.*did you mean 'epochs'"):
        load_train_config(recipe)
    recipe.write_text("train:\n  setting: desktop\n")
    with pytest.raises(BadInputError, match="setting"):
        load_train_config(recipe)
    recipe.write_text("search:\n  epochs: 1\n")
    assert load_train_config(recipe) == TrainConfig()


# --- schedules and metrics ---------------------------------------------------------------------


def _lrs(config: TrainConfig) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    sched = make_scheduler(opt, config)
    out = []
    for _ in range(config.epochs or 0):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_lr_schedules_follow_the_reference() -> None:
    cosine = _lrs(resolve(TrainConfig(setting="cifar", epochs=4)))
    assert cosine == pytest.approx([0.025, 0.025 * (1 + 2**-0.5) / 2, 0.0125, 0.025 * (1 - 2**-0.5) / 2])
    exp = _lrs(resolve(TrainConfig(setting="mobile", epochs=3)))
    assert exp == pytest.approx([0.1, 0.097, 0.1 * 0.97**2])


def test_drop_path_ramps_linearly() -> None:
    c = resolve(TrainConfig(epochs=4, drop_path_prob=0.2))
    assert [drop_path_at(e, c) for e in range(4)] == pytest.approx([0.0, 0.05, 0.1, 0.15])


def test_correct_topk() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 0])
    assert _correct_topk(logits, labels, (1, 2, 3)) == [1, 1, 3]


# --- end to end ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("straight")
    return out, run_training(GENOTYPE, tiny(), out, progress=False)


def test_run_writes_all_files_with_valid_content(straight_run: tuple[Path, dict]) -> None:
    out, report = straight_run
    for name in FILES:
        assert (out / name).is_file(), name
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert report["status"] == "finished" and report["epochs_done"] == 2
    assert [r["epoch"] for r in report["history"]] == [1, 2]
    for record in report["history"]:
        assert record["train_loss"] > 0 and 0 <= record["train_top1"] <= 1
        assert 0 <= record["test_top1"] <= record["test_top5"] <= 1
        assert record["time_s"] > 0
    assert report["history"][0]["lr"] == 0.05 and report["history"][1]["lr"] == pytest.approx(0.025)
    assert report["history"][1]["drop_path_prob"] == pytest.approx(0.1)
    final = report["final"]
    best = max(report["history"], key=lambda r: r["test_top1"])
    assert final["best_top1"] == best["test_top1"] and final["best_epoch"] in (1, 2)
    assert final["last_top1"] == report["history"][-1]["test_top1"]
    assert final["params"] > 0 and final["macs"] > final["params"]
    config = from_mapping(TrainConfig, json.loads((out / "config.json").read_text()), "config.json")
    assert config == resolve(tiny())
    assert load_genotype(out / "genotype.json") == GENOTYPE
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 2 and len(state["history"]) == 2


def test_saved_weights_reproduce_the_reported_accuracy(straight_run: tuple[Path, dict]) -> None:
    from sdnas_deploy.data import load_arrays

    out, report = straight_run
    model, meta = load_network(out / "last.safetensors")
    assert (meta.epoch, meta.layers, meta.channels, meta.image_size, meta.num_classes) == (2, 3, 4, 16, 10)
    assert meta.test_top1 == report["final"]["last_top1"]
    x, y = load_arrays("digits", "test", limit=128)
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1)
    assert (pred == torch.from_numpy(y)).float().mean().item() == pytest.approx(meta.test_top1)
    _, best_meta = load_network(out / "best.safetensors")
    assert best_meta.epoch == report["final"]["best_epoch"] and best_meta.test_top1 == report["final"]["best_top1"]


def test_resume_continues_exactly(straight_run: tuple[Path, dict], tmp_path: Path) -> None:
    out, report = straight_run
    first = run_training(GENOTYPE, tiny(), tmp_path, progress=False, stop_after=1)
    assert first["status"] == "running" and first["epochs_done"] == 1
    resumed = run_training(GENOTYPE, tiny(), tmp_path, resume=True, progress=False)
    straight, split = load_file(str(out / "last.safetensors")), load_file(str(tmp_path / "last.safetensors"))
    assert set(straight) == set(split)
    for name in straight:
        assert torch.equal(straight[name], split[name]), name
    strip = lambda rs: [{k: v for k, v in r.items() if k != "time_s"} for r in rs]  # noqa: E731
    assert strip(resumed["history"]) == strip(report["history"])
    again = run_training(GENOTYPE, tiny(), tmp_path, resume=True, progress=False)  # finished: nothing to do
    assert strip(again["history"]) == strip(report["history"])


def test_existing_run_needs_resume_and_same_config(straight_run: tuple[Path, dict]) -> None:
    out, _ = straight_run
    with pytest.raises(BadInputError, match="--resume"):
        run_training(GENOTYPE, tiny(), out, progress=False)
    with pytest.raises(BadInputError, match="lr=0.1"):
        run_training(GENOTYPE, tiny(lr=0.1), out, resume=True, progress=False)
    other = REFERENCE_GENOTYPES["darts_v1"]
    with pytest.raises(BadInputError, match="different genotype"):
        run_training(other, tiny(), out, resume=True, progress=False)


def test_non_finite_loss_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"epoch 1, step \d+; lower --lr") as err:
        run_training(GENOTYPE, tiny(lr=1e30, grad_clip=0.0, epochs=1, steps_per_epoch=3), tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "last.safetensors").exists()
    assert (tmp_path / "config.json").is_file()


def test_mobile_setting_builds_and_trains_small(tmp_path: Path) -> None:
    net = build_network(GENOTYPE, "mobile", 10, in_channels=3, layers=2, channels=8, auxiliary=True)
    net.train()
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    report = run_training(GENOTYPE, tiny(setting="mobile", layers=2, channels=8, epochs=1, steps_per_epoch=1), tmp_path,
                          progress=False)
    assert report["config"]["lr_schedule"] == "exp" and report["config"]["label_smoothing"] == 0.1
    model, meta = load_network(tmp_path / "best.safetensors")
    assert meta.setting == "mobile"
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 10)
