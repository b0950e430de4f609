"""Issue 12's bad inputs: each exits 2 with one `error:` line, fast, and leaves nothing behind."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdnas_deploy.cli.main import app, main
from sdnas_deploy.errors import BadInputError
from sdnas_deploy.io_utils import load_json, load_yaml

from cli_checks import one_error_line

runner = CliRunner()
DEMO = Path(__file__).resolve().parent.parent / "export" / "demo"
BOMB = "\n".join([f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi")])


def test_json_nested_200k_levels_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(BadInputError, match="nested more than 100 levels"):
        load_json(deep, "architecture file")


@pytest.mark.parametrize(("text", "message"), [
    ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BOMB + "\n", "expands to more than"),
    ("a: &a [*a]\n", "expands to more than"),
    ('search: !!python/object/apply:os.system ["echo hi"]\n', r"tag that is not plain YAML \(!!python/object"),
    ("search: {epochs: [[[[\n", "malformed recipe at line"),
])
def test_yaml_problems_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(BadInputError, match=message):
        load_yaml(path, "recipe")
    assert time.perf_counter() - started < 5  # the bomb is refused before anything expands it


def test_non_utf8_and_directory_recipes_say_so(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"search:\n  dataset: caf\xe9\n")
    with pytest.raises(BadInputError, match="not UTF-8 text"):
        load_yaml(latin, "recipe")
    line = one_error_line(runner.invoke(app, ["search", "--recipe", str(tmp_path), "--out", str(tmp_path / "r")]), 2)
    assert "is a directory" in line and not (tmp_path / "r").exists()


def test_usage_errors_are_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    for argv, message in ((["search", "--epochs", "abc"], "Invalid value for '--epochs'"),
                          (["train"], "Missing argument"), (["serch"], "No such command 'serch'"),
                          (["check", "--bogus"], "No such option")):
        monkeypatch.setattr(sys, "argv", ["sdnas", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0]


@pytest.mark.parametrize("kind", ["search", "export", "profile"])
def test_out_that_is_a_file_or_cannot_be_created(tmp_path: Path, kind: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    shutil.copy(DEMO / "model.onnx", tmp_path / "model.onnx")
    shutil.copy(DEMO / "model.json", tmp_path / "model.json")
    head = {"search": ["search", "--epochs", "1"], "export": ["export", str(DEMO / "model.safetensors")],
            "profile": ["profile", str(tmp_path / "model.onnx"), "--iterations", "10"]}[kind]
    for out, message in ((afile, "exists and is not a directory"), (afile / "sub", "cannot create the directory"),
                         (Path("/proc/sdnas-x"), "cannot create the directory")):
        line = one_error_line(runner.invoke(app, [*head, "--out", str(out)]), 2)
        assert message in line
    assert afile.read_text() == "keep me"


def test_a_refused_search_leaves_no_empty_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    one_error_line(runner.invoke(app, ["search", "--method", "dna", "--space", "dna", "--out", str(out)]), 2)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("args", [["--max-latency-ms", "nan"], ["--max-latency-ms", "inf"],
                                  ["--max-latency-ms", "-1"], ["--min-accuracy", "nan"], ["--duration-s", "nan"],
                                  ["--max-latency-ms", "10", "--warmup-s", "inf"]])
def test_check_refuses_non_finite_and_negative_gates(tmp_path: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["check", str(DEMO / "model.onnx"), *args])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output or "FAILED" in result.output


@pytest.mark.parametrize("args", [["--duration-s", "nan"], ["--duration-s", "inf"], ["--warmup-s", "nan"],
                                  ["--iterations", "0"], ["--duration-s", "1e9"]])
def test_profile_refuses_unbounded_timing_fast(tmp_path: Path, args: list[str]) -> None:
    shutil.copy(DEMO / "model.onnx", tmp_path / "model.onnx")
    shutil.copy(DEMO / "model.json", tmp_path / "model.json")
    started = time.perf_counter()
    one_error_line(runner.invoke(app, ["profile", str(tmp_path / "model.onnx"), *args]), 2)
    assert time.perf_counter() - started < 30


def test_timing_loop_is_bounded_by_wall_time_whatever_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdnas_deploy.runtime import loop

    monkeypatch.setattr(loop, "MAX_SECONDS", 0.05)
    calls: list[int] = []

    def timed() -> int:
        calls.append(1)
        return len(calls)

    started = time.perf_counter()
    loop.run_timing_loop(lambda: None, timed, float("nan"), None, float("nan"), 10)
    assert time.perf_counter() - started < 2 and calls


def test_huge_values_are_not_quoted_whole() -> None:
    from sdnas_deploy.config_utils import from_mapping
    from sdnas_deploy.nas.config import SearchConfig

    with pytest.raises(BadInputError) as info:
        from_mapping(SearchConfig, {"epochs": "x" * 10_000}, "recipe")
    assert len(info.value.message) < 300
    with pytest.raises(BadInputError, match="not a finite number"):
        from_mapping(SearchConfig, {"lr": float("nan")}, "recipe")
