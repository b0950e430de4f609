"""Issue 12's bad inputs: each exits 2 with one `error:` line, fast, and leaves nothing behind."""

from __future__ import annotations

import json
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


def test_imagefolder_with_one_class_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    from sdnas_deploy.data import dataset_info

    folder = tmp_path / "one" / "train" / "cat"
    folder.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    with pytest.raises(BadInputError, match=r"1 class folder; a classifier needs at least 2"):
        dataset_info("imagefolder", data_dir=tmp_path / "one")


def test_search_with_two_cells_is_refused() -> None:
    from sdnas_deploy.nas.config import SearchConfig

    with pytest.raises(BadInputError, match="at least 3 cells"):
        SearchConfig(layers=2)


def test_huge_or_bad_metadata_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    import json

    from sdnas_deploy.training.weights import load_network, read_weights, save_weights

    _, meta = read_weights(DEMO / "model.safetensors")
    from sdnas_deploy.io_utils import load_safetensors

    tensors, metadata = load_safetensors(DEMO / "model.safetensors")
    base = json.loads(metadata["sdnas_meta"])
    cases = [({"image_size": 100_000}, "larger than 4096"), ({"std": [0.0] * base["in_channels"]}, "value <= 0"),
             ({"std": [0.5] * (base["in_channels"] + 2)}, "values for"), ({"mean": [float("nan")]}, "finite")]
    from safetensors.torch import save_file

    for changes, message in cases:
        path = tmp_path / "w.safetensors"
        save_file(tensors, str(path), metadata={**metadata, "sdnas_meta": json.dumps({**base, **changes})})
        with pytest.raises(BadInputError, match=message):
            load_network(path)
    nan = {k: (v * float("nan") if v.is_floating_point() else v) for k, v in tensors.items()}
    path = tmp_path / "nan.safetensors"
    save_file(nan, str(path), metadata=metadata)
    with pytest.raises(BadInputError, match="NaN or infinite values"):
        load_network(path)
    del save_weights, meta


def test_diverged_training_stops_and_keeps_the_last_finite_epoch(tmp_path: Path) -> None:
    import torch

    from sdnas_deploy.checkpoint import load_checkpoint, save_checkpoint
    from sdnas_deploy.spaces import parse_arch
    from sdnas_deploy.training.config import TrainConfig
    from sdnas_deploy.training.trainer import run_training
    from sdnas_deploy.training.weights import load_network

    space, arch = parse_arch("fbnet:" + "-".join(["k3_e1"] * 12))
    base = dict(dataset="digits", setting="small", limit=48, batch_size=16, device="cpu", seed=0, epochs=3)
    with pytest.raises(BadInputError, match="nothing (of this epoch )?was saved"):
        run_training(arch, TrainConfig(**base, lr=1e30, grad_clip=0.0), tmp_path / "fresh", progress=False,
                     space=space)
    assert not (tmp_path / "fresh" / "last.safetensors").exists()
    run = tmp_path / "run"
    run_training(arch, TrainConfig(**base, lr=0.05), run, progress=False, space=space, stop_after=1)
    good = (run / "last.safetensors").read_bytes()
    state = load_checkpoint(run / "checkpoint.pt")  # the weights blow up during epoch 2: scale them to 1e30
    state["model"] = {k: v * 1e30 if v.is_floating_point() else v for k, v in state["model"].items()}
    save_checkpoint(run / "checkpoint.pt", state)
    with pytest.raises(BadInputError, match="keep epoch 1, the last finite one"):
        run_training(arch, TrainConfig(**base, lr=0.05), run, resume=True, progress=False, space=space)
    assert (run / "last.safetensors").read_bytes() == good
    load_network(run / "best.safetensors")  # still finite, still loads
    del torch


def test_search_resume_without_a_checkpoint_starts_fresh_and_keeps_config_of_good_epochs(tmp_path: Path) -> None:
    import json

    from sdnas_deploy.nas.config import SearchConfig
    from sdnas_deploy.nas.searcher import run_search

    tiny = dict(layers=3, channels=2, limit=48, epochs=1, batch_size=12, steps_per_epoch=1, seed=0, device="cpu",
                method="darts")
    (tmp_path / ".genotype.json.abc.tmp").write_text("half")
    report = run_search(SearchConfig(**tiny), tmp_path, resume=True, progress=False)  # nothing to resume: fresh
    assert report["status"] == "complete"
    saved = json.loads((tmp_path / "config.json").read_text())
    with pytest.raises(BadInputError):
        run_search(SearchConfig(**{**tiny, "epochs": 2, "steps_per_epoch": 3, "lr": 1e30, "lr_min": 0.0, "arch_lr": 1e30,
                                   "grad_clip": 0.0}), tmp_path,
                   resume=True, progress=False)
    assert json.loads((tmp_path / "config.json").read_text()) == saved  # the failed flags did not replace it
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(("section", "message"), [
    ("export: {format: onnx, workspace_gib: 2}\n", "does not apply to --format onnx"),
    ("export: {format: onxx}\n", "unknown export format"),
    ("profile: {device: gpu0}\n", "device='gpu0'"),
    ("profile: {duration_s: 0}\n", "duration must be"),
    ("train: {setting: mobile}\n", "has no setting 'mobile'"),
])
def test_run_validates_the_whole_recipe_before_writing(tmp_path: Path, section: str, message: str) -> None:
    out = tmp_path / "finished"
    out.mkdir()
    (out / "recipe.json").write_text('{"kept": true}')
    recipe = tmp_path / "r.yaml"
    recipe.write_text("search: {space: fbnet, setting: small, epochs: 1, limit: 48}\n" + section)
    started = time.perf_counter()
    line = one_error_line(runner.invoke(app, ["run", "--recipe", str(recipe), "--out", str(out)]), 2)
    assert message in line and time.perf_counter() - started < 20
    assert (out / "recipe.json").read_text() == '{"kept": true}' and sorted(p.name for p in out.iterdir()) == ["recipe.json"]


def test_compare_lut_with_a_malformed_table_or_sidecar(tmp_path: Path) -> None:
    import json

    table = json.loads((Path(__file__).resolve().parent.parent / "latency_tables" / "x86-cpu-ort_cifar.json").read_text())
    table["geometry"]["setting"] = 5
    (tmp_path / "bad.json").write_text(json.dumps(table))
    for name in ("model.onnx", "model.json"):
        shutil.copy(DEMO / name, tmp_path / name)
    line = one_error_line(runner.invoke(app, ["profile", str(tmp_path / "model.onnx"), "--compare-lut",
                                              str(tmp_path / "bad.json"), "--iterations", "10"]), 2)
    assert "unknown network setting 5" in line
    sidecar = json.loads((tmp_path / "model.json").read_text())
    sidecar["input"]["shape"] = [1, 1, None, 16]
    (tmp_path / "model.json").write_text(json.dumps(sidecar))
    line = one_error_line(runner.invoke(app, ["profile", str(tmp_path / "model.onnx"), "--compare-lut", "x86-cpu-ort",
                                              "--iterations", "10"]), 2)
    assert "is not four positive integers" in line


def test_a_failed_reexport_never_replaces_a_verified_pair(tmp_path: Path) -> None:
    import json

    from sdnas_deploy.errors import VerificationError
    from sdnas_deploy.exporting import export_all
    from sdnas_deploy.recipes import ExportConfig

    out = tmp_path / "export"
    export_all(DEMO / "model.safetensors", out, ExportConfig(verify_images=32), log_lines=False)
    good = {name: (out / name).read_bytes() for name in ("model.onnx", "model.json")}
    assert json.loads(good["model.json"])["verified"] is True
    weights = json.loads(good["model.json"])["metadata"]["weights"]
    assert (out / weights).is_file() and "/" not in weights  # the weights travel with the export
    with pytest.raises(VerificationError, match="the verified model.onnx there is kept"):
        export_all(DEMO / "model.safetensors", out, ExportConfig(verify_images=32, atol=1e-12), log_lines=False)
    assert {name: (out / name).read_bytes() for name in ("model.onnx", "model.json")} == good
    failed = json.loads((out / "model.failed.json").read_text())
    assert failed["verified"] is False and failed["file"] == "model.failed.onnx" and (out / "model.failed.onnx").is_file()
    assert not list(out.glob(".export-staging-*"))
    line = one_error_line(runner.invoke(app, ["check", str(out / "model.failed.onnx"), "--max-latency-ms", "100"]), 3)
    assert "verified=false" in line


def test_check_names_a_pair_that_does_not_belong_together(tmp_path: Path) -> None:
    import json

    for name in ("model.onnx", "model.json"):
        shutil.copy(DEMO / name, tmp_path / name)
    side = json.loads((tmp_path / "model.json").read_text())
    side["sha256"] = "1" * 64  # as if a kill left a new model.onnx beside the old sidecar
    (tmp_path / "model.json").write_text(json.dumps(side))
    line = one_error_line(runner.invoke(app, ["check", str(tmp_path / "model.onnx"), "--max-latency-ms", "100"]), 3)
    assert "do not belong together" in line


def test_expect_sha256_pins_the_artifact(tmp_path: Path) -> None:
    from sdnas_deploy.runtime.fingerprint import file_sha256

    sha = file_sha256(DEMO / "model.onnx")
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    result = runner.invoke(app, ["check", str(DEMO / "model.onnx"), "--max-latency-ms", "100", "--expect-sha256", wrong])
    assert result.exit_code == 3 and "not the artifact you built" in result.output
    shutil.copy(DEMO / "model.onnx", tmp_path / "model.onnx")
    shutil.copy(DEMO / "model.json", tmp_path / "model.json")
    line = one_error_line(runner.invoke(app, ["profile", str(tmp_path / "model.onnx"), "--expect-sha256", "abc"]), 2)
    assert "64 hex digits" in line
    ok = runner.invoke(app, ["profile", str(tmp_path / "model.onnx"), "--expect-sha256", sha, "--iterations", "10",
                             "--warmup-ms", "0"])
    assert ok.exit_code == 0, ok.output


def test_cli_resume_of_a_run_with_nothing_saved_starts_fresh(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "--resume", "--out", str(tmp_path / "new"), "--layers", "3", "--channels",
                                 "2", "--limit", "48", "--epochs", "1", "--batch-size", "12", "--steps-per-epoch", "1",
                                 "--method", "darts", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "complete"
