"""The discrete layer-wise network and the supernet of a layer-wise space (one mixed op per layer).

Both share the skeleton: stem conv → optional fixed first block → searchable layers → 1x1 head conv →
global pool + linear. The discrete network builds one block per layer; the supernet builds every allowed
candidate of a layer and sums them weighted by the relaxed α (``alphas_layers``: one row per layer, one
column per candidate; a candidate a layer does not allow — ProxylessNAS ``zero`` where shapes change —
is masked to probability 0).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..base import Supernet
from ..layers import DropPathControl, PoolClassifier
from .arch import LayerArch
from .blocks import ConvBNAct, MBConv, build_block, decode_block, identity_allowed
from .layout import Layout, layer_plan


def first_block(layout: Layout, act: str) -> nn.Module | None:
    """The fixed block after the stem (ProxylessNAS' and DNA's MB1), or None."""
    if layout.first is None:
        return None
    block, width = layout.first
    return MBConv(layout.stem_width, width, 1, decode_block(block), act, expand_conv=False)


class _Skeleton(nn.Module):
    """Stem, fixed first block, head and classifier of ``layout`` (the searchable layers are the subclass's)."""

    def _build_skeleton(self, layout: Layout, act: str, in_channels: int, num_classes: int) -> None:
        self.stem = ConvBNAct(in_channels, layout.stem_width, 3, layout.stem_stride, act)
        self.first: nn.Module | None = first_block(layout, act)
        last = layout.stages[-1].last_width
        self.head = ConvBNAct(last, layout.head_width, 1, 1, act)
        self.pool_classifier = PoolClassifier(layout.head_width, num_classes)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.first(x) if self.first is not None else x

    def _tail(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_classifier(self.head(x))


class LayerwiseNetwork(DropPathControl, _Skeleton):
    """The deployable network of one block string per layer; ``drop_path_prob`` reaches every residual block."""

    drop_path_modules = (MBConv,)

    def __init__(self, layout: Layout, blocks: Sequence[str], act: str, in_channels: int, num_classes: int,
                 expand_conv: bool = True) -> None:
        super().__init__()
        if len(blocks) != layout.num_layers:
            raise ValueError(f"{layout.name}: {len(blocks)} blocks for {layout.num_layers} layers")
        self._build_skeleton(layout, act, in_channels, num_classes)
        self.blocks = tuple(blocks)
        plan = layer_plan(layout, layout.table_input_size)  # widths and strides only; sides do not matter here
        self.layers = nn.ModuleList(build_block(b, s.c_in, s.c_out, s.stride, act, expand_conv)
                                    for b, s in zip(blocks, plan))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._trunk(x)
        for layer in self.layers:
            x = layer(x)
        return self._tail(x)


class MixedLayer(nn.Module):
    """One supernet layer: ``Σ_k w_k · candidate_k(x)`` over the allowed candidates."""

    def __init__(self, candidates: Sequence[str], allowed: Sequence[bool], c_in: int, c_out: int, stride: int,
                 act: str, expand_conv: bool) -> None:
        super().__init__()
        self.index = [k for k, ok in enumerate(allowed) if ok]
        self.ops = nn.ModuleList(build_block(candidates[k], c_in, c_out, stride, act, expand_conv) for k in self.index)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, zero: Sequence[bool] | None = None) -> torch.Tensor:
        """``zero``: per candidate, whether its (constant) weight is exactly 0 — those candidates are skipped,
        e.g. in a one-hot (discretized) row, where they contribute exactly 0."""
        out: torch.Tensor | None = None
        for k, op in zip(self.index, self.ops):
            if zero is not None and zero[k]:
                continue
            term = weights[k] * op(x)
            out = term if out is None else out + term
        assert out is not None, "at least one candidate must carry weight"
        return out


def allowed_matrix(layout: Layout, candidates: Sequence[str], identity_ops: Sequence[str]) -> list[list[bool]]:
    """Per layer, per candidate: whether the layer may take it (identity ops only where shapes agree)."""
    rows = []
    for s in layer_plan(layout, layout.table_input_size):
        same = identity_allowed(s.c_in, s.c_out, s.stride)
        rows.append([same or c not in identity_ops for c in candidates])
    return rows


class LayerwiseSupernet(Supernet, _Skeleton):
    """The supernet of a layer-wise space at one layout (module docstring)."""

    ARCH_LABELS = ("layers",)

    def __init__(self, layout: Layout, candidates: Sequence[str], identity_ops: Sequence[str], act: str,
                 in_channels: int, num_classes: int, expand_conv: bool = True) -> None:
        super().__init__()
        self.init_args: dict[str, Any] = dict(layout=layout, candidates=tuple(candidates),
                                              identity_ops=tuple(identity_ops), act=act, in_channels=in_channels,
                                              num_classes=num_classes, expand_conv=expand_conv)
        self.candidates = tuple(candidates)
        self._build_skeleton(layout, act, in_channels, num_classes)
        allowed = allowed_matrix(layout, candidates, identity_ops)
        plan = layer_plan(layout, layout.table_input_size)
        self.layers = nn.ModuleList(MixedLayer(candidates, ok, s.c_in, s.c_out, s.stride, act, expand_conv)
                                    for ok, s in zip(allowed, plan))
        self.register_buffer("allowed", torch.tensor(allowed, dtype=torch.bool), persistent=False)
        self.alphas_layers = nn.Parameter(1e-3 * torch.randn(len(plan), len(candidates)))

    def choice_mask(self, label: str) -> torch.Tensor | None:
        return self.allowed

    def forward(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        mix = self.mixture(weights)["layers"]
        zero = None if mix.requires_grad else (mix == 0).tolist()  # one host read per forward, not per candidate
        x = self._trunk(x)
        for i, layer in enumerate(self.layers):
            x = layer(x, mix[i], None if zero is None else zero[i])
        return self._tail(x)

    def derive(self) -> LayerArch:
        """Best allowed candidate per layer."""
        with torch.no_grad():
            probs = self.probabilities("layers")
        return LayerArch(tuple(self.candidates[int(k)] for k in probs.argmax(dim=1).tolist()))
