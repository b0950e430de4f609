"""α step: first order, second order (vs an exact autograd computation), and what a step may change."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from sdnas_deploy.methods.darts.architect import Architect
from sdnas_deploy.methods.sd.teachers import distill_loss
from sdnas_deploy.spaces.darts import SearchNetwork

LR, MOMENTUM, WD = 0.05, 0.9, 3e-4


def _tiny(dtype: torch.dtype = torch.float32) -> SearchNetwork:
    torch.manual_seed(0)
    model = SearchNetwork(C=2, num_classes=3, layers=3, in_channels=1).to(dtype)
    with torch.no_grad():  # α far from uniform so the mixture (and its curvature) is not symmetric
        for alpha in model.arch_parameters():
            alpha.normal_(0.0, 0.5)
    return model.train()


def _batches(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(6, 1, 8, 8, generator=g, dtype=dtype)
    x_v = torch.randn(6, 1, 8, 8, generator=g, dtype=dtype)
    y_t = torch.randint(0, 3, (6,), generator=g)
    y_v = torch.randint(0, 3, (6,), generator=g)
    return x_t, y_t, x_v, y_v


def _optimizer_with_momentum(model: SearchNetwork, x: torch.Tensor, y: torch.Tensor) -> torch.optim.SGD:
    """A weight optimizer that has already taken one step, so its momentum buffers are non-zero."""
    opt = torch.optim.SGD(model.weight_parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    F.cross_entropy(model(x), y).backward(inputs=model.weight_parameters())
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def _exact_unrolled_gradient(model: SearchNetwork, opt: torch.optim.SGD, batches: tuple) -> list[torch.Tensor]:
    """d/dα L_val(w'(α), α) with w' = w − ξ(μ·m + ∇w L_train + wd·w), by autograd through w'."""
    x_t, y_t, x_v, y_v = batches
    names = {id(p): n for n, p in model.named_parameters()}
    alphas = model.arch_parameters()
    weights = model.weight_parameters()
    params = dict(model.named_parameters())
    loss_t = F.cross_entropy(functional_call(model, params, (x_t,)), y_t)
    grads = torch.autograd.grad(loss_t, weights, create_graph=True)
    unrolled = dict(params)
    for w, g in zip(weights, grads):
        unrolled[names[id(w)]] = w - LR * (MOMENTUM * opt.state[w]["momentum_buffer"] + g + WD * w)
    loss_v = F.cross_entropy(functional_call(model, unrolled, (x_v,)), y_v)
    return list(torch.autograd.grad(loss_v, alphas))


def test_unrolled_gradient_matches_exact_second_order() -> None:
    """In fp64 with a small finite-difference radius the DARTS formula equals autograd through w'.

    (A 2-channel net on 8x8 inputs is so kinked — ReLU, max-pool — that DARTS's ε = 0.01/‖v‖
    straddles kinks; the formula is checked exactly here, the default radius in the next test.)
    """
    model = _tiny(torch.float64)
    batches = _batches(torch.float64)
    opt = _optimizer_with_momentum(model, batches[0], batches[1])
    architect = Architect(model, 3e-4, (0.5, 0.999), 1e-3, unrolled=True, network_momentum=MOMENTUM,
                          network_weight_decay=WD, fd_radius=1e-6)
    _, approx = architect.unrolled_gradient(*batches, lr=LR, network_optimizer=opt)
    exact = _exact_unrolled_gradient(model, opt, batches)
    first = architect.first_order_gradient(batches[2], batches[3])
    for a, e, f in zip(approx, exact, first):
        assert torch.allclose(a, e, rtol=1e-6, atol=1e-8), (a - e).abs().max()
        assert (e - f).abs().max() > 1e-3  # the second-order correction is not negligible here


def test_default_radius_gives_finite_gradient_different_from_first_order() -> None:
    model = _tiny()
    batches = _batches()
    opt = _optimizer_with_momentum(model, batches[0], batches[1])
    architect = Architect(model, 3e-4, (0.5, 0.999), 1e-3, unrolled=True, network_momentum=MOMENTUM,
                          network_weight_decay=WD)
    loss, unrolled = architect.unrolled_gradient(*batches, lr=LR, network_optimizer=opt)
    first = architect.first_order_gradient(batches[2], batches[3])
    assert loss > 0
    for u, f in zip(unrolled, first):
        assert torch.isfinite(u).all()
        assert not torch.allclose(u, f)


@pytest.mark.parametrize("unrolled", [False, True])
def test_step_changes_alpha_but_not_weights(unrolled: bool) -> None:
    model = _tiny()
    batches = _batches()
    opt = _optimizer_with_momentum(model, batches[0], batches[1])
    weights_before = [p.detach().clone() for p in model.weight_parameters()]
    alphas_before = [a.detach().clone() for a in model.arch_parameters()]
    architect = Architect(model, 0.1, (0.5, 0.999), 1e-3, unrolled=unrolled, network_momentum=MOMENTUM,
                          network_weight_decay=WD)
    loss = architect.step(*batches, lr=LR, network_optimizer=opt)
    assert loss > 0
    for before, after in zip(weights_before, model.weight_parameters()):
        assert torch.equal(before, after)
        assert after.grad is None  # the α step never leaves gradients for the weight step
    for before, after in zip(alphas_before, model.arch_parameters()):
        assert not torch.equal(before, after)


def test_distillation_term_enters_alpha_gradient() -> None:
    model = _tiny()
    _, _, x_v, y_v = _batches()
    architect = Architect(model, 3e-4, (0.5, 0.999), 1e-3)
    teacher = torch.softmax(torch.randn(6, 3, generator=torch.Generator().manual_seed(3)), dim=1)
    plain = architect.first_order_gradient(x_v, y_v)
    with_kl = architect.first_order_gradient(x_v, y_v, lambda logits: distill_loss(logits, teacher, 2.0))
    assert any(not torch.allclose(p, k) for p, k in zip(plain, with_kl))


def test_architect_state_roundtrip() -> None:
    model = _tiny()
    batches = _batches()
    opt = _optimizer_with_momentum(model, batches[0], batches[1])
    architect = Architect(model, 0.01, (0.5, 0.999), 1e-3)
    architect.step(*batches, lr=LR, network_optimizer=opt)
    state = architect.state_dict()
    other = Architect(model, 0.01, (0.5, 0.999), 1e-3)
    other.load_state_dict(state)
    exp_avg = other.optimizer.state[model.alphas_normal]["exp_avg"]
    assert torch.equal(exp_avg, architect.optimizer.state[model.alphas_normal]["exp_avg"])
