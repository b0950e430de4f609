"""Whole-network measurement: sane rows on a tiny network, CSV round trip, malformed CSVs rejected."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry
from sdnas_deploy.hw.whole import (
    genotypes_of, measure_many, measure_network, read_measurements_csv, read_measurements_meta,
    sample_architectures, write_measurements_csv,
)
from sdnas_deploy.spaces.darts.genotype import DARTS_V2, to_arch_string

GEOMETRY = NetworkGeometry("cifar", layers=5, channels=8, input_size=16, in_channels=1, num_classes=10)
ARCH = to_arch_string(DARTS_V2)


def test_sample_architectures_distinct_and_reproducible() -> None:
    first = sample_architectures(20, seed=7)
    assert len({to_arch_string(g) for g in first}) == 20
    assert [to_arch_string(g) for g in sample_architectures(20, seed=7)] == [to_arch_string(g) for g in first]
    assert to_arch_string(sample_architectures(1, seed=8)[0]) != to_arch_string(first[0])
    with pytest.raises(BadInputError):
        sample_architectures(0, seed=1)


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_measure_network_stats_are_sane(backend: str) -> None:
    stats = measure_network(DARTS_V2, GEOMETRY, backend=backend, warmup=1, repeats=3)
    assert stats["arch"] == ARCH and stats["backend"] == backend
    assert 1 <= stats["count"] <= 3 and stats["repeats"] == 3
    assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] and math.isfinite(stats["mean"])
    assert stats["p50"] < 1000.0  # a 5-cell, 8-channel net on 16x16 runs in well under a second


def test_measure_many_csv_round_trip(tmp_path: Path) -> None:
    genotypes = sample_architectures(2, seed=0)
    rows = measure_many(genotypes, GEOMETRY, backend="ort", repeats=3, warmup=1, progress=False)
    assert [r["arch"] for r in rows] == [to_arch_string(g) for g in genotypes]
    for row in rows:
        assert 0 < row["latency_ms"] <= row["p90_ms"] and row["mean_ms"] > 0 and 1 <= row["count"] <= 3
    path = write_measurements_csv(tmp_path / "m.csv", rows, {"target": "x86-cpu-ort", "backend": "ort",
                                                             "geometry": GEOMETRY, "date": "2026-01-01"})
    text = path.read_text()
    assert text.startswith("# target=x86-cpu-ort\n") and "arch,latency_ms,p90_ms,mean_ms,count\n" in text
    assert read_measurements_csv(path) == rows
    meta = read_measurements_meta(path)
    assert NetworkGeometry.from_dict(meta["geometry"]) == GEOMETRY and meta["backend"] == "ort"
    assert [to_arch_string(g) for g in genotypes_of(rows)] == [r["arch"] for r in rows]


def test_minimal_csv_with_only_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f'# measured elsewhere\narch,latency_ms\n"{ARCH}",2.5\n\n')
    assert read_measurements_csv(path) == [{"arch": ARCH, "latency_ms": 2.5}]


@pytest.mark.parametrize("body, fragment", [
    (f'arch\n"{ARCH}"\n', "missing column 'latency_ms'"),
    (f'arch,latency_ms,speed\n"{ARCH}",1.0,2\n', "unknown column 'speed'"),
    ('arch,latency_ms\n"normal=bogus:0|reduce=x:1",1.0\n', ":3:"),
    (f'arch,latency_ms\n"{ARCH}",nan\n', "positive finite"),
    (f'arch,latency_ms\n"{ARCH}",-1\n', "positive finite"),
    (f'arch,latency_ms\n"{ARCH}",0\n', "positive finite"),
    (f'arch,latency_ms\n"{ARCH}",fast\n', "not a number"),
    (f'arch,latency_ms\n{ARCH},1.0\n', "fields but the header has 2"),
    ("arch,latency_ms\n", "no measurements"),
    ("# only comments\n", "no header"),
])
def test_malformed_csv_rejected_with_line_number(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("# target=t\n" + body)
    with pytest.raises(BadInputError) as info:
        read_measurements_csv(path)
    message = info.value.message
    assert fragment in message and "\n" not in message


def test_bad_latency_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f'# a\n# b\narch,latency_ms\n"{ARCH}",1.0\n"{ARCH}",inf\n')
    with pytest.raises(BadInputError, match=r"bad\.csv:5: latency_ms"):
        read_measurements_csv(path)


def test_missing_file_and_empty_rows_rejected(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        read_measurements_csv(tmp_path / "nope.csv")
    with pytest.raises(BadInputError):
        write_measurements_csv(tmp_path / "x.csv", [], {})
    assert not (tmp_path / "x.csv").exists()


def test_sessions_report_the_median_session_of_any_space() -> None:
    from sdnas_deploy.hw.targets import table_geometry
    from sdnas_deploy.hw.whole import measure_network, sample_architectures

    geometry = table_geometry("proxyless", "small", in_channels=1)
    arch = sample_architectures(1, 0, "proxyless", "small")[0]
    stats = measure_network(arch, geometry, repeats=3, warmup=1, space="proxyless", sessions=3)
    assert stats["session_p50s"] == sorted(stats["session_p50s"]) and len(stats["session_p50s"]) == 3
    assert stats["p50"] == stats["session_p50s"][1] and stats["arch"].count("-") == 8
    with pytest.raises(BadInputError, match="sessions"):
        measure_network(arch, geometry, repeats=1, space="proxyless", sessions=0)
