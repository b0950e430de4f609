"""Parameter and multiply-add counts against the published DARTS numbers and an independent count."""

from __future__ import annotations


import pytest
import torch
from torch import nn

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.settings import build_network
from sdnas_deploy.spaces.complexity import count_macs, count_parameters, inspect_network
from sdnas_deploy.spaces.darts.genotype import DARTS_V2


def _hook_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Conv/linear MACs counted by forward hooks — independent of fvcore."""
    total = 0

    def conv(module: nn.Conv2d, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module: nn.Linear, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * module.in_features

    handles = [m.register_forward_hook(conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(linear) for m in model.modules() if isinstance(m, nn.Linear)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total


def test_count_macs_on_a_model_with_known_cost() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    report = count_macs(model, (1, 4, 4))
    assert report.macs == 1 * 2 * 9 * 16 + 8 * 3
    assert report.input_shape == (1, 1, 4, 4)
    assert report.skipped_ops.get("max_pool2d") == 1
    assert report.fvcore_total >= report.macs


def test_count_macs_rejects_bad_shapes() -> None:
    with pytest.raises(BadInputError, match="input shape"):
        count_macs(nn.Linear(2, 2), (2, 2))
    with pytest.raises(BadInputError, match="input shape"):
        count_macs(nn.Conv2d(1, 1, 1), (4, 1, 8, 8))


def test_parameters_exclude_the_auxiliary_head_and_macs_match_hook_count() -> None:
    plain = build_network(DARTS_V2, "cifar", 10, layers=5, channels=8)
    with_aux = build_network(DARTS_V2, "cifar", 10, layers=5, channels=8, auxiliary=True)
    assert count_parameters(plain) == count_parameters(with_aux)
    assert sum(p.numel() for p in with_aux.parameters()) > count_parameters(with_aux)
    with_aux.train()
    report = count_macs(with_aux, (3, 32, 32))
    assert with_aux.training, "count_macs restores the training mode"
    assert report.macs == _hook_macs(plain, (3, 32, 32)), "aux head is not counted and fvcore agrees with hooks"
    assert "batch_norm" in report.by_operator and "add" in report.skipped_ops


def test_darts_v2_cifar_setting_matches_published_size() -> None:
    info = inspect_network(DARTS_V2, "cifar", num_classes=10, in_channels=3, input_size=32)
    assert info["layers"] == 20 and info["channels"] == 36
    assert info["params_m"] == pytest.approx(3.3, rel=0.03)  # published: 3.3M
    assert info["warnings"] == [] and info["skip_count_normal"] == 2


def test_darts_v2_mobile_setting_matches_published_size_and_budget() -> None:
    info = inspect_network(DARTS_V2, "mobile", num_classes=1000)
    assert info["input_size"] == 224 and info["layers"] == 14 and info["channels"] == 48
    assert info["params_m"] == pytest.approx(4.7, rel=0.03)  # published: 4.7M
    # Published 574M is not reproducible from the reference code by any conv/linear count:
    # others measured 523M (conv+fc). Ours must sit in that band and under the 600M budget.
    assert 0.90 * 574 < info["macs_m"] < 574
    assert info["macs_m"] == pytest.approx(523, rel=0.03)
    assert info["fvcore_flops"] > info["macs"]
    assert info["warnings"] == []


def test_mobile_over_budget_warns() -> None:
    info = inspect_network(DARTS_V2, "mobile", num_classes=1000, channels=64)
    assert info["macs_m"] > 600
    assert len(info["warnings"]) == 1 and "600M" in info["warnings"][0]


def test_inspect_needs_an_input_size_for_cifar() -> None:
    with pytest.raises(BadInputError, match="input-size"):
        inspect_network(DARTS_V2, "cifar", num_classes=10, in_channels=3)
