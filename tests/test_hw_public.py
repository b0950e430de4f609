"""hw/public.py and the shipped public tables: every device setting, what the source says, usable rows, and the
fitted tables' provenance and held-out figures."""

from __future__ import annotations

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.hw.lut import load_table, predict_latency
from sdnas_deploy.hw.public import (
    DEVICES, LAYER_TABLE_SUMS, NOT_STATED, device_rows, devices_of, get_device, public_archs, public_geometry, usable,
)
from sdnas_deploy.hw.targets import TARGETS, get_target, require_measurable, resolve_table
from sdnas_deploy.spaces import get_space


def test_every_column_of_the_source_has_a_device() -> None:
    from sdnas_deploy.hw.public import _table

    for space in ("nb201", "fbnet"):
        columns = set(_table(space)[1])
        named = {d.columns[space] for d in devices_of(space)}
        assert named == columns and len(devices_of(space)) == 20
    assert len({d.name for d in DEVICES}) == len(DEVICES)


def test_names_aliases_and_what_is_stated() -> None:
    assert get_device("1080ti_1").name == get_device("gtx1080ti").name == "gtx1080ti-b1"
    assert get_device("gold_6240").name == "xeon-gold-6240"
    dev = get_device("titanx_256")
    assert dev.batch == 256 and dev.family == "titanx" and "fbnet" not in dev.columns
    info = get_device("raspi4").describe("fbnet")
    assert info["precision"] == info["runtime"] == NOT_STATED and info["note"] == LAYER_TABLE_SUMS
    assert get_device("pixel2").describe("fbnet")["note"] is None
    with pytest.raises(BadInputError, match="did you mean"):
        get_device("raspi5")


def test_rows_leave_out_degenerate_cells_only() -> None:
    space = get_space("nb201")
    assert len(public_archs("nb201")) == 15625 and len(public_archs("fbnet")) == 5000
    keep = usable("nb201")
    dropped = [a for a, ok in zip(public_archs("nb201"), keep) if not ok]
    assert 0 < len(dropped) < 400 and all(space.degenerate(space.arch_from_string(a)) for a in dropped)
    rows = device_rows("nb201", "raspi4")
    assert len(rows) == sum(keep) and min(r["latency_ms"] for r in rows) > 1.0
    assert all(usable("fbnet"))
    with pytest.raises(BadInputError, match="no measurements of space 'fbnet'"):
        device_rows("fbnet", "titanx-b256")


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_every_public_target_ships_a_validated_table(space: str) -> None:
    geometry = public_geometry(space)
    for device in devices_of(space):
        table = load_table(resolve_table(device.name, "cifar", space=space))
        fp = table.fingerprint
        assert table.space == space and table.geometry == geometry and table.method == "fitted"
        assert fp["origin"] == "public" and fp["column"] == device.columns[space] and fp["batch"] == device.batch
        assert fp["backend"] == NOT_STATED and fp["precision"] == NOT_STATED
        v = fp["validation"]
        assert v["n"] + fp["fit"]["rows"] == fp["fit"]["networks"] and v["n"] > 900
        assert 0.7 < v["spearman"] <= 1.0
        assert set(table.entries) == set(get_space(space).candidate_keys(geometry))


def test_table_predicts_a_device_it_was_fitted_for() -> None:
    table = load_table(resolve_table("xeon-silver-4210r", "cifar", space="nb201"))
    space = get_space("nb201")
    rows = device_rows("nb201", "xeon-silver-4210r")[:50]
    errors = [abs(predict_latency(table, space.arch_from_string(r["arch"])) - r["latency_ms"]) / r["latency_ms"]
              for r in rows]
    assert sum(errors) / len(errors) < 0.1


def test_public_targets_cannot_be_measured_here_and_say_what_to_do() -> None:
    assert TARGETS["raspi4"].origin == "public"
    with pytest.raises(BadInputError, match="public measurements"):
        require_measurable("raspi4")
    with pytest.raises(BadInputError, match="has tables for fbnet/cifar, nb201/cifar"):
        resolve_table("raspi4", "small", space="fbnet")
    assert get_target("jetson").name == "jetson-orin"
    with pytest.raises(BadInputError) as info:
        resolve_table("jetson", "cifar", space="nb201")
    text = info.value.message
    assert "--n 10" in text and "--prior auto" in text and "sdnas lut build" in text
