"""Run directories and resolution of GENOTYPE_OR_RUN / RUN_OR_WEIGHTS arguments (sdnas_deploy.runs)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.io_utils import atomic_save_safetensors
from sdnas_deploy.runs import load_genotype_arg, new_run_dir, resolve_genotype_path, resolve_weights_path
from sdnas_deploy.spaces.darts.genotype import REFERENCE_GENOTYPES, save_genotype


def _weights(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_save_safetensors(path, {"w": torch.zeros(1)})


# --------------------------------------------------------------------------- new_run_dir


def test_new_run_dir_default_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = datetime.fromtimestamp(int(time.time()))
    run = new_run_dir("search", None)
    after = datetime.now()
    assert run.parent == Path("runs")
    m = re.fullmatch(r"search-(\d{8}-\d{6})", run.name)
    assert m, run.name
    stamp = datetime.strptime(m.group(1), "%Y%m%d-%H%M%S")
    assert before <= stamp <= after
    assert (tmp_path / run).is_dir()


def test_new_run_dir_uses_out_and_creates_parents(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "train"
    assert new_run_dir("train", out) == out
    assert out.is_dir()
    assert new_run_dir("train", str(out)) == out  # an existing directory is reused (resume)


def test_new_run_dir_refuses_a_file(tmp_path: Path) -> None:
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(BadInputError) as exc:
        new_run_dir("train", f)
    assert exc.value.exit_code == 2
    assert "exists and is not a directory" in str(exc.value)
    assert f.read_text() == "x"


# --------------------------------------------------------------------------- genotypes


def test_reference_name_resolves_to_itself() -> None:
    assert resolve_genotype_path("darts_v2") == "darts_v2"
    assert load_genotype_arg("darts_v2") is REFERENCE_GENOTYPES["darts_v2"]


def test_genotype_file(tmp_path: Path) -> None:
    path = save_genotype(tmp_path / "g.json", REFERENCE_GENOTYPES["darts_v1"])
    assert resolve_genotype_path(str(path)) == path
    assert load_genotype_arg(str(path)) == REFERENCE_GENOTYPES["darts_v1"]


@pytest.mark.parametrize("sub", ["", "train", "search"])
def test_run_directory_with_genotype(tmp_path: Path, sub: str) -> None:
    run = tmp_path / "run"
    where = save_genotype(run / sub / "genotype.json", REFERENCE_GENOTYPES["darts_v1"])
    assert resolve_genotype_path(str(run)) == where
    assert load_genotype_arg(str(run)) == REFERENCE_GENOTYPES["darts_v1"]


def test_run_directory_prefers_top_level_then_train(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_genotype(run / "search" / "genotype.json", REFERENCE_GENOTYPES["darts_v1"])
    train = save_genotype(run / "train" / "genotype.json", REFERENCE_GENOTYPES["darts_v2"])
    assert resolve_genotype_path(str(run)) == train
    top = save_genotype(run / "genotype.json", REFERENCE_GENOTYPES["darts_v2"])
    assert resolve_genotype_path(str(run)) == top


def test_missing_genotype_path_lists_references(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as exc:
        resolve_genotype_path(str(tmp_path / "nope.json"))
    msg = str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in msg
    assert "architecture not found" in msg and "darts_v1, darts_v2" in msg


def test_directory_without_genotype(tmp_path: Path) -> None:
    (tmp_path / "search").mkdir()
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(BadInputError, match="no genotype.json in this run directory"):
        resolve_genotype_path(str(tmp_path))
    with pytest.raises(BadInputError):
        load_genotype_arg(str(tmp_path))


def test_invalid_genotype_file_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "genotype.json"
    path.write_text('{"normal": [}')
    assert resolve_genotype_path(str(tmp_path)) == path
    with pytest.raises(BadInputError):
        load_genotype_arg(str(tmp_path))


# --------------------------------------------------------------------------- weights


def test_safetensors_file(tmp_path: Path) -> None:
    w = _weights(tmp_path / "model.safetensors")
    assert resolve_weights_path(str(w)) == w


def test_run_directory_prefers_best_over_last(tmp_path: Path) -> None:
    last = _weights(tmp_path / "last.safetensors")
    assert resolve_weights_path(str(tmp_path)) == last
    best = _weights(tmp_path / "best.safetensors")
    assert resolve_weights_path(str(tmp_path)) == best


def test_pipeline_directory_uses_train_best(tmp_path: Path) -> None:
    (tmp_path / "search").mkdir()
    (tmp_path / "export").mkdir()
    _weights(tmp_path / "train" / "last.safetensors")
    best = _weights(tmp_path / "train" / "best.safetensors")
    assert resolve_weights_path(str(tmp_path)) == best


def test_non_safetensors_file_is_rejected(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(BadInputError, match="expected a .safetensors weights file"):
        resolve_weights_path(str(ckpt))


def test_empty_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no trained weights"):
        resolve_weights_path(str(tmp_path))


def test_missing_weights_path(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="weights not found"):
        resolve_weights_path(str(tmp_path / "best.safetensors"))


def test_default_run_dirs_started_in_the_same_second_differ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs of one kind started within a second get two directories."""
    from sdnas_deploy.runs import new_run_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt: "20260101-000000")
    first, second = new_run_dir("search", None), new_run_dir("search", None)
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == "search-20260101-000000-2"
