"""One DARTS latency-table key built alone, exactly as the deployed network runs it (affine BN, eval mode).

Edge ops come from ``ops.OPS``; the fixed parts (stems, cell preprocessing, pool + classifier) are taken from
the real network classes, so no stem code is written twice.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from ...errors import BadInputError
from ..keys import Hook, stride_between, traced_forward
from ..layers import PoolClassifier
from .genotype import DARTS_V2, Genotype
from .geometry import EDGE_PRIMITIVES, KEY_OPS, NetworkGeometry, key, parse_key
from .ops import OPS, FactorizedReduce, ReLUConvBN


def _stem_network(kind: str, C: int, in_channels: int, num_classes: int) -> nn.Module:
    """A one-cell network of ``kind`` whose stem modules are taken as-is (no stem code duplicated)."""
    from .network import NetworkCIFAR, NetworkMobile

    cls = NetworkCIFAR if kind == "cifar" else NetworkMobile
    return cls(C, num_classes, 1, False, DARTS_V2, in_channels=in_channels)


def _fixed_part(op: str, c_in: int, c_out: int) -> nn.Module:
    """The network's fixed parts (stems, cell preprocessing, head) built from a key's shapes."""
    if op == "stem_cifar":
        if c_out % 3:
            raise BadInputError(
                f"stem_cifar output channels {c_out} are not 3*C; rebuild the table with `sdnas lut build`"
            )
        return _stem_network("cifar", c_out // 3, c_in, 2).stem
    if op == "stem0_mobile":
        return _stem_network("mobile", c_out, c_in, 2).stem0
    if op == "stem1_mobile":
        return _stem_network("mobile", c_out, 1, 2).stem1
    if op == "preprocess_relu_conv_bn":
        return ReLUConvBN(c_in, c_out, 1, 1, 0, affine=True)
    if op == "factorized_reduce":
        return FactorizedReduce(c_in, c_out, affine=True)
    if op == "global_pool_classifier":
        return PoolClassifier(c_in, c_out)
    raise BadInputError(f"unknown op {op!r} in latency key; known: {', '.join(KEY_OPS)}")


def build_op(key: str, geometry: NetworkGeometry) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """The operator a table key names, alone and as deployed (affine BN, eval mode), and its NCHW input shape.

    ``geometry`` (the table's NetworkGeometry) is checked against the key's channels where it matters
    (stem input channels, classifier classes).
    """
    parts = parse_key(key)
    op, (h, w, c_in), (_, _, c_out), stride = parts.op, parts.input, parts.output, parts.stride
    if op in EDGE_PRIMITIVES:
        if c_in != c_out:
            raise BadInputError(f"{key}: candidate ops keep the channel count; rebuild the key with `sdnas lut build`")
        module = OPS[op](c_in, stride, True)
    else:
        if op in ("stem_cifar", "stem0_mobile") and c_in != geometry.in_channels:
            raise BadInputError(f"{key}: stem input has {c_in} channels but the geometry has {geometry.in_channels}")
        if op == "global_pool_classifier" and c_out != geometry.num_classes:
            raise BadInputError(f"{key}: classifier has {c_out} classes but the geometry has {geometry.num_classes}")
        module = _fixed_part(op, c_in, c_out)
    return module.eval(), (1, c_in, h, w)


def traced_keys(net: nn.Module, genotype: Genotype, geometry: NetworkGeometry) -> Counter[str]:
    """Keys of a built network read off its real forward shapes (hooks on stems, cell preprocessing, edge ops
    and the head): the independent check on ``geometry.network_keys``."""
    seen: Counter[str] = Counter()

    def hwc(t: torch.Tensor) -> tuple[int, int, int]:
        return (t.shape[-2], t.shape[-1], t.shape[1])

    def record(name: str) -> Hook:
        def hook(_module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            seen[key(name, hwc(inputs[0]), hwc(output), stride_between(inputs[0].shape[-2], output.shape[-2]))] += 1
        return hook

    stems = [("stem0_mobile", net.stem0), ("stem1_mobile", net.stem1)] if geometry.setting == "mobile" else [
        ("stem_cifar", net.stem)]
    hooks: list[tuple[nn.Module, Hook]] = [(module, record(name)) for name, module in stems]
    for cell in net.cells:
        for pre in (cell.preprocess0, cell.preprocess1):
            name = "factorized_reduce" if isinstance(pre, FactorizedReduce) else "preprocess_relu_conv_bn"
            hooks.append((pre, record(name)))
        entries, _ = genotype.cell("reduce" if cell.reduction else "normal")
        hooks += [(op, record(op_name)) for (op_name, _), op in zip(entries, cell._ops, strict=True)]
    pooled: dict[str, tuple[int, int, int]] = {}
    hooks.append((net.global_pooling, lambda m, i, o: pooled.update(x=hwc(i[0]))))
    hooks.append((net.classifier,
                  lambda m, i, o: seen.update([key("global_pool_classifier", pooled["x"], (1, 1, o.shape[-1]), 1)])))
    traced_forward(net, (1, geometry.in_channels, geometry.input_size, geometry.input_size), hooks)
    return seen
