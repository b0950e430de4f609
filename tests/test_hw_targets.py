"""Targets registry and table resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.hw import targets
from sdnas_deploy.hw.targets import TARGETS, Target, build_command, get_target, resolve_table


def test_shipped_targets() -> None:
    cpu = TARGETS["x86-cpu-ort"]
    assert (cpu.backend, cpu.precision) == ("ort", "fp32")
    assert set(cpu.table_files) == {"darts/cifar", "darts/mobile", "fbnet/small", "proxyless/small"}
    assert set(cpu.fitted_files) == set(cpu.table_files)
    assert (TARGETS["jetson-orin"].backend, TARGETS["jetson-orin"].precision) == ("trt", "fp16")
    assert TARGETS["jetson-orin"].table_files == {} and TARGETS["x86-cuda-ort"].table_files == {}
    assert all(name == t.name for name, t in TARGETS.items())


def test_target_without_table_gives_build_command() -> None:
    with pytest.raises(BadInputError) as info:
        resolve_table("jetson-orin", "mobile")
    assert "`sdnas lut build --target jetson-orin --space darts --setting mobile --backend trt`" in info.value.message
    assert "\n" not in info.value.message


def test_missing_table_file_gives_build_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(targets, "data_dir", lambda kind: tmp_path)
    with pytest.raises(BadInputError) as info:
        resolve_table("x86-cpu-ort", "cifar")
    assert "sdnas lut build --target x86-cpu-ort --space darts --setting cifar --backend ort" in info.value.message
    (tmp_path / TARGETS["x86-cpu-ort"].table_files["darts/cifar"]).write_text("{}")
    assert resolve_table("x86-cpu-ort", "cifar", "microbenchmark") == tmp_path / "x86-cpu-ort_cifar.json"


def test_unknown_target_suggests_closest() -> None:
    with pytest.raises(BadInputError, match="did you mean 'x86-cpu-ort'"):
        resolve_table("x86-cpu-rt", "cifar")
    with pytest.raises(BadInputError, match="did you mean 'jetson-orin'"):
        get_target("jetson-orn")


def test_build_command_and_duplicate_registration() -> None:
    expected = "sdnas lut build --target x86-cuda-ort --space darts --setting cifar --backend ort"
    assert build_command("x86-cuda-ort", "cifar") == expected
    with pytest.raises(ValueError, match="duplicate"):
        targets.register_target(Target(name="x86-cpu-ort"))


def test_a_cuda_provider_target_is_never_measured_on_the_cpu() -> None:
    """x86-cuda-ort's table must come from the CUDA provider: building or measuring it here is refused (exit 5)."""
    from sdnas_deploy.errors import UnsupportedEnvironmentError
    from sdnas_deploy.hw.targets import require_measurable

    assert require_measurable("x86-cpu-ort").name == "x86-cpu-ort"
    with pytest.raises(UnsupportedEnvironmentError, match="CUDAExecutionProvider"):
        require_measurable("x86-cuda-ort")


def test_table_kinds_prefer_the_shipped_fitted_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """auto → fitted when shipped, else the micro-benchmark table; fitted without a file says how to make one."""
    from sdnas_deploy.hw.lut import load_table

    shipped = resolve_table("x86-cpu-ort", "cifar")
    assert shipped.name == "x86-cpu-ort_cifar_fitted.json" and load_table(shipped).method == "fitted"
    assert load_table(resolve_table("x86-cpu-ort", "mobile", "microbenchmark")).method == "microbenchmark"
    monkeypatch.setattr(targets, "data_dir", lambda kind: tmp_path)
    (tmp_path / "x86-cpu-ort_cifar.json").write_text("{}")
    assert resolve_table("x86-cpu-ort", "cifar", "auto") == tmp_path / "x86-cpu-ort_cifar.json"
    with pytest.raises(BadInputError, match="sdnas lut measure --target x86-cpu-ort --space darts --setting cifar"):
        resolve_table("x86-cpu-ort", "cifar", "fitted")
    with pytest.raises(BadInputError, match="table kind 'fited' is unknown"):
        resolve_table("x86-cpu-ort", "cifar", "fited")


def test_gpu_targets_measure_on_their_gpu_only() -> None:
    """x86-cuda-ort is a CUDA-provider target: never measured on the CPU; on cuda it needs onnxruntime-gpu (exit 5)."""
    import onnxruntime as ort

    from sdnas_deploy.errors import UnsupportedEnvironmentError
    from sdnas_deploy.hw.targets import require_measurable

    assert TARGETS["x86-cuda-ort"].device == "cuda" and TARGETS["x86-cpu-ort"].device == "cpu"
    assert TARGETS["jetson-orin"].device == "cuda"
    with pytest.raises(UnsupportedEnvironmentError, match="not on the CPU"):
        require_measurable("x86-cuda-ort", "cpu")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(UnsupportedEnvironmentError, match="onnxruntime-gpu"):
            require_measurable("x86-cuda-ort")


@pytest.mark.parametrize("space", ["fbnet", "proxyless"])
def test_shipped_mbconv_tables_cover_every_candidate_key(space: str) -> None:
    from sdnas_deploy.hw.lut import load_table
    from sdnas_deploy.spaces import get_space

    for kind in ("microbenchmark", "fitted"):
        table = load_table(resolve_table("x86-cpu-ort", "small", kind, space))
        assert table.space == space and table.method == kind and table.geometry.to_dict() == {
            "setting": "small", "input_size": 16, "in_channels": 1, "num_classes": 10}
        assert set(get_space(space).candidate_keys(table.geometry)) <= set(table.entries)
    with pytest.raises(BadInputError, match="space 'darts', not 'fbnet'"):
        load_table(resolve_table("x86-cpu-ort", "cifar", space="darts")).check_space("fbnet")
