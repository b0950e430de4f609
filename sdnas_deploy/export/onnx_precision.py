"""Bake a precision into an ONNX graph: fp16 conversion and explicit INT8 Q/DQ (DESIGN.md §3).

TensorRT >= 10.12 deprecates (11.x removes) the weak-typing builder flags and calibrators: a
strongly typed network takes its precision from the ONNX itself. This module writes that ONNX
and runs anywhere (onnx + numpy; ONNX Runtime only to execute the result).

fp16 (:func:`convert_to_fp16`): float32 initializers and Constant/ConstantOfShape tensors become
float16 (clipped to +-65504), ``Cast(to=FLOAT)`` becomes ``Cast(to=FLOAT16)``, and a Cast after
the graph input / before the graph output keeps the IO float32, so callers feed the same arrays.
Integer tensors (shapes, Slice starts, Pad pads) are untouched.

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

INT8 (:func:`insert_qdq`): symmetric int8, zero point 0. Activations get QuantizeLinear ->
DequantizeLinear (scale = amax / 127) on the data input of every Conv/Gemm/MatMul that has a
calibrated range; weights are stored pre-quantized as int8 initializers followed by a
DequantizeLinear, per output channel (scale = max|w| / 127). TensorRT 10 documents both weight
forms ("high-precision weights with an IQuantizeLayer, or pre-quantized weights with an
IDequantizeLayer between the weights and the linear operator"); the pre-quantized form is chosen
because it stores int8 (4x smaller file) and rounds once. Biases stay float. Needs opset >= 13
(per-channel ``axis``). ORT CPU fuses the pattern into real int8 kernels (QLinearConv).
"""

from __future__ import annotations

from typing import Any, Collection, Iterable, Mapping

import numpy as np

from ..errors import BadInputError, VerificationError
from .accuracy import PRECISIONS

PRECISION_KEY = "sdnas.precision"  # metadata_props entry recorded by bake_precision
FP16_MAX = 65504.0
QDQ_MIN_OPSET = 13
INT8_MAX = 127  # symmetric, narrow range [-127, 127]
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
# ops without a float16 CPU kernel in onnxruntime 1.32 x86-64 (probed op by op; see module docstring)
ORT_CPU_NO_FP16_OPS = frozenset({
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "Pad",
    "ReduceMean", "Softmax",
})
# input slots that ONNX types as float32 whatever the data type (kept float32 by convert_to_fp16)
_FLOAT32_ONLY_INPUTS = {"Resize": (2,), "Upsample": (1,)}


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


def _to_fp16(tensor: Any) -> Any:
    """A float32 TensorProto as float16 (clipped to the fp16 range), same name."""
    from onnx import numpy_helper

    array = numpy_helper.to_array(tensor).astype(np.float32)
    half = np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(half, tensor.name)


def _rename_inputs(nodes: Iterable[Any], old: str, new: str) -> None:
    for node in nodes:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def convert_to_fp16(proto: Any, keep_fp32_ops: Collection[str] = ()) -> Any:
    """A float16 copy of a float32 model whose graph input/output stay float32.

    ``keep_fp32_ops`` (op types) is for CPU verification only: see :func:`wrap_fp32_ops`.
    """
    from onnx import TensorProto, helper, numpy_helper

    model = _copy(proto)
    graph = model.graph
    f32, f16 = TensorProto.FLOAT, TensorProto.FLOAT16
    keep32 = {node.input[i] for node in graph.node for i in _FLOAT32_ONLY_INPUTS.get(node.op_type, ())
              if i < len(node.input)}
    for i, init in enumerate(graph.initializer):
        if init.data_type == f32 and init.name not in keep32:
            graph.initializer[i].CopyFrom(_to_fp16(init))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type in ("Constant", "ConstantOfShape") and attr.name == "value" and attr.t.data_type == f32:
                attr.t.CopyFrom(_to_fp16(attr.t))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == f32:
                attr.i = f16
            elif attr.name == "dtype" and attr.i == f32:  # RandomNormal, EyeLike, ...
                attr.i = f16
        if node.op_type == "Constant" and any(a.name in ("value_float", "value_floats") for a in node.attribute):
            attr = next(a for a in node.attribute if a.name in ("value_float", "value_floats"))
            values = [attr.f] if attr.name == "value_float" else list(attr.floats)
            shape = () if attr.name == "value_float" else (len(values),)
            tensor = numpy_helper.from_array(np.asarray(values, np.float16).reshape(shape), "value")
            node.ClearField("attribute")
            node.attribute.append(helper.make_attribute("value", tensor))
    for info in graph.value_info:
        if info.type.tensor_type.elem_type == f32:
            info.type.tensor_type.elem_type = f16
    taken = _all_names(graph)
    head, tail = [], []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type == f32 and inp.name not in {i.name for i in graph.initializer}:
            half = _unique(f"{inp.name}_fp16", taken)
            _rename_inputs(graph.node, inp.name, half)
            head.append(helper.make_node("Cast", [inp.name], [half], to=f16, name=_unique(f"{inp.name}_to_fp16", taken)))
    for out in graph.output:
        if out.type.tensor_type.elem_type != f32:
            continue
        half = _unique(f"{out.name}_fp16", taken)
        for node in graph.node:
            for i, name in enumerate(node.output):
                if name == out.name:
                    node.output[i] = half
        _rename_inputs(graph.node, out.name, half)
        tail.append(helper.make_node("Cast", [half], [out.name], to=f32, name=_unique(f"{out.name}_to_fp32", taken)))
    nodes = [*head, *graph.node, *tail]
    graph.ClearField("node")
    graph.node.extend(nodes)
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


def _weight_axis(node: Any, ndim: int) -> int:
    """Output-channel axis of the weight of a Conv (0), Gemm (0 if transB else 1) or MatMul (last)."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return ndim - 1


def quantize_weight(weight: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights and their scale (per channel along ``axis``, or one scale when None)."""
    w = weight.astype(np.float32)
    if axis is None:
        amax = np.asarray(np.abs(w).max(), dtype=np.float32)
        scale = np.maximum(amax / INT8_MAX, np.float32(1e-12)).astype(np.float32)
        q = np.clip(np.rint(w / scale), -INT8_MAX, INT8_MAX).astype(np.int8)
        return q, scale
    reduce = tuple(d for d in range(w.ndim) if d != axis)
    amax = np.abs(w).max(axis=reduce)
    scale = np.maximum(amax / INT8_MAX, np.float32(1e-12)).astype(np.float32)  # all-zero channel: any scale works
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scale


def insert_qdq(proto: Any, ranges: Mapping[str, float], per_channel: bool = True) -> Any:
    """Explicit INT8 quantization (Q/DQ) of a float32 model for a strongly typed TensorRT build."""
    from onnx import TensorProto, helper, numpy_helper

    opset = _opset(proto)
    if opset < QDQ_MIN_OPSET:
        raise BadInputError(f"INT8 Q/DQ needs ONNX opset >= {QDQ_MIN_OPSET}, this model has {opset}; "
                            f"re-export with --opset {QDQ_MIN_OPSET} or higher")
    model = _copy(proto)
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    taken = _all_names(graph)
    zero_point = _unique("qdq_zero_point_int8", taken)
    new_inits = [numpy_helper.from_array(np.zeros((), np.int8), zero_point)]
    dq_of: dict[str, str] = {}  # activation tensor -> its DequantizeLinear output
    weight_dq: dict[str, str] = {}
    nodes: list[Any] = []
    for node in graph.node:
        if node.op_type not in QUANTIZED_OPS:
            nodes.append(node)
            continue
        data = node.input[0]
        if data in ranges and data not in inits:
            if data not in dq_of:
                amax = float(ranges[data])
                if not amax > 0 or not np.isfinite(amax):
                    raise BadInputError(f"calibration range of {data!r} is {amax}; recalibrate (ranges must be > 0)")
                scale = _unique(f"{data}_scale", taken)
                new_inits.append(numpy_helper.from_array(np.asarray(amax / INT8_MAX, np.float32), scale))
                q_out, dq_out = _unique(f"{data}_QuantizeLinear", taken), _unique(f"{data}_DequantizeLinear", taken)
                nodes.append(helper.make_node("QuantizeLinear", [data, scale, zero_point], [q_out], name=q_out))
                nodes.append(helper.make_node("DequantizeLinear", [q_out, scale, zero_point], [dq_out], name=dq_out))
                dq_of[data] = dq_out
            node.input[0] = dq_of[data]
        weight = node.input[1] if len(node.input) > 1 else ""
        if weight in inits and inits[weight].data_type == TensorProto.FLOAT:
            if weight not in weight_dq:
                array = numpy_helper.to_array(inits[weight])
                axis = _weight_axis(node, array.ndim) if per_channel else None
                q, scale = quantize_weight(array, axis)
                q_name, s_name = _unique(f"{weight}_int8", taken), _unique(f"{weight}_scale", taken)
                dq_out = _unique(f"{weight}_DequantizeLinear", taken)
                new_inits += [numpy_helper.from_array(q, q_name), numpy_helper.from_array(scale, s_name)]
                extra = {"axis": axis} if axis is not None else {}
                zp = _unique(f"{weight}_zero_point", taken)
                new_inits.append(numpy_helper.from_array(np.zeros(scale.shape, np.int8), zp))
                nodes.append(helper.make_node("DequantizeLinear", [q_name, s_name, zp], [dq_out], name=dq_out, **extra))
                weight_dq[weight] = dq_out
            node.input[1] = weight_dq[weight]
        nodes.append(node)
    if not dq_of:
        raise BadInputError("no calibration range matches a Conv/Gemm/MatMul input of this model; "
                            "recalibrate for this model (delete its --calib-cache)")
    still_used = {name for node in nodes for name in node.input}
    kept = [init for init in graph.initializer if init.name in still_used or init.name not in weight_dq]
    graph.ClearField("initializer")
    graph.initializer.extend([*kept, *new_inits])
    graph.ClearField("node")
    graph.node.extend(nodes)
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
