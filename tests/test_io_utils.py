"""Atomic writes, strict JSON/YAML readers, JSON conversion and safetensors I/O (sdnas_deploy.io_utils)."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.io_utils import (
    _atomic_write, atomic_save_safetensors, atomic_write_bytes, atomic_write_json, atomic_write_text,
    dumps_json, load_json, load_safetensors, load_yaml, require_file,
)


def _strict_loads(text: str) -> object:
    """json.loads that refuses the non-standard NaN/Infinity literals."""

    def refuse(name: str) -> object:
        raise AssertionError(f"non-standard JSON constant {name} in output")

    return json.loads(text, parse_constant=refuse)


def _assert_one_line_bad_input(exc: pytest.ExceptionInfo[BadInputError], path: Path) -> None:
    assert exc.value.exit_code == 2
    assert "\n" not in str(exc.value)
    assert str(path) in str(exc.value)


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_text_writes_utf8_and_leaves_only_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "note.txt"  # parents are created
    returned = atomic_write_text(target, "héllo ✓\n")
    assert returned == target
    assert target.read_bytes() == "héllo ✓\n".encode("utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["note.txt"]


def test_atomic_write_replaces_existing_content(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old content that is longer")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_writer_failing_midway_keeps_previous_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic_write_json(target, {"epoch": 1})
    before = target.read_bytes()
    seen: list[Path] = []

    def half_writer(tmp: Path) -> None:
        seen.append(tmp)
        with open(tmp, "wb") as fh:
            fh.write(b'{"epoch": 2, "trunc')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _atomic_write(target, half_writer)
    assert target.read_bytes() == before
    assert seen and seen[0].parent == tmp_path and seen[0] != target
    assert not seen[0].exists()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_json_serialization_failure_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic_write_json(target, {"ok": True})
    before = target.read_text()
    with pytest.raises(TypeError, match="not JSON serializable"):
        atomic_write_json(target, {"ok": False, "bad": object()})
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_safetensors_save_failure_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "w.safetensors"
    atomic_save_safetensors(target, {"a": torch.ones(2)})
    before = target.read_bytes()
    with pytest.raises(TypeError):
        # metadata values must be strings: safetensors raises inside the writer
        atomic_save_safetensors(target, {"a": torch.zeros(2)}, metadata={"epoch": 3})  # type: ignore[dict-item]
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_atomic_write_respects_umask_like_a_plain_write(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atomic = atomic_write_text(tmp_path / "atomic.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# --------------------------------------------------------------------------- dumps_json


def test_dumps_json_turns_non_finite_floats_into_null() -> None:
    obj = {"a": float("nan"), "b": [1.5, float("inf"), (float("-inf"), 2)], "c": {"d": np.float64("nan")}}
    text = dumps_json(obj)
    assert _strict_loads(text) == {"a": None, "b": [1.5, None, [None, 2]], "c": {"d": None}}
    assert "NaN" not in text and "Infinity" not in text


def test_dumps_json_converts_numpy_torch_and_paths() -> None:
    obj = {
        "arr": np.arange(6, dtype=np.int64).reshape(2, 3),
        "i64": np.int64(7),
        "f32": np.float32(0.5),
        "t": torch.tensor([[1.0, 2.0]]),
        "t0": torch.tensor(3),
        "path": Path("runs") / "x" / "genotype.json",
    }
    back = _strict_loads(dumps_json(obj))
    assert back == {
        "arr": [[0, 1, 2], [3, 4, 5]],
        "i64": 7,
        "f32": 0.5,
        "t": [[1.0, 2.0]],
        "t0": 3,
        "path": str(Path("runs") / "x" / "genotype.json"),
    }


def test_dumps_json_is_indented() -> None:
    assert dumps_json({"a": 1}) == '{\n  "a": 1\n}'


def test_dumps_json_rejects_unknown_objects() -> None:
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        dumps_json({"x": object()})


@pytest.mark.parametrize(
    "value, expected",
    [
        (np.array([1.0, np.nan]), [1.0, None]),
        (np.float32("nan"), None),
        (torch.tensor([float("inf"), 2.0]), [None, 2.0]),
    ],
    ids=["numpy-array", "numpy-float32", "torch-tensor"],
)
def test_dumps_json_nulls_non_finite_values_inside_arrays(value: object, expected: object) -> None:
    assert _strict_loads(dumps_json({"v": value})) == {"v": expected}


def test_atomic_write_json_round_trips_with_trailing_newline(tmp_path: Path) -> None:
    target = atomic_write_json(tmp_path / "r.json", {"loss": float("nan"), "acc": np.float64(0.25), "n": [1, 2]})
    text = target.read_text()
    assert text.endswith("}\n")
    assert load_json(target) == {"loss": None, "acc": 0.25, "n": [1, 2]}


# --------------------------------------------------------------------------- strict readers


def _missing(tmp: Path) -> Path:
    return tmp / "nope.cfg"


def _directory(tmp: Path) -> Path:
    d = tmp / "adir"
    d.mkdir()
    return d


def _non_utf8(tmp: Path) -> Path:
    p = tmp / "latin1.cfg"
    p.write_bytes(b"name: caf\xe9\n\xff\xfe")
    return p


BAD_FILES: dict[str, Callable[[Path], Path]] = {"missing": _missing, "directory": _directory, "non-utf8": _non_utf8}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("loader", [load_json, load_yaml], ids=["json", "yaml"])
def test_readers_turn_bad_files_into_one_line_bad_input(
    tmp_path: Path, case: str, loader: Callable[..., object]
) -> None:
    path = BAD_FILES[case](tmp_path)
    with pytest.raises(BadInputError) as exc:
        loader(path)
    _assert_one_line_bad_input(exc, path)


def test_load_json_malformed_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(BadInputError) as exc:
        load_json(path, "run config")
    _assert_one_line_bad_input(exc, path)
    assert "malformed run config" in str(exc.value)
    assert "line 4" in str(exc.value)


def test_load_json_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="genotype file not found"):
        load_json(tmp_path / "g.json", "genotype file")


def test_load_json_reads_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text('{"a": [1, 2.5, null], "b": "ü"}', encoding="utf-8")
    assert load_json(str(path)) == {"a": [1, 2.5, None], "b": "ü"}


def test_load_yaml_malformed_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("search:\n  epochs: 3\n  lr: [0.1, 0.2\n")
    with pytest.raises(BadInputError) as exc:
        load_yaml(path, "recipe")
    _assert_one_line_bad_input(exc, path)
    assert "malformed recipe at line" in str(exc.value)


def test_load_yaml_reads_mapping_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("search:\n  epochs: 3\n  lr: 0.025\n  betas: [0.5, 0.999]\n  name: null\n")
    assert load_yaml(path) == {"search": {"epochs": 3, "lr": 0.025, "betas": [0.5, 0.999], "name": None}}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml(empty) is None


def test_load_yaml_uses_safe_loader_and_never_executes_tags(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"x: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(BadInputError) as exc:
        load_yaml(path)
    _assert_one_line_bad_input(exc, path)
    assert not marker.exists()


def test_require_file(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert require_file(str(f)) == f
    with pytest.raises(BadInputError, match="weights file is not a file"):
        require_file(tmp_path, "weights file")
    with pytest.raises(BadInputError, match="weights file not found"):
        require_file(tmp_path / "missing", "weights file")


# --------------------------------------------------------------------------- safetensors


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tensors = {
        "w": base.t(),  # non-contiguous input is made contiguous
        "b": torch.tensor([1, 2, 3], dtype=torch.int64),
        "h": torch.tensor([0.5, -1.0], dtype=torch.float16),
    }
    path = atomic_save_safetensors(tmp_path / "m.safetensors", tensors, metadata={"epoch": "7", "arch": "darts_v2"})
    loaded, meta = load_safetensors(path)
    assert meta == {"epoch": "7", "arch": "darts_v2"}
    assert set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_safetensors_without_metadata_gives_empty_dict(tmp_path: Path) -> None:
    path = atomic_save_safetensors(tmp_path / "m.safetensors", {"x": torch.ones(1)})
    _, meta = load_safetensors(path)
    assert meta == {}


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_corrupt_safetensors_is_bad_input(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "m.safetensors"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01not a safetensors file at all" * 10)
    elif kind == "truncated":
        atomic_save_safetensors(path, {"x": torch.randn(64)})
        path.write_bytes(path.read_bytes()[:-40])
    else:
        path.write_bytes(b"")
    with pytest.raises(BadInputError) as exc:
        load_safetensors(path)
    _assert_one_line_bad_input(exc, path)
    assert "not a readable safetensors file" in str(exc.value)


def test_missing_safetensors_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="weights file not found"):
        load_safetensors(tmp_path / "absent.safetensors")


def test_nan_survives_safetensors_round_trip(tmp_path: Path) -> None:
    """Weights are stored bit-exactly; non-finite values are not 'cleaned' like in JSON."""
    t = torch.tensor([float("nan"), float("inf"), 1.0])
    loaded, _ = load_safetensors(atomic_save_safetensors(tmp_path / "n.safetensors", {"t": t}))
    assert math.isnan(loaded["t"][0].item()) and math.isinf(loaded["t"][1].item()) and loaded["t"][2].item() == 1.0
