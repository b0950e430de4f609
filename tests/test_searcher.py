"""The search loop end to end on tiny configs: files, report, resume == uninterrupted, NaN, recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sdnas_deploy.checkpoint import load_checkpoint
from sdnas_deploy.errors import BadInputError
from sdnas_deploy.nas import searcher
from sdnas_deploy.nas.config import SearchConfig, load_search_config
from sdnas_deploy.nas.searcher import run_search
from sdnas_deploy.resources import data_dir
from sdnas_deploy.spaces.darts import PRIMITIVES, load_genotype

RUN_FILES = ("config.json", "genotype.json", "alpha_history.json", "report.json", "checkpoint.pt")


def _tiny(**changes: object) -> SearchConfig:
    """3 cells x 4 channels, 128 digits (64 per half), 2 steps of 32 per epoch."""
    base = dict(layers=3, channels=4, limit=128, epochs=2, batch_size=32, steps_per_epoch=2, device="cpu",
                teachers=2, teacher_interval=1, distill_warmup_epochs=0)
    base.update(changes)
    return SearchConfig(**base)  # type: ignore[arg-type]


def _interrupt_at_epoch(monkeypatch: pytest.MonkeyPatch, epoch_index: int) -> None:
    """Simulate Ctrl-C at the start of epoch ``epoch_index`` (0-based)."""
    original = searcher.SearchRun.train_epoch

    def train_epoch(self: searcher.SearchRun, epoch: int) -> dict:
        if epoch == epoch_index:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(searcher.SearchRun, "train_epoch", train_epoch)


def test_sd_search_end_to_end_writes_valid_run(tmp_path: Path) -> None:
    config = _tiny(sharpness=True, sharpness_iters=2, sharpness_batches=1, sharpness_every=5, vote="hard",
                   distill_arch=True)
    report = run_search(config, tmp_path, progress=False)
    assert report["epochs"][0]["dominant_eigenvalue"] is None  # not due (every 5), but always at the last epoch
    for name in RUN_FILES:
        assert (tmp_path / name).is_file(), name
    for name in ("config.json", "report.json", "alpha_history.json"):
        json.loads((tmp_path / name).read_text())  # standard JSON (no NaN)
    genotype = load_genotype(tmp_path / "genotype.json")
    assert {"space": "darts", **genotype.to_dict()} == report["final"]["genotype"]
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "complete"
    assert [e["epoch"] for e in report["epochs"]] == [1, 2]
    final = report["final"]
    assert final["skip_count_normal"] == sum(op == "skip_connect" for op, _ in genotype.normal)
    assert 0.0 <= final["supernet_val_acc"] <= 1.0 and 0.0 <= final["discretized_val_acc"] <= 1.0
    assert final["gap"] == pytest.approx(final["supernet_val_acc"] - final["discretized_val_acc"])
    assert isinstance(final["dominant_eigenvalue"], float)
    timing = report["timing"]
    # teacher 1 is taken after step 1, so steps 2..4 distill; step 1 is plain
    assert timing["steps_plain"] == 1 and timing["steps_distill"] == 3
    assert timing["mean_step_ms_distill"] > 0 and timing["teacher_ms"] > 0
    assert report["epochs"][1]["teachers"] == 2 and report["epochs"][1]["distilled_steps"] == 2
    history = json.loads((tmp_path / "alpha_history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    rows = torch.tensor(history[-1]["normal"])
    assert rows.shape == (14, len(PRIMITIVES)) and torch.allclose(rows.sum(dim=1), torch.ones(14))
    assert json.loads((tmp_path / "config.json").read_text())["vote"] == "hard"


def test_plain_darts_has_no_teachers(tmp_path: Path) -> None:
    report = run_search(_tiny(distill="none", epochs=1), tmp_path, progress=False)
    assert report["timing"]["mean_step_ms_distill"] is None and report["timing"]["mean_step_ms_plain"] > 0
    assert report["epochs"][0]["teachers"] == 0 and report["epochs"][0]["distilled_steps"] == 0
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert "teachers" not in state and "architect" in state and report["method"] == "darts"
    assert report["final"]["dominant_eigenvalue"] is None


def test_resume_equals_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _tiny(teachers=2, teacher_interval=1, distill_warmup_epochs=1, vote="soft")
    straight = run_search(config, tmp_path / "straight", progress=False)
    with monkeypatch.context() as patch:
        _interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            run_search(config, tmp_path / "resumed", progress=False)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["epoch"] == 1
    resumed = run_search(config, tmp_path / "resumed", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    for key in ("alphas_normal", "alphas_reduce"):
        assert torch.equal(a["model"][key], b["model"][key])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for x, y in zip(a["teachers"]["snapshots"], b["teachers"]["snapshots"]):
        assert all(torch.equal(x[k], y[k]) for k in x)
    metrics = ("train_loss", "arch_loss", "supernet_val_acc", "discretized_val_acc", "lr")
    for e1, e2 in zip(straight["epochs"], resumed["epochs"]):
        assert {m: e1[m] for m in metrics} == {m: e2[m] for m in metrics}
    assert straight["final"]["genotype"] == resumed["final"]["genotype"]


def test_nan_loss_keeps_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _tiny(distill="none")
    with monkeypatch.context() as patch:
        _interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            run_search(config, tmp_path, progress=False)
    saved = {name: (tmp_path / name).read_bytes() for name in RUN_FILES if name != "config.json"}
    with pytest.raises(BadInputError, match=r"NaN at epoch 2 step \d+; lower --lr.*kept in"):
        run_search(_tiny(distill="none", lr=1e30), tmp_path, resume=True, progress=False)
    for name, content in saved.items():
        assert (tmp_path / name).read_bytes() == content, name
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1


def test_nan_in_first_epoch_says_no_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no checkpoint was written yet"):
        run_search(_tiny(distill="none", epochs=1, arch_lr=1e30), tmp_path, progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_resume_rejects_structural_change_and_starts_fresh_without_a_checkpoint(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:  # killed before its first epoch ended: nothing to resume, a fresh start
        _interrupt_at_epoch(patch, 0)
        with pytest.raises(KeyboardInterrupt):
            run_search(_tiny(), tmp_path / "early", progress=False)
    assert not (tmp_path / "early" / "config.json").exists()
    assert run_search(_tiny(epochs=1), tmp_path / "early", resume=True, progress=False)["status"] == "complete"
    with monkeypatch.context() as patch:
        _interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            run_search(_tiny(), tmp_path / "run", progress=False)
    with pytest.raises(BadInputError, match="layers 3 -> 4"):
        run_search(_tiny(layers=4), tmp_path / "run", resume=True, progress=False)
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"corrupt")
    with pytest.raises(BadInputError, match="corrupt or unsafe checkpoint"):
        run_search(_tiny(), tmp_path / "run", resume=True, progress=False)


def test_recipe_reads_only_search_section_and_rejects_unknown_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("search:\n  layers: 4\n  arch_betas: [0.6, 0.99]\ntrain:\n  whatever: 1\nexport: {}\n")
    config = load_search_config(recipe)
    assert config.layers == 4 and config.arch_betas == (0.6, 0.99) and config.channels is None
    recipe.write_text("search:\n  layers: 4\n  teacher_intervall: 10\n")
    with pytest.raises(BadInputError, match="teacher_intervall.*did you mean 'teacher_interval'"):
        load_search_config(recipe)
    recipe.write_text("search:\n  vote: majority\n")
    with pytest.raises(BadInputError, match="soft, hard"):
        load_search_config(recipe)
    recipe.write_text("search:\n  train_portion: 1.5\n")
    with pytest.raises(BadInputError, match="train_portion"):
        load_search_config(recipe)


def test_shipped_recipes() -> None:
    reference = load_search_config(data_dir("search") / "darts-reference.yaml")
    assert (reference.dataset, reference.layers, reference.channels, reference.epochs) == ("cifar10", 8, 16, 50)
    assert (reference.method, reference.unrolled, reference.lr, reference.arch_lr) == ("darts", False, 0.025, 3e-4)
    quick = load_search_config(data_dir("search") / "default.yaml")
    assert quick.dataset == "digits" and quick.method == "sd-darts"
    assert quick.layers * quick.channels * quick.epochs < 8 * 16 * 50
    pc = load_search_config(data_dir("search") / "pc-darts.yaml")
    assert (pc.partial_channels, pc.edge_norm, pc.batch_size, pc.lr, pc.arch_lr) == (4, True, 256, 0.1, 6e-4)
    assert pc.arch_warmup_epochs == 15


def test_arch_warmup_keeps_alpha_still(tmp_path: Path) -> None:
    config = _tiny(method="darts", arch_warmup_epochs=1, epochs=2)
    run = searcher.SearchRun(config, tmp_path)
    before = [a.detach().clone() for a in run.model.arch_parameters()]
    run.train_epoch(0)
    assert all(torch.equal(a, b) for a, b in zip(run.model.arch_parameters(), before))
    run.train_epoch(1)
    assert not all(torch.equal(a, b) for a, b in zip(run.model.arch_parameters(), before))


def test_a_finished_run_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    """Starting a new search in a directory that holds one is refused; its files stay as they were."""
    run_search(_tiny(epochs=1, distill="none"), tmp_path, progress=False)
    before = (tmp_path / "report.json").read_bytes()
    with pytest.raises(BadInputError, match="--resume"):
        run_search(_tiny(epochs=1, distill="none"), tmp_path, progress=False)
    assert (tmp_path / "report.json").read_bytes() == before


def test_cached_teachers_distill_from_the_second_epoch_and_resume_exactly(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    config = _tiny(teachers_from="cache", epochs=3, limit=64)  # 32 weight-train samples: every epoch sees all
    straight = run_search(config, tmp_path / "straight", progress=False)
    assert [e["distilled_steps"] for e in straight["epochs"]] == [0, 1, 1]  # 32 samples = 1 step per epoch
    state = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["teachers"]
    assert tuple(state["probs"].shape) == (3, 32, 10) and state["seen"][:3].all()
    with monkeypatch.context() as patch:
        _interrupt_at_epoch(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run_search(config, tmp_path / "resumed", progress=False)
    resumed = run_search(config, tmp_path / "resumed", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert torch.equal(a["teachers"]["probs"], b["teachers"]["probs"])
    assert straight["epochs"][-1]["train_loss"] == resumed["epochs"][-1]["train_loss"]
    with pytest.raises(BadInputError, match="cached teachers record weight-train samples only"):
        _tiny(teachers_from="cache", distill_arch=True)
