"""Bake a precision into an ONNX graph: fp16 conversion and explicit INT8 Q/DQ (DESIGN.md §3).

TensorRT >= 10.12 deprecates (11.x removes) the weak-typing builder flags and calibrators: a
strongly typed network takes its precision from the ONNX itself. This module writes that ONNX
with the tools of ONNX Runtime (a dependency already) and runs anywhere, no GPU needed.

fp16 (:func:`convert_to_fp16`): ONNX Runtime's copy of onnxconverter-common's float16 converter
with ``keep_io_types=True``: float initializers and constants become float16, Casts are added
after the graph input and before the graph output so callers feed the same float32 arrays, and
integer tensors (shapes, Slice starts, Pad pads) are untouched.

What ONNX Runtime CPU does with it (measured with onnxruntime 1.32 on x86-64): it has float16
kernels only for data movement (Concat, Slice, Reshape, Transpose, Flatten, Cast); Conv, Gemm,
Add, Relu, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization and Pad have none. The
graph still runs, because ORT's InsertCastTransformer computes those ops in float32 between
Casts, but it then *removes* the back-to-back Casts it inserted, so most activations are never
rounded to fp16 and only the weights are. A CPU check of the shipped file alone would therefore
be too kind. :func:`wrap_fp32_ops` (``convert_to_fp16(..., keep_fp32_ops=ORT_CPU_NO_FP16_OPS)``)
makes the verification copy instead: the same fp16 weights and graph, with explicit Casts that ORT
keeps, so every activation is rounded to fp16 at every op boundary while the op itself computes
in float32 (as TensorRT's fp16 kernels accumulate in float32). That is stricter than TensorRT,
which fuses Conv+BN+ReLU+Add and rounds only between fused kernels. The TensorRT copy stays
fully fp16.

INT8 (:func:`insert_qdq`): ``onnxruntime.quantization.quantize_static`` in QDQ format, symmetric
int8 with zero point 0 (scale = amax / 127). Activations get QuantizeLinear -> DequantizeLinear on
the data input of every Conv/Gemm/MatMul that has a calibrated range (TensorRT's placement rule:
Q/DQ in front of the weighted layers; no Q/DQ on their outputs, so TensorRT fuses the rest);
weights are stored pre-quantized as int8 initializers followed by a DequantizeLinear, per output
channel. TensorRT 10 documents that weight form ("pre-quantized weights with an IDequantizeLayer
between the weights and the linear operator"); it stores int8 (4x smaller file). Biases stay float
(``QuantizeBias=False``: TensorRT takes float bias and folds it itself). Needs opset >= 13
(per-channel ``axis``). ORT CPU fuses the pattern into real int8 kernels (QLinearConv).
bench/precision_quality.py compares this with the hand-written rewrite it replaced (README).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping

import numpy as np

from ..errors import BadInputError, VerificationError
from .accuracy import PRECISIONS

PRECISION_KEY = "sdnas.precision"  # metadata_props entry recorded by bake_precision
FP16_MAX = 65504.0
QDQ_MIN_OPSET = 13
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
# ops without a float16 CPU kernel in onnxruntime 1.32 x86-64 (probed op by op; see module docstring)
ORT_CPU_NO_FP16_OPS = frozenset({
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "Pad",
    "ReduceMean", "Softmax",
})


@contextlib.contextmanager
def quiet_library() -> Iterator[None]:
    """Keep onnxruntime's tools quiet: they print progress to stdout and log advice as warnings."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _onnx() -> Any:
    import onnx

    return onnx


def _copy(proto: Any) -> Any:
    out = _onnx().ModelProto()
    out.CopyFrom(proto)
    return out


def _check(proto: Any, what: str) -> Any:
    """Run ``onnx.checker`` (full check); a failure here is a bug in the rewrite, reported as exit 3."""
    onnx = _onnx()
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError
        raise VerificationError(f"{what} graph failed onnx.checker ({' '.join(str(exc).split())[:160]}); "
                                "export at fp32 and report this model") from None
    return proto


def tensor_types(proto: Any) -> dict[str, int]:
    """Name -> ONNX elem type of every typed tensor (inputs, outputs, initializers, inferred values)."""
    onnx = _onnx()
    inferred = onnx.shape_inference.infer_shapes(proto)
    graph = inferred.graph
    types = {init.name: init.data_type for init in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        if info.type.HasField("tensor_type") and info.type.tensor_type.elem_type:
            types[info.name] = info.type.tensor_type.elem_type
    return types


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _all_names(graph: Any) -> set[str]:
    names = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


def _tensor_constants(proto: Any) -> Any:
    """A copy whose float Constants carry a ``value`` tensor: the converter skips ``value_float(s)``."""
    from onnx import helper, numpy_helper

    model = _copy(proto)
    for node in model.graph.node:
        attr = next((a for a in node.attribute if a.name in ("value_float", "value_floats")), None)
        if node.op_type != "Constant" or attr is None:
            continue
        values = np.float32(attr.f) if attr.name == "value_float" else np.asarray(list(attr.floats), np.float32)
        node.ClearField("attribute")
        node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.asarray(values), "value")))
    return model


def convert_to_fp16(proto: Any, keep_fp32_ops: Collection[str] = ()) -> Any:
    """A float16 copy of a float32 model whose graph input/output stay float32.

    The conversion is ONNX Runtime's maintained copy of onnxconverter-common's
    ``convert_float_to_float16`` (``keep_io_types=True``, its default op block list), followed by
    ORT's topological sort: the converter appends the IO Casts at the end of the node list,
    which ORT tolerates but ``onnx.checker`` refuses (the ONNX spec wants nodes in topological order). ``keep_fp32_ops`` (op
    types) is for CPU verification only: see :func:`wrap_fp32_ops`.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    with quiet_library():
        model = convert_float_to_float16(_tensor_constants(proto), keep_io_types=True, max_finite_val=FP16_MAX)
        OnnxModel(model).topological_sort()
    if keep_fp32_ops:
        model = wrap_fp32_ops(model, keep_fp32_ops, check=False)
    return _check(model, "fp16")


def wrap_fp32_ops(proto: Any, op_types: Collection[str], check: bool = True) -> Any:
    """Compute ``op_types`` nodes of an fp16 graph in float32 between explicit Casts.

    Every float16 input of such a node is cast to float32 and every float16 output is computed
    in float32 and cast back, so activations stay rounded to fp16 at each op boundary. For CPU
    verification copies only (module docstring); never ship this to TensorRT.
    """
    from onnx import TensorProto, helper

    model = _copy(proto)
    graph = model.graph
    types = tensor_types(model)
    f32, f16 = TensorProto.FLOAT, TensorProto.FLOAT16
    taken = _all_names(graph)
    nodes: list[Any] = []
    for node in graph.node:
        if node.op_type not in op_types:
            nodes.append(node)
            continue
        for i, name in enumerate(node.input):
            if name and types.get(name) == f16:
                wide = _unique(f"{name}_fp32_{node.name or node.op_type}", taken)
                nodes.append(helper.make_node("Cast", [name], [wide], to=f32, name=_unique(f"{wide}_cast", taken)))
                node.input[i] = wide
        after = []
        for i, name in enumerate(node.output):
            if name and types.get(name) == f16:
                wide = _unique(f"{name}_fp32", taken)
                node.output[i] = wide
                after.append(helper.make_node("Cast", [wide], [name], to=f16, name=_unique(f"{name}_to_fp16", taken)))
        nodes.append(node)
        nodes.extend(after)
    graph.ClearField("node")
    graph.node.extend(nodes)
    return _check(model, "fp16 verification") if check else model


def _opset(proto: Any) -> int:
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def linear_data_inputs(proto: Any) -> list[str]:
    """The activation inputs of every Conv/Gemm/MatMul (both of a MatMul), in graph order: what gets Q/DQ.

    Initializers and Constant outputs (weights) are left out; calibration measures these tensors.
    """
    weights = {i.name for i in proto.graph.initializer}
    weights |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    names = [name for node in proto.graph.node if node.op_type in QUANTIZED_OPS
             for name in node.input[: 2 if node.op_type == "MatMul" else 1] if name not in weights]
    return list(dict.fromkeys(names))


def insert_qdq(proto: Any, ranges: Mapping[str, float], per_channel: bool = True) -> Any:
    """Explicit INT8 quantization (Q/DQ) of a float32 model for a strongly typed TensorRT build.

    ``onnxruntime.quantization.quantize_static`` in QDQ format does the rewrite (module
    docstring: symmetric int8, per-channel int8 weights, float biases, no Q/DQ on Conv/Gemm/MatMul
    outputs); our ``ranges`` reach it as a TensorsData calibration cache, so the ranges that were
    verified and cached are exactly the ones baked in.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    opset = _opset(proto)
    if opset < QDQ_MIN_OPSET:
        raise BadInputError(f"INT8 Q/DQ needs ONNX opset >= {QDQ_MIN_OPSET}, this model has {opset}; "
                            f"re-export with --opset {QDQ_MIN_OPSET} or higher")
    data_inputs = set(linear_data_inputs(proto))
    known = {name: float(amax) for name, amax in ranges.items() if name in data_inputs}
    if not known:
        raise BadInputError("no calibration range matches a Conv/Gemm/MatMul input of this model; "
                            "recalibrate for this model (delete its --calib-cache)")
    for name, amax in known.items():
        if not amax > 0 or not np.isfinite(amax):
            raise BadInputError(f"calibration range of {name!r} is {amax}; recalibrate (ranges must be > 0)")
    table = TensorsData(CalibrationMethod.MinMax, {
        name: TensorData(lowest=np.float32(-amax), highest=np.float32(amax)) for name, amax in known.items()})
    with tempfile.TemporaryDirectory(prefix="sdnas-qdq-") as tmp, quiet_library():
        cache, out = Path(tmp) / "ranges.json", Path(tmp) / "model.onnx"
        save_tensors_data(table, cache)
        quantize_static(
            _copy(proto), out, calibration_data_reader=None, calibration_cache_path=cache,
            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS), per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=[n.name for n in proto.graph.node if n.op_type in QUANTIZED_OPS
                              and n.input[0] not in known],
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                           "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)},
        )
        model = _onnx().load(str(out))
    return _check(model, "int8 Q/DQ")


def bake_precision(proto: Any, precision: str, ranges: Mapping[str, float] | None = None) -> Any:
    """The model to ship for ``precision``: fp32 unchanged, fp16 converted, int8 with Q/DQ.

    Records ``sdnas.precision`` in ``metadata_props`` (so a TensorRT builder knows the graph
    is already typed).
    """
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16":
        model = convert_to_fp16(proto)
    elif precision == "int8":
        if not ranges:
            raise BadInputError("int8 needs calibration ranges; pass --calib-data (a dataset name, an image "
                                "folder or a .npy file) to calibrate")
        model = insert_qdq(proto, ranges)
    else:
        model = _copy(proto)
    for entry in list(model.metadata_props):
        if entry.key == PRECISION_KEY:
            model.metadata_props.remove(entry)
    prop = model.metadata_props.add()
    prop.key, prop.value = PRECISION_KEY, precision
    return model


def cpu_session(proto: Any, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for an in-memory model (the one session builder, errors only on stderr)."""
    from ..runtime.ort_session import build_session

    return build_session(proto.SerializeToString(), "cpu", threads, where="rewritten graph",
                         fix="export at fp32 and report this model")
