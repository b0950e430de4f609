"""Sharpness of the search: dominant eigenvalue of the val-loss Hessian w.r.t. α.

DARTS collapse comes with sharp minima in α (Zela et al., 2020); SD-DARTS claims to lower this
eigenvalue. We estimate it by power iteration on exact Hessian-vector products (double backward),
so the Hessian is never formed.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

LossFn = Callable[[nn.Module, object], torch.Tensor]


def hessian_vector_product(
    model: nn.Module, loss_fn: LossFn, batches: Sequence[object], params: Sequence[torch.Tensor],
    vector: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    """``H·v`` of the loss averaged over ``batches``, H taken w.r.t. ``params``."""
    total = [torch.zeros_like(p) for p in params]
    for batch in batches:
        loss = loss_fn(model, batch)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(grads, vector))
        hv = torch.autograd.grad(dot, params, allow_unused=True)
        for acc, part in zip(total, hv):
            if part is not None:
                acc.add_(part.detach())
    return [t / len(batches) for t in total]


def _dot(a: Iterable[torch.Tensor], b: Iterable[torch.Tensor]) -> float:
    return float(sum((x * y).sum() for x, y in zip(a, b)))


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Measure with BN batch statistics without changing ``model``: buffers, BN momenta and mode are restored."""
    saved = {name: buf.detach().clone() for name, buf in model.named_buffers()}
    momenta = {m: m.momentum for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    was_training = model.training
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, buf in model.named_buffers():
                buf.copy_(saved[name])
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


def dominant_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[object],
    iters: int = 20,
    tol: float = 1e-3,
    params: Sequence[torch.Tensor] | None = None,
    seed: int = 0,
) -> float:
    """Largest-magnitude eigenvalue of the Hessian of the mean of ``loss_fn(model, batch)`` over ``batches``.

    ``params`` defaults to ``model.arch_parameters()`` (alphas_normal, alphas_reduce). Power iteration
    stops after ``iters`` steps or when the Rayleigh quotient changes by less than ``tol`` (relative).
    The start vector comes from a private generator, so the global RNG (and a resumed run) is
    untouched; BN buffers are restored afterwards, so measuring does not change the model.
    """
    if not batches:
        raise ValueError("dominant_eigenvalue needs at least one batch")
    params = list(params) if params is not None else list(model.arch_parameters())  # type: ignore[attr-defined]
    generator = torch.Generator().manual_seed(seed)
    vector = [torch.randn(p.shape, generator=generator).to(p) for p in params]
    norm = _dot(vector, vector) ** 0.5
    vector = [v / norm for v in vector]
    eigenvalue = 0.0
    with preserved_state(model):
        for step in range(iters):
            hv = hessian_vector_product(model, loss_fn, batches, params, vector)
            new_eigenvalue = _dot(vector, hv)  # Rayleigh quotient, v has unit norm
            hv_norm = _dot(hv, hv) ** 0.5
            if hv_norm == 0.0:
                return 0.0
            vector = [h / hv_norm for h in hv]
            converged = step > 0 and abs(new_eigenvalue - eigenvalue) <= tol * max(abs(new_eigenvalue), 1e-12)
            eigenvalue = new_eigenvalue
            if converged:
                break
    return eigenvalue
