"""Micro-benchmarks of single operators for latency tables (docs/HARDWARE.md "Measuring").

:func:`build_op` turns a table key into the operator alone, exactly as the deployed network runs
it (affine BatchNorm, eval mode), reusing the blocks of ``space/ops.py`` and ``nets/darts_net.py``.
:func:`time_module` times it in ONNX Runtime (legacy exporter, in memory, CPU EP, sequential) or
eager PyTorch, drops outliers above median + 5·MAD and summarizes with ``deploy/stats.summarize``.
:func:`session_overhead_ms` times a trivial model: the fixed cost of one runtime call, which the
table subtracts from every entry and adds back once per network.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..deploy.onnx_export import INPUT_NAME, onnx_model_proto
from ..errors import BadInputError, UnsupportedEnvironmentError
from ..space.genotype import DARTS_V2
from ..space.ops import OPS, FactorizedReduce, ReLUConvBN
from .geometry import EDGE_PRIMITIVES, KEY_OPS, NetworkGeometry, parse_key

BACKENDS: tuple[str, ...] = ("ort", "torch", "trt")
ONNX_OPSET = 17
OUTLIER_MADS = 5.0
# A floor on the MAD (fraction of the median): with a perfectly flat timer MAD would be 0 and
# "median + 5·MAD" would drop every sample above the median.
MAD_FLOOR_FRACTION = 0.01
OUTLIER_RULE = f"drop samples above median + {OUTLIER_MADS:g}*MAD (MAD floored at {MAD_FLOOR_FRACTION:g}*median)"


def check_backend(backend: str) -> str:
    """``backend`` if this version can time with it; unknown → exit 2; trt → exit 5 (absent or unsupported)."""
    if backend not in BACKENDS:
        raise BadInputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "trt":
        from ..deploy.formats import require_tensorrt

        trt = require_tensorrt()  # exit 5 where TensorRT is absent
        raise UnsupportedEnvironmentError(
            f"TensorRT {getattr(trt, '__version__', '?')} found, but per-op TensorRT timing is not implemented "
            "in this sdnas version; build the table with --backend ort"
        )
    return backend


def _stem_network(kind: str, C: int, in_channels: int, num_classes: int) -> nn.Module:
    """A one-cell network of ``kind`` whose stem modules are taken as-is (no stem code duplicated)."""
    from ..nets.darts_net import NetworkCIFAR, NetworkMobile

    cls = NetworkCIFAR if kind == "cifar" else NetworkMobile
    return cls(C, num_classes, 1, False, DARTS_V2, in_channels=in_channels)


class _PoolClassifier(nn.Module):
    """The network head: global average pool, flatten, linear (as ``_DartsNetwork.forward`` runs it)."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


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
        return _PoolClassifier(c_in, c_out)
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


def ort_session(module: nn.Module, input_shape: Sequence[int], threads: int = 1) -> Any:
    """A CPU ONNX Runtime session of ``module`` (one intra-op thread pool of ``threads``, sequential)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    proto = onnx_model_proto(module, input_shape, opset=ONNX_OPSET)
    return ort.InferenceSession(proto.SerializeToString(), sess_options=options,
                                providers=["CPUExecutionProvider"])


def _timed(fn: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
    """``warmup`` untimed calls, then ``repeats`` calls timed with perf_counter (ms)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples


def drop_outliers(samples: Sequence[float]) -> tuple[list[float], int]:
    """Samples at or below median + 5·MAD (MAD floored, see OUTLIER_RULE) and how many were dropped."""
    values = np.asarray(samples, dtype=np.float64)
    median = float(np.median(values))
    mad = max(float(np.median(np.abs(values - median))), MAD_FLOOR_FRACTION * median)
    kept = values[values <= median + OUTLIER_MADS * mad]
    return kept.tolist(), int(values.size - kept.size)


def time_module(
    module: nn.Module, input_shape: Sequence[int], backend: str = "ort", warmup: int = 5, repeats: int = 50,
    threads: int = 1,
) -> dict[str, Any]:
    """Latency of one call of ``module`` on a fixed random input, in ms.

    Returns count (samples kept), mean, std, p50, p90, min, dropped (outliers removed), repeats,
    outlier_rule and backend. ORT times ``session.run``; torch times the eager forward pass under
    ``torch.inference_mode`` with ``threads`` torch threads (restored afterwards).
    """
    from ..deploy.stats import summarize

    check_backend(backend)
    if repeats < 1 or warmup < 0 or threads < 1:
        raise BadInputError(f"need repeats >= 1, warmup >= 0, threads >= 1; got {repeats}, {warmup}, {threads}")
    module = module.eval()
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0))
    if backend == "ort":
        session = ort_session(module, input_shape, threads)
        feed = {INPUT_NAME: x.numpy()}
        samples = _timed(lambda: session.run(None, feed), warmup, repeats)
    else:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                samples = _timed(lambda: module(x), warmup, repeats)
        finally:
            torch.set_num_threads(previous)
    kept, dropped = drop_outliers(samples)
    s = summarize(kept, percentiles=(50, 90))
    return {
        "count": int(s["n"]), "mean": s["mean"], "std": s["std"], "p50": s["p50"], "p90": s["p90"],
        "min": s["min"], "dropped": dropped, "repeats": repeats, "outlier_rule": OUTLIER_RULE, "backend": backend,
    }


class _Trivial(nn.Module):
    """An identity-like model (x * 1) whose export keeps one node, so ORT runs a real graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0


def session_overhead_ms(backend: str = "ort", threads: int = 1, warmup: int = 20, repeats: int = 200) -> float:
    """Median cost of one runtime call on a trivial model and a 1-element tensor (ms)."""
    stats = time_module(_Trivial(), (1, 1, 1, 1), backend, warmup, repeats, threads)
    return float(stats["p50"])
