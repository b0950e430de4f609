"""Parameter and multiply-add counts of discrete networks, the way the DARTS papers report them.

Counting rules (ours, stated so reports are comparable):

* **Parameters**: every parameter whose name does not contain ``auxiliary`` (the auxiliary head
  is dropped at deployment), as in DARTS' ``count_parameters_in_MB``.
* **Multiply-adds (MACs)**: conv + linear multiply-accumulates only, from fvcore's
  ``FlopCountAnalysis`` (fvcore counts one "flop" per MAC for these) on one batch-1 input in
  eval mode, auxiliary head off. BatchNorm is not counted (it folds into the preceding conv at
  export); pools, elementwise add/mul, ReLU, pad and concat are not counted either — DARTS,
  PC-DARTS and the mobile-setting 600M budget all count conv/linear MACs.
* For transparency the report also carries fvcore's own total (which adds BatchNorm and adaptive
  pooling), the per-operator breakdown, and the ops fvcore skipped with their call counts.

Published vs measured: DARTS (second order) in the mobile setting is published at 4.7M params
and 574M multiply-adds. Under the rules above it measures 4.72M and ≈530M; others measuring the
reference code found the same gap (523M conv+fc, 545M with ptflops; quark0/darts issue #46), and
adding BN, ReLU, pools and adds still gives only ≈546M. We keep the conv+linear rule.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..device import eval_mode
from ..errors import BadInputError

# fvcore operator names whose count is multiply-accumulates of a conv or a matrix product.
MAC_OPERATORS = frozenset({"conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum"})


@dataclass
class MacsReport:
    """Result of :func:`count_macs`: DARTS-style MACs plus fvcore's full view."""

    macs: int
    fvcore_total: int
    by_operator: dict[str, int]
    skipped_ops: dict[str, int]
    input_shape: tuple[int, ...]
    counted: tuple[str, ...] = field(default_factory=lambda: tuple(sorted(MAC_OPERATORS)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, auxiliary head excluded (DARTS convention)."""
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name)


@contextlib.contextmanager
def _quiet_fvcore() -> Iterator[None]:
    """Silence fvcore's logger and the tracer/deprecation warnings a trace emits."""
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _normalize_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or any(s < 1 for s in shape) or shape[0] != 1:
        raise BadInputError(f"input shape {tuple(input_shape)} is invalid; pass (C, H, W) or (1, C, H, W)")
    return shape


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> MacsReport:
    """Conv + linear multiply-adds of one forward pass on a batch-1 input of ``input_shape`` ((C,H,W))."""
    shape = _normalize_shape(input_shape)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    inputs = torch.zeros(shape, device=device, dtype=dtype)
    with _quiet_fvcore(), eval_mode(model), torch.no_grad():
        from fvcore.nn import FlopCountAnalysis  # heavy optional dependency; its import warns

        analysis = FlopCountAnalysis(model, inputs)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        by_operator = {str(k): int(v) for k, v in analysis.by_operator().items()}
        total = int(analysis.total())
        skipped = {str(k).removeprefix("aten::"): int(v) for k, v in analysis.unsupported_ops().items()}
    macs = sum(v for k, v in by_operator.items() if k in MAC_OPERATORS)
    return MacsReport(macs=macs, fvcore_total=total, by_operator=by_operator, skipped_ops=skipped, input_shape=shape)


def inspect_network(
    arch: Any,
    setting: str | None,
    num_classes: int,
    in_channels: int = 3,
    input_size: int | None = None,
    layers: int | None = None,
    channels: int | None = None,
    space: Any = None,
) -> dict[str, Any]:
    """Build the network of ``arch`` (an architecture JSON, or an object of ``space``) in ``setting`` (no aux
    head) and report its size and cost.

    ``input_size`` None takes the setting's default (224 for mobile/imagenet); settings that take the
    dataset's size need it. ``warnings`` lists budget violations, e.g. a network over 600M multiply-adds.
    """
    from . import as_arch

    impl, arch = as_arch(arch, space)
    spec = impl.setting(setting)
    size = input_size if input_size is not None else spec.input_size
    if size is None:
        raise BadInputError(f"setting {spec.name!r} takes the dataset's image size; pass --input-size")
    geometry = impl.geometry(spec.name, input_size=size, in_channels=in_channels, num_classes=num_classes,
                             layers=layers, channels=channels)
    model = impl.build_network(arch, geometry, auxiliary=False)
    params = count_parameters(model)
    report = count_macs(model, (in_channels, size, size))
    notes: list[str] = []
    if spec.mac_budget is not None and report.macs > spec.mac_budget:
        notes.append(
            f"{spec.name} setting: {report.macs / 1e6:.1f}M multiply-adds exceeds its "
            f"{spec.mac_budget / 1e6:.0f}M budget; use a smaller network or a lighter architecture"
        )
    return {
        "space": impl.name,
        "setting": spec.name,
        "arch": impl.arch_to_string(arch),
        **impl.summary(arch),
        "geometry": geometry.to_dict(),
        "layers": getattr(geometry, "layers", None),
        "channels": getattr(geometry, "channels", None),
        "num_classes": num_classes,
        "in_channels": in_channels,
        "input_size": size,
        "params": params,
        "params_m": params / 1e6,
        "macs": report.macs,
        "macs_m": report.macs / 1e6,
        "fvcore_flops": report.fvcore_total,
        "by_operator": report.by_operator,
        "skipped_ops": report.skipped_ops,
        "mac_budget": spec.mac_budget,
        "warnings": notes,
    }
