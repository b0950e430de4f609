"""Geometry and keys: the keys must describe exactly the network nets/darts_net.py builds."""

from __future__ import annotations

import random

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.geometry import (
    EDGE_PRIMITIVES,
    KeyParts,
    NetworkGeometry,
    candidate_keys,
    cell_plan,
    edge_keys,
    key,
    network_keys,
    parse_key,
    random_genotype,
)
from sdnas_deploy.spaces.darts.settings import build_network
from sdnas_deploy.spaces.darts.genotype import REFERENCE_GENOTYPES, Genotype
from sdnas_deploy.spaces.darts.build_op import traced_keys

SMALL = {
    "cifar": dict(layers=5, channels=8, input_size=16, in_channels=1, num_classes=10),
    "cifar_odd": dict(layers=5, channels=8, input_size=15, in_channels=3, num_classes=7),
    "mobile": dict(layers=4, channels=8, input_size=64, in_channels=3, num_classes=5),
}


def _geometry(name: str) -> NetworkGeometry:
    return NetworkGeometry(setting=name.split("_")[0], **SMALL[name])


def _genotypes() -> list[Genotype]:
    rng = random.Random(1234)
    return list(REFERENCE_GENOTYPES.values()) + [random_genotype(rng) for _ in range(3)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_network_keys_match_built_network(name: str) -> None:
    geometry = _geometry(name)
    for genotype in _genotypes():
        net = build_network(genotype, geometry.setting, geometry.num_classes, in_channels=geometry.in_channels,
                            layers=geometry.layers, channels=geometry.channels).eval()
        observed = traced_keys(net, genotype, geometry)
        expected = network_keys(genotype, geometry)
        assert observed == expected
        fixed = 3 if geometry.setting == "mobile" else 2  # stem(s) + pool/classifier
        assert sum(expected.values()) == (8 + 2) * geometry.layers + fixed  # edges + preprocess per cell


def test_network_keys_with_partial_concat_match_built_network() -> None:
    """A genotype concatenating fewer nodes changes the channel counts downstream; keys follow."""
    base = REFERENCE_GENOTYPES["darts_v2"]
    genotype = Genotype(normal=base.normal, normal_concat=(4, 5), reduce=base.reduce, reduce_concat=(3, 4, 5))
    geometry = _geometry("cifar")
    net = build_network(genotype, "cifar", geometry.num_classes, in_channels=geometry.in_channels,
                        layers=geometry.layers, channels=geometry.channels).eval()
    assert traced_keys(net, genotype, geometry) == network_keys(genotype, geometry)


def test_cell_plan_shapes() -> None:
    plan = cell_plan(NetworkGeometry.from_setting("cifar"))
    assert len(plan) == 20
    assert [c.index for c in plan if c.reduction] == [6, 13]
    assert (plan[0].C_prev_prev, plan[0].C_prev, plan[0].C, plan[0].hw_in) == (108, 108, 36, 32)
    assert (plan[6].C, plan[6].hw_in, plan[6].hw_out) == (72, 32, 16)
    assert plan[7].reduction_prev and plan[7].C_prev_prev == 144 and plan[7].hw_prev_prev == 32
    assert plan[-1].hw_out == 8 and plan[-1].C_out == 4 * 144
    mobile = cell_plan(NetworkGeometry.from_setting("mobile"))
    assert mobile[0].reduction_prev and (mobile[0].hw_prev_prev, mobile[0].hw_in) == (56, 28)
    assert mobile[-1].hw_out == 7


def test_from_setting_defaults_and_validation() -> None:
    assert NetworkGeometry.from_setting("cifar") == NetworkGeometry("cifar", 20, 36, 32, 3, 10)
    assert NetworkGeometry.from_setting("mobile", num_classes=1000) == NetworkGeometry("mobile", 14, 48, 224, 3, 1000)
    with pytest.raises(BadInputError, match="did you mean 'mobile'"):
        NetworkGeometry.from_setting("mobil")
    with pytest.raises(BadInputError, match="layers"):
        NetworkGeometry.from_setting("cifar", layers=0)
    with pytest.raises(BadInputError, match="unknown geometry key 'chanels'"):
        NetworkGeometry.from_dict({**NetworkGeometry.from_setting("cifar").to_dict(), "chanels": 3})


@pytest.mark.parametrize("name", sorted(SMALL))
def test_network_keys_are_candidates(name: str) -> None:
    geometry = _geometry(name)
    candidates = set(candidate_keys(geometry))
    rng = random.Random(7)
    for _ in range(50):
        assert set(network_keys(random_genotype(rng), geometry)) <= candidates
    for genotype in REFERENCE_GENOTYPES.values():
        assert set(network_keys(genotype, geometry)) <= candidates


def test_candidate_keys_sorted_unique_and_complete_default_geometry() -> None:
    geometry = NetworkGeometry.from_setting("cifar")
    keys = candidate_keys(geometry)
    assert keys == sorted(set(keys))
    assert "sep_conv_3x3-input:32x32x72-output:16x16x72-stride:2" in keys
    assert "skip_connect-input:16x16x72-output:16x16x72-stride:1" in keys  # node edge inside a reduction cell
    assert "global_pool_classifier-input:8x8x576-output:1x1x10-stride:1" in keys
    assert {parse_key(k).op for k in keys} >= set(EDGE_PRIMITIVES) | {"stem_cifar", "factorized_reduce"}
    assert not any(k.startswith("none-") for k in keys)


def test_edge_keys_layout() -> None:
    geometry = _geometry("cifar")
    table = edge_keys(geometry)
    plan = cell_plan(geometry)
    assert len(table) == geometry.layers and all(len(rows) == 14 for rows in table)
    reduction = next(c.index for c in plan if c.reduction)
    assert parse_key(table[reduction][0]["max_pool_3x3"]).stride == 2  # input 0 -> node 0
    assert parse_key(table[reduction][2]["max_pool_3x3"]).stride == 2  # input 0 -> node 1
    assert parse_key(table[reduction][4]["max_pool_3x3"]).stride == 1  # node 0 (state 2) -> node 1
    assert parse_key(table[reduction][4]["max_pool_3x3"]).input[0] == plan[reduction].hw_out
    assert set(table[0][0]) == set(EDGE_PRIMITIVES)
    assert set().union(*(set(row.values()) for rows in table for row in rows)) <= set(candidate_keys(geometry))


def test_key_round_trip() -> None:
    text = key("sep_conv_3x3", (32, 32, 36), (16, 16, 36), 2)
    assert text == "sep_conv_3x3-input:32x32x36-output:16x16x36-stride:2"
    assert parse_key(text) == KeyParts("sep_conv_3x3", (32, 32, 36), (16, 16, 36), 2)
    for k in candidate_keys(_geometry("mobile")):
        p = parse_key(k)
        assert key(p.op, p.input, p.output, p.stride) == k


@pytest.mark.parametrize("bad", [
    "", "sep_conv_3x3", "sep_conv_3x3-input:32x32-output:16x16x36-stride:2",
    "sep_conv_3x3-input:32x32x36-output:16x16x36-stride:two", "sep_conv_3x3-input:32x32x36-output:16x16x36",
    "sep_conv_9x9-input:32x32x36-output:16x16x36-stride:2", "none-input:8x8x8-output:8x8x8-stride:1",
    "sep_conv_3x3-input:0x32x36-output:16x16x36-stride:2", " sep_conv_3x3-input:32x32x36-output:16x16x36-stride:2",
    None, 42,
])
def test_parse_key_rejects_malformed(bad: object) -> None:
    with pytest.raises(BadInputError) as info:
        parse_key(bad)
    assert "\n" not in info.value.message


def test_random_genotype_valid_and_deterministic() -> None:
    a = [random_genotype(random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(0)
    for _ in range(100):
        g = random_genotype(rng)
        assert Genotype.from_dict(g.to_dict()) == g
        for cell in ("normal", "reduce"):
            entries, _ = g.cell(cell)
            assert all(op != "none" for op, _ in entries)
            assert all(entries[2 * n][1] != entries[2 * n + 1][1] for n in range(4))
