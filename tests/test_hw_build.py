"""hw/build.py: a tiny table end to end, partial saves on interruption, resume measuring only missing keys."""

from __future__ import annotations

import json

from pathlib import Path
from typing import Any

import pytest

from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError
from sdnas_deploy.hw import build as build_mod
from sdnas_deploy.hw.build import SAVE_EVERY, build_table
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, candidate_keys
from sdnas_deploy.hw.lut import REQUIRED_FINGERPRINT, load_table

TINY = NetworkGeometry.from_setting("cifar", input_size=8, layers=3, channels=4, in_channels=1, num_classes=3)


def test_tiny_table_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    table = build_table("x86-cpu-ort", TINY, backend="ort", repeats=3, warmup=1, out_path=out, progress=False)
    loaded = load_table(out)  # strict validation of every field and entry
    assert set(loaded.entries) == set(candidate_keys(TINY)) == set(table.entries)
    assert loaded.geometry == TINY and loaded.method == "microbenchmark" and loaded.overhead_ms > 0
    assert all(name in loaded.fingerprint for name in REQUIRED_FINGERPRINT)
    fp = loaded.fingerprint
    assert (fp["backend"], fp["provider"], fp["precision"], fp["batch"], fp["threads"]) == (
        "ort", "CPUExecutionProvider", "fp32", 1, 1)
    assert fp["cpu_model"] and fp["key"]
    for entry in loaded.entries.values():
        assert 1 <= entry["count"] <= 3 and 0 <= entry["p50"] <= entry["p90"]
    # a real op costs more than nothing once the session overhead is subtracted
    sep = next(k for k in loaded.entries if k.startswith("sep_conv_5x5"))
    assert loaded.entries[sep]["mean"] > 0


class _Interrupt(Exception):
    pass


def _fake_timer(calls: list[str], fail_after: int | None = None) -> Any:
    def fake(module: Any, shape: Any, backend: str, warmup: int, repeats: int, threads: int = 1,
             device: str = "cpu", precision: str = "fp32") -> dict[str, Any]:
        if fail_after is not None and len(calls) >= fail_after:
            raise _Interrupt()
        calls.append(str(shape))
        return {"count": repeats, "mean": 1.0, "std": 0.1, "p50": 1.0, "p90": 1.2}

    return fake


def test_interrupted_build_keeps_partial_table_and_resume_measures_only_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "t.json"
    keys = candidate_keys(TINY)
    stop_after = 2 * SAVE_EVERY + 2
    monkeypatch.setattr(build_mod, "time_module", _fake_timer([], fail_after=stop_after))
    with pytest.raises(_Interrupt):
        build_table("x86-cpu-ort", TINY, repeats=3, warmup=0, out_path=out, progress=False)
    partial = load_table(out)
    assert len(partial.entries) == 2 * SAVE_EVERY  # the last atomic save before the interruption
    resumed_calls: list[str] = []
    monkeypatch.setattr(build_mod, "time_module", _fake_timer(resumed_calls))
    table = build_table("x86-cpu-ort", TINY, repeats=3, warmup=0, out_path=out, resume=True, progress=False)
    assert len(resumed_calls) == len(keys) - 2 * SAVE_EVERY
    assert set(load_table(out).entries) == set(keys) == set(table.entries)
    assert table.overhead_ms == partial.overhead_ms  # stored entries stay comparable
    assert all(table.entries[k] == partial.entries[k] for k in partial.entries)


def test_resume_refuses_other_geometry_or_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "t.json"
    monkeypatch.setattr(build_mod, "time_module", _fake_timer([]))
    build_table("x86-cpu-ort", TINY, repeats=2, warmup=0, out_path=out, progress=False)
    other = NetworkGeometry.from_setting("cifar", input_size=8, layers=3, channels=6, in_channels=1, num_classes=3)
    with pytest.raises(BadInputError, match="geometry"):
        build_table("x86-cpu-ort", other, repeats=2, warmup=0, out_path=out, resume=True, progress=False)
    with pytest.raises(BadInputError, match="backend"):
        build_table("x86-cpu-ort", TINY, backend="torch", repeats=2, warmup=0, out_path=out, resume=True,
                    progress=False)
    with pytest.raises(BadInputError, match="nothing|no partial"):
        build_table("x86-cpu-ort", TINY, out_path=tmp_path / "absent.json", resume=True, progress=False)
    # a table made before devices were recorded reads as cpu; one recorded on another device is refused
    stored = json.loads(out.read_text())
    stored["fingerprint"]["device"] = "cuda:0"
    out.write_text(json.dumps(stored))
    with pytest.raises(BadInputError, match="device 'cuda:0' != 'cpu'"):
        build_table("x86-cpu-ort", TINY, repeats=2, warmup=0, out_path=out, resume=True, progress=False)


def test_trt_backend_exits_5_before_measuring(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedEnvironmentError) as err:
        build_table("jetson-orin", TINY, backend="trt", out_path=tmp_path / "t.json", progress=False)
    assert err.value.exit_code == 5 and not (tmp_path / "t.json").exists()
