"""nas/budget_derive.py: the final architecture is moved into the budget with the least probability lost, never
into a degenerate network, and spaces that derive by their own rule are left alone."""

from __future__ import annotations

import torch

from sdnas_deploy.hw.flops import predict_flops
from sdnas_deploy.nas.budget_derive import derive_within
from sdnas_deploy.spaces import get_space
from sdnas_deploy.spaces.nb201.ops import OPS


def _supernet(name: str):
    space = get_space(name)
    if name == "darts":
        geometry = space.search_geometry(8, 1, 3, layers=3, channels=4)
    else:
        geometry = space.geometry("small", input_size=8, in_channels=1, num_classes=3)
    return space, space.build_supernet(geometry), geometry


def test_fits_already_means_untouched() -> None:
    space, net, geometry = _supernet("nb201")
    arch, record = derive_within(space, net, lambda a: float(predict_flops(space, a, geometry)), 1e9)
    assert arch == net.derive() and record["applied"] is False and record["met"] is True


def test_nb201_moves_the_least_likely_choices_until_it_fits() -> None:
    space, net, geometry = _supernet("nb201")
    with torch.no_grad():
        net.alphas_edges.fill_(0.0)
        net.alphas_edges[:, OPS.index("nor_conv_3x3")] = 3.0  # every edge prefers the costliest op ...
        net.alphas_edges[0, OPS.index("nor_conv_1x1")] = 2.9  # ... edge 0 only just
    cost = lambda a: float(predict_flops(space, a, geometry))  # noqa: E731
    plain = net.derive()
    budget = cost(plain) - 0.5 * (cost(plain) - cost(space.arch_from_string(
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")))
    arch, record = derive_within(space, net, cost, budget)
    assert record["applied"] and record["met"] and cost(arch) <= budget and record["steps"] == 1
    assert arch.edges[0] == "nor_conv_1x1" and arch.edges[1:] == ("nor_conv_3x3",) * 5
    arch, record = derive_within(space, net, cost, 1e-9)  # unreachable: stops, says so, never degenerate
    assert record["met"] is False and space.degenerate(arch) is None


def test_layerwise_projection_respects_allowed_blocks() -> None:
    space, net, geometry = _supernet("proxyless")
    with torch.no_grad():  # every layer prefers the costliest block, so half its cost is reachable (not α's noise)
        net.alphas_layers.zero_()
        net.alphas_layers[:, space.d.candidates.index("k7_e6")] = 2.0
    cost = lambda a: float(predict_flops(space, a, geometry))  # noqa: E731
    arch, record = derive_within(space, net, cost, 0.5 * cost(net.derive()))
    space.check_arch(arch, "small")
    assert record["met"] and cost(arch) <= record["budget"]


def test_darts_is_left_to_its_own_rule() -> None:
    space, net, geometry = _supernet("darts")
    arch, record = derive_within(space, net, lambda a: 1.0, 0.5)
    assert arch == net.derive() and record["met"] is False and "own rule" in record["reason"]


def test_a_degenerate_derive_is_repaired_within_the_budget() -> None:
    space, net, geometry = _supernet("nb201")
    with torch.no_grad():
        net.alphas_edges.fill_(0.0)
        net.alphas_edges[:, OPS.index("none")] = 2.0  # everything says none: the cell ignores its input
    cost = lambda a: float(predict_flops(space, a, geometry))  # noqa: E731
    assert space.degenerate(net.derive()) is not None
    arch, record = derive_within(space, net, cost, 1e9)
    assert space.degenerate(arch) is None and record["repaired"] and record["met"]
    assert sum(op != "none" for op in arch.edges) == 1


def test_error_estimate_reads_the_tables_provenance() -> None:
    from sdnas_deploy.hw.lut import error_estimate, load_table
    from sdnas_deploy.hw.targets import resolve_table

    public = load_table(resolve_table("xeon-gold-6240", "cifar", space="nb201"))
    assert error_estimate(public) == public.fingerprint["validation"]["median_abs_pct_error"] / 100
    measured = load_table(resolve_table("x86-cpu-ort", "cifar", space="darts", kind="microbenchmark"))
    assert error_estimate(measured) is None


def test_budget_margin_is_validated() -> None:
    import pytest

    from sdnas_deploy.errors import BadInputError
    from sdnas_deploy.nas.config import SearchConfig, validate

    with pytest.raises(BadInputError, match="budget_margin"):
        validate(SearchConfig(budget_margin=1.5))
