"""Latency / FLOPs penalties: each form's value and gradient, warm-up, config rules, and in a real search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sdnas_deploy.cli.main import app
from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.expected import CostModel
from sdnas_deploy.methods.darts.architect import Architect
from sdnas_deploy.nas.config import SearchConfig
from sdnas_deploy.nas.penalty import LatencyPenalty, combined
from sdnas_deploy.nas.searcher import run_search
from sdnas_deploy.spaces.darts import PRIMITIVES, SearchNetwork

COSTLY = PRIMITIVES.index("sep_conv_5x5")


def _model(cost: float = 7.0, fixed: float = 1.0, unit: str = "ms") -> CostModel:
    """Only sep_conv_5x5 in normal cells costs ``cost``: at uniform α, E = fixed + 8·cost/7 (8 edges survive)."""
    normal = torch.zeros(14, len(PRIMITIVES))
    normal[:, COSTLY] = cost
    return CostModel(normal=normal, reduce=torch.zeros(14, len(PRIMITIVES)), fixed=fixed, unit=unit)


LABELS = ("normal", "reduce")


def _alphas() -> dict[str, torch.Tensor]:
    return {label: torch.zeros(14, len(PRIMITIVES), requires_grad=True) for label in LABELS}


def _value_and_grads(p: LatencyPenalty, ce: float = 2.0, epoch: int = 0):
    ce_t = torch.tensor(ce, requires_grad=True)
    alphas = _alphas()
    a_n = alphas["normal"]
    loss = p.loss(ce_t, alphas, epoch)
    g_ce, g_n = torch.autograd.grad(loss, (ce_t, a_n), allow_unused=True)
    return float(loss.detach()), g_ce, g_n


def test_expected_cost_of_hand_made_model_is_nine() -> None:
    p = LatencyPenalty("add", _model(), budget=6.0)
    assert float(p.expected(_alphas()).detach()) == pytest.approx(9.0)


def test_add_form_value_and_gradient() -> None:
    value, g_ce, g_n = _value_and_grads(LatencyPenalty("add", _model(), budget=6.0, weight=0.1))
    assert value == pytest.approx(2.0 + 0.1 * (9.0 - 6.0) / 6.0)
    assert float(g_ce) == pytest.approx(1.0)
    # raising the costly op's α raises E, so the loss gradient pushes it down; every cheap op is pushed up
    assert (g_n[:, COSTLY] > 0).all() and (g_n[:, PRIMITIVES.index("skip_connect")] < 0).all()
    below, _, g_below = _value_and_grads(LatencyPenalty("add", _model(), budget=18.0, weight=0.1))
    assert below == pytest.approx(2.0 - 0.1 * 0.5) and (g_below[:, COSTLY] > 0).all()  # add rewards going lower


def test_mul_form_value_and_gradient() -> None:
    value, g_ce, g_n = _value_and_grads(LatencyPenalty("mul", _model(), budget=6.0, beta=0.3))
    assert value == pytest.approx(2.0 * 1.5**0.3)
    assert float(g_ce) == pytest.approx(1.5**0.3)  # CE is scaled, not shifted
    assert (g_n[:, COSTLY] > 0).all()
    at_ref, _, _ = _value_and_grads(LatencyPenalty("mul", _model(), budget=9.0, beta=0.3))
    assert at_ref == pytest.approx(2.0)


def test_budget_form_is_zero_below_the_budget() -> None:
    value, _, g_n = _value_and_grads(LatencyPenalty("budget", _model(), budget=6.0, weight=0.5))
    assert value == pytest.approx(2.0 + 0.5 * (9.0 / 6.0 - 1.0))
    assert (g_n[:, COSTLY] > 0).all()
    value, g_ce, g_n = _value_and_grads(LatencyPenalty("budget", _model(), budget=10.0, weight=0.5))
    assert value == pytest.approx(2.0) and float(g_ce) == 1.0
    assert torch.count_nonzero(g_n) == 0


def test_warmup_returns_ce_unchanged_and_combined_sums() -> None:
    p = LatencyPenalty("budget", _model(), budget=6.0, weight=0.5, warmup_epochs=2)
    ce = torch.tensor(2.0)
    assert p.loss(ce, _alphas(), epoch=1) is ce
    assert float(p.loss(ce, _alphas(), epoch=2).detach()) == pytest.approx(2.25)
    flops = LatencyPenalty("add", _model(unit="MMAC"), budget=3.0, weight=1.0)
    assert combined([p], epoch=0, labels=LABELS) is None
    hook = combined([p, flops], epoch=2, labels=LABELS)
    assert float(hook(ce, list(_alphas().values())).detach()) == pytest.approx(2.0 + 0.25 + 2.0)
    assert "budget" in p.describe() and "6 ms" in p.describe() and "FLOPs" in flops.describe()
    with pytest.raises(BadInputError, match="add, mul, budget"):
        LatencyPenalty("log", _model(), budget=1.0)


@pytest.mark.parametrize("unrolled", [False, True])
def test_architect_adds_exactly_the_penalty_gradient(unrolled: bool) -> None:
    """With the add form (independent of w), the α gradient changes by λ·∇E/ref — first and second order."""
    torch.manual_seed(0)
    model = SearchNetwork(C=2, num_classes=3, layers=3, in_channels=1).train()
    with torch.no_grad():
        for alpha in model.arch_parameters():
            alpha.normal_(0.0, 0.5)
    g = torch.Generator().manual_seed(1)
    x_t, x_v = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    y_t, y_v = torch.randint(0, 3, (4,), generator=g), torch.randint(0, 3, (4,), generator=g)
    opt = torch.optim.SGD(model.weight_parameters(), lr=0.05, momentum=0.9)
    architect = Architect(model, 3e-4, (0.5, 0.999), 1e-3, unrolled=unrolled)
    penalty = LatencyPenalty("add", _model(), budget=6.0, weight=0.1)
    hook = combined([penalty], epoch=0, labels=LABELS)

    def gradient(h):
        if unrolled:
            return architect.unrolled_gradient(x_t, y_t, x_v, y_v, 0.05, opt, None, h)[1]
        return architect.first_order_gradient(x_v, y_v, None, h)

    plain, with_penalty = gradient(None), gradient(hook)
    alphas = [a.detach().clone().requires_grad_(True) for a in model.arch_parameters()]
    expected = torch.autograd.grad(0.1 * penalty.expected(dict(zip(LABELS, alphas))) / 6.0, alphas)
    for p0, p1, e in zip(plain, with_penalty, expected):
        assert torch.allclose(p1 - p0, e, atol=1e-5)
    assert expected[0].abs().sum() > 0


def test_config_rules() -> None:
    with pytest.raises(BadInputError, match="--target NAME.*--lut FILE"):
        SearchConfig(latency_budget=3.0)
    with pytest.raises(BadInputError, match="x86-cpu-ort"):
        SearchConfig(target="x86-cpu-or")
    with pytest.raises(BadInputError, match="flops_budget"):
        SearchConfig(flops_budget=-1.0)
    with pytest.raises(BadInputError, match="penalty"):
        SearchConfig(penalty="log")  # type: ignore[arg-type]
    both = SearchConfig(target="x86-cpu-ort", latency_budget=3.0, flops_budget=100.0)
    assert both.penalty == "budget" and SearchConfig(flops_budget=5.0).target is None


def _tiny(**changes: object) -> SearchConfig:
    """3 cells x 4 channels on 128 digits, plain DARTS (fast): the α step is what the penalty changes."""
    base = dict(layers=3, channels=4, limit=128, epochs=2, batch_size=32, steps_per_epoch=2, device="cpu",
                distill="none", penalty_warmup_epochs=0)
    base.update(changes)
    return SearchConfig(**base)  # type: ignore[arg-type]


def test_flops_budget_lowers_predicted_flops(tmp_path: Path) -> None:
    changes = dict(epochs=3, steps_per_epoch=4, arch_lr=0.05, seed=3)
    plain = run_search(_tiny(**changes), tmp_path / "plain", progress=False)
    budget = run_search(_tiny(flops_budget=1.0, penalty_weight=20.0, **changes), tmp_path / "budget", progress=False)
    assert plain["final"]["flops_budget_met"] is None and budget["final"]["flops_budget_met"] is False
    assert plain["final"]["predicted_latency_ms"] is None  # no table: no latency, FLOPs always
    expected = [e["expected_mmac"] for e in budget["epochs"]]
    assert expected[0] > expected[1] > expected[2]
    assert budget["final"]["predicted_mmac"] < plain["final"]["predicted_mmac"]
    assert budget["final"]["expected_mmac"] < plain["final"]["expected_mmac"]


def test_target_uses_shipped_table_and_resume_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdnas_deploy.nas import searcher

    config = _tiny(target="x86-cpu-ort", latency_budget=100.0, flops_budget=5000.0, penalty="add")
    straight = run_search(config, tmp_path / "straight", progress=False)
    final = straight["final"]
    assert final["predicted_latency_ms"] > 0 and final["expected_latency_ms"] > 0
    assert final["latency_budget_met"] is True and final["flops_budget_met"] is True
    assert all(e["predicted_latency_ms"] > 0 and e["predicted_mmac"] > 0 for e in straight["epochs"])
    # searching on the machine the table was measured on also measures the derived network end to end
    from sdnas_deploy.runtime.fingerprint import environment_fingerprint, fingerprint_key
    from sdnas_deploy.hw.lut import load_table
    from sdnas_deploy.hw.targets import resolve_table

    table = load_table(resolve_table("x86-cpu-ort", "cifar"))
    if fingerprint_key(environment_fingerprint(table.fingerprint["threads"])) == table.fingerprint["key"]:
        assert final["measured_latency_ms"] > 0
    else:
        assert final["measured_latency_ms"] is None
    original = searcher.SearchRun.train_epoch

    def interrupted(self: searcher.SearchRun, epoch: int) -> dict:
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    with monkeypatch.context() as patch:
        patch.setattr(searcher.SearchRun, "train_epoch", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_search(config, tmp_path / "resumed", progress=False)
    resumed = run_search(config, tmp_path / "resumed", resume=True, progress=False)
    keys = ("arch_loss", "train_loss", "expected_latency_ms", "expected_mmac", "predicted_latency_ms")
    assert [{k: e[k] for k in keys} for e in straight["epochs"]] == [{k: e[k] for k in keys} for e in resumed["epochs"]]
    assert straight["final"]["genotype"] == resumed["final"]["genotype"]


def test_cli_flags_reach_the_config(tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["search", "--layers", "3", "--channels", "4", "--limit", "64", "--epochs", "1", "--batch-size", "32",
              "--steps-per-epoch", "1", "--device", "cpu", "--distill", "none"]
    bad = runner.invoke(app, [*common, "--out", str(tmp_path / "bad"), "--latency-budget", "3"])
    assert bad.exit_code == 2 and "--target" in bad.stderr and "Traceback" not in bad.output
    out = tmp_path / "run"
    result = runner.invoke(app, [*common, "--out", str(out), "--target", "x86-cpu-ort", "--latency-setting", "cifar",
                                 "--latency-budget", "50", "--flops-budget", "800", "--penalty", "mul",
                                 "--penalty-weight", "0.7", "--penalty-beta", "0.5", "--penalty-warmup", "3"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert {k: saved[k] for k in ("target", "latency_setting", "latency_budget", "flops_budget", "penalty",
                                  "penalty_weight", "penalty_beta", "penalty_warmup_epochs")} == {
        "target": "x86-cpu-ort", "latency_setting": "cifar", "latency_budget": 50.0, "flops_budget": 800.0,
        "penalty": "mul", "penalty_weight": 0.7, "penalty_beta": 0.5, "penalty_warmup_epochs": 3}
    assert "predicted latency ms" in result.output and "predicted MMAC" in result.output
