"""Expected latency through softmax(α): exact at one-hot α, differentiable, survival-weighted."""

from __future__ import annotations

import random

import torch

from sdnas_deploy.hw.expected import latency_cost_model
from sdnas_deploy.spaces.darts.expected import expected_cost, survival_and_choice
from sdnas_deploy.spaces.darts.geometry import NetworkGeometry, candidate_keys, parse_key, random_genotype
from sdnas_deploy.hw.lut import LatencyTable, predict_latency
from sdnas_deploy.spaces.darts.genotype import DARTS_V2, derive_genotype
from sdnas_deploy.spaces.darts.supernet import discretized_weights

GEOMETRY = NetworkGeometry("cifar", layers=5, channels=8, input_size=16, in_channels=1, num_classes=10)
FINGERPRINT = {"backend": "ort", "provider": "CPUExecutionProvider", "precision": "fp32", "batch": 1, "threads": 1,
               "date": "2026-01-01T00:00:00+00:00", "sdnas_version": "0.0.0"}


OP_WEIGHT = {"max_pool_3x3": 1.0, "avg_pool_3x3": 1.2, "skip_connect": 0.3, "sep_conv_3x3": 4.0, "sep_conv_5x5": 6.0,
             "dil_conv_3x3": 2.5, "dil_conv_5x5": 3.5}


def _table() -> LatencyTable:
    """Distinct per-key costs (op, output size and stride matter) so a wrong edge/cell mapping shows."""
    def mean(k: str) -> float:
        p = parse_key(k)
        return 0.001 * (p.output[0] * OP_WEIGHT.get(p.op, 2.0) + 7 * p.stride)

    entries = {k: {"count": 5, "mean": mean(k), "std": 0.0, "p50": mean(k), "p90": mean(k)} for k in candidate_keys(GEOMETRY)}
    return LatencyTable(target="t", fingerprint=dict(FINGERPRINT), geometry=GEOMETRY, overhead_ms=0.05, entries=entries)


def _one_hot_alphas(genotype, scale: float = 60.0) -> tuple[torch.Tensor, torch.Tensor]:
    """α whose softmax is (numerically) the derived architecture: large on kept (edge, op), none elsewhere."""
    masks = discretized_weights(genotype)
    out = []
    for mask in masks.values():
        alphas = torch.zeros_like(mask)
        alphas[:, 0] = scale * (1 - mask.sum(dim=1))  # dropped edges: all mass on `none`
        out.append(alphas + scale * mask)
    return out[0], out[1]


def test_expected_latency_equals_the_table_prediction_at_one_hot_alpha() -> None:
    table = _table()
    model = latency_cost_model(table)
    rng = random.Random(0)
    for genotype in [DARTS_V2] + [random_genotype(rng) for _ in range(5)]:
        a_n, a_r = _one_hot_alphas(genotype)
        got = float(expected_cost(model, a_n, a_r).detach())
        assert abs(got - predict_latency(table, genotype)) < 1e-4 * predict_latency(table, genotype)


def test_expected_latency_is_differentiable_and_survival_weighted() -> None:
    model = latency_cost_model(_table())
    a_n = torch.zeros(14, 8, requires_grad=True)
    a_r = torch.zeros(14, 8, requires_grad=True)
    value = expected_cost(model, a_n, a_r)
    value.backward()
    assert a_n.grad is not None and a_n.grad.abs().sum() > 0 and a_r.grad.abs().sum() > 0
    survival, choice = survival_and_choice(torch.softmax(torch.zeros(14, 8), dim=-1))
    # uniform α: each node keeps 2 of its inputs in expectation -> 8 surviving edges per cell, none never chosen
    assert abs(float(survival.sum()) - 8.0) < 1e-5
    assert torch.all(choice[:, 0] == 0) and torch.allclose(choice.sum(dim=1), torch.ones(14))
    # the expectation lies between the cheapest and the most expensive derived network
    rng = random.Random(1)
    costs = [predict_latency(_table(), random_genotype(rng)) for _ in range(200)]
    assert min(costs) <= float(value.detach()) <= max(costs)


def test_gradient_lowers_latency() -> None:
    """Gradient steps on E[LAT] alone move α toward a network cheaper than 90% of random ones."""
    table = _table()
    model = latency_cost_model(table)
    torch.manual_seed(0)
    a_n = (1e-3 * torch.randn(14, 8)).requires_grad_()
    a_r = (1e-3 * torch.randn(14, 8)).requires_grad_()
    start = float(expected_cost(model, a_n, a_r).detach())
    opt = torch.optim.Adam([a_n, a_r], lr=0.1)
    for _ in range(50):
        opt.zero_grad()
        expected_cost(model, a_n, a_r).backward()
        opt.step()
    assert float(expected_cost(model, a_n, a_r).detach()) < start
    derived = derive_genotype(torch.softmax(a_n.detach(), -1), torch.softmax(a_r.detach(), -1))
    rng = random.Random(2)
    costs = sorted(predict_latency(table, random_genotype(rng)) for _ in range(200))
    assert predict_latency(table, derived) <= costs[20]
