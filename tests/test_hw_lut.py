"""Latency tables: strict loading, atomic save, lookup, geometry check and prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, candidate_keys, network_keys, parse_key
from sdnas_deploy.hw.lut import LUT_SCHEMA, LatencyTable, load_table, predict_latency, save_table
from sdnas_deploy.spaces.darts.genotype import DARTS_V2

GEOMETRY = NetworkGeometry("cifar", layers=5, channels=8, input_size=16, in_channels=1, num_classes=10)
FINGERPRINT = {"cpu_model": "test cpu", "backend": "ort", "provider": "CPUExecutionProvider", "precision": "fp32",
               "batch": 1, "threads": 1, "date": "2026-01-01T00:00:00+00:00", "sdnas_version": "0.0.0"}


def _mean(k: str) -> float:
    """A distinct, hand-checkable latency per key: 0.001 × (output H + stride + op-name length)."""
    p = parse_key(k)
    return 0.001 * (p.output[0] + p.stride + len(p.op))


def _table(overhead: float = 0.25) -> LatencyTable:
    entries = {k: {"count": 20, "mean": _mean(k), "std": 0.0001, "p50": _mean(k), "p90": _mean(k) * 1.1}
               for k in candidate_keys(GEOMETRY)}
    return LatencyTable(target="x86-cpu-ort", fingerprint=dict(FINGERPRINT), geometry=GEOMETRY,
                        method="microbenchmark", overhead_ms=overhead, entries=entries)


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "lut.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_save_load_round_trip(tmp_path: Path) -> None:
    table = _table()
    path = save_table(tmp_path / "sub" / "t.json", table)
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]  # no temp file left behind
    loaded = load_table(path)
    assert loaded == table
    assert json.loads(path.read_text())["schema"] == LUT_SCHEMA
    save_table(path, loaded)
    assert load_table(path) == table


def test_geometry_accepts_mapping() -> None:
    table = LatencyTable(target="t", fingerprint=FINGERPRINT, geometry=GEOMETRY.to_dict(), method="fitted")
    assert table.geometry == GEOMETRY


def _broken(mutate) -> dict[str, Any]:
    data = _table().to_dict()
    mutate(data)
    return data


def _first_entry(data: dict[str, Any]) -> dict[str, Any]:
    return data["entries"][next(iter(data["entries"]))]


BROKEN = {
    "wrong schema": (lambda d: d.update(schema="sdnas-lut/0"), "schema"),
    "missing fingerprint field": (lambda d: d["fingerprint"].pop("provider"), "provider"),
    "fingerprint not an object": (lambda d: d.update(fingerprint=[]), "fingerprint"),
    "missing geometry field": (lambda d: d["geometry"].pop("channels"), "channels"),
    "negative mean": (lambda d: _first_entry(d).update(mean=-1.0), "mean"),
    "nan mean": (lambda d: _first_entry(d).update(mean=float("nan")), "mean"),
    "string std": (lambda d: _first_entry(d).update(std="0.1"), "std"),
    "missing p90": (lambda d: _first_entry(d).pop("p90"), "p90"),
    "count zero": (lambda d: _first_entry(d).update(count=0), "count"),
    "count float": (lambda d: _first_entry(d).update(count=2.5), "count"),
    "unparsable key": (lambda d: d["entries"].update({"sep_conv_3x3-input:8x8": _first_entry(d)}), "malformed"),
    "unknown method": (lambda d: d.update(method="guessed"), "method"),
    "negative overhead": (lambda d: d.update(overhead_ms=-0.1), "overhead_ms"),
    "unknown field": (lambda d: d.update(entires={}), "entires"),
    "missing entries": (lambda d: d.pop("entries"), "entries"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_load_rejects_broken_tables(tmp_path: Path, case: str) -> None:
    mutate, needle = BROKEN[case]
    data = _broken(mutate)
    text = json.dumps(data)  # NaN is written as the non-standard token Python's json accepts back
    with pytest.raises(BadInputError) as info:
        load_table(_write(tmp_path, text))
    assert needle in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_load_rejects_non_json(tmp_path: Path, text: str) -> None:
    with pytest.raises(BadInputError) as info:
        load_table(_write(tmp_path, text))
    assert "\n" not in info.value.message


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        load_table(tmp_path / "absent.json")


def test_lookup_and_missing_key() -> None:
    table = _table()
    k = candidate_keys(GEOMETRY)[0]
    assert table.lookup(k) == pytest.approx(_mean(k))
    missing = "sep_conv_3x3-input:99x99x8-output:99x99x8-stride:1"
    with pytest.raises(BadInputError) as info:
        table.lookup(missing)
    message = info.value.message
    assert missing in message and "sdnas lut build --target x86-cpu-ort --space darts --setting cifar --backend ort" in message


def test_check_geometry() -> None:
    table = _table()
    table.check_geometry(NetworkGeometry(**GEOMETRY.to_dict()))
    other = NetworkGeometry("cifar", layers=5, channels=16, input_size=16, in_channels=1, num_classes=10)
    with pytest.raises(BadInputError) as info:
        table.check_geometry(other)
    assert "another geometry (channels 8 (table) vs 16);" in info.value.message  # only the differing field


def test_predict_latency_hand_computed() -> None:
    table = _table(overhead=0.25)
    # DARTS_V2 at cifar layers 5 (reductions at cells 1 and 3), C=8, 16x16 input, 1 channel, 10 classes.
    # stem: 16x16x1 -> 16x16x24; cells 0 (C8, 16x16), 1 (red C16, 16->8), 2 (C16, 8), 3 (red C32, 8->4), 4 (C32, 4).
    len_ = {op: len(op) for op in ("sep_conv_3x3", "skip_connect", "dil_conv_3x3", "max_pool_3x3",
                                   "stem_cifar", "preprocess_relu_conv_bn", "factorized_reduce",
                                   "global_pool_classifier")}

    def ms(op: str, out_h: int, stride: int) -> float:
        return 0.001 * (out_h + stride + len_[op])

    def normal(h: int) -> float:  # 5 sep_conv_3x3, 2 skip_connect, 1 dil_conv_3x3, all stride 1
        return 5 * ms("sep_conv_3x3", h, 1) + 2 * ms("skip_connect", h, 1) + ms("dil_conv_3x3", h, 1)

    def reduce(h_out: int) -> float:  # max_pool from inputs 0/1: 5 at stride 2; skip_connect from node 2: 3 at stride 1
        return 5 * ms("max_pool_3x3", h_out, 2) + 3 * ms("skip_connect", h_out, 1)

    pre = "preprocess_relu_conv_bn"
    expected = 0.25 + ms("stem_cifar", 16, 1) + ms("global_pool_classifier", 1, 1)
    expected += normal(16) + 2 * ms(pre, 16, 1)                                # cell 0
    expected += reduce(8) + 2 * ms(pre, 16, 1)                                 # cell 1
    expected += normal(8) + ms("factorized_reduce", 8, 2) + ms(pre, 8, 1)      # cell 2
    expected += reduce(4) + 2 * ms(pre, 8, 1)                                  # cell 3
    expected += normal(4) + ms("factorized_reduce", 4, 2) + ms(pre, 4, 1)      # cell 4
    assert predict_latency(table, DARTS_V2) == pytest.approx(expected, rel=1e-12)
    assert sum(network_keys(DARTS_V2, GEOMETRY).values()) == 52


def test_predict_latency_missing_entry_names_build() -> None:
    table = _table()
    victim = next(k for k in network_keys(DARTS_V2, GEOMETRY))
    del table.entries[victim]
    with pytest.raises(BadInputError, match="sdnas lut build"):
        predict_latency(table, DARTS_V2)
