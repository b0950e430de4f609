"""Conformance of every registered space × setting to the Space protocol (timm-style contract tests).

A new space gets all of these by registering in ``spaces.SPACES``: supernet forward/backward, derive →
discretize round trip, codec round trips, the discrete network's forward, ONNX export verified in ONNX
Runtime, latency keys ⊆ candidate keys and equal to what forward hooks see, per-key FLOPs summing to
``sdnas inspect``'s count, and one-line refusals of another space's architecture.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.hw.flops import predict_flops
from sdnas_deploy.spaces import SPACES, arch_from_json, get_space
from sdnas_deploy.spaces.complexity import inspect_network

CASES = [(name, setting) for name, space in sorted(SPACES.items()) for setting in space.settings]
IDS = [f"{name}-{setting}" for name, setting in CASES]
SMALL_INPUT = 16  # every test network here reads 16x16x1 digits-sized images


def _geometry(name: str, setting: str, input_size: int = SMALL_INPUT):
    space = get_space(name)
    extra = {"layers": 3, "channels": 4} if name == "darts" else {}
    return space, space.geometry(setting, input_size=input_size, in_channels=1, num_classes=5, **extra)


def _arch(space, setting: str, seed: int = 0):
    return space.sample(random.Random(seed), setting)


@pytest.mark.parametrize(("name", "setting"), CASES, ids=IDS)
def test_supernet_forward_backward_and_derive_round_trip(name: str, setting: str) -> None:
    space, geometry = _geometry(name, setting)
    torch.manual_seed(0)
    net = space.build_supernet(geometry).train()
    x = torch.randn(2, 1, SMALL_INPUT, SMALL_INPUT)
    loss = net(x).logsumexp(dim=1).sum()
    loss.backward()
    assert all(a.grad is not None and float(a.grad.abs().sum()) > 0 for a in net.arch_parameters())
    assert set(net.named_alphas()) == set(net.arch_labels())
    assert {id(p) for p in net.weight_parameters()}.isdisjoint({id(a) for a in net.arch_parameters()})
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.normal_()
    derived = net.derive()
    masks = space.discretize(derived, net)
    assert set(masks) == set(net.arch_labels())
    with torch.no_grad():  # α peaked on the masks derives the same architecture again
        for label, alpha in net.named_alphas().items():
            alpha.copy_(50.0 * masks[label])
    again = space.discretize(net.derive(), net)  # the same architecture (DARTS may list a node's edges swapped)
    assert all(torch.equal(again[label], masks[label]) for label in masks)
    assert net(x, masks).shape == (2, 5)
    fresh = net.new()
    assert all(torch.equal(a, b) for a, b in zip(fresh.arch_parameters(), net.arch_parameters()))


@pytest.mark.parametrize(("name", "setting"), CASES, ids=IDS)
def test_codec_round_trips_and_network_forward(name: str, setting: str) -> None:
    space, geometry = _geometry(name, setting)
    arch = _arch(space, setting)
    data = json.loads(json.dumps(space.arch_to_dict(arch)))
    assert data["space"] == name
    assert arch_from_json(data)[1] == arch and space.arch_from_dict(data) == arch
    assert space.arch_from_string(space.arch_to_string(arch)) == arch
    net = space.build_network(arch, geometry).eval()
    assert net(torch.randn(3, 1, SMALL_INPUT, SMALL_INPUT)).shape == (3, 5)
    assert space.geometry_from_dict(json.loads(json.dumps(geometry.to_dict()))) == geometry


@pytest.mark.parametrize(("name", "setting"), CASES, ids=IDS)
def test_latency_keys_are_candidates_and_match_forward_hooks(name: str, setting: str) -> None:
    # ImageNet-style settings (/32) need more than 16 px, or the last stages run at 1x1 and hooks cannot see strides
    large = get_space(name).setting(setting).input_size is not None
    space, geometry = _geometry(name, setting, 64 if large else SMALL_INPUT)
    candidates = set(space.candidate_keys(geometry))
    for seed in range(3):
        arch = _arch(space, setting, seed)
        keys = space.network_keys(arch, geometry)
        assert set(keys) <= candidates
        assert space.traced_keys(arch, geometry) == keys


@pytest.mark.parametrize(("name", "setting"), CASES, ids=IDS)
def test_flops_per_key_sum_to_inspect(name: str, setting: str) -> None:
    space, geometry = _geometry(name, setting)
    arch = _arch(space, setting, 1)
    extra = {"layers": 3, "channels": 4} if name == "darts" else {}
    info = inspect_network(arch, setting, num_classes=5, in_channels=1, input_size=SMALL_INPUT, space=space, **extra)
    assert predict_flops(space, arch, geometry) == pytest.approx(info["macs_m"], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("name", "setting"), CASES, ids=IDS)
def test_expected_cost_is_the_prediction_at_one_hot_alpha(name: str, setting: str) -> None:
    space, geometry = _geometry(name, setting)
    costs = {k: 0.01 * (i + 1) for i, k in enumerate(space.candidate_keys(geometry))}
    model = space.cost_model(geometry, costs.__getitem__, overhead=0.5)
    net = space.build_supernet(space.search_geometry(SMALL_INPUT, 1, 5, setting, *((3, 4) if name == "darts" else ())))
    arch = _arch(space, setting, 2)
    try:
        masks = space.discretize(arch, net)
    except BadInputError:
        pytest.skip("the supernet of this setting has another layout")
    alphas = {label: 60.0 * m - 60.0 * (1 - m) for label, m in masks.items()}
    if name == "darts":  # dropped edges: all mass on `none` (column 0)
        alphas = {label: a + 120.0 * (m.sum(1, keepdim=True) == 0) * torch.nn.functional.one_hot(
            torch.zeros(a.shape[0], dtype=torch.long), a.shape[1]) for (label, a), m in zip(alphas.items(), masks.values())}
    expected = float(model.expected(alphas))
    predicted = 0.5 + sum(n * costs[k] for k, n in space.network_keys(arch, geometry).items())
    assert expected == pytest.approx(predicted, rel=1e-4)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_onnx_export_verified_in_ort(name: str, tmp_path: Path) -> None:
    from sdnas_deploy.export.onnx_export import export_onnx, verify_onnx

    space = get_space(name)
    setting = space.default_setting
    _, geometry = _geometry(name, setting)
    net = space.build_network(_arch(space, setting), geometry).eval()
    path = export_onnx(net, tmp_path / "model.onnx", (1, 1, SMALL_INPUT, SMALL_INPUT), opset=17)
    images = np.random.default_rng(0).standard_normal((8, 1, SMALL_INPUT, SMALL_INPUT)).astype(np.float32)
    result = verify_onnx(path, net, images)
    assert result.passed and result.max_abs_diff < 1e-4


@pytest.mark.parametrize("name", sorted(SPACES))
def test_another_spaces_architecture_is_refused_in_one_line(name: str) -> None:
    space = get_space(name)
    other = next(get_space(n) for n in sorted(SPACES) if n != name)
    data = other.arch_to_dict(other.sample(random.Random(0), other.search_setting))
    with pytest.raises(BadInputError) as info:
        arch_from_json(data, "a.json", space=name)
    assert "\n" not in info.value.message and other.name in info.value.message
    with pytest.raises(BadInputError):
        space.arch_from_dict(data, "a.json")


def test_stride_between_matches_padded_convs() -> None:
    from sdnas_deploy.spaces.keys import stride_between

    assert [stride_between(h, o) for h, o in ((32, 32), (32, 16), (7, 4), (224, 56), (1, 1))] == [1, 2, 2, 4, 1]
