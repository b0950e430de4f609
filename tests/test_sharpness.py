"""Dominant Hessian eigenvalue: exact on quadratics with known spectra, side-effect free on a supernet."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sdnas_deploy.nas.sharpness import dominant_eigenvalue, hessian_vector_product
from sdnas_deploy.spaces.darts import SearchNetwork


def _spd_with_spectrum(eigenvalues: list[float], seed: int) -> torch.Tensor:
    """A symmetric matrix Q·diag(λ)·Qᵀ with a random rotation Q."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


class _QuadraticArch(nn.Module):
    """Two 'α' tensors with loss ½ aᵀAa + ½ bᵀBb + cᵀa (per batch c): Hessian = blockdiag(A, B)."""

    def __init__(self) -> None:
        super().__init__()
        self.alphas_normal = nn.Parameter(torch.randn(3, dtype=torch.float64))
        self.alphas_reduce = nn.Parameter(torch.randn(2, dtype=torch.float64))
        self.register_buffer("A", _spd_with_spectrum([4.0, 1.0, -0.5], seed=1))
        self.register_buffer("B", _spd_with_spectrum([2.5, 0.3], seed=2))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]


def _quadratic_loss(model: _QuadraticArch, c: torch.Tensor) -> torch.Tensor:
    a, b = model.alphas_normal, model.alphas_reduce
    return 0.5 * a @ model.A @ a + 0.5 * b @ model.B @ b + c @ a


def test_quadratic_dominant_eigenvalue_over_both_alpha_tensors() -> None:
    model = _QuadraticArch()
    batches = [torch.randn(3, dtype=torch.float64) for _ in range(2)]  # linear terms: no effect on the Hessian
    value = dominant_eigenvalue(model, _quadratic_loss, batches, iters=200, tol=1e-10)
    assert math.isclose(value, 4.0, rel_tol=1e-6)


def test_quadratic_in_explicit_parameter_and_hvp() -> None:
    theta = nn.Parameter(torch.randn(4, dtype=torch.float64))
    matrix = _spd_with_spectrum([-7.0, 3.0, 1.0, 0.5], seed=3)
    holder = nn.Module()
    loss_fn = lambda _model, _batch: 0.5 * theta @ matrix @ theta  # noqa: E731
    v = [torch.randn(4, dtype=torch.float64)]
    hv = hessian_vector_product(holder, loss_fn, [None], [theta], v)
    assert torch.allclose(hv[0], matrix @ v[0])
    value = dominant_eigenvalue(holder, loss_fn, [None], iters=300, tol=1e-12, params=[theta])
    assert math.isclose(value, -7.0, rel_tol=1e-6)  # largest magnitude, sign kept


def test_runs_on_tiny_supernet_without_side_effects() -> None:
    torch.manual_seed(0)
    model = SearchNetwork(C=2, num_classes=3, layers=3, in_channels=1).train()
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(4, 1, 8, 8, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(2)]
    loss_fn = lambda m, b: F.cross_entropy(m(b[0]), b[1])  # noqa: E731
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    value = dominant_eigenvalue(model, loss_fn, batches, iters=5)
    assert math.isfinite(value) and value != 0.0
    assert torch.equal(rng, torch.get_rng_state())  # a resumed search draws the same numbers
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[key]), key  # weights, α and BN statistics untouched
    assert all(p.grad is None for p in model.parameters())
