"""fp16 conversion and INT8 Q/DQ baking on the committed demo model, judged by real accuracy in ORT CPU."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sdnas_deploy.data import load_arrays
from sdnas_deploy.export.calibration import CALIB_METHODS, collect_activation_ranges, load_calibration_images
from sdnas_deploy.runtime.evaluate import run_batched
from sdnas_deploy.export.onnx_precision import (
    ORT_CPU_NO_FP16_OPS,
    PRECISION_KEY,
    bake_precision,
    convert_to_fp16,
    cpu_session,
    insert_qdq,
    wrap_fp32_ops,
)
from sdnas_deploy.errors import BadInputError

DEMO = Path(__file__).resolve().parents[1] / "export" / "demo" / "model.onnx"


@pytest.fixture(scope="module")
def demo() -> onnx.ModelProto:
    return onnx.load(str(DEMO))


@pytest.fixture(scope="module")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    return load_arrays("digits", "test", limit=360)


@pytest.fixture(scope="module")
def fp32_logits(demo: onnx.ModelProto, test_set: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return run_batched(cpu_session(demo), test_set[0])


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(logits.argmax(1) == labels))


def int_tensors(model: onnx.ModelProto) -> list[tuple[str, int]]:
    """(name, dtype) of every integer initializer and Constant tensor."""
    out = [(i.name, i.data_type) for i in model.graph.initializer if i.data_type in (TensorProto.INT64, TensorProto.INT32)]
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type in (TensorProto.INT64, TensorProto.INT32):
                out.append((node.output[0], attr.t.data_type))
    return out


def test_fp16_demo_is_checked_float16_inside_with_float32_io(demo: onnx.ModelProto) -> None:
    half = convert_to_fp16(demo)
    onnx.checker.check_model(half, full_check=True)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    kinds = Counter(i.data_type for i in half.graph.initializer)
    assert kinds[TensorProto.FLOAT] == 0 and kinds[TensorProto.FLOAT16] > 40
    assert sorted(int_tensors(half)) == sorted(int_tensors(demo))  # Slice starts, Pad pads, shapes stay integer
    source, sink = half.graph.input[0].name, half.graph.output[0].name
    readers = [n for n in half.graph.node if source in n.input]
    writer = next(n for n in half.graph.node if sink in n.output)
    assert [n.op_type for n in readers] == ["Cast"] and writer.op_type == "Cast"  # float32 IO around a float16 graph
    assert all(helper.get_attribute_value(a) != TensorProto.FLOAT for n in half.graph.node if n is not writer
               and n.op_type == "Cast" for a in n.attribute if a.name == "to")
    assert len(half.SerializeToString()) < 0.6 * len(demo.SerializeToString())


def test_fp16_demo_accuracy_matches_fp32(demo, test_set, fp32_logits) -> None:
    images, labels = test_set
    scale = float(np.abs(fp32_logits).max())
    for model in (convert_to_fp16(demo), convert_to_fp16(demo, keep_fp32_ops=ORT_CPU_NO_FP16_OPS)):
        logits = run_batched(cpu_session(model), images)
        assert np.abs(logits - fp32_logits).max() <= 1e-2 * scale
        assert abs(accuracy(logits, labels) - accuracy(fp32_logits, labels)) <= 0.01


def test_fp32_op_wrapping_rounds_every_activation(demo: onnx.ModelProto) -> None:
    half = convert_to_fp16(demo)
    strict = wrap_fp32_ops(half, ORT_CPU_NO_FP16_OPS)
    onnx.checker.check_model(strict, full_check=True)
    convs = [n for n in strict.graph.node if n.op_type == "Conv"]
    producers = {o: n for n in strict.graph.node for o in n.output}
    consumers = Counter(i for n in strict.graph.node for i in n.input)
    for conv in convs:  # every Conv reads fp32 casts and writes a tensor that is cast straight back to fp16
        assert all(producers[i].op_type == "Cast" for i in conv.input[:2])
        assert consumers[conv.output[0]] == 1
    cast_to_fp16 = [n for n in strict.graph.node if n.op_type == "Cast" and n.attribute[0].i == TensorProto.FLOAT16]
    assert len(cast_to_fp16) >= len(convs)


def tiny_graph(opset: int = 17, trans_b: int = 1) -> onnx.ModelProto:
    """x -> Conv -> Relu -> Flatten -> Gemm, plus a float Constant and a Cast(to=FLOAT) on a side branch."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    gw = rng.standard_normal((3, 64) if trans_b else (64, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Constant", [], ["k"], value_float=0.5),
        helper.make_node("Mul", ["r", "k"], ["m"]),
        helper.make_node("Shape", ["m"], ["s"]),
        helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["sf"], ["total"], keepdims=0),
        helper.make_node("Flatten", ["m"], ["f"]),
        helper.make_node("Gemm", ["f", "gw"], ["g"], transB=trans_b),
        helper.make_node("Add", ["g", "total"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], [w, b, numpy_helper.from_array(gw, "gw")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def test_fp16_converts_constants_and_float_casts() -> None:
    model = tiny_graph()
    half = convert_to_fp16(model)
    nodes = {n.op_type: n for n in half.graph.node if n.op_type in ("Constant", "Mul")}
    assert nodes["Constant"].attribute[0].t.data_type == TensorProto.FLOAT16
    inner = [n for n in half.graph.node if n.op_type == "Cast" and n.input[0] == "s"]
    assert inner[0].attribute[0].i == TensorProto.FLOAT16
    x = np.random.default_rng(1).standard_normal((5, 1, 4, 4)).astype(np.float32)
    ref = cpu_session(model).run(None, {"x": x})[0]
    got = cpu_session(half).run(None, {"x": x})[0]
    assert got.dtype == np.float32 and np.allclose(got, ref, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("method", CALIB_METHODS)
def test_int8_demo_keeps_accuracy(method, demo, test_set, fp32_logits) -> None:
    images, labels = test_set
    calib = load_calibration_images("digits", 64, (1, 1, 16, 16))
    ranges = collect_activation_ranges(demo, calib, method)
    quantized = insert_qdq(demo, ranges)
    logits = run_batched(cpu_session(quantized), images)
    assert accuracy(fp32_logits, labels) - accuracy(logits, labels) <= 0.03
    assert not np.allclose(logits, fp32_logits, atol=1e-3)  # it really is quantized


def test_qdq_nodes_and_scales_match_ranges(demo: onnx.ModelProto) -> None:
    calib = load_calibration_images("digits", 16, (1, 1, 16, 16))
    ranges = collect_activation_ranges(demo, calib, "minmax")
    quantized = insert_qdq(demo, ranges)
    ops = Counter(n.op_type for n in quantized.graph.node)
    linear = [n for n in demo.graph.node if n.op_type in ("Conv", "Gemm")]
    activations = {n.input[0] for n in linear}
    assert set(ranges) == activations
    assert ops["QuantizeLinear"] == len(activations)
    assert ops["DequantizeLinear"] == len(activations) + len({n.input[1] for n in linear})
    inits = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    original = {i.name: numpy_helper.to_array(i) for i in demo.graph.initializer}
    for node in quantized.graph.node:
        if node.op_type == "QuantizeLinear":
            assert inits[node.input[1]] == pytest.approx(ranges[node.input[0]] / 127, rel=1e-6)
            assert inits[node.input[2]].dtype == np.int8 and inits[node.input[2]] == 0
    producers = {o: n for n in quantized.graph.node for o in n.output}
    for node in quantized.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        assert producers[node.input[0]].op_type == "DequantizeLinear"
        dq = producers[node.input[1]]
        q, scale = inits[dq.input[0]], inits[dq.input[1]]
        name = dq.input[0].removesuffix("_quantized")
        w = original[name]
        axis = helper.get_attribute_value(dq.attribute[0])
        assert axis == 0 and q.dtype == np.int8 and np.abs(q.astype(int)).max() == 127
        per_channel = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127
        assert np.allclose(scale, per_channel, rtol=1e-6)
        shape = [-1] + [1] * (w.ndim - 1)
        assert np.abs(q * scale.reshape(shape) - w).max() <= scale.max() / 2 + 1e-7
        if len(node.input) > 2:
            assert node.input[2] in original  # bias stays float
    assert not any(name in {i.name for i in quantized.graph.initializer} for name in
                   (n.input[1] for n in linear))  # fp32 weights replaced by int8


def test_gemm_weight_axis_follows_trans_b() -> None:
    for trans_b, axis in ((1, 0), (0, 1)):
        model = tiny_graph(trans_b=trans_b)
        ranges = {"x": 3.0, "f": 2.0}
        quantized = insert_qdq(model, ranges)
        dq = next(n for n in quantized.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == "gw_quantized")
        assert helper.get_attribute_value(dq.attribute[0]) == axis
        scale = next(numpy_helper.to_array(i) for i in quantized.graph.initializer if i.name == dq.input[1])
        assert scale.shape == (3,)
        x = np.random.default_rng(2).uniform(-1, 1, (4, 1, 4, 4)).astype(np.float32)
        ref = cpu_session(model).run(None, {"x": x})[0]
        got = cpu_session(quantized).run(None, {"x": x})[0]
        assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max()


def test_qdq_rejects_old_opset_and_unmatched_ranges() -> None:
    with pytest.raises(BadInputError, match="opset >= 13"):
        insert_qdq(tiny_graph(opset=12), {"x": 1.0})
    with pytest.raises(BadInputError, match="no calibration range"):
        insert_qdq(tiny_graph(), {"nothing": 1.0})


def test_bake_precision_records_metadata(demo: onnx.ModelProto) -> None:
    for precision in ("fp32", "fp16"):
        baked = bake_precision(demo, precision)
        props = {p.key: p.value for p in baked.metadata_props}
        assert props[PRECISION_KEY] == precision
    assert PRECISION_KEY not in {p.key for p in demo.metadata_props}  # the input is never modified
    assert bake_precision(demo, "fp32").graph == demo.graph
    with pytest.raises(BadInputError, match="--calib-data"):
        bake_precision(demo, "int8")
    with pytest.raises(BadInputError, match="unknown precision"):
        bake_precision(demo, "fp8")
