"""FLOPs tables: per-key MMAC add up to count_macs of the built network; expected cost exact at one-hot α."""

from __future__ import annotations

import random

import pytest

from sdnas_deploy.hw.expected import expected_cost
from sdnas_deploy.hw.flops import flops_cost_model, flops_of, predict_flops
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, fixed_keys, cell_plan, random_genotype
from sdnas_deploy.spaces.darts.settings import build_network
from sdnas_deploy.spaces.complexity import count_macs
from sdnas_deploy.spaces.darts.genotype import DARTS_V2
from sdnas_deploy.spaces import get_space

from test_darts_expected import _one_hot_alphas

DARTS = get_space("darts")

CIFAR = NetworkGeometry("cifar", layers=5, channels=8, input_size=16, in_channels=1, num_classes=10)
MOBILE = NetworkGeometry("mobile", layers=5, channels=8, input_size=32, in_channels=3, num_classes=7)


def _network_mmac(genotype, geometry: NetworkGeometry) -> float:
    model = build_network(genotype, geometry.setting, geometry.num_classes, in_channels=geometry.in_channels,
                          layers=geometry.layers, channels=geometry.channels, auxiliary=False)
    size = geometry.input_size
    return count_macs(model, (geometry.in_channels, size, size)).macs / 1e6


@pytest.mark.parametrize("geometry", [CIFAR, MOBILE], ids=["cifar", "mobile"])
def test_predicted_flops_equal_count_macs_of_the_built_network(geometry: NetworkGeometry) -> None:
    rng = random.Random(3)
    for genotype in [DARTS_V2, random_genotype(rng), random_genotype(rng)]:
        predicted = predict_flops(DARTS, genotype, geometry)
        assert predicted > 0
        assert predicted == pytest.approx(_network_mmac(genotype, geometry), rel=1e-9, abs=1e-9)


def test_flops_of_known_ops() -> None:
    # classifier: linear C_out x classes MACs; pools and identity have none
    plan = cell_plan(CIFAR)
    head = fixed_keys(CIFAR, plan)[-1]
    assert flops_of(DARTS, head, CIFAR) == pytest.approx(plan[-1].C_out * CIFAR.num_classes / 1e6)
    assert flops_of(DARTS, "max_pool_3x3-input:16x16x8-output:16x16x8-stride:1", CIFAR) == 0.0
    assert flops_of(DARTS, "skip_connect-input:16x16x8-output:16x16x8-stride:1", CIFAR) == 0.0
    # sep_conv_3x3 at 16x16x8 stride 1: two (depthwise 3x3 + pointwise 1x1) blocks
    expected = 2 * (16 * 16 * 8 * 9 + 16 * 16 * 8 * 8) / 1e6
    assert flops_of(DARTS, "sep_conv_3x3-input:16x16x8-output:16x16x8-stride:1", CIFAR) == pytest.approx(expected)


def test_expected_flops_equal_predicted_at_one_hot_alpha() -> None:
    model = flops_cost_model(DARTS, CIFAR)
    assert model.unit == "MMAC"
    rng = random.Random(0)
    for genotype in [DARTS_V2] + [random_genotype(rng) for _ in range(3)]:
        a_n, a_r = _one_hot_alphas(genotype)
        got = float(expected_cost(model, {"normal": a_n, "reduce": a_r}).detach())
        want = predict_flops(DARTS, genotype, CIFAR)
        assert got == pytest.approx(want, rel=1e-4)
