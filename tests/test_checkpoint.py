"""Checkpoint save/load (weights_only, never unpickling code) and RNG capture/restore (sdnas_deploy.checkpoint)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sdnas_deploy.checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from sdnas_deploy.errors import BadInputError

_EXECUTED: list[str] = []


def _side_effect(tag: str) -> str:
    """Called only if a pickle payload is executed on load."""
    _EXECUTED.append(tag)
    return tag


class Payload:
    """An arbitrary Python object whose unpickling runs code."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_side_effect, ("payload ran",))


Draws = tuple[list[float], list[float], torch.Tensor]


class PlainObject:
    def __init__(self) -> None:
        self.value = 3


def _draws() -> Draws:
    """Numbers from each RNG the project uses."""
    return (
        [random.random() for _ in range(5)] + [random.gauss(0.0, 1.0)],
        np.random.rand(5).tolist() + [float(np.random.randint(0, 1_000_000))],
        torch.rand(5),
    )


def _assert_same_draws(a: Draws, b: Draws) -> None:
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert torch.equal(a[2], b[2])


# --------------------------------------------------------------------------- save / load


def test_round_trip_of_nested_state(tmp_path: Path) -> None:
    state = {
        "epoch": 4,
        "best": 0.875,
        "name": "search",
        "model": {"conv.weight": torch.randn(2, 3, 3, 3), "bn.num_batches_tracked": torch.tensor(5)},
        "history": [{"loss": 1.5, "acc": 0.1}, {"loss": 0.9, "acc": None}],
        "nested": {"deeper": {"t": torch.arange(4, dtype=torch.int32), "flags": [True, False]}},
    }
    path = save_checkpoint(tmp_path / "ckpt" / "checkpoint.pt", state)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]
    back = load_checkpoint(path)
    assert back["epoch"] == 4 and back["best"] == 0.875 and back["name"] == "search"
    assert back["history"] == state["history"]
    assert torch.equal(back["model"]["conv.weight"], state["model"]["conv.weight"])
    assert torch.equal(back["model"]["bn.num_batches_tracked"], torch.tensor(5))
    assert back["nested"]["deeper"]["t"].dtype == torch.int32
    assert torch.equal(back["nested"]["deeper"]["t"], torch.arange(4, dtype=torch.int32))
    assert back["nested"]["deeper"]["flags"] == [True, False]


def test_model_and_optimizer_state_resume_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(), "opt": opt.state_dict()})

    state = load_checkpoint(tmp_path / "c.pt")
    model2 = torch.nn.Linear(4, 2)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.5, momentum=0.0)
    model2.load_state_dict(state["model"])
    opt2.load_state_dict(state["opt"])
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        o.step()
    for p1, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p1, p2)


def test_overwrite_keeps_single_file(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 1})
    save_checkpoint(path, {"epoch": 2})
    assert load_checkpoint(path) == {"epoch": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_pickled_code_is_refused_and_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "extra": Payload()}, path)
    _EXECUTED.clear()
    with pytest.raises(BadInputError) as exc:
        load_checkpoint(path)
    assert _EXECUTED == []
    assert exc.value.exit_code == 2
    assert "\n" not in str(exc.value)
    assert "corrupt or unsafe checkpoint" in str(exc.value)


def test_pickled_custom_class_instance_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.pt"
    torch.save(PlainObject(), path)
    with pytest.raises(BadInputError, match="corrupt or unsafe checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage bytes, not a zip or pickle" * 4], ids=["empty", "garbage"])
def test_garbage_is_bad_input(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(BadInputError) as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_truncated_checkpoint_is_bad_input(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", {"w": torch.randn(256)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadInputError):
        load_checkpoint(path)


@pytest.mark.parametrize("top", [[1, 2, 3], torch.ones(2), 7], ids=["list", "tensor", "int"])
def test_non_dict_top_level_is_bad_input(tmp_path: Path, top: object) -> None:
    path = tmp_path / "c.pt"
    torch.save(top, path)
    with pytest.raises(BadInputError, match=f"top level is {type(top).__name__}"):
        load_checkpoint(path)


def test_missing_or_directory_checkpoint_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(BadInputError, match="checkpoint is not a file"):
        load_checkpoint(tmp_path)


# --------------------------------------------------------------------------- RNG


def test_rng_state_restores_python_numpy_and_torch() -> None:
    seed_everything(11)
    _draws()  # advance away from the seeded start
    state = rng_state()
    first = _draws()
    _draws()  # move on further
    set_rng_state(state)
    _assert_same_draws(first, _draws())


def test_rng_state_survives_a_checkpoint_round_trip(tmp_path: Path) -> None:
    """The trainer stores rng_state() inside a weights_only checkpoint; it must load and restore."""
    seed_everything(5)
    random.gauss(0.0, 1.0)  # leaves a cached gaussian in Python's generator
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    expected = _draws()
    seed_everything(999)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    _assert_same_draws(expected, _draws())


def test_rng_state_restores_numpy_cached_gaussian() -> None:
    seed_everything(0)
    np.random.randn()  # draws a pair, caches the second value
    state = rng_state()
    expected = np.random.randn(3)
    set_rng_state(state)
    assert np.array_equal(np.random.randn(3), expected)


def test_seed_everything_is_deterministic() -> None:
    seed_everything(1234)
    a = _draws()
    seed_everything(1234)
    b = _draws()
    _assert_same_draws(a, b)
    seed_everything(1235)
    c = _draws()
    assert a[0] != c[0] and a[1] != c[1] and not torch.equal(a[2], c[2])


def test_seed_everything_accepts_seeds_beyond_numpy_range() -> None:
    seed_everything(2**32 + 3)
    a = np.random.rand(3)
    seed_everything(3)
    assert np.array_equal(a, np.random.rand(3))  # numpy seed is taken modulo 2**32
