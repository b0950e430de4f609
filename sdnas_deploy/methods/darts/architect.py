"""The α step of DARTS: minimize the val loss w.r.t. the architecture parameters with Adam.

First order treats the weights as constants (∇α L_val(w, α)). Second order ("unrolled") looks one
virtual SGD step ahead, w' = w − ξ(μ·m + ∇w L_train + λ_wd·w) — exactly the next step the weight
optimizer would take, without clipping — and uses

    ∇α L_val(w', α) − ξ · ∇²_{α,w} L_train(w, α) · ∇w' L_val(w', α)

where the mixed second derivative times a vector is a central finite difference with
ε = 0.01 / ‖∇w' L_val‖ (DARTS, Liu et al. 2019, eq. 7–8).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import upcast

ExtraLoss = Callable[[torch.Tensor], torch.Tensor]
# maps the val loss and the α it was computed with (the shadow model's α when unrolled) to the loss to minimize
ArchPenalty = Callable[[torch.Tensor, Sequence[torch.Tensor]], torch.Tensor]
FD_RADIUS = 0.01  # DARTS reference: ε = 0.01 / ‖v‖


def _weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Named parameters of ``model`` that are not architecture parameters, in registration order."""
    arch_ids = {id(p) for p in model.arch_parameters()}  # type: ignore[attr-defined]
    return [(name, p) for name, p in model.named_parameters() if id(p) not in arch_ids]


class Architect:
    """Owns the α optimizer (Adam) and performs one α step per search step."""

    def __init__(
        self,
        model: nn.Module,
        arch_lr: float,
        arch_betas: tuple[float, float],
        arch_weight_decay: float,
        unrolled: bool = False,
        network_momentum: float = 0.9,
        network_weight_decay: float = 3e-4,
        autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
        scaler: torch.amp.GradScaler | None = None,
        channels_last: bool = False,
        fd_radius: float = FD_RADIUS,
        average_grads: Callable[[Sequence[torch.Tensor]], None] | None = None,
    ) -> None:
        self.model = model
        self.average_grads = average_grads  # torchrun: α's gradients averaged over the ranks before each step
        self.unrolled = unrolled
        self.network_momentum = network_momentum
        self.network_weight_decay = network_weight_decay
        self.alphas: list[nn.Parameter] = list(model.arch_parameters())  # type: ignore[attr-defined]
        self.optimizer = torch.optim.Adam(self.alphas, lr=arch_lr, betas=arch_betas, weight_decay=arch_weight_decay)
        self.autocast = autocast or contextlib.nullcontext
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler("cpu", enabled=False)
        self.channels_last = channels_last
        self.fd_radius = fd_radius
        self._shadow: nn.Module | None = None  # the model that holds w' (built once with model.new())

    def step(
        self,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        lr: float,
        network_optimizer: torch.optim.Optimizer,
        extra_loss: ExtraLoss | None = None,
        penalty: ArchPenalty | None = None,
    ) -> float:
        """One Adam step on α; returns the val loss it minimized (at w for first order, at w' for unrolled)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.unrolled:
            # fp32 on purpose: the finite-difference Hessian term is too coarse under fp16/bf16 autocast.
            loss, grads = self.unrolled_gradient(
                x_train, y_train, x_val, y_val, lr, network_optimizer, extra_loss, penalty)
            for alpha, grad in zip(self.alphas, grads):
                alpha.grad = grad
            if self.average_grads is not None:
                self.average_grads(self.alphas)
            self.optimizer.step()
            return loss
        with self.autocast():
            logits = self.model(x_val)
            loss = self._val_loss(logits, y_val, extra_loss, penalty, self.alphas)
        # autograd.grad into α only: the weights' .grad (owned by the weight step) stay untouched.
        grads = torch.autograd.grad(self.scaler.scale(loss), self.alphas)
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad
        if self.average_grads is not None:
            self.average_grads(self.alphas)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    @staticmethod
    def _val_loss(logits: torch.Tensor, y: torch.Tensor, extra_loss: ExtraLoss | None,
                  penalty: ArchPenalty | None = None, alphas: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        loss = F.cross_entropy(upcast(logits), y)
        if extra_loss is not None:
            loss = loss + extra_loss(logits)
        if penalty is not None:  # fp32: outside autocast's reach (α and the cost tables are fp32)
            loss = penalty(loss.float(), alphas)
        return loss

    def first_order_gradient(
        self, x_val: torch.Tensor, y_val: torch.Tensor, extra_loss: ExtraLoss | None = None,
        penalty: ArchPenalty | None = None,
    ) -> list[torch.Tensor]:
        """∇α L_val(w, α) (fp32, no step taken); used by tests and for comparison."""
        loss = self._val_loss(self.model(x_val), y_val, extra_loss, penalty, self.alphas)
        return list(torch.autograd.grad(loss, self.alphas))

    def unrolled_gradient(
        self,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        lr: float,
        network_optimizer: torch.optim.Optimizer,
        extra_loss: ExtraLoss | None = None,
        penalty: ArchPenalty | None = None,
    ) -> tuple[float, list[torch.Tensor]]:
        """The second-order α gradient (no step taken) and L_val(w', α)."""
        shadow = self._virtual_step(x_train, y_train, lr, network_optimizer)
        shadow_alphas = list(shadow.arch_parameters())  # type: ignore[attr-defined]
        shadow_weights = [p for _, p in _weights(shadow)]
        loss = self._val_loss(shadow(x_val), y_val, extra_loss, penalty, shadow_alphas)
        grads = torch.autograd.grad(loss, shadow_alphas + shadow_weights)
        d_alpha = grads[: len(shadow_alphas)]
        vector = grads[len(shadow_alphas) :]
        implicit = self._mixed_hessian_vector(vector, x_train, y_train)
        return float(loss.detach()), [da - lr * h for da, h in zip(d_alpha, implicit)]

    def _virtual_step(
        self, x_train: torch.Tensor, y_train: torch.Tensor, lr: float, network_optimizer: torch.optim.Optimizer
    ) -> nn.Module:
        """Load w' = w − ξ(μ·m + ∇w L_train + λ_wd·w) and the current α into the shadow model."""
        named = _weights(self.model)
        weights = [p for _, p in named]
        loss = F.cross_entropy(upcast(self.model(x_train)), y_train)
        grads = torch.autograd.grad(loss, weights)
        shadow = self._shadow_model()
        shadow_params = dict(shadow.named_parameters())
        with torch.no_grad():
            for name, value in self.model.state_dict().items():
                if name not in shadow_params:
                    shadow.get_buffer(name).copy_(value)
            for alpha, shadow_alpha in zip(self.alphas, shadow.arch_parameters()):  # type: ignore[attr-defined]
                shadow_alpha.copy_(alpha)
            for (name, w), g in zip(named, grads):
                buf = network_optimizer.state.get(w, {}).get("momentum_buffer")
                step = g + self.network_weight_decay * w
                if buf is not None:
                    step = step + self.network_momentum * buf
                shadow_params[name].copy_(w - lr * step)
        return shadow

    def _shadow_model(self) -> nn.Module:
        if self._shadow is None:
            reference = self.alphas[0]
            shadow = self.model.new()  # type: ignore[attr-defined]
            shadow = shadow.to(device=reference.device, dtype=reference.dtype)
            if self.channels_last:
                shadow = shadow.to(memory_format=torch.channels_last)
            shadow.train()
            self._shadow = shadow
        return self._shadow

    def _mixed_hessian_vector(
        self, vector: Sequence[torch.Tensor], x_train: torch.Tensor, y_train: torch.Tensor
    ) -> list[torch.Tensor]:
        """(∇α L_train(w + εv) − ∇α L_train(w − εv)) / 2ε with ε = fd_radius/‖v‖; w is restored exactly."""
        weights = [p for _, p in _weights(self.model)]
        norm = torch.sqrt(sum((v**2).sum() for v in vector))
        radius = self.fd_radius / float(norm.clamp_min(1e-12))
        originals = [w.detach().clone() for w in weights]
        gradients = []
        try:
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for w, w0, v in zip(weights, originals, vector):
                        w.copy_(w0 + sign * radius * v)
                loss = F.cross_entropy(upcast(self.model(x_train)), y_train)
                gradients.append(torch.autograd.grad(loss, self.alphas))
        finally:
            with torch.no_grad():
                for w, w0 in zip(weights, originals):
                    w.copy_(w0)
        return [(gp - gn) / (2 * radius) for gp, gn in zip(*gradients)]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
